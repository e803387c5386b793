package kubetest

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/reel-rec/reel/internal/testutil"
)

// WriteKubeconfig writes a kubeconfig for server (an http:// URL, no
// credentials) into a temporary directory of t and returns its path.
func WriteKubeconfig(t testing.TB, server string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "kubeconfig")
	cfg := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: test
  cluster:
    server: %s
contexts:
- name: test
  context:
    cluster: test
    user: test
    namespace: default
current-context: test
users:
- name: test
  user: {}
`, server)
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// Options say how Kubectl runs kubectl.
type Options struct {
	// WebSocket chooses the streaming protocol for exec: WebSocket
	// (kubectl's default) or SPDY (its fallback).
	WebSocket bool
	// Stdin is kubectl's standard input.
	Stdin string
	// TTY runs kubectl on a pseudo-terminal (for exec -it); its output
	// is then what the terminal showed.
	TTY bool
}

// KubectlEnv is the environment the tests run kubectl in: proxy
// variables dropped, HOME (kubectl's cache) in the kubeconfig's
// directory, and the streaming protocol chosen: WebSocket, or SPDY.
func KubectlEnv(kubeconfig string, websocket bool) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch strings.ToUpper(k) {
		case "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "HOME", "KUBECONFIG", "KUBECTL_REMOTE_COMMAND_WEBSOCKETS":
			continue
		}
		env = append(env, kv)
	}
	return append(env, "HOME="+filepath.Dir(kubeconfig), fmt.Sprintf("KUBECTL_REMOTE_COMMAND_WEBSOCKETS=%t", websocket))
}

// Kubectl runs kubectl with kubeconfig and returns its combined output.
// The kubeconfig's directory serves as HOME (kubectl's cache), and proxy
// variables are dropped. kubectl is killed when ctx ends (or after two
// minutes); the error then says so, and the output is what it had shown.
func Kubectl(ctx context.Context, kubectl, kubeconfig string, o Options, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, kubectl, append([]string{"--kubeconfig", kubeconfig, "--request-timeout", "60s"}, args...)...)
	cmd.Env = KubectlEnv(kubeconfig, o.WebSocket)
	var out testutil.Buffer
	if !o.TTY {
		cmd.Stdin = strings.NewReader(o.Stdin)
		cmd.Stdout, cmd.Stderr = &out, &out
		cmd.WaitDelay = time.Second // the pipes close even if a child keeps them
		err := cmd.Run()
		return out.String(), killed(ctx, err)
	}
	f, err := pty.StartWithSize(cmd, &pty.Winsize{Cols: 100, Rows: 30})
	if err != nil {
		return "", err
	}
	defer f.Close()
	if o.Stdin != "" {
		go f.Write([]byte(o.Stdin))
	}
	copied := make(chan struct{})
	go func() {
		io.Copy(&out, f) // ends with EIO once kubectl has exited
		close(copied)
	}()
	err = cmd.Wait()
	select {
	case <-copied: // all kubectl wrote is read
	case <-ctx.Done():
	}
	return out.String(), killed(ctx, err)
}

// killed says that kubectl was killed because ctx ended, if it was.
func killed(ctx context.Context, err error) error {
	if err != nil && ctx.Err() != nil {
		return fmt.Errorf("kubectl did not finish in time and was killed (%w): %w", context.Cause(ctx), err)
	}
	return err
}
