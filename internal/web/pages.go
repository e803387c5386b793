package web

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"html/template"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/reel-rec/reel/internal/index"
	"github.com/reel-rec/reel/internal/review"
)

//go:embed templates/*.html
var templateFS embed.FS

// pageSet holds one template set per page, each with the layout.
type pageSet struct{ t map[string]*template.Template }

func mustPages() *pageSet {
	ps := &pageSet{t: map[string]*template.Template{}}
	funcs := template.FuncMap{"moment": moment}
	for _, name := range []string{"list", "search", "events", "recording", "login"} {
		ps.t[name] = template.Must(template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/"+name+".html"))
	}
	return ps
}

// render writes page name. Templates escape every value for its context:
// nothing from a recording or a request is ever markup.
func (s *Server) render(w http.ResponseWriter, name string, data any) {
	s.renderCode(w, http.StatusOK, name, data)
}

func (s *Server) renderCode(w http.ResponseWriter, code int, name string, data any) {
	var b bytes.Buffer
	if err := s.pages.t[name].Execute(&b, data); err != nil {
		s.Log.Error("ui: template", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	w.Write(b.Bytes())
}

// pageData is what every page's layout needs.
type pageData struct {
	Title  string
	Viewer Viewer
	CSRF   string
	Error  string
}

func (s *Server) pageData(w http.ResponseWriter, r *http.Request, title string) pageData {
	return pageData{Title: title, Viewer: viewerOf(r), CSRF: s.csrfToken(w, r)}
}

type listData struct {
	pageData
	Q    listQuery
	Rows []row
	Next string
}

type searchData struct {
	pageData
	Q     listQuery
	Query string
	Hits  []hit
	Next  string
}

type eventsData struct {
	pageData
	Q    eventQuery
	Rows []eventRow
	Next string
}

type loginData struct {
	pageData
	Next, Name string
}

// row is one recording as pages show it. Every string is plain text.
type row struct {
	Key, URL           string
	Node, Sender, User string
	Kind, Command      string
	Start              string
	StartISO           string
	Duration, Size     string
	Status, Reason     string
	Live, Problem      bool
	Pod                string
	Width, Height      int
}

func rowOf(rec index.Recording, now time.Time) row {
	r := row{
		Key: rec.Key, URL: recURL(rec.Key), Node: rec.Node, Sender: rec.Sender,
		User: clean(rec.User, 80), Kind: string(rec.Kind), Command: clean(rec.Command, 200),
		Start: rec.Start.UTC().Format("2006-01-02 15:04:05"), StartISO: rec.Start.UTC().Format(time.RFC3339),
		Size: bytesText(rec.Size), Status: rec.Status, Reason: clean(rec.Reason, 300),
		Live: rec.Status == "live", Width: rec.Width, Height: rec.Height,
	}
	if rec.Login != "" && rec.Login != rec.User {
		r.User = clean(rec.User+" as "+rec.Login, 80)
	}
	if rec.LocalUser != "" && rec.LocalUser != rec.Login {
		r.User += clean(" → "+rec.LocalUser, 40)
	}
	if r.Command == "" {
		r.Command = clean(rec.Title, 200)
	}
	if rec.Pod != "" {
		r.Pod = clean(rec.Namespace+"/"+rec.Pod+" "+rec.Container, 200)
	}
	switch {
	case !rec.End.IsZero():
		r.Duration = durText(rec.End.Sub(rec.Start))
	case r.Live:
		r.Duration = durText(now.Sub(rec.Start)) + " so far"
	}
	r.Problem = rec.Status == "malformed" || rec.Status == "failed" || rec.Status == "interrupted"
	if r.Kind == "" {
		r.Kind = "unknown"
	}
	return r
}

// clean makes a header field displayable: no control characters, bounded.
// (It is still text: the template escapes it.)
func clean(s string, n int) string { return review.Sanitize(s, n) }

func recURL(key string) string {
	node, name, _ := strings.Cut(key, "/")
	return "/r/" + url.PathEscape(node) + "/" + url.PathEscape(name)
}

// hit is one search result as the search page shows it: the line split
// around the match, so the template can mark it up without trusting it.
type hit struct {
	row
	At                   string // "1:23"
	Link                 string // the player at the moment
	Before, Match, After string
}

func hitOf(h index.Hit, q string) hit {
	r := rowOf(h.Recording, time.Now())
	line := h.Line
	a, b := h.Match[0], h.Match[1]
	if a < 0 || b > len(line) || a > b {
		a, b = 0, 0
	}
	out := hit{row: r, At: moment(h.At), Before: clean(line[:a], 200), Match: clean(line[a:b], 200), After: clean(line[b:], 200)}
	out.Link = r.URL + "?q=" + url.QueryEscape(q) + "#t=" + momentFrag(h.At)
	return out
}

// moment writes seconds as m:ss or h:mm:ss.
func moment(sec float64) string {
	if sec < 0 || sec != sec {
		sec = 0
	}
	t := int64(sec)
	h, m, s := t/3600, t/60%60, t%60
	if h > 0 {
		return fmt.Sprintf("%d:%02d:%02d", h, m, s)
	}
	return fmt.Sprintf("%d:%02d", m, s)
}

// momentFrag is a moment for a #t= link, m:ss.d: the first tenth of a
// second after sec, so that the player, which shows the screen as it was
// before any event at exactly that time, opens with the line on it.
func momentFrag(sec float64) string {
	if sec < 0 || sec != sec {
		sec = 0
	}
	tenths := int64(math.Floor(sec*10+1e-6)) + 1
	return moment(float64(tenths/10)) + "." + strconv.FormatInt(tenths%10, 10)
}

type eventRow struct {
	ID, At, Node, User, Verb, Resource, Namespace, Name, Path string
	Code                                                      int
	JSON                                                      string
}

func eventOf(e index.Event) eventRow {
	res := e.Resource
	if e.Subresource != "" {
		res += "/" + e.Subresource
	}
	var pretty bytes.Buffer
	if json.Indent(&pretty, e.Data, "", "  ") != nil {
		pretty.Reset()
		pretty.Write(e.Data)
	}
	return eventRow{
		ID: e.ID, At: e.At.UTC().Format("2006-01-02 15:04:05.000"), Node: e.Node, User: clean(e.User, 80),
		Verb: clean(e.Verb, 20), Resource: clean(res, 80), Namespace: clean(e.Namespace, 80), Name: clean(e.Name, 120),
		Path: clean(e.Path, 300), Code: e.Code, JSON: pretty.String(),
	}
}

func bytesText(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

func durText(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	return moment(d.Seconds())
}
