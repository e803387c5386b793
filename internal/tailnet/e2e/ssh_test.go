package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"tailscale.com/tailcfg"

	"github.com/reel-rec/reel/internal/store"
	"github.com/reel-rec/reel/internal/tailnet"
	"github.com/reel-rec/reel/internal/tailnet/tailnettest"
	"github.com/reel-rec/reel/internal/testutil"
)

// tailscaledNode is a real tailscaled child (userspace networking), joined
// to a test control server with the real tailscale CLI.
type tailscaledNode struct {
	dir, sock string
	logs      *testutil.Buffer
}

func startTailscaled(t *testing.T, ctx context.Context, c *tailnettest.Control, hostname string, upArgs ...string) *tailscaledNode {
	t.Helper()
	dir := t.TempDir()
	n := &tailscaledNode{dir: dir, sock: filepath.Join(dir, "tailscaled.sock"), logs: &testutil.Buffer{}}
	cmd := exec.Command(tool(t, "tailscaled"),
		"--tun=userspace-networking",
		"--statedir="+dir,
		"--socket="+n.sock,
		"--port=0",
		"--no-logs-no-support",
	)
	cmd.Env = append(os.Environ(), "TS_LOGS_DIR="+dir, "TS_PANIC_IF_HIT_MAIN_CONTROL=1")
	cmd.Stdout, cmd.Stderr = n.logs, n.logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		if t.Failed() || os.Getenv("REEL_E2E_VERBOSE") != "" {
			t.Logf("tailscaled %s log:\n%s", hostname, tail(n.logs.String(), 60))
		}
	})
	testutil.WaitForSeen(t, testutil.DefaultWait, "tailscaled's socket", func() bool { return exists(n.sock) }, n.logs.String)
	args := append([]string{"up", "--login-server=" + c.URL, "--authkey=" + authKey, "--hostname=" + hostname, "--reset"}, upArgs...)
	if out, err := n.cli(t, ctx, args...); err != nil {
		t.Fatalf("tailscale up: %v\n%s", err, out)
	}
	return n
}

func (n *tailscaledNode) cli(t *testing.T, ctx context.Context, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	return exec.CommandContext(ctx, tool(t, "tailscale"), append([]string{"--socket=" + n.sock}, args...)...).CombinedOutput()
}

func tail(s string, lines int) string {
	l := strings.Split(s, "\n")
	if len(l) > lines {
		l = l[len(l)-lines:]
	}
	return strings.Join(l, "\n")
}

// forward listens on loopback and carries each connection over the tailnet
// through node to dst, so that a program outside the tailnet (OpenSSH's
// ssh, kubectl) reaches a tailnet service as node.
func forward(t *testing.T, node *tailnet.Server, dst netip.AddrPort) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				r, err := node.Dial(ctx, "tcp", dst.String())
				cancel()
				if err != nil {
					t.Logf("forward to %s: %v", dst, err)
					return
				}
				defer r.Close()
				done := make(chan struct{}, 2)
				go func() { io.Copy(r, c); closeWrite(r); done <- struct{}{} }()
				go func() { io.Copy(c, r); closeWrite(c); done <- struct{}{} }()
				<-done
				<-done
			}()
		}
	}()
	return ln.Addr().String()
}

func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
}

// ssh runs OpenSSH's client against addr (a forward to a Tailscale SSH
// server) with a pty, and returns its output and error.
func ssh(t *testing.T, ctx context.Context, addr, user, command string) (string, error) {
	t.Helper()
	host, port, _ := net.SplitHostPort(addr)
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ssh", "-F", "/dev/null",
		"-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
		"-o", "BatchMode=yes", "-o", "LogLevel=ERROR",
		"-p", port, "-tt", user+"@"+host, command)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// castHeader is the part of a Tailscale SSH recording's header the test
// checks.
type castHeader struct {
	Version       int               `json:"version"`
	Timestamp     int64             `json:"timestamp"`
	Command       string            `json:"command"`
	Env           map[string]string `json:"env"`
	SrcNode       string            `json:"srcNode"`
	SrcNodeID     string            `json:"srcNodeID"`
	SrcNodeTags   []string          `json:"srcNodeTags"`
	SrcNodeUser   string            `json:"srcNodeUser"`
	SrcNodeUserID int64             `json:"srcNodeUserID"`
	SSHUser       string            `json:"sshUser"`
	LocalUser     string            `json:"localUser"`
	ConnectionID  string            `json:"connectionID"`
}

