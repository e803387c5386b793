package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
	"tailscale.com/sessionrecording"

	"github.com/reel-rec/reel/internal/testutil"
	"github.com/reel-rec/reel/internal/web/webtest"
)

// TestMain lets testscript run this test binary as "reel": scripts then
// run the real command line (flags, exit codes, signals) as a separate
// process. testscript.Main calls os.Exit itself, so leak checks are per
// test (goleak.VerifyNone), not here.
func TestMain(m *testing.M) {
	testscript.Main(closingBrowser{m}, map[string]func(){"reel": main})
}

// closingBrowser stops the headless Chromium the UI tests share once the
// tests have run (ui_browser_test.go).
type closingBrowser struct{ m *testing.M }

func (c closingBrowser) Run() int {
	defer webtest.CloseBrowser()
	return c.m.Run()
}

// TestScript runs the end-to-end scripts in testdata/script: a real
// "reel serve" in the background, recordings sent with Tailscale's own
// client, then the reviewer commands.
func TestScript(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata/script",
		RequireExplicitExec: true,
		Setup: func(env *testscript.Env) error {
			// A port for this script's recorder.
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				return err
			}
			env.Setenv("ADDR", ln.Addr().String())
			ln.Close()
			env.Setenv("TZ", "UTC")
			for _, k := range []string{"TSRECORDER_DST", "REEL_LISTEN", "HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"} {
				env.Setenv(k, "")
			}
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"sendcast": cmdSendcast,
			"castkey":  cmdCastkey,
			"indexed":  cmdIndexed,  // index_test.go
			"indexing": cmdIndexing, // index_test.go
			"gencast":  cmdGencast,  // index_test.go
		},
	})
}

// cmdSendcast uploads recordings with Tailscale's client, as Tailscale SSH
// does, waiting up to 30 s for the recorder to listen:
//
//	sendcast ADDR FILE...
//	sendcast -live DIR ADDR FILE
//
// With -live, FILE's final newline is left out (the upload stops mid-line,
// as a live session can), the upload stays open until the script ends, and
// sendcast returns once a new recording under DIR holds that many bytes.
func cmdSendcast(ts *testscript.TestScript, neg bool, args []string) {
	live := ""
	if len(args) > 0 && args[0] == "-live" {
		if len(args) != 4 || neg {
			ts.Fatalf("usage: sendcast -live DIR ADDR FILE")
		}
		live, args = ts.MkAbs(args[1]), args[2:]
	}
	if len(args) < 2 {
		ts.Fatalf("usage: sendcast ADDR FILE...")
	}
	ap, err := netip.ParseAddrPort(args[0])
	ts.Check(err)
	var d net.Dialer
	if err := testutil.Poll(testutil.DefaultWait, func() bool {
		c, err := d.Dial("tcp", ap.String())
		if err == nil {
			c.Close()
		}
		return err == nil
	}); err != nil {
		ts.Fatalf("recorder at %s does not listen: %v", ap, err)
	}
	if live != "" {
		body := strings.TrimSuffix(ts.ReadFile(args[1]), "\n")
		sendLive(ts, ap, d.DialContext, live, []byte(body))
		return
	}
	for _, name := range args[1:] {
		err := sendcast(ap, d.DialContext, []byte(ts.ReadFile(name)))
		switch {
		case err != nil && !neg:
			ts.Fatalf("sendcast %s: %v", name, err)
		case err == nil && neg:
			ts.Fatalf("sendcast %s: unexpected success", name)
		}
	}
}

// sendLive writes body and leaves the upload open until the script ends.
// It returns once a recording that was not under dir before holds body.
func sendLive(ts *testscript.TestScript, ap netip.AddrPort, dial func(ctx context.Context, network, addr string) (net.Conn, error), dir string, body []byte) {
	before := map[string]bool{}
	old, _ := filepath.Glob(filepath.Join(dir, "*", "*.cast"))
	for _, f := range old {
		before[f] = true
	}
	ctx, cancel := context.WithCancel(context.Background())
	wc, _, _, err := sessionrecording.ConnectToRecorder(ctx, []netip.AddrPort{ap}, dial)
	if err != nil {
		cancel()
		ts.Fatalf("sendcast -live: %v", err)
	}
	ts.Defer(func() { wc.Close(); cancel() })
	if _, err := wc.Write(body); err != nil {
		ts.Fatalf("sendcast -live: write: %v", err)
	}
	stored := func() bool {
		files, _ := filepath.Glob(filepath.Join(dir, "*", "*.cast"))
		for _, f := range files {
			if before[f] {
				continue // another recording, perhaps a larger one
			}
			if fi, err := os.Stat(f); err == nil && fi.Size() >= int64(len(body)) {
				return true
			}
		}
		return false
	}
	if err := testutil.Poll(testutil.DefaultWait, stored); err != nil {
		ts.Fatalf("sendcast -live: %d bytes not stored under %s: %v", len(body), dir, err)
	}
}

func sendcast(ap netip.AddrPort, dial func(ctx context.Context, network, addr string) (net.Conn, error), body []byte) error {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	wc, _, errc, err := sessionrecording.ConnectToRecorder(ctx, []netip.AddrPort{ap}, dial)
	if err != nil {
		return err
	}
	// One write per line, as a sender streams a session.
	for len(body) > 0 {
		n := len(body)
		if i := slices.Index(body, '\n'); i >= 0 {
			n = i + 1
		}
		if _, err := wc.Write(body[:n]); err != nil {
			wc.Close()
			return fmt.Errorf("write: %w", err)
		}
		body = body[n:]
	}
	if err := wc.Close(); err != nil {
		return fmt.Errorf("close: %w", err)
	}
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		return errors.New("no answer from the recorder")
	}
}

// cmdCastkey sets VAR to the key of the Nth recording (1-based, in key
// order) stored under DIR:
//
//	castkey VAR DIR N
func cmdCastkey(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 3 || neg {
		ts.Fatalf("usage: castkey VAR DIR N")
	}
	n, err := strconv.Atoi(args[2])
	ts.Check(err)
	files, err := filepath.Glob(filepath.Join(ts.MkAbs(args[1]), "*", "*.cast"))
	ts.Check(err)
	if n < 1 || n > len(files) { // Glob sorts: node, then time
		ts.Fatalf("castkey: no recording %d under %s (%d there)", n, args[1], len(files))
	}
	rel, err := filepath.Rel(ts.MkAbs(args[1]), files[n-1])
	ts.Check(err)
	ts.Setenv(args[0], filepath.ToSlash(rel))
}
