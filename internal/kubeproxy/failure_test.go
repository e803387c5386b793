package kubeproxy_test

import (
	"bytes"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/reel-rec/reel/internal/kubeproxy"
	"github.com/reel-rec/reel/internal/kubetest"
	"github.com/reel-rec/reel/internal/testutil"
)

func policyWith(enforce bool) string {
	return fmt.Sprintf(`{
	"recorders": {"tag:rec": RECORDERS},
	"kubernetes": [{"src": ["*"], "namespaces": ["*"], "recorder": ["tag:rec"], "enforceRecorder": %t}],
}`, enforce)
}

// TestRecorderDownAtStart: with no recorder reachable, enforceRecorder
// refuses the session with a message kubectl prints; fail open lets it
// run and logs the gap.
func TestRecorderDownAtStart(t *testing.T) {
	for _, tc := range []struct {
		name string
		ws   bool
	}{{"websocket", true}, {"spdy", false}} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, envOptions{})
			dead := testutil.DeadAddr(t)
			kc := e.kubeconfig(kubeproxy.KubeconfigUser{Token: aliceToken})

			e.setPolicy(policyWith(true), dead)
			out, err := e.run(kc, kubetest.Options{WebSocket: tc.ws}, "exec", "test", "--", "echo", "must-not-run")
			if err == nil || !strings.Contains(out, "must be recorded, but no recorder could be reached") ||
				!strings.Contains(out, dead.String()) || strings.Contains(out, "must-not-run") {
				t.Errorf("fail closed: %v\n%s", err, out)
			}
			if n := len(e.kube.Execs()); n != 0 {
				t.Errorf("fail closed: the API server ran %d execs", n)
			}

			e.setPolicy(policyWith(false), dead)
			out, err = e.run(kc, kubetest.Options{WebSocket: tc.ws}, "exec", "test", "--", "echo", "ran-unrecorded")
			if err != nil || out != "ran-unrecorded\n" {
				t.Errorf("fail open: %v\n%s", err, out)
			}
			if !strings.Contains(e.logs.String(), "RECORDING FAILED TO START: the session runs UNRECORDED") || e.proxy.Gaps() == 0 {
				t.Errorf("fail open: the gap is not logged (gaps %d)", e.proxy.Gaps())
			}
		})
	}
}

// TestRecorderKilledMidSession: the recorder's connection is cut while
// a session runs: enforceRecorder ends the session with a message;
// fail open goes on, logged.
func TestRecorderKilledMidSession(t *testing.T) {
	for _, enforce := range []bool{true, false} {
		for _, ws := range []bool{true, false} {
			t.Run(fmt.Sprintf("enforce=%v/websocket=%v", enforce, ws), func(t *testing.T) {
				e := newEnv(t, envOptions{})
				rec := startRecorder(t)
				e.setPolicy(policyWith(enforce), rec.addr)
				kc := e.kubeconfig(kubeproxy.KubeconfigUser{Token: aliceToken})
				cmd := exec.Command(e.kubectl, "--kubeconfig", kc, "exec", "-i", "test", "--", "sh", "-c", "echo started; while read l; do echo got-$l; done")
				cmd.Env = kubetest.KubectlEnv(kc, ws)
				stdin, _ := cmd.StdinPipe()
				out := new(testutil.Buffer)
				cmd.Stdout, cmd.Stderr = out, out
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				exited := make(chan error, 1)
				go func() { exited <- cmd.Wait() }()
				t.Cleanup(func() { cmd.Process.Kill(); <-exited })
				out.WaitFor(t, "started")
				io.WriteString(stdin, "one\n")
				out.WaitFor(t, "got-one")
				rec.cut()
				if enforce {
					err := testutil.Recv(t, "kubectl to end once the recording is lost", exited)
					exited <- err
					if err == nil || !strings.Contains(out.String(), "the recording of this session was lost") {
						t.Errorf("kubectl: %v\n%s", err, out.String())
					}
					return
				}
				testutil.WaitFor(t, "the loss to be logged", func() bool {
					return strings.Contains(e.logs.String(), "RECORDING LOST: the session goes on UNRECORDED")
				})
				io.WriteString(stdin, "two\n")
				out.WaitFor(t, "got-two")
				stdin.Close()
				if err := testutil.Recv(t, "kubectl to end", exited); err != nil {
					t.Errorf("kubectl: %v\n%s", err, out.String())
				}
				exited <- nil
			})
		}
	}
}

