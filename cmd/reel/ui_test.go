package main

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/reel-rec/reel/internal/testutil"
)

// TestServeUIBusyPort: a UI that cannot listen fails the start before
// the first admin is made, so the next start still prints its one-time
// password.
func TestServeUIBusyPort(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	stderr := new(testutil.Buffer)
	env := &cmdEnv{stdin: strings.NewReader(""), stdout: io.Discard, stderr: stderr, getenv: func(string) string { return "" }}
	dst := t.TempDir()
	code := dispatch(context.Background(), env, []string{"serve", "--dst", dst, "--listen", "127.0.0.1:0", "--min-free", "0", "--ui", "--ui-listen", ln.Addr().String()})
	if code != 1 || !strings.Contains(stderr.String(), "--ui-listen "+ln.Addr().String()) || strings.Contains(stderr.String(), "one-time password") {
		t.Fatalf("exit %d; stderr:\n%s", code, stderr.String())
	}
	if _, err := os.Stat(filepath.Join(dst, ".reel", "accounts.json")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the failed start made accounts: %v", err)
	}
}

// TestServeUIFlags: --ui in plain mode serves plain HTTP only on
// loopback (anything else needs TLS), and needs the index; a UI that can
// start prints where it is and, on the first start only, how to log in.
func TestServeUIFlags(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		code int    // exit status; -1: it starts (and is stopped)
		want string // in stderr
	}{
		{"wildcard", []string{"--ui", "--ui-listen", "0.0.0.0:8443"}, nil, 2, "reachable from other machines"},
		{"all interfaces", []string{"--ui", "--ui-listen", ":8443"}, nil, 2, "give --ui-tls-cert and --ui-tls-key"},
		{"env", []string{"--ui-listen", "10.0.0.1:8443"}, map[string]string{"TSRECORDER_UI": "1"}, 2, "reachable from other machines"},
		{"cert without key", []string{"--ui", "--ui-tls-cert", "x.pem"}, nil, 2, "--ui-tls-cert and --ui-tls-key go together"},
		{"index off", []string{"--ui", "--ui-listen", "127.0.0.1:0", "--index", "off"}, nil, 2, "--ui needs the search index"},
		{"index off by env", []string{"--ui-listen", "127.0.0.1:0"}, map[string]string{"TSRECORDER_UI": "true", "REEL_INDEX": "off"}, 2, "--ui needs the search index"},
		{"TLS anywhere, missing files", []string{"--ui", "--ui-listen", "0.0.0.0:0", "--ui-tls-cert", "missing.pem", "--ui-tls-key", "missing.key"}, nil, 1, "--ui-tls-cert/--ui-tls-key"},
		{"loopback", []string{"--ui", "--ui-listen", "127.0.0.1:0"}, nil, -1, "reel: the web UI is at http://127.0.0.1:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stderr := new(testutil.Buffer)
			env := &cmdEnv{stdin: strings.NewReader(""), stdout: io.Discard, stderr: stderr, getenv: func(k string) string { return tc.env[k] }}
			dst := t.TempDir()
			args := append([]string{"serve", "--dst", dst, "--listen", "127.0.0.1:0", "--min-free", "0"}, tc.args...)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan int, 1)
			go func() { done <- dispatch(ctx, env, args) }()
			if tc.code >= 0 {
				if code := testutil.Recv(t, "reel serve to exit", done); code != tc.code || !strings.Contains(stderr.String(), tc.want) {
					t.Fatalf("exit %d, want %d and %q; stderr:\n%s", code, tc.code, tc.want, stderr.String())
				}
				return
			}
			testutil.WaitForSeen(t, testutil.DefaultWait, "the UI's address", func() bool { return stderr.Contains(tc.want) }, stderr.String)
			testutil.WaitForSeen(t, testutil.DefaultWait, "the one-time password", func() bool { return stderr.Contains("one-time password") }, stderr.String)
			cancel()
			if code := testutil.Recv(t, "reel serve to stop", done); code != 0 {
				t.Fatalf("exit %d after the stop; stderr:\n%s", code, stderr.String())
			}
			if n := strings.Count(stderr.String(), "one-time password "); n != 1 {
				t.Errorf("the one-time password is printed %d times:\n%s", n, stderr.String())
			}
			// A second start prints no password: the account is made.
			stderr2 := new(testutil.Buffer)
			env.stderr = stderr2
			ctx2, cancel2 := context.WithCancel(context.Background())
			defer cancel2()
			go func() { done <- dispatch(ctx2, env, args) }()
			testutil.WaitForSeen(t, testutil.DefaultWait, "the UI's address", func() bool { return stderr2.Contains(tc.want) }, stderr2.String)
			cancel2()
			if code := testutil.Recv(t, "reel serve to stop", done); code != 0 {
				t.Fatalf("second start: exit %d; stderr:\n%s", code, stderr2.String())
			}
			if strings.Contains(stderr2.String(), "one-time password ") {
				t.Errorf("the second start prints a one-time password:\n%s", stderr2.String())
			}
		})
	}
}
