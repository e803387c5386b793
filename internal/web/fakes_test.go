package web

// In-test stand-ins for the index, the authenticator, the viewers policy
// and the audit log, until the real ones (internal/index's SQLite,
// internal/auth, internal/audit) land. Test code only.

import (
	"context"
	"errors"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reel-rec/reel/internal/asciicast"
	"github.com/reel-rec/reel/internal/index"
	"github.com/reel-rec/reel/internal/review"
	"github.com/reel-rec/reel/internal/screentext"
	"github.com/reel-rec/reel/internal/store"
)

// memIndex is a small index.Index over maps.
type memIndex struct {
	mu     sync.Mutex
	recs   map[string]index.Recording
	chunks map[string][]index.Chunk
	events []index.Event
}

var _ index.Index = (*memIndex)(nil)

func newMemIndex() *memIndex {
	return &memIndex{recs: map[string]index.Recording{}, chunks: map[string][]index.Chunk{}}
}

func (m *memIndex) PutRecording(_ context.Context, r index.Recording) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.recs[r.Key] = r
	return nil
}

func (m *memIndex) GetRecording(_ context.Context, key string) (index.Recording, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.recs[key]
	if !ok {
		return r, index.ErrNotFound
	}
	return r, nil
}

func (m *memIndex) DeleteRecording(_ context.Context, key string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.recs, key)
	delete(m.chunks, key)
	return nil
}

func (m *memIndex) AddChunks(_ context.Context, key string, indexed int64, chunks []index.Chunk) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.chunks[key] = append(m.chunks[key], chunks...)
	r := m.recs[key]
	r.Indexed = indexed
	m.recs[key] = r
	return nil
}

func (m *memIndex) ResetText(_ context.Context, key string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.chunks, key)
	return nil
}

func match(f index.Filter, r index.Recording) bool {
	like := func(pat, v string) bool {
		if p, ok := strings.CutSuffix(pat, "*"); ok {
			return strings.HasPrefix(v, p)
		}
		return pat == v
	}
	switch {
	case f.Node != "" && !like(f.Node, r.Node),
		f.User != "" && !like(f.User, r.User) && !like(f.User, r.Login),
		f.Kind != "" && f.Kind != r.Kind,
		f.Status != "" && !slices.Contains(strings.Split(f.Status, ","), r.Status),
		!f.Since.IsZero() && r.Start.Before(f.Since),
		!f.Until.IsZero() && !r.Start.Before(f.Until),
		f.Nodes != nil && !slices.Contains(f.Nodes, r.Node):
		return false
	}
	return true
}

func (m *memIndex) sorted(f index.Filter, s index.Sort) []index.Recording {
	var out []index.Recording
	for _, r := range m.recs {
		if match(f, r) && (f.Text == "" || m.hasText(r.Key, f.Text)) {
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(a, b index.Recording) int {
		switch s {
		case index.SortStartAsc:
			return a.Start.Compare(b.Start)
		case index.SortSizeDesc:
			return int(b.Size - a.Size)
		}
		return b.Start.Compare(a.Start)
	})
	return out
}

func (m *memIndex) hasText(key, text string) bool {
	for _, c := range m.chunks[key] {
		if strings.Contains(strings.ToLower(c.Text), strings.ToLower(text)) {
			return true
		}
	}
	return false
}

// page cuts rows at an offset cursor (the real index uses keysets).
func pageOf[T any](rows []T, p index.Page) ([]T, string) {
	off, _ := strconv.Atoi(p.After)
	lim := p.Limit
	if lim <= 0 {
		lim = 50
	}
	if off > len(rows) {
		off = len(rows)
	}
	rows = rows[off:]
	if len(rows) > lim {
		return rows[:lim], strconv.Itoa(off + lim)
	}
	return rows, ""
}

func (m *memIndex) List(_ context.Context, f index.Filter, p index.Page) ([]index.Recording, string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	rows, next := pageOf(m.sorted(f, p.Sort), p)
	return rows, next, nil
}

func (m *memIndex) Search(_ context.Context, text string, f index.Filter, p index.Page) ([]index.Hit, string, error) {
	if len([]rune(text)) < 3 {
		return nil, "", index.ErrQueryShort
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var hits []index.Hit
	low := strings.ToLower(text)
	for _, r := range m.sorted(f, "") {
		for _, c := range m.chunks[r.Key] {
			for n, line := range strings.Split(c.Text, "\n") {
				if i := strings.Index(strings.ToLower(line), low); i >= 0 {
					at := c.TStart
					if n < len(c.Times) {
						at = c.Times[n]
					}
					hits = append(hits, index.Hit{Recording: r, TStart: c.TStart, TEnd: c.TEnd, Line: line, Match: [2]int{i, i + len(text)}, At: at})
				}
			}
		}
	}
	rows, next := pageOf(hits, p)
	return rows, next, nil
}

func (m *memIndex) PutEvent(_ context.Context, e index.Event) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.events = append(m.events, e)
	return nil
}

func (m *memIndex) ListEvents(_ context.Context, f index.Filter, ef index.EventFilter, p index.Page) ([]index.Event, string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []index.Event
	for _, e := range m.events {
		switch {
		case f.Node != "" && f.Node != e.Node, f.User != "" && f.User != e.User,
			ef.Verb != "" && ef.Verb != e.Verb, ef.Resource != "" && ef.Resource != e.Resource,
			ef.Namespace != "" && ef.Namespace != e.Namespace,
			f.Nodes != nil && !slices.Contains(f.Nodes, e.Node),
			f.Text != "" && !strings.Contains(string(e.Data), f.Text),
			!f.Since.IsZero() && e.At.Before(f.Since),
			!f.Until.IsZero() && !e.At.Before(f.Until):
			continue
		}
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b index.Event) int { return b.At.Compare(a.At) })
	rows, next := pageOf(out, p)
	return rows, next, nil
}

