package main

import (
	"net"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/reel-rec/reel/internal/testutil"
)

// reelExe returns the path of the "reel" command that TestMain registered
// with testscript: this test binary, which runs main when called as reel.
// The tests run the real command line without building a second copy.
func reelExe(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("reel")
	if err != nil {
		t.Fatalf("the reel command registered by testscript is not on PATH: %v", err)
	}
	return p
}

// freeAddr returns a loopback address nobody listens on right now.
func freeAddr(t testing.TB) string { return testutil.FreeAddr(t) }

// needTool is testutil.NeedTool, under the name ssh_e2e_test.go uses.
func needTool(t testing.TB, name string) string { return testutil.NeedTool(t, name) }

// reelProc is a running reel command.
type reelProc struct {
	cmd  *exec.Cmd
	addr string           // the address it serves on, if any
	logs *testutil.Buffer // its stdout and stderr
	done chan struct{}    // closed when the process has exited
	err  error            // its exit status, once done is closed
}

// wait waits for the process to exit and returns its exit status; any
// number of callers may wait.
func (p *reelProc) wait() error {
	<-p.done
	return p.err
}

// exited reports whether the process has exited.
func (p *reelProc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// startReel starts "reel ARGS...". It is killed at the end of the test,
// and its output is logged if the test failed.
func startReel(t testing.TB, args ...string) *reelProc {
	t.Helper()
	return startReelEnv(t, nil, args...)
}

// startReelEnv is startReel with variables added to the environment.
func startReelEnv(t testing.TB, env []string, args ...string) *reelProc {
	t.Helper()
	cmd := exec.Command(reelExe(t), args...)
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	logs := new(testutil.Buffer)
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &reelProc{cmd: cmd, logs: logs, done: make(chan struct{})}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			t.Logf("reel %v logs:\n%s", args, logs.String())
		}
	})
	return p
}

// serveLogs returns what p has logged so far.
func serveLogs(p *reelProc) string { return p.logs.String() }

// startServe starts "reel serve" on a free loopback port.
func startServe(t testing.TB, dst string, extra ...string) *reelProc {
	t.Helper()
	return startServeOn(t, freeAddr(t), dst, extra...)
}

// startServeOn starts "reel serve" on addr (which may have been handed to
// a sender before) and waits until it accepts connections.
func startServeOn(t testing.TB, addr, dst string, extra ...string) *reelProc {
	t.Helper()
	return startServeEnv(t, nil, addr, dst, extra...)
}

// startServeEnv is startServeOn with variables added to the environment.
func startServeEnv(t testing.TB, env []string, addr, dst string, extra ...string) *reelProc {
	t.Helper()
	args := append([]string{"serve", "--dst", dst, "--listen", addr, "--min-free", "0", "--ack-interval", "100ms"}, extra...)
	p := startReelEnv(t, env, args...)
	p.addr = addr
	waitListening(t, p, addr)
	return p
}

// waitListening waits until something accepts connections on addr, and
// fails at once if p exits first.
func waitListening(t testing.TB, p *reelProc, addr string) {
	t.Helper()
	testutil.WaitForSeen(t, testutil.DefaultWait, "reel to listen on "+addr, func() bool {
		if p.exited() {
			t.Fatalf("reel exited before listening on %s: %v\n%s", addr, p.err, p.logs.String())
		}
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return false
		}
		c.Close()
		return true
	}, p.logs.String)
}
