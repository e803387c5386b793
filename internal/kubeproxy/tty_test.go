package kubeproxy_test

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/reel-rec/reel/internal/asciicast"
	"github.com/reel-rec/reel/internal/kubeproxy"
	"github.com/reel-rec/reel/internal/kubetest"
	"github.com/reel-rec/reel/internal/testutil"
)

// TestExecTTYResize: "kubectl exec -it" on a real pty: the header holds
// the terminal's size from kubectl's first resize, a later resize is an
// "r" event in COLSxROWS, what the user types is not recorded, the
// screen output is.
func TestExecTTYResize(t *testing.T) {
	for _, tc := range []struct {
		name string
		ws   bool
	}{{"websocket", true}, {"spdy", false}} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, envOptions{})
			rec := startRecorder(t)
			e.setPolicy(recordAll, rec.addr)
			kc := e.kubeconfig(kubeproxy.KubeconfigUser{Name: "alice", Token: aliceToken})
			cmd := exec.Command(e.kubectl, "--kubeconfig", kc, "exec", "-it", "test", "--", "sh")
			cmd.Env = kubetest.KubectlEnv(kc, tc.ws)
			tm := testutil.StartTerminal(t, 91, 27, cmd)
			// kubectl sends its first size beside stdin, not before it:
			// the shell may start at 80x24 and see 91x27 a moment later.
			testutil.WaitFor(t, "the first size to reach the shell", func() bool {
				tm.Send("stty size; echo READY$((40+2))\r")
				return strings.Contains(tm.Output(), "27 91")
			})
			tm.Expect("READY42")
			tm.Resize(133, 41)
			// The shell sees the new size only once kubectl has sent it.
			testutil.WaitFor(t, "the new size to reach the shell", func() bool {
				tm.Send("stty size\r")
				return strings.Contains(tm.Output(), "41 133")
			})
			tm.Send("echo typed-password | wc -c; exit 5\r")
			tm.Expect("15")
			if code := tm.Wait(); code != 5 {
				t.Errorf("kubectl exit %d, want 5\n%s", code, tm.Output())
			}
			c := rec.waitCasts(t, 1)[0]
			if c.header.Width != 91 || c.header.Height != 27 {
				t.Errorf("header size %dx%d, want 91x27", c.header.Width, c.header.Height)
			}
			var resizes []string
			for _, ev := range c.events {
				if ev.Code == "r" {
					resizes = append(resizes, ev.Data)
				}
			}
			if len(resizes) == 0 || resizes[0] != "133x41" {
				t.Errorf("resize events %q, want 133x41 (COLSxROWS) first", resizes)
			}
			if cols, rows, err := asciicast.ParseResize("133x41", c.header.ResizeRowsFirst()); err != nil || cols != 133 || rows != 41 {
				t.Errorf("readers take the resize as %dx%d, %v", cols, rows, err)
			}
			out := c.output(t)
			// The terminal echoes what is typed: that is output, and
			// recorded as the user saw it; the input events are not.
			for _, ev := range c.events {
				if ev.Code == "i" {
					t.Errorf("input event recorded: %v", ev)
				}
			}
			if !strings.Contains(out, "READY42") || !strings.Contains(out, "27 91") {
				t.Errorf("recorded output lacks the session's output:\n%q", out)
			}
			if last := c.events[len(c.events)-1]; last.Code != "x" || last.Data != "5" {
				t.Errorf("last event %v, want exit 5", last)
			}
		})
	}
}
