package testutil

import (
	"io"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestPoll(t *testing.T) {
	n := 0
	if err := Poll(time.Minute, func() bool { n++; return n == 3 }); err != nil || n != 3 {
		t.Fatalf("Poll: err %v after %d calls, want nil after 3", err, n)
	}
	if err := Poll(10*time.Millisecond, func() bool { return false }); err == nil {
		t.Fatal("Poll of a condition that never holds returned nil")
	}
}

func TestProxyForwardsAndCuts(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	served := make(chan struct{})
	go func() {
		defer close(served)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		io.Copy(c, c) // echo until the proxy cuts us
		c.Close()
	}()
	p := StartProxy(t, ln.Addr().String())
	c, err := net.Dial("tcp", p.Addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("echo through proxy: %q, %v", buf, err)
	}
	p.Cut()
	if _, err := c.Read(buf); err == nil {
		t.Fatal("read after Cut succeeded; want the connection closed")
	}
	Recv(t, "the backend to see its connection closed", served)
	if c2, err := net.Dial("tcp", p.Addr.String()); err == nil {
		c2.Close()
		t.Fatal("dial after Cut succeeded")
	}
}

func TestTerminal(t *testing.T) {
	sh := NeedTool(t, "sh")
	tm := StartTerminal(t, 100, 30, exec.Command(sh, "-c", `stty size; read x; echo "got:$x"; exit 3`))
	tm.Expect("30 100")
	tm.Send("hello\r")
	tm.Expect("got:hello")
	if code := tm.Wait(); code != 3 {
		t.Fatalf("exit code %d, want 3", code)
	}
	if !strings.Contains(tm.Output(), "got:hello") {
		t.Fatalf("output %q", tm.Output())
	}
}
