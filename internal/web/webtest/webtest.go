// Package webtest drives reel's web UI in a real headless Chromium with
// chromedp, for the tests of internal/web and of reel serve --ui. One
// browser serves every test of a test binary (it is slow to start on a
// loaded machine); each tab has a browser context of its own (its own
// cookies). Call CloseBrowser from TestMain.
package webtest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/reel-rec/reel/internal/testutil"
)

var browser struct {
	once    sync.Once
	ctx     context.Context // a chromedp context whose browser is running
	cancel  func()
	err     error
	dataDir string
}

// Browser returns the shared Chromium's chromedp context, starting it on
// first use. Without chromium the test is skipped (failed in CI).
func Browser(t testing.TB) context.Context {
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

// Tab is one browser context (its own cookies) and tab, with what the
// page reported.
type Tab struct {
	t   testing.TB
	Ctx context.Context

	mu       sync.Mutex
	dialogs  []string // alerts, confirms, prompts opened: a payload ran
	problems []string // console errors, uncaught exceptions, CSP violations
}

// NewTab opens a tab in a new browser context, closed at the end of
// the test.
func NewTab(t testing.TB) *Tab {
	t.Helper()
	bctx := Browser(t)
	ctx, cancel := chromedp.NewContext(bctx, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	tb := &Tab{t: t, Ctx: ctx}
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

func (tb *Tab) note(list *[]string, s string) {
	tb.mu.Lock()
	*list = append(*list, s)
	tb.mu.Unlock()
}

// Reports returns the dialogs the page opened and the problems it
// reported so far.
func (tb *Tab) Reports() (dialogs, problems []string) {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	return append([]string(nil), tb.dialogs...), append([]string(nil), tb.problems...)
}

// Clean fails the test if the page opened a dialog or reported a problem.
func (tb *Tab) Clean() {
	tb.t.Helper()
	d, p := tb.Reports()
	if len(d) > 0 || len(p) > 0 {
		tb.t.Fatalf("the page opened dialogs %q and reported problems %q", d, p)
	}
}

// Do runs steps, failing the test on an error.
func (tb *Tab) Do(steps ...chromedp.Action[chromedp.Void]) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.Ctx, testutil.DefaultWait)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		d, p := tb.Reports()
		url, _ := chromedp.Run(tb.Ctx, chromedp.Evaluate[string](`location.href`))
		tb.t.Fatalf("browser: %v (at %s; dialogs %q, problems %q)", err, url, d, p)
	}
}

// Eval evaluates a JavaScript expression that returns a string.
func (tb *Tab) Eval(expr string) string {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.Ctx, testutil.DefaultWait)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](expr))
	if err != nil {
		tb.t.Fatalf("evaluating %s: %v", expr, err)
	}
	return s
}

// EvalAsync evaluates an expression whose promise yields a string.
func (tb *Tab) EvalAsync(expr string) string {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.Ctx, testutil.DefaultWait)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		tb.t.Fatalf("evaluating %s: %v", expr, err)
	}
	return s
}

// WaitText waits until the text of the elements sel selects (joined)
// satisfies ok, and returns it.
func (tb *Tab) WaitText(sel string, what string, ok func(string) bool) string {
	tb.t.Helper()
	var last string
	expr := fmt.Sprintf(`Array.from(document.querySelectorAll(%q)).map(e => e.textContent.replace(/[\s\u00a0]+/g, " ").trim()).join("\n")`, sel)
	err := testutil.Poll(testutil.DefaultWait, func() bool {
		ctx, cancel := context.WithTimeout(tb.Ctx, 5*time.Second)
		defer cancel()
		s, err := chromedp.Run(ctx, chromedp.Evaluate[string](expr))
		if err == nil {
			last = s
		}
		return err == nil && ok(s)
	})
	if err != nil {
		d, p := tb.Reports()
		tb.t.Fatalf("waiting for %s in %s: not seen; last text:\n%s\n(dialogs %q, problems %q)", what, sel, last, d, p)
	}
	return last
}

// WaitScreen waits until the player's terminal text satisfies ok.
func (tb *Tab) WaitScreen(what string, ok func(string) bool) string {
	tb.t.Helper()
	return tb.WaitText(".ap-term-text .ap-line", what, ok)
}

// Login logs in with the UI's login form and waits for the page after it.
func (tb *Tab) Login(base, name, password string) {
	tb.t.Helper()
	tb.Do(
		chromedp.Navigate(base+"/login"),
		chromedp.WaitVisible(chromedp.ID("name")),
		chromedp.SendKeys(chromedp.ID("name"), name),
		chromedp.SendKeys(chromedp.ID("password"), password),
		chromedp.Click(chromedp.ID("login")),
		chromedp.WaitVisible(chromedp.ID("viewer")),
	)
}

// CloseBrowser stops the shared browser, if it was started. TestMain
// calls it after the tests, before checking for leaked goroutines.
func CloseBrowser() {
	if browser.cancel != nil {
		browser.cancel()
		browser.cancel = nil
		os.RemoveAll(browser.dataDir)
	}
}
