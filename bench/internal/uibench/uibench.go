// Package uibench holds what the web UI's benchmarks (bench/ui,
// bench/desktopui) share: an index with no rows and an authenticator that
// lets in the one browser they drive.
package uibench

import (
	"context"
	"errors"
	"net/http"
	"os"
	"os/exec"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/reel-rec/reel/internal/index"
	"github.com/reel-rec/reel/internal/web"
)

// Browser starts headless Chromium (1280×900, no GPU, browser cache off),
// opens url (a page of the UI under test) and sets the cookie Auth lets
// in. stop ends the browser and removes its profile.
func Browser(url string) (ctx context.Context, stop func(), err error) {
	path, err := exec.LookPath("chromium")
	if err != nil {
		return nil, nil, errors.New("chromium not found (apt-get install chromium)")
	}
	udd, err := os.MkdirTemp("", "reel-bench-chromium-")
	if err != nil {
		return nil, nil, err
	}
	actx, acancel := chromedp.NewExecAllocator(context.Background(), append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path), chromedp.NoSandbox, chromedp.UserDataDir(udd), chromedp.WindowSize(1280, 900),
		chromedp.Flag("disable-gpu", true), chromedp.Flag("disable-component-update", true))...)
	ctx, cancel := chromedp.NewContext(actx)
	stop = func() {
		cancel()
		acancel()
		os.RemoveAll(udd)
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(url)); err != nil {
		stop()
		return nil, nil, err
	}
	if _, err := chromedp.Call(ctx, network.SetCacheDisabled, network.SetCacheDisabledParams{CacheDisabled: true}); err != nil {
		stop()
		return nil, nil, err
	}
	if err := chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](cookieJS)); err != nil {
		stop()
		return nil, nil, err
	}
	return ctx, stop, nil
}

// NoIndex is an index with no rows: the UI then reads a recording's row
// from the store. (Only the player is measured.)
type NoIndex struct{}

func (NoIndex) PutRecording(context.Context, index.Recording) error { return nil }
func (NoIndex) GetRecording(context.Context, string) (index.Recording, error) {
	return index.Recording{}, index.ErrNotFound
}
func (NoIndex) DeleteRecording(context.Context, string) error                 { return nil }
func (NoIndex) AddChunks(context.Context, string, int64, []index.Chunk) error { return nil }
func (NoIndex) ResetText(context.Context, string) error                       { return nil }
func (NoIndex) List(context.Context, index.Filter, index.Page) ([]index.Recording, string, error) {
	return nil, "", nil
}
func (NoIndex) Search(context.Context, string, index.Filter, index.Page) ([]index.Hit, string, error) {
	return nil, "", nil
}
func (NoIndex) PutEvent(context.Context, index.Event) error { return nil }
func (NoIndex) ListEvents(context.Context, index.Filter, index.EventFilter, index.Page) ([]index.Event, string, error) {
	return nil, "", nil
}
func (NoIndex) Close() error { return nil }

// Auth lets in the one browser a benchmark drives: it carries the cookie
// bench=1 (Browser sets it). The UI listens on loopback only, for the run.
type Auth struct{}

// cookieJS sets the cookie in the page.
const cookieJS = `document.cookie = "bench=1; path=/"`

func (Auth) Viewer(r *http.Request) (web.Viewer, bool) {
	c, err := r.Cookie("bench")
	return web.Viewer{Name: "bench", Admin: true}, err == nil && c.Value == "1"
}
func (Auth) Login(http.ResponseWriter, *http.Request, string, string) (web.Viewer, error) {
	return web.Viewer{}, web.ErrBadLogin
}
func (Auth) Logout(http.ResponseWriter, *http.Request) {}
