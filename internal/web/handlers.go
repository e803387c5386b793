package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/reel-rec/reel/internal/index"
	"github.com/reel-rec/reel/internal/store"
)

func (s *Server) routes() *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("GET /assets/", assetHandler())
	mux.HandleFunc("GET /login", s.loginPage)
	mux.HandleFunc("POST /login", s.login)
	mux.HandleFunc("POST /logout", s.logout)

	mux.HandleFunc("GET /{$}", s.authed(s.listPage))
	mux.HandleFunc("GET /search", s.authed(s.searchPage))
	mux.HandleFunc("GET /events", s.authed(s.eventsPage))
	mux.HandleFunc("GET /api/rows", s.authed(s.rowsAPI))
	mux.HandleFunc("GET /r/{node}/{name}", s.authed(s.recording(s.recordingPage)))
	mux.HandleFunc("GET /r/{node}/{name}/cast", s.authed(s.recording(s.castData)))
	mux.HandleFunc("GET /r/{node}/{name}/download", s.authed(s.recording(s.download)))
	mux.HandleFunc("GET /r/{node}/{name}/seg/index.json", s.authed(s.recording(s.segmentIndex)))
	mux.HandleFunc("GET /r/{node}/{name}/seg/{i}", s.authed(s.recording(s.segmentDoc)))
	mux.HandleFunc("GET /r/{node}/{name}/prepare", s.authed(s.recording(s.prepareStatus)))
	mux.HandleFunc("GET /r/{node}/{name}/live", s.authed(s.recording(s.liveSocket)))
	return mux
}

type viewerKey struct{}

// authed runs h only for an authenticated viewer. Anyone else gets the
// login page (a page request) or 401 (anything else), and nothing of a
// recording.
func (s *Server) authed(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		v, ok := s.Auth.Viewer(r)
		if !ok {
			if r.Method == http.MethodGet && r.Header.Get("Sec-Fetch-Dest") != "empty" && !strings.HasPrefix(r.URL.Path, "/api/") && !isData(r.URL.Path) {
				http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
				return
			}
			http.Error(w, "not logged in", http.StatusUnauthorized)
			return
		}
		h(w, r.WithContext(context.WithValue(r.Context(), viewerKey{}, v)))
	}
}

// isData reports whether path is a recording's data (not a page).
func isData(path string) bool {
	for _, suf := range []string{"/cast", "/download", "/live", "/prepare", ".json"} {
		if strings.HasSuffix(path, suf) {
			return true
		}
	}
	return strings.Contains(path, "/seg/")
}

// remoteOf is where r comes from, for the audit log: the address the
// Authenticator names, else the connection's.
func remoteOf(r *http.Request, v Viewer) string {
	if v.Addr != "" {
		return v.Addr
	}
	return r.RemoteAddr
}

func viewerOf(r *http.Request) Viewer {
	v, _ := r.Context().Value(viewerKey{}).(Viewer)
	return v
}

// audit records an act of r's viewer. A failing audit log is logged; the
// act has happened by then for reads of lists, so it is not undone.
func (s *Server) audit(r *http.Request, action, target, detail string) {
	if s.Audit == nil {
		return
	}
	v := viewerOf(r)
	e := AuditEntry{At: s.Now(), Viewer: v.Name, Via: v.Via, Remote: remoteOf(r, v), Action: action, Target: target, Detail: detail}
	if err := s.Audit.Record(r.Context(), e); err != nil {
		s.Log.Error("audit log", "err", err, "action", action, "viewer", v.Name)
	}
}

// auditFirst records an act before it happens; when the audit log cannot
// take it, the act is refused (no unaudited view or download).
func (s *Server) auditFirst(w http.ResponseWriter, r *http.Request, action, target, detail string) bool {
	if s.Audit == nil {
		return true
	}
	v := viewerOf(r)
	e := AuditEntry{At: s.Now(), Viewer: v.Name, Via: v.Via, Remote: remoteOf(r, v), Action: action, Target: target, Detail: detail}
	if err := s.Audit.Record(r.Context(), e); err != nil {
		s.Log.Error("audit log", "err", err, "action", action, "viewer", v.Name)
		http.Error(w, "the audit log is not available: refused", http.StatusServiceUnavailable)
		return false
	}
	return true
}