func (m *memIndex) Close() error { return nil }

// indexRecording puts a stored recording and its screen text in idx, as
// the indexer will.
func indexRecording(t testing.TB, st store.Store, idx index.Index, key string) index.Recording {
	t.Helper()
	ctx := context.Background()
	info, err := st.Stat(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	sum, _ := review.Summarize(ctx, st, info, review.Limits{})
	rec := index.Recording{Key: info.Key, Node: info.Node, Sender: info.Sender, Start: info.Start, Size: info.Size, Status: string(info.Status), Reason: info.Reason, Kind: index.KindSSH, Width: 80, Height: 24}
	if h := sum.Header; h != nil {
		rec.User, rec.Login, rec.LocalUser = h.SrcNodeUser, h.SSHUser, h.LocalUser
		if rec.User == "" {
			rec.User = h.SSHUser
		}
		rec.Command, rec.Title, rec.Width, rec.Height = h.Command, h.Title, h.Width, h.Height
		if h.Kubernetes != nil {
			rec.Kind, rec.Pod, rec.Namespace, rec.Container = index.KindKubernetes, h.Kubernetes.PodName, h.Kubernetes.Namespace, h.Kubernetes.Container
		}
	}
	if sum.Duration != nil {
		rec.End = rec.Start.Add(time.Duration(*sum.Duration * float64(time.Second)))
	}
	if err := idx.PutRecording(ctx, rec); err != nil {
		t.Fatal(err)
	}
	rd, err := st.Open(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	var chunks []index.Chunk
	// Chunks as the indexer makes them: a time bucket of lines, each
	// with the time it appeared (Times), so that a hit's moment (Hit.At)
	// is its line's, not the chunk's start.
	err = screentext.Extract(io.NewSectionReader(rd, 0, rd.Size()), screentext.Options{}, func(c screentext.Chunk) {
		chunks = append(chunks, index.Chunk{Key: key, Seq: len(chunks), TStart: c.Start, TEnd: c.End, Text: strings.TrimSuffix(c.Text, "\n"), Times: c.Times})
	})
	if err != nil && !errors.Is(err, io.EOF) {
		t.Logf("screen text of %s: %v", key, err)
	}
	if err := idx.AddChunks(ctx, key, rd.Size(), chunks); err != nil {
		t.Fatal(err)
	}
	return rec
}

// testAuth knows viewers by name and password; its session cookie holds
// the name (good enough for a test, never for the product).
type testAuth struct {
	users map[string]testUser
}

type testUser struct {
	password string
	admin    bool
}

func (a *testAuth) Viewer(r *http.Request) (Viewer, bool) {
	c, err := r.Cookie("test_session")
	if err != nil {
		return Viewer{}, false
	}
	u, ok := a.users[c.Value]
	if !ok {
		return Viewer{}, false
	}
	return Viewer{Name: c.Value, Admin: u.admin, Via: "password"}, true
}

func (a *testAuth) Login(w http.ResponseWriter, r *http.Request, name, password string) (Viewer, error) {
	u, ok := a.users[name]
	if !ok || u.password != password {
		return Viewer{}, ErrBadLogin
	}
	http.SetCookie(w, &http.Cookie{Name: "test_session", Value: name, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode})
	return Viewer{Name: name, Admin: u.admin, Via: "password"}, nil
}

func (a *testAuth) Logout(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: "test_session", Value: "", Path: "/", MaxAge: -1})
}

// testAccess: admins see everything; others see the nodes listed for them.
type testAccess struct {
	nodes map[string][]string
}

func (a *testAccess) Nodes(v Viewer) []string {
	if v.Admin {
		return nil
	}
	n := a.nodes[v.Name]
	if n == nil {
		n = []string{}
	}
	return n
}

func (a *testAccess) CanView(v Viewer, r index.Recording) bool {
	return v.Admin || slices.Contains(a.nodes[v.Name], r.Node)
}

func (a *testAccess) CanViewEvent(v Viewer, e index.Event) bool {
	return v.Admin || slices.Contains(a.nodes[v.Name], e.Node)
}

// testAudit keeps entries in memory.
type testAudit struct {
	mu      sync.Mutex
	entries []AuditEntry
}

func (a *testAudit) Record(_ context.Context, e AuditEntry) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.entries = append(a.entries, e)
	return nil
}

func (a *testAudit) has(viewer, action, target string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, e := range a.entries {
		if e.Viewer == viewer && e.Action == action && (target == "" || e.Target == target) {
			return true
		}
	}
	return false
}

// writeCast stores a recording made of header h and events evs.
func writeCast(t testing.TB, st store.Store, sender string, start time.Time, h asciicast.Header, evs []asciicast.Event, status store.Status) string {
	t.Helper()
	w, err := st.Create(context.Background(), sender, start)
	if err != nil {
		t.Fatal(err)
	}
	enc := asciicast.NewEncoder(w)
	if err := enc.WriteHeader(h); err != nil {
		t.Fatal(err)
	}
	for _, ev := range evs {
		if err := enc.WriteEvent(ev); err != nil {
			t.Fatal(err)
		}
	}
	if status != store.StatusLive {
		if err := w.Close(status, ""); err != nil {
			t.Fatal(err)
		}
	}
	return w.Key()
}
