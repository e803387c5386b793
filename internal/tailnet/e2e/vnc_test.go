package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"tailscale.com/tstest/integration/testcontrol"

	"github.com/reel-rec/reel/internal/desktop"
	"github.com/reel-rec/reel/internal/rfb"
	"github.com/reel-rec/reel/internal/rfb/rfbtest"
	"github.com/reel-rec/reel/internal/store"
	"github.com/reel-rec/reel/internal/tailnet"
	"github.com/reel-rec/reel/internal/tailnet/tailnettest"
	"github.com/reel-rec/reel/internal/testutil"
)

var vncTailnetAddr = regexp.MustCompile(`VNC on the tailnet at (100\.[0-9.]+:5900)`)

// startVNC runs reel vnc --tailnet against c, in front of the desktop d.
func startVNC(t *testing.T, c *tailnettest.Control, d *rfbtest.Desktop, policyFile string, args ...string) *reelServe {
	t.Helper()
	dir := t.TempDir()
	pw := filepath.Join(dir, "vncpw")
	if err := os.WriteFile(pw, []byte(rfbtest.VNCPassword+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	args = append([]string{"vnc", "--tailnet", "--login-server", c.URL, "--statedir", filepath.Join(dir, "state"),
		"--upstream", d.Addr, "--upstream-password-file", pw, "--policy", policyFile, "--host", "lab"}, args...)
	return runReel(t, args, nil, vncTailnetAddr)
}

// selfLogin is the login name the control server gave n's user, as n's
// own WhoIs of its tailnet address says.
func selfLogin(t *testing.T, ctx context.Context, n *tailnet.Server) string {
	t.Helper()
	id, err := n.WhoIs(ctx, netip.AddrPortFrom(n.Addrs()[0], 1).String())
	if err != nil || id.User == "" {
		t.Fatalf("WhoIs of the node itself: %+v, %v", id, err)
	}
	return id.User
}

// TestVNCTailnet runs reel vnc in tailnet mode in front of a real Xvnc,
// with a recorder that is on the tailnet too (reel serve --tailnet): a
// real vncviewer, reaching reel vnc over the tailnet as a user's node,
// logs in with no password (security type None) as that node's user, whom
// the policy names; the recording reaches the recorder over the tailnet,
// is filed under reel vnc's node, names the user and the client's node,
// and shows what the server showed. A tagged node that no rule admits is
// refused with a reason the client shows.
func TestVNCTailnet(t *testing.T) {
	isolated(t)
	testutil.NeedTool(t, "vncviewer")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c := startControl(t, func(s *testcontrol.Server) { s.TagOwners["tag:ci"] = nil })
	dst := t.TempDir()
	rec := startReel(t, c, dst, t.TempDir(), "--hostname", "recorder", "--advertise-tags", "tag:recorder")
	laptop := joinNode(t, ctx, c, "laptop")
	ci := joinNode(t, ctx, c, "ci", "tag:ci")
	user := selfLogin(t, ctx, laptop)

	pol := filepath.Join(t.TempDir(), "policy.hujson")
	os.WriteFile(pol, []byte(fmt.Sprintf(`{
		"recorders": {"tag:rec": [%q]},
		"desktop": [{"action": "accept", "src": [%q], "dst": ["lab"], "recorder": ["tag:rec"], "enforceRecorder": true}],
	}`, rec.addr, user)), 0o644)
	d := rfbtest.StartDesktop(t, 640, 480)
	vnc := startVNC(t, c, d, pol, "--hostname", "desk")
	vncNode := c.NodeByName("desk")
	laptopNode := c.NodeByName("laptop")
	if vncNode == nil || laptopNode == nil {
		t.Fatal("the control server does not know reel vnc's or the laptop's node")
	}

	// A tagged node: named by WhoIs, but no rule admits it.
	conn, err := ci.Dial(ctx, "tcp", vnc.addr.String())
	if err != nil {
		t.Fatal(err)
	}
	conn.SetDeadline(time.Now().Add(testutil.DefaultWait))
	_, err = rfb.NewClient(conn, rfb.ClientConfig{})
	conn.Close()
	var re *rfb.RefusedError
	if !errors.As(err, &re) || !strings.Contains(re.Reason, "no policy rule lets node ci.") {
		t.Errorf("the tagged node: %v, want a refusal naming it", err)
	}

	// The laptop's user, with a real vncviewer.
	display := rfbtest.StartX(t, "Xvfb", "-screen", "0", "1024x768x24")
	_, port, _ := net.SplitHostPort(forward(t, laptop, vnc.addr))
	viewer := exec.Command("vncviewer", "-SecurityTypes", "None", "-AlertOnFatalError=0", "-ReconnectOnError=0",
		"-RemoteResize=0", "-Shared=1", "-AutoSelect=0", "-FullColor", "-NoJPEG", "-PreferredEncoding", "ZRLE", "127.0.0.1::"+port)
	viewer.Env = append(os.Environ(), "DISPLAY="+display, "HOME="+t.TempDir())
	var vout testutil.Buffer
	viewer.Stdout, viewer.Stderr = &vout, &vout
	if err := viewer.Start(); err != nil {
		t.Fatal(err)
	}
	viewerDone := make(chan struct{})
	go func() { viewer.Wait(); close(viewerDone) }()
	stopViewer := func() { viewer.Process.Kill(); <-viewerDone }
	defer stopViewer()

	var key string
	testutil.WaitForSeen(t, 60*time.Second, "a live desktop recording", func() bool {
		for k, info := range recordings(t, dst) {
			if store.KindOf(k) == store.KindDesktop && info.Status == store.StatusLive {
				key = k
				return true
			}
		}
		return false
	}, func() string { return vnc.logs.String() + vout.String() })
	d.Must(t, "type", "--delay", "10", "echo over-the-tailnet")
	d.Must(t, "key", "Return")
	shot := d.StableScreenshot(t)
	path := filepath.Join(dst, filepath.FromSlash(key))
	var differ int
	testutil.WaitForSeen(t, 30*time.Second, "the recorded screen to equal the server's", func() bool {
		screen, _ := lastScreen(t, path)
		differ = rfbtest.DiffPixels(screen, shot)
		return differ == 0
	}, func() string { return fmt.Sprintf("%d pixels differ", differ) })

	stopViewer()
	testutil.WaitForSeen(t, 30*time.Second, "the recording to be complete", func() bool {
		return recordings(t, dst)[key].Status == store.StatusComplete
	}, vnc.logs.String)
	if node, _, _ := store.ParseKey(key); node != string(vncNode.StableID) {
		t.Errorf("recording %s filed under %q, want reel vnc's stable node ID %q", key, node, vncNode.StableID)
	}
	_, h := lastScreen(t, path)
	if h.User != user || h.SrcNode != strings.TrimSuffix(laptopNode.Name, ".") || h.SrcNodeID != string(laptopNode.StableID) || h.Host != "lab" {
		t.Errorf("header %+v; want user %q, node %s (%s)", h, user, laptopNode.Name, laptopNode.StableID)
	}
	if len(recordings(t, dst)) != 1 {
		t.Errorf("recordings %v, want one (the refused node's session is not recorded)", recordings(t, dst))
	}
}

// lastScreen reads a desktop recording as stored so far and rebuilds its
// last screen.
func lastScreen(t *testing.T, path string) (*desktop.Image, desktop.Header) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	ix, err := desktop.Scan(bytes.NewReader(b))
	if err != nil || ix.Err != nil {
		t.Fatalf("recording: %v %v", err, ix.Err)
	}
	p, err := desktop.FrameAt(bytes.NewReader(b), ix, ix.Duration)
	if err != nil {
		t.Fatal(err)
	}
	return p.Screen, ix.Header
}
