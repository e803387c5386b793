package web

// The UI in a real headless Chromium, driven with chromedp. One browser
// serves every test of the binary (it is slow to start on a loaded
// machine); each test opens its own browser context (own cookies) and tab.

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"go.uber.org/goleak"

	"github.com/reel-rec/reel/internal/store"
	"github.com/reel-rec/reel/internal/store/memstore"
	"github.com/reel-rec/reel/internal/testutil"
)

var browser struct {
	once    sync.Once
	ctx     context.Context // a chromedp context whose browser is running
	cancel  func()
	err     error
	dataDir string
}

func TestMain(m *testing.M) {
	code := m.Run()
	if browser.cancel != nil {
		browser.cancel()
		os.RemoveAll(browser.dataDir)
	}
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// startBrowser starts the shared Chromium on first use.
func startBrowser(t *testing.T) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		testutil.SkipOrFail(t, "chromium not installed (scripts/test-deps.sh installs it)")
	}
	browser.once.Do(func() {
		browser.dataDir, browser.err = os.MkdirTemp("", "reel-chromium-")
		if browser.err != nil {
			return
		}
		opts := append(chromedp.DefaultExecAllocatorOptions[:],
			chromedp.ExecPath(path),
			chromedp.NoSandbox,
			chromedp.UserDataDir(browser.dataDir),
			chromedp.Flag("disable-gpu", true),
			chromedp.Flag("disable-component-update", true),
			chromedp.WindowSize(1280, 900),
		)
		actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
		bctx, bcancel := chromedp.NewContext(actx)
		if browser.err = chromedp.Do(bctx); browser.err != nil {
			bcancel()
			acancel()
			return
		}
		browser.ctx = bctx
		browser.cancel = func() { bcancel(); acancel() }
	})
	if browser.err != nil {
		t.Fatalf("starting chromium: %v", browser.err)
	}
	return browser.ctx
}

// tab is one browser context and tab, with what the page reported.
type tab struct {
	t   *testing.T
	ctx context.Context

	mu       sync.Mutex
	dialogs  []string // alerts, confirms, prompts opened: a payload ran
	problems []string // console errors, uncaught exceptions, CSP violations
}

func newTab(t *testing.T) *tab {
	t.Helper()
	bctx := startBrowser(t)
	ctx, cancel := chromedp.NewContext(bctx, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	tb := &tab{t: t, ctx: ctx}
	dialogs := make(chan struct{}, 16)
	err := chromedp.Listen(ctx, func(ev any) {
		switch e := ev.(type) {
		case *page.EventJavascriptDialogOpening:
			tb.note(&tb.dialogs, string(e.Type)+": "+e.Message)
			select {
			case dialogs <- struct{}{}:
			default:
			}
		case *runtime.EventExceptionThrown:
			msg := e.ExceptionDetails.Text
			if ex := e.ExceptionDetails.Exception; ex != nil {
				msg += " " + ex.Description
			}
			tb.note(&tb.problems, "exception: "+msg)
		case *runtime.EventConsoleAPICalled:
			if e.Type == runtime.ConsoleAPICalledTypeError || e.Type == runtime.ConsoleAPICalledTypeWarning {
				var args []string
				for _, a := range e.Args {
					args = append(args, string(a.Value)+a.Description)
				}
				tb.note(&tb.problems, "console."+string(e.Type)+": "+strings.Join(args, " "))
			}
		case *log.EventEntryAdded:
			if e.Entry.Level == log.EntryLevelError || e.Entry.Source == log.EntrySourceSecurity {
				tb.note(&tb.problems, "log "+string(e.Entry.Source)+": "+e.Entry.Text)
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	// A dialog blocks the page until answered: dismiss it (off the
	// listener's goroutine).
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-dialogs:
				chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: false})
			}
		}
	}()
	return tb
}

func (tb *tab) note(list *[]string, s string) {
	tb.mu.Lock()
	*list = append(*list, s)
	tb.mu.Unlock()
}

func (tb *tab) reports() (dialogs, problems []string) {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	return append([]string(nil), tb.dialogs...), append([]string(nil), tb.problems...)
}

// clean fails the test if the page opened a dialog or reported a problem.
func (tb *tab) clean() {
	tb.t.Helper()
	d, p := tb.reports()
	if len(d) > 0 || len(p) > 0 {
		tb.t.Fatalf("the page opened dialogs %q and reported problems %q", d, p)
	}
}

func (tb *tab) do(steps ...chromedp.Action[chromedp.Void]) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, testutil.DefaultWait)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		d, p := tb.reports()
		url, _ := chromedp.Run(tb.ctx, chromedp.Evaluate[string](`location.href`))
		tb.t.Fatalf("browser: %v (at %s; dialogs %q, problems %q)", err, url, d, p)
	}
}

