package kubetest_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"go.uber.org/goleak"

	"github.com/reel-rec/reel/internal/kubetest"
	"github.com/reel-rec/reel/internal/testutil"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// TestKubectlExec runs the real kubectl against the server, over both of
// its streaming protocols, with and without a terminal.
func TestKubectlExec(t *testing.T) {
	kubectl := findKubectl(t)
	s := &kubetest.Server{}
	hs := httptest.NewServer(s.Handler())
	defer hs.Close()
	s.URL = hs.URL
	kubeconfig := kubetest.WriteKubeconfig(t, hs.URL)

	tests := []struct {
		name     string
		opts     kubetest.Options
		args     []string
		want     string
		wantExec kubetest.Exec
	}{
		{"websocket", kubetest.Options{WebSocket: true}, []string{"--", "echo", "hello ws"}, "hello ws\n",
			kubetest.Exec{Namespace: "default", Pod: "test", Container: "main", Command: []string{"echo", "hello ws"}, Protocol: "websocket"}},
		{"spdy", kubetest.Options{}, []string{"--", "echo", "hello spdy"}, "hello spdy\n",
			kubetest.Exec{Namespace: "default", Pod: "test", Container: "main", Command: []string{"echo", "hello spdy"}, Protocol: "spdy"}},
		{"websocket tty", kubetest.Options{WebSocket: true, TTY: true}, []string{"-it", "--", "echo", "tty ws"}, "tty ws\r\n",
			kubetest.Exec{Namespace: "default", Pod: "test", Container: "main", Command: []string{"echo", "tty ws"}, TTY: true, Stdin: true, Protocol: "websocket"}},
		{"spdy tty", kubetest.Options{TTY: true}, []string{"-it", "--", "echo", "tty spdy"}, "tty spdy\r\n",
			kubetest.Exec{Namespace: "default", Pod: "test", Container: "main", Command: []string{"echo", "tty spdy"}, TTY: true, Stdin: true, Protocol: "spdy"}},
		{"spdy stdin", kubetest.Options{Stdin: "from stdin\n"}, []string{"-i", "--", "cat"}, "from stdin\n",
			kubetest.Exec{Namespace: "default", Pod: "test", Container: "main", Command: []string{"cat"}, Stdin: true, Protocol: "spdy"}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := kubetest.Kubectl(context.Background(), kubectl, kubeconfig, tt.opts, append([]string{"exec", "test"}, tt.args...)...)
			if err != nil {
				t.Fatalf("kubectl exec: %v\n%s", err, out)
			}
			if out = dropKubectlCloseNoise(out); out != tt.want {
				t.Errorf("output %q, want %q", out, tt.want)
			}
			execs := s.Execs()
			if len(execs) != i+1 {
				t.Fatalf("server saw %d execs, want %d", len(execs), i+1)
			}
			if diff := cmp.Diff(tt.wantExec, execs[i], cmpopts.IgnoreFields(kubetest.Exec{}, "Header", "Kind")); diff != "" {
				t.Errorf("exec request (-want +got):\n%s", diff)
			}
		})
	}
}

func TestExitCode(t *testing.T) {
	kubectl := findKubectl(t)
	s := &kubetest.Server{}
	hs := httptest.NewServer(s.Handler())
	defer hs.Close()
	s.URL = hs.URL
	kubeconfig := kubetest.WriteKubeconfig(t, hs.URL)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := kubetest.Kubectl(ctx, kubectl, kubeconfig, kubetest.Options{WebSocket: true}, "exec", "test", "--", "sh", "-c", "exit 3")
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 3 {
		t.Errorf("kubectl exec of exit 3: %v, want exit status 3", err)
	}
	out, err := kubetest.Kubectl(ctx, kubectl, kubeconfig, kubetest.Options{WebSocket: true}, "exec", "nosuchpod", "--", "true")
	if err == nil || !strings.Contains(out, "not found") {
		t.Errorf("exec into a missing pod: %v, %q", err, out)
	}
}

func findKubectl(t *testing.T) string { return testutil.NeedTool(t, "kubectl") }

// kubectlNoise matches kubectl's own klog diagnostics ("E1122 05:09:53.719
// 14890 file.go:NN] ..."), which reach the output under -it (one pty) and
// with combined output. kubectl 1.32 logs some when an exec stream ends
// (remotecommand v3.go: EOF, "use of closed network connection", "websocket:
// close sent"; websocket.go: "Unknown stream id 1, discarding message"):
// races inside kubectl, never the remote command's output, which these
// tests compare exactly.
var kubectlNoise = regexp.MustCompile(`(?m)^[IWEF]\d{4} \d\d:\d\d:\d\d\.\d+ +\d+ [\w.-]+:\d+\] .*\r?\n`)

func dropKubectlCloseNoise(out string) string { return kubectlNoise.ReplaceAllString(out, "") }
