package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"tailscale.com/tailcfg"

	"github.com/reel-rec/reel/internal/audit"
	"github.com/reel-rec/reel/internal/auth"
	"github.com/reel-rec/reel/internal/tailnet"
	"github.com/reel-rec/reel/internal/tailnet/tailnettest"
	"github.com/reel-rec/reel/internal/testutil"
)

// uiURL is the line reel serve --ui logs with the UI's address.
var uiURL = regexp.MustCompile(`web UI on (http://100\.[0-9.]+:8443/)`)

// TestServeTailnetUI runs reel serve --tailnet --ui and views it from
// in-process nodes of two tailnet users, with no password: the one a
// viewers rule names sees the recording a Tailscale client sent over the
// tailnet, the other sees an empty list and cannot open it, and a tagged
// node is refused. reel audit names the tailnet user and their tailnet
// address.
//
// The UI is served over plain HTTP on the tailnet (--ui-tailnet-http
// :8443): the test control server names a certificate domain, but the
// certificate itself comes from an ACME CA, which cannot be reached in
// the tests' loopback-only namespace.
func TestServeTailnetUI(t *testing.T) {
	isolated(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c := startControl(t)

	// Each untagged node is a tailnet user of its own: learn their names
	// the way reel will, by WhoIs.
	alice := joinNode(t, ctx, c, "alice")
	bob := joinNode(t, ctx, c, "bob")
	server := joinNode(t, ctx, c, "server", "tag:server")
	aliceUser, bobUser := loginName(t, ctx, bob, alice), loginName(t, ctx, alice, bob)
	if aliceUser == "" || bobUser == "" || aliceUser == bobUser {
		t.Fatalf("tailnet users %q and %q: want two different users", aliceUser, bobUser)
	}

	pol := filepath.Join(t.TempDir(), "policy.hujson")
	rule := fmt.Sprintf(`{"viewers": [{"src": [%q], "nodes": ["*"], "actions": ["view"]}]}`+"\n", aliceUser)
	if err := os.WriteFile(pol, []byte(rule), 0o644); err != nil {
		t.Fatal(err)
	}
	dst, stateDir := t.TempDir(), t.TempDir()
	r, base := startReelUI(t, c, dst, stateDir, "--policy", pol)

	sender := joinNode(t, ctx, c, "sender")
	body := []byte(`{"version":2,"width":80,"height":24,"timestamp":1700000000,"srcNode":"sender"}` + "\n" + `[0.5,"o","zebra-crossing on the tailnet\r\n"]` + "\n")
	if err := upload(ctx, r.addr, sender.Dial, body); err != nil {
		t.Fatalf("upload: %v", err)
	}
	var key string
	for k := range recordings(t, dst) {
		key = k
	}
	if key == "" {
		t.Fatal("no recording stored")
	}
	node, name, _ := strings.Cut(key, "/")

	get := func(n *tailnet.Server, path string) (int, string) { return uiGet(t, n, base, path) }
	var code int
	var page string
	testutil.WaitForSeen(t, testutil.DefaultWait, "the recording in "+aliceUser+"'s list", func() bool {
		code, page = get(alice, "/")
		return code == http.StatusOK && strings.Contains(page, name)
	}, func() string { return fmt.Sprintf("%d\n%s", code, page) })
	if !strings.Contains(page, aliceUser) {
		t.Errorf("the list does not name the viewer %s:\n%s", aliceUser, page)
	}
	if code, page := get(alice, "/r/"+node+"/"+name); code != http.StatusOK || !strings.Contains(page, name) {
		t.Errorf("%s opening the recording: %d\n%s", aliceUser, code, page)
	}

	// bob has no rule: the same list, empty; the recording, not found.
	if code, page := get(bob, "/"); code != http.StatusOK || strings.Contains(page, name) || strings.Contains(page, node) {
		t.Errorf("%s, without a rule, listing: %d\n%s", bobUser, code, page)
	}
	if code, page := get(bob, "/r/"+node+"/"+name); code != http.StatusNotFound {
		t.Errorf("%s, without a rule, opening the recording: %d, want 404\n%s", bobUser, code, page)
	}
	// A tagged device has no user.
	if code, page := get(server, "/"); code != http.StatusForbidden || !strings.Contains(page, "tagged device") || strings.Contains(page, name) {
		t.Errorf("a tagged node listing: %d, want 403\n%s", code, page)
	}

	es := auditEntries(t, stateDir)
	aliceAddr := alice.Addrs()[0].String()
	saw := map[string]bool{}
	for _, e := range es {
		switch {
		case e.User == aliceUser && e.Auth == "tailnet" && e.From == aliceAddr && e.Result == audit.ResultOK:
			saw["alice "+e.Action+" "+e.Target] = true
		case e.User == bobUser && e.Auth == "tailnet" && e.Result == audit.ResultDenied:
			saw["bob denied "+e.Action+" "+e.Target] = true
		}
	}
	for _, want := range []string{"alice " + audit.ActionList + " ", "alice " + audit.ActionView + " " + key, "bob denied " + audit.ActionView + " " + key} {
		if !saw[want] {
			t.Errorf("reel audit has no %q (alice is %s at %s, bob is %s); entries:\n%+v", want, aliceUser, aliceAddr, bobUser, es)
		}
	}
}

// startReelUI runs reel serve --tailnet --ui with the UI over HTTP on the
// tailnet's :8443 and returns it with the UI's base URL.
func startReelUI(t *testing.T, c *tailnettest.Control, dst, stateDir string, args ...string) (*reelServe, string) {
	t.Helper()
	args = append([]string{"--hostname", "recorder", "--advertise-tags", "tag:recorder", "--ui", "--ui-tailnet-http", ":8443"}, args...)
	r := startReel(t, c, dst, stateDir, args...)
	var base string
	testutil.WaitForSeen(t, testutil.DefaultWait, "the web UI on the tailnet", func() bool {
		m := uiURL.FindStringSubmatch(r.logs.String())
		if m != nil {
			base = m[1]
		}
		return m != nil
	}, r.logs.String)
	if strings.Contains(r.logs.String(), "one-time password") {
		t.Errorf("tailnet mode printed a password:\n%s", r.logs.String())
	}
	if _, err := os.Stat(filepath.Join(stateDir, "accounts.json")); !os.IsNotExist(err) {
		t.Errorf("tailnet mode made accounts: %v", err)
	}
	return r, base
}

// uiGet GETs path of the UI at base from node n, over the tailnet.
func uiGet(t *testing.T, n *tailnet.Server, base, path string) (int, string) {
	t.Helper()
	tr := &http.Transport{DialContext: n.Dial}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Get(base + strings.TrimPrefix(path, "/"))
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestServeTailnetUIGrants: with no policy file, the tailnet policy's
// grant of reel's viewer capability decides what a tailnet user sees. The
// test control server grants app capabilities only to every node at once
// (SetGlobalAppCaps), so the grant names the nodes it opens: a recording
// whose sender is tagged tag:server is listed, another sender's is not.
func TestServeTailnetUIGrants(t *testing.T) {
	isolated(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c := startControl(t)
	c.Server.SetGlobalAppCaps(tailcfg.PeerCapMap{
		auth.ViewerCapability: {tailcfg.RawMessage(`{"nodes": ["tag:server"], "actions": ["view"]}`)},
	})
	dst, stateDir := t.TempDir(), t.TempDir()
	r, base := startReelUI(t, c, dst, stateDir)

	server := joinNode(t, ctx, c, "server", "tag:server")
	laptop := joinNode(t, ctx, c, "laptop")
	viewer := joinNode(t, ctx, c, "viewer")
	for _, up := range []struct {
		n    *tailnet.Server
		tags string
	}{{server, `,"srcNodeTags":["tag:server"]`}, {laptop, ""}} {
		body := []byte(`{"version":2,"width":80,"height":24,"timestamp":1700000000` + up.tags + "}\n" + `[0.5,"o","granted?\r\n"]` + "\n")
		if err := upload(ctx, r.addr, up.n.Dial, body); err != nil {
			t.Fatalf("upload: %v", err)
		}
	}
	serverID, laptopID := string(c.NodeByName("server").StableID), string(c.NodeByName("laptop").StableID)
	if len(recordings(t, dst)) != 2 {
		t.Fatalf("recordings: %v, want two", recordings(t, dst))
	}
	var code int
	var page string
	testutil.WaitForSeen(t, testutil.DefaultWait, "the tag:server recording in the granted viewer's list", func() bool {
		code, page = uiGet(t, viewer, base, "/")
		return code == http.StatusOK && strings.Contains(page, "/r/"+serverID+"/")
	}, func() string { return fmt.Sprintf("%d\n%s", code, page) })
	if strings.Contains(page, laptopID) {
		t.Errorf("the grant names tag:server, yet the list shows the untagged sender %s:\n%s", laptopID, page)
	}
}

// loginName is the tailnet user of peer, as from sees it by WhoIs (once
// from's netmap has peer).
func loginName(t *testing.T, ctx context.Context, from, peer *tailnet.Server) string {
	t.Helper()
	addr := net.JoinHostPort(peer.Addrs()[0].String(), "1")
	var id tailnet.Identity
	var err error
	testutil.WaitForSeen(t, testutil.DefaultWait, "WhoIs "+addr, func() bool {
		id, err = from.WhoIs(ctx, addr)
		return err == nil
	}, func() string { return fmt.Sprint(err) })
	return id.User
}

// auditEntries runs "reel audit --json" on stateDir.
func auditEntries(t *testing.T, stateDir string) []audit.Entry {
	t.Helper()
	out, err := exec.Command(tool(t, "reel"), "audit", "--statedir", stateDir, "--json").Output()
	if err != nil {
		t.Fatalf("reel audit: %v\n%s", err, out)
	}
	var es []audit.Entry
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		var e audit.Entry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("reel audit --json: %v: %s", err, sc.Text())
		}
		es = append(es, e)
	}
	return es
}
