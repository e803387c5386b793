package main

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
)

// TestServeUIRefusesPlainHTTPBeyondLoopback: --ui in plain mode serves
// plain HTTP only on loopback; anything else needs TLS.
func TestServeUIRefusesPlainHTTPBeyondLoopback(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		want string // in stderr; "" for no usage error from the flags
	}{
		{"wildcard", []string{"--ui", "--ui-listen", "0.0.0.0:8443"}, nil, "reachable from other machines"},
		{"all interfaces", []string{"--ui", "--ui-listen", ":8443"}, nil, "give --ui-tls-cert and --ui-tls-key"},
		{"env", []string{"--ui-listen", "10.0.0.1:8443"}, map[string]string{"TSRECORDER_UI": "1"}, "reachable from other machines"},
		{"cert without key", []string{"--ui", "--ui-tls-cert", "x.pem"}, nil, "--ui-tls-cert and --ui-tls-key go together"},
		{"loopback", []string{"--ui", "--ui-listen", "127.0.0.1:0"}, nil, ""},
		{"TLS anywhere", []string{"--ui", "--ui-listen", "0.0.0.0:0", "--ui-tls-cert", "missing.pem", "--ui-tls-key", "missing.key"}, nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stderr bytes.Buffer
			env := &cmdEnv{stdin: strings.NewReader(""), stdout: io.Discard, stderr: &stderr, getenv: func(k string) string { return tc.env[k] }}
			args := append([]string{"serve", "--dst", t.TempDir(), "--listen", "127.0.0.1:0"}, tc.args...)
			code := dispatch(context.Background(), env, args)
			if tc.want == "" {
				// Past the flags: this build stops at the missing backends.
				if code == 0 || strings.Contains(stderr.String(), "usage") || !strings.Contains(stderr.String(), errUINotBuilt.Error()) {
					t.Fatalf("exit %d, stderr:\n%s", code, stderr.String())
				}
				return
			}
			if code != 2 || !strings.Contains(stderr.String(), tc.want) {
				t.Fatalf("exit %d, want 2 and %q; stderr:\n%s", code, tc.want, stderr.String())
			}
		})
	}
}
