package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
)

// TestServeTailnetFlags: tailnet-mode mistakes are reported before reel
// tries to join anything. (Joining and serving are tested against real
// Tailscale peers in internal/tailnet/e2e.)
func TestServeTailnetFlags(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		env      map[string]string
		wantCode int
		wantErr  string
	}{
		{"tls on the tailnet listener", []string{"--tailnet", "--tls-cert", "c.pem", "--tls-key", "k.pem"}, nil, 2, "cannot be combined with --tls-cert"},
		{"tag without tag: prefix", []string{"--tailnet", "--advertise-tags", "tag:ok,server"}, nil, 2, `"server" is not a tag`},
		{"unreadable auth key file", []string{"--tailnet"}, map[string]string{"TS_AUTHKEY_FILE": "/nonexistent/authkey"}, 1, "TS_AUTHKEY_FILE"},
		{"REEL_TAILNET turns it on", nil, map[string]string{"REEL_TAILNET": "1", "TS_AUTHKEY_FILE": "/nonexistent/authkey"}, 1, "TS_AUTHKEY_FILE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dst := t.TempDir()
			var stdout, stderr bytes.Buffer
			env := &cmdEnv{stdin: strings.NewReader(""), stdout: &stdout, stderr: &stderr, getenv: func(k string) string { return tt.env[k] }}
			args := append([]string{"serve", "--dst", filepath.Join(dst, "rec"), "--min-free", "0"}, tt.args...)
			code := dispatch(context.Background(), env, args)
			if code != tt.wantCode || !strings.Contains(stderr.String(), tt.wantErr) {
				t.Errorf("exit %d, stderr %q; want exit %d and %q", code, stderr.String(), tt.wantCode, tt.wantErr)
			}
			if strings.Contains(stderr.String(), "joining the tailnet") {
				t.Errorf("reel tried to join the tailnet: %s", stderr.String())
			}
		})
	}
}