// scope narrows f to what the viewer may see.
func (s *Server) scope(v Viewer, f *index.Filter) {
	if s.Access == nil {
		return
	}
	f.Nodes = s.Access.Nodes(v)
	if f.Nodes == nil {
		return
	}
	if f.Node != "" && !strings.HasSuffix(f.Node, "*") {
		ok := false
		for _, n := range f.Nodes {
			ok = ok || n == f.Node
		}
		if !ok {
			f.Nodes = []string{} // nothing: asked for a node not allowed
		}
	}
}

func (s *Server) canView(v Viewer, rec index.Recording) bool {
	return s.Access == nil || s.Access.CanView(v, rec)
}

type recHandler func(w http.ResponseWriter, r *http.Request, rec index.Recording)

// recording resolves {node}/{name} to an index row the viewer may see, or
// answers 404 (the same for a recording that does not exist and one the
// viewer may not see, so that names cannot be probed).
func (s *Server) recording(h recHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		key := r.PathValue("node") + "/" + r.PathValue("name")
		if _, _, err := store.ParseKey(key); err != nil {
			http.Error(w, "no such recording", http.StatusNotFound)
			return
		}
		rec, err := s.Index.GetRecording(r.Context(), key)
		if errors.Is(err, index.ErrNotFound) {
			rec, err = s.fromStore(r.Context(), key)
		}
		if err != nil {
			if errors.Is(err, index.ErrNotFound) || errors.Is(err, store.ErrNotFound) {
				http.Error(w, "no such recording", http.StatusNotFound)
				return
			}
			s.Log.Error("ui: reading recording", "key", key, "err", err)
			http.Error(w, "cannot read the recording", http.StatusInternalServerError)
			return
		}
		if !s.canView(viewerOf(r), rec) {
			s.audit(r, "refused", key, "viewers policy")
			http.Error(w, "no such recording", http.StatusNotFound)
			return
		}
		h(w, r, rec)
	}
}

// fromStore makes a row for a recording the index does not know yet (it
// started a moment ago, or the index is being rebuilt): the store knows it.
func (s *Server) fromStore(ctx context.Context, key string) (index.Recording, error) {
	info, err := s.Store.Stat(ctx, key)
	if err != nil {
		return index.Recording{}, err
	}
	return index.Recording{Key: info.Key, Node: info.Node, Sender: info.Sender, Start: info.Start, Size: info.Size, Status: string(info.Status), Reason: info.Reason}, nil
}

// listQuery is a list's filter as the page's form sends it.
type listQuery struct {
	Node, User, Kind, Status, Since, Until, Text, Sort, After string
	Limit                                                     int
}

func readListQuery(q url.Values) listQuery {
	lq := listQuery{
		Node: strings.TrimSpace(q.Get("node")), User: strings.TrimSpace(q.Get("user")),
		Kind: q.Get("kind"), Status: q.Get("status"),
		Since: strings.TrimSpace(q.Get("since")), Until: strings.TrimSpace(q.Get("until")),
		Text: q.Get("text"), Sort: q.Get("sort"), After: q.Get("after"),
	}
	lq.Limit, _ = strconv.Atoi(q.Get("limit"))
	return lq
}

// values is the query without the cursor.
func (lq listQuery) values() url.Values {
	v := url.Values{}
	for k, s := range map[string]string{"node": lq.Node, "user": lq.User, "kind": lq.Kind, "status": lq.Status, "since": lq.Since, "until": lq.Until, "text": lq.Text, "sort": lq.Sort} {
		if s != "" {
			v.Set(k, s)
		}
	}
	if lq.Limit > 0 {
		v.Set("limit", strconv.Itoa(lq.Limit))
	}
	return v
}

func (lq listQuery) filter(now time.Time) (index.Filter, error) {
	f := index.Filter{Node: lq.Node, User: lq.User, Kind: index.Kind(lq.Kind), Status: lq.Status, Text: lq.Text}
	switch f.Kind {
	case "", index.KindSSH, index.KindKubernetes, index.KindDesktop:
	default:
		return f, fmt.Errorf("unknown kind %q", lq.Kind)
	}
	if f.Status != "" {
		// One status, or several separated by commas (index.Filter.Status).
		for st := range strings.SplitSeq(f.Status, ",") {
			switch store.Status(st) {
			case store.StatusLive, store.StatusComplete, store.StatusInterrupted, store.StatusMalformed, store.StatusFailed:
			default:
				return f, fmt.Errorf("unknown status %q", st)
			}
		}
	}
	var err error
	if f.Since, err = parseTime(lq.Since, now); err != nil {
		return f, fmt.Errorf("since: %v", err)
	}
	if f.Until, err = parseTime(lq.Until, now); err != nil {
		return f, fmt.Errorf("until: %v", err)
	}
	if f.Text != "" && len([]rune(f.Text)) < 3 {
		return f, index.ErrQueryShort
	}
	return f, nil
}