// eval evaluates a JavaScript expression that returns a string.
func (tb *tab) eval(expr string) string {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, testutil.DefaultWait)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](expr))
	if err != nil {
		tb.t.Fatalf("evaluating %s: %v", expr, err)
	}
	return s
}

// evalAsync evaluates an expression whose promise yields a string.
func (tb *tab) evalAsync(expr string) string {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, testutil.DefaultWait)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		tb.t.Fatalf("evaluating %s: %v", expr, err)
	}
	return s
}

// waitText waits until the text of the elements sel selects (joined)
// satisfies ok, and returns it.
func (tb *tab) waitText(sel string, what string, ok func(string) bool) string {
	tb.t.Helper()
	var last string
	expr := fmt.Sprintf(`Array.from(document.querySelectorAll(%q)).map(e => e.textContent.replace(/[\s\u00a0]+/g, " ").trim()).join("\n")`, sel)
	err := testutil.Poll(testutil.DefaultWait, func() bool {
		ctx, cancel := context.WithTimeout(tb.ctx, 5*time.Second)
		defer cancel()
		s, err := chromedp.Run(ctx, chromedp.Evaluate[string](expr))
		if err == nil {
			last = s
		}
		return err == nil && ok(s)
	})
	if err != nil {
		d, p := tb.reports()
		tb.t.Fatalf("waiting for %s in %s: not seen; last text:\n%s\n(dialogs %q, problems %q)", what, sel, last, d, p)
	}
	return last
}

// screen is the player's terminal text.
func (tb *tab) waitScreen(what string, ok func(string) bool) string {
	tb.t.Helper()
	return tb.waitText(".ap-term-text .ap-line", what, ok)
}

func (tb *tab) login(base, name, password string) {
	tb.t.Helper()
	tb.do(
		chromedp.Navigate(base+"/login"),
		chromedp.WaitVisible(chromedp.ID("name")),
		chromedp.SendKeys(chromedp.ID("name"), name),
		chromedp.SendKeys(chromedp.ID("password"), password),
		chromedp.Click(chromedp.ID("login")),
		chromedp.WaitVisible(chromedp.ID("viewer")),
	)
}

// ui is a UI server for a test, on loopback, with the in-test index,
// authenticator, policy and audit log, and a count of the bytes it sent
// per kind of response.
type ui struct {
	srv   *Server
	st    store.Store
	idx   *memIndex
	audit *testAudit
	base  string

	sent struct {
		cast, segments, live atomic.Int64
	}
}

func newUI(t *testing.T, st store.Store, adjust func(*Server)) *ui {
	t.Helper()
	if st == nil {
		st = memstore.New(memstore.Options{})
		t.Cleanup(func() { st.Close() })
	}
	u := &ui{st: st, idx: newMemIndex(), audit: &testAudit{}}
	u.srv = &Server{
		Store: st, Index: u.idx, Audit: u.audit, CacheDir: t.TempDir(),
		Log: slog.New(slog.NewTextHandler(tlogWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Auth: &testAuth{users: map[string]testUser{
			"alice": {password: "alice-pw", admin: true},
			"bob":   {password: "bob-pw"},
		}},
		Access: &testAccess{nodes: map[string][]string{"bob": {"nobody-node"}}},
	}
	if adjust != nil {
		adjust(u.srv)
	}
	h := u.srv.Handler()
	counted := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var n *atomic.Int64
		switch p := r.URL.Path; {
		case strings.HasSuffix(p, "/cast"), strings.HasSuffix(p, "/download"):
			n = &u.sent.cast
		case strings.Contains(p, "/seg/"):
			n = &u.sent.segments
		}
		if n != nil {
			w = &countingWriter{ResponseWriter: w, n: n}
		}
		h.ServeHTTP(w, r)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: counted, ReadHeaderTimeout: 10 * time.Second}
	go hs.Serve(ln)
	t.Cleanup(func() {
		hs.Close()
		u.srv.Close()
	})
	u.base = "http://" + ln.Addr().String()
	return u
}

// tlogWriter writes the server's log to the test's.
type tlogWriter struct{ t *testing.T }

func (w tlogWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// countingWriter counts the body bytes of successful responses (what
// was sent of a recording, not error messages).
type countingWriter struct {
	http.ResponseWriter
	n    *atomic.Int64
	code int
}

func (c *countingWriter) WriteHeader(code int) {
	c.code = code
	c.ResponseWriter.WriteHeader(code)
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.ResponseWriter.Write(p)
	if c.code == 0 || c.code/100 == 2 {
		c.n.Add(int64(n))
	}
	return n, err
}

func (c *countingWriter) Unwrap() http.ResponseWriter { return c.ResponseWriter }