// TestFailover: the first recorder is dead, the second records.
func TestFailover(t *testing.T) {
	e := newEnv(t, envOptions{})
	rec := startRecorder(t)
	e.setPolicy(policyWith(true), testutil.DeadAddr(t), rec.addr)
	out, err := e.run(e.kubeconfig(kubeproxy.KubeconfigUser{Token: aliceToken}), kubetest.Options{WebSocket: true}, "exec", "test", "--", "echo", "failed-over")
	if err != nil || out != "failed-over\n" {
		t.Fatalf("%v\n%s", err, out)
	}
	c := rec.waitCasts(t, 1)[0]
	if c.output(t) != "failed-over\n" {
		t.Errorf("recorded %q", c.output(t))
	}
	var _ netip.AddrPort
}

// TestSlowRecorderPacesSession: a recorder that works but takes output
// slower than the container writes it slows the session down; under
// enforceRecorder it does not end it, and every byte is recorded.
func TestSlowRecorderPacesSession(t *testing.T) {
	for _, tc := range []struct {
		name string
		ws   bool
	}{{"websocket", true}, {"spdy", false}} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, envOptions{bufferSize: 64 << 10}) // 1/32 of the output
			const size = 2 << 20
			if err := os.WriteFile(filepath.Join(e.dir, "big"), bytes.Repeat([]byte("Q"), size), 0o644); err != nil {
				t.Fatal(err)
			}
			slow := testutil.StartSlowRecorder(t)
			e.setPolicy(policyWith(true), slow.Addr)
			kc := e.kubeconfig(kubeproxy.KubeconfigUser{Token: aliceToken})
			out, err := e.run(kc, kubetest.Options{WebSocket: tc.ws}, "exec", "test", "--", "cat", "big")
			if err != nil || len(out) != size {
				t.Fatalf("kubectl exec: %v, %d bytes out, want %d\n%.500s", err, len(out), size, out)
			}
			testutil.WaitFor(t, "the upload to end", func() bool { return len(slow.Uploads()) == 1 })
			if got := strings.Count(string(slow.Uploads()[0]), "Q"); got != size {
				t.Errorf("the recorder got %d of the %d bytes", got, size)
			}
		})
	}
}

// TestBufferFullEndsSession: a recorder that takes nothing makes the
// buffer overflow once the wait for room gives up; under enforceRecorder
// the session ends mid-stream, and kubectl, over either protocol, fails
// with the reason instead of taking the cut stream for a clean end.
func TestBufferFullEndsSession(t *testing.T) {
	for _, tc := range []struct {
		name string
		ws   bool
	}{{"websocket", true}, {"spdy", false}} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, envOptions{bufferSize: 64 << 10, roomWait: 100 * time.Millisecond})
			const size = 8 << 20
			if err := os.WriteFile(filepath.Join(e.dir, "big"), bytes.Repeat([]byte("Q"), size), 0o644); err != nil {
				t.Fatal(err)
			}
			e.setPolicy(policyWith(true), testutil.StartStalledRecorder(t))
			kc := e.kubeconfig(kubeproxy.KubeconfigUser{Token: aliceToken})
			out, err := e.run(kc, kubetest.Options{WebSocket: tc.ws}, "exec", "test", "--", "cat", "big")
			q := strings.Count(out, "Q")
			if err == nil || !strings.Contains(out, "the recording of this session was lost") || q >= size {
				t.Fatalf("kubectl exec: %v, %d of %d bytes out; want a failure with the reason\n%.300s", err, q, size, strings.ReplaceAll(out, "Q", ""))
			}
		})
	}
}