func (lq listQuery) page() (index.Page, error) {
	p := index.Page{Limit: lq.Limit, After: lq.After, Sort: index.Sort(lq.Sort)}
	switch p.Sort {
	case "", index.SortStartDesc, index.SortStartAsc, index.SortSizeDesc, index.SortDurDesc:
	default:
		return p, fmt.Errorf("unknown sort %q", lq.Sort)
	}
	if p.Limit < 0 || p.Limit > 1000 {
		p.Limit = 0
	}
	return p, nil
}

// parseTime reads a time a viewer types: RFC 3339, a date, a date and
// time as a datetime-local field sends it (UTC), or a duration ago
// ("24h").
func parseTime(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	for _, layout := range []string{time.RFC3339, "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02 15:04", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, time.UTC); err == nil {
			return t, nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("%q is not a time (2024-05-01, 2024-05-01T13:00, RFC 3339, or a duration ago like 24h)", s)
}

func (s *Server) listPage(w http.ResponseWriter, r *http.Request) {
	v := viewerOf(r)
	lq := readListQuery(r.URL.Query())
	data := listData{pageData: s.pageData(w, r, "Recordings"), Q: lq}
	f, err := lq.filter(s.Now())
	p, perr := lq.page()
	if err == nil {
		err = perr
	}
	if err != nil {
		data.Error = err.Error()
		s.renderCode(w, http.StatusBadRequest, "list", data)
		return
	}
	s.scope(v, &f)
	s.audit(r, "list", "", lq.values().Encode())
	rows, next, err := s.Index.List(r.Context(), f, p)
	if err != nil {
		s.Log.Error("ui: list", "err", err)
		data.Error = "the index could not list recordings: " + err.Error()
		s.renderCode(w, http.StatusInternalServerError, "list", data)
		return
	}
	for _, rec := range rows {
		if s.canView(v, rec) {
			data.Rows = append(data.Rows, rowOf(rec, s.Now()))
		}
	}
	if next != "" {
		nv := lq.values()
		nv.Set("after", next)
		data.Next = "/?" + nv.Encode()
	}
	s.render(w, "list", data)
}

func (s *Server) searchPage(w http.ResponseWriter, r *http.Request) {
	v := viewerOf(r)
	lq := readListQuery(r.URL.Query())
	q := r.URL.Query().Get("q")
	data := searchData{pageData: s.pageData(w, r, "Search"), Q: lq, Query: q}
	if q == "" {
		s.render(w, "search", data)
		return
	}
	lq.Text = ""
	f, err := lq.filter(s.Now())
	p, perr := lq.page()
	if err == nil {
		err = perr
	}
	if err == nil && len([]rune(q)) < 3 {
		err = index.ErrQueryShort
	}
	if err != nil {
		data.Error = err.Error()
		s.renderCode(w, http.StatusBadRequest, "search", data)
		return
	}
	s.scope(v, &f)
	s.audit(r, "search", "", "q="+q+" "+lq.values().Encode())
	hits, next, err := s.Index.Search(r.Context(), q, f, p)
	if err != nil {
		s.Log.Error("ui: search", "err", err)
		data.Error = "search failed: " + err.Error()
		s.renderCode(w, http.StatusInternalServerError, "search", data)
		return
	}
	for _, h := range hits {
		if s.canView(v, h.Recording) {
			data.Hits = append(data.Hits, hitOf(h, q))
		}
	}
	if next != "" {
		nv := lq.values()
		nv.Set("q", q)
		nv.Set("after", next)
		data.Next = "/search?" + nv.Encode()
	}
	s.render(w, "search", data)
}

func (s *Server) eventsPage(w http.ResponseWriter, r *http.Request) {
	v := viewerOf(r)
	qv := r.URL.Query()
	lq := readListQuery(qv)
	eq := eventQuery{listQuery: lq, Verb: strings.TrimSpace(qv.Get("verb")), Resource: strings.TrimSpace(qv.Get("resource")), Namespace: strings.TrimSpace(qv.Get("namespace"))}
	data := eventsData{pageData: s.pageData(w, r, "Kubernetes API events"), Q: eq}
	lq.Kind, lq.Status = "", ""
	f, err := lq.filter(s.Now())
	p, perr := lq.page()
	if err == nil {
		err = perr
	}
	if err != nil {
		data.Error = err.Error()
		s.renderCode(w, http.StatusBadRequest, "events", data)
		return
	}
	p.Sort = ""
	s.scope(v, &f)
	ev := eq.values()
	s.audit(r, "events", "", ev.Encode())
	rows, next, err := s.Index.ListEvents(r.Context(), f, index.EventFilter{Verb: eq.Verb, Resource: eq.Resource, Namespace: eq.Namespace}, p)
	if err != nil {
		s.Log.Error("ui: events", "err", err)
		data.Error = "the index could not list events: " + err.Error()
		s.renderCode(w, http.StatusInternalServerError, "events", data)
		return
	}
	for _, e := range rows {
		if s.Access == nil || s.Access.CanViewEvent(v, e) {
			data.Rows = append(data.Rows, eventOf(e))
		}
	}
	if next != "" {
		ev.Set("after", next)
		data.Next = "/events?" + ev.Encode()
	}
	s.render(w, "events", data)
}

type eventQuery struct {
	listQuery
	Verb, Resource, Namespace string
}

func (eq eventQuery) values() url.Values {
	v := eq.listQuery.values()
	for k, s := range map[string]string{"verb": eq.Verb, "resource": eq.Resource, "namespace": eq.Namespace} {
		if s != "" {
			v.Set(k, s)
		}
	}
	return v
}

// rowsAPI answers the list page's poll for its live rows: their status,
// size and duration now.
func (s *Server) rowsAPI(w http.ResponseWriter, r *http.Request) {
	v := viewerOf(r)
	keys := r.URL.Query()["k"]
	if len(keys) > 200 {
		keys = keys[:200]
	}
	out := []rowJSON{}
	for _, k := range keys {
		rec, err := s.Index.GetRecording(r.Context(), k)
		if errors.Is(err, index.ErrNotFound) {
			rec, err = s.fromStore(r.Context(), k)
		}
		if err != nil || !s.canView(v, rec) {
			continue
		}
		row := rowOf(rec, s.Now())
		out = append(out, rowJSON{Key: row.Key, Status: row.Status, Size: row.Size, Duration: row.Duration, Reason: row.Reason})
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	json.NewEncoder(w).Encode(out)
}

type rowJSON struct {
	Key      string `json:"key"`
	Status   string `json:"status"`
	Size     string `json:"size"`
	Duration string `json:"duration"`
	Reason   string `json:"reason"`
}

func (s *Server) loginPage(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.Auth.Viewer(r); ok {
		http.Redirect(w, r, safeNext(r.URL.Query().Get("next")), http.StatusSeeOther)
		return
	}
	s.render(w, "login", loginData{pageData: s.pageData(w, r, "Log in"), Next: safeNext(r.URL.Query().Get("next"))})
}

func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	if !s.checkCSRF(w, r) {
		return
	}
	name, password, next := r.PostFormValue("name"), r.PostFormValue("password"), safeNext(r.PostFormValue("next"))
	v, err := s.Auth.Login(w, r, name, password)
	if err != nil {
		if s.Audit != nil {
			s.Audit.Record(r.Context(), AuditEntry{At: s.Now(), Remote: r.RemoteAddr, Action: "login", Detail: "failed for " + strconv.Quote(name) + ": " + err.Error()})
		}
		d := loginData{pageData: s.pageData(w, r, "Log in"), Next: next, Name: name}
		d.Error = err.Error()
		s.renderCode(w, http.StatusUnauthorized, "login", d)
		return
	}
	if s.Audit != nil {
		s.Audit.Record(r.Context(), AuditEntry{At: s.Now(), Viewer: v.Name, Via: v.Via, Remote: r.RemoteAddr, Action: "login"})
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	if !s.checkCSRF(w, r) {
		return
	}
	if v, ok := s.Auth.Viewer(r); ok && s.Audit != nil {
		s.Audit.Record(r.Context(), AuditEntry{At: s.Now(), Viewer: v.Name, Via: v.Via, Remote: r.RemoteAddr, Action: "logout"})
	}
	s.Auth.Logout(w, r)
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// safeNext keeps a redirect after login on this site: a path, not a URL
// ("//evil", "/\evil" and "https://..." become "/").
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") || strings.ContainsAny(next, "\r\n") {
		return "/"
	}
	return next
}