// readCast returns a recording's header and its output ("o") concatenated.
func readCast(t *testing.T, path string) (castHeader, string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	var h castHeader
	var out strings.Builder
	for i := 0; sc.Scan(); i++ {
		if i == 0 {
			if err := json.Unmarshal(sc.Bytes(), &h); err != nil {
				t.Fatalf("header: %v: %s", err, sc.Bytes())
			}
			continue
		}
		var ev []any
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil || len(ev) != 3 {
			t.Fatalf("event line %d: %v: %s", i, err, sc.Bytes())
		}
		if ev[1] == "o" {
			out.WriteString(ev[2].(string))
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return h, out.String()
}

// TestTailscaleSSH: a real tailscaled running Tailscale SSH, whose SSH
// policy names reel as its recorder, streams an OpenSSH session to reel;
// reel files it under the tailscaled node's stable ID with the header and
// output as sent. With reel stopped and the policy failing closed, the
// session is refused with the policy's message.
func TestTailscaleSSH(t *testing.T) {
	isolated(t)
	testutil.NeedTool(t, "ssh")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c := startControl(t)
	dst := t.TempDir()
	reel := startReel(t, c, dst, t.TempDir(), "--hostname", "recorder", "--advertise-tags", "tag:recorder")

	const refusal = "reel e2e: this session must be recorded and no recorder is reachable"
	const ended = "reel e2e: recording lost"
	c.Server.SetSSHPolicy(&tailcfg.SSHPolicy{Rules: []*tailcfg.SSHRule{{
		Principals: []*tailcfg.SSHPrincipal{{Any: true}},
		SSHUsers:   map[string]string{"root": "root"},
		Action: &tailcfg.SSHAction{
			Accept:    true,
			Recorders: []netip.AddrPort{reel.addr},
			OnRecordingFailure: &tailcfg.SSHRecorderFailureAction{
				RejectSessionWithMessage:    refusal,
				TerminateSessionWithMessage: ended,
			},
		},
	}}})
	startTailscaled(t, ctx, c, "ssh-server", "--ssh", "--advertise-tags=tag:server")
	serverNode := c.NodeByName("ssh-server")
	if serverNode == nil {
		t.Fatal("control server does not know tailscaled")
	}
	serverID := string(serverNode.StableID)
	var serverIP netip.Addr
	for _, p := range serverNode.Addresses {
		if p.Addr().Is4() {
			serverIP = p.Addr()
		}
	}

	laptop := joinNode(t, ctx, c, "laptop")
	laptopNode := c.NodeByName("laptop")
	sshAddr := forward(t, laptop, netip.AddrPortFrom(serverIP, 22))

	out, err := ssh(t, ctx, sshAddr, "root", "echo reel-was-here")
	if err != nil {
		t.Fatalf("ssh through Tailscale SSH: %v\n%s", err, out)
	}
	if !strings.Contains(out, "reel-was-here") {
		t.Fatalf("ssh output %q lacks the command's output", out)
	}

	var key string
	testutil.WaitFor(t, "the recording to complete", func() bool {
		for k, info := range recordings(t, dst) {
			if info.Status == store.StatusComplete {
				key = k
				return true
			}
		}
		return false
	})
	recs := recordings(t, dst)
	if len(recs) != 1 {
		t.Errorf("recordings: %v, want one", recs)
	}
	if info := recs[key]; info.Node != serverID || !strings.HasPrefix(key, serverID+"/") {
		t.Errorf("recording %s filed under %q, want tailscaled's stable node ID %q", key, info.Node, serverID)
	}
	h, output := readCast(t, filepath.Join(dst, filepath.FromSlash(key)))
	want := castHeader{
		Version: 2,
		Command: "echo reel-was-here",
		// OpenSSH sends TERM in the pty request, not as a variable, and
		// tailscaled records its default then.
		Env:           map[string]string{"TERM": "xterm-256color"},
		SrcNode:       strings.TrimSuffix(laptopNode.Name, "."),
		SrcNodeID:     string(laptopNode.StableID),
		SrcNodeUser:   h.SrcNodeUser,
		SrcNodeUserID: int64(laptopNode.User),
		SSHUser:       "root",
		LocalUser:     "root",
		ConnectionID:  h.ConnectionID,
		Timestamp:     h.Timestamp,
	}
	if diff := cmp.Diff(want, h); diff != "" {
		t.Errorf("recording header (-want +got):\n%s", diff)
	}
	if h.SrcNodeUser == "" || h.ConnectionID == "" {
		t.Errorf("header lacks srcNodeUser or connectionID: %+v", h)
	}
	if d := time.Since(time.Unix(h.Timestamp, 0)); d < 0 || d > 5*time.Minute {
		t.Errorf("header timestamp %d is %s off", h.Timestamp, d)
	}
	if output != out {
		t.Errorf("recorded output %q differs from what ssh printed %q", output, out)
	}

	// Fail closed: reel gone, the policy says refuse.
	reel.stop(t)
	out, err = ssh(t, ctx, sshAddr, "root", "echo must-not-run")
	if err == nil {
		t.Errorf("ssh ran with no recorder reachable and a fail-closed policy:\n%s", out)
	}
	if !strings.Contains(out, refusal) {
		t.Errorf("refused session's output %q lacks the policy's message %q", out, refusal)
	}
	if strings.Contains(out, "must-not-run") {
		t.Errorf("the command ran: %q", out)
	}
}
