package policy

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/reel-rec/reel/internal/testutil"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// policyWithUser returns a valid policy that admits exactly user.
func policyWithUser(user string) string {
	return `{
	// admits ` + user + `
	"ssh": [{"action": "accept", "src": ["` + user + `"], "dst": ["*"], "users": ["*"]}],
}
`
}

const badPolicy = `{
	"ssh": [{"action": "acept", "src": ["*"], "dst": ["*"], "users": ["*"]}],
}
`

// admits reports whether the holder's current policy admits user.
func admits(h *Holder, user string) bool {
	return h.Get().SSH(SSHRequest{User: user, LocalUser: user}).Action == Accept
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	// Write to a temporary name and rename, as editors and config
	// management do, so the watcher never sees a half-written file.
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.hujson")
	writeFile(t, good, policyWithUser("alice"))
	h, err := Load(good)
	if err != nil {
		t.Fatal(err)
	}
	if !admits(h, "alice") || admits(h, "bob") {
		t.Errorf("loaded policy does not admit just alice")
	}
	if h.Get().Name != good {
		t.Errorf("Name = %q, want %q", h.Get().Name, good)
	}

	bad := filepath.Join(dir, "bad.hujson")
	writeFile(t, bad, badPolicy)
	if _, err := Load(bad); err == nil || !strings.Contains(err.Error(), bad+`:2:21: ssh rule #1: unknown action "acept"`) {
		t.Errorf("Load(bad) error = %v", err)
	}
	if _, err := Load(filepath.Join(dir, "missing.hujson")); err == nil {
		t.Error("Load(missing) succeeded")
	}
}

func TestReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "policy.hujson")
	writeFile(t, path, policyWithUser("alice"))
	h, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	old := h.Get()

	writeFile(t, path, policyWithUser("bob"))
	if err := h.Reload(); err != nil {
		t.Fatalf("Reload(good): %v", err)
	}
	if !admits(h, "bob") || admits(h, "alice") {
		t.Error("good change not applied")
	}
	if old.SSH(SSHRequest{User: "alice", LocalUser: "alice"}).Action != Accept {
		t.Error("the old Policy value changed under its holders")
	}

	writeFile(t, path, badPolicy)
	if err := h.Reload(); err == nil {
		t.Fatal("Reload(bad) succeeded")
	}
	if !admits(h, "bob") {
		t.Error("bad change replaced the current policy")
	}

	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := h.Reload(); err == nil {
		t.Fatal("Reload(missing file) succeeded")
	}
	if !admits(h, "bob") {
		t.Error("missing file replaced the current policy")
	}
}

// watcher is a running h.watch whose polls the test makes.
type watcher struct {
	logs *testutil.Buffer
	tick chan time.Time
}

// startWatch runs h.watch until the test ends.
func startWatch(t *testing.T, h *Holder, hup <-chan os.Signal) *watcher {
	t.Helper()
	w := &watcher{logs: new(testutil.Buffer), tick: make(chan time.Time)}
	log := slog.New(slog.NewTextHandler(w.logs, nil))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.watch(ctx, log, w.tick, hup)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return w
}

// poll makes the watcher poll the file once and waits until that poll is
// done: tick is unbuffered and watch handles one event at a time, so the
// second send is taken only after the first poll.
func (w *watcher) poll() {
	w.tick <- time.Time{}
	w.tick <- time.Time{}
}

func TestWatchFileChange(t *testing.T) {
	path := filepath.Join(t.TempDir(), "policy.hujson")
	writeFile(t, path, policyWithUser("alice"))
	h, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	w := startWatch(t, h, nil)
	logs := w.logs

	w.poll()
	if logs.Len() != 0 {
		t.Errorf("a poll of an unchanged file logged:\n%s", logs)
	}
	writeFile(t, path, policyWithUser("bob"))
	w.poll()
	if !admits(h, "bob") {
		t.Error("the change to bob was not applied by the next poll")
	}
	if !strings.Contains(logs.String(), `msg="policy: reloaded"`) || !strings.Contains(logs.String(), `trigger="file changed"`) {
		t.Errorf("no reload log line:\n%s", logs)
	}

	writeFile(t, path, badPolicy)
	w.poll()
	if !strings.Contains(logs.String(), `msg="policy: new policy rejected, keeping the current one"`) {
		t.Errorf("no rejection log line:\n%s", logs)
	}
	if !strings.Contains(logs.String(), `unknown action \"acept\"`) {
		t.Errorf("rejection log does not say why:\n%s", logs)
	}
	if !admits(h, "bob") {
		t.Error("bad change replaced the current policy")
	}
	// The bad file is tried once, not on every poll; nor is it logged
	// again when it changes but fails the same way.
	for range 3 {
		w.poll()
	}
	now := time.Now()
	if err := os.Chtimes(path, now, now.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	w.poll()
	if n := strings.Count(logs.String(), "rejected"); n != 1 {
		t.Errorf("rejection logged %d times after 5 polls, want 1:\n%s", n, logs)
	}

	writeFile(t, path, policyWithUser("carol"))
	w.poll()
	if !admits(h, "carol") {
		t.Error("the change to carol after a bad file was not applied by the next poll")
	}
}

// TestWatchSIGHUP drives the SIGHUP path: a change the poller cannot see
// (same size, same modification time, and a poll interval longer than
// the test) is applied when the signal arrives.
func TestWatchSIGHUP(t *testing.T) {
	path := filepath.Join(t.TempDir(), "policy.hujson")
	writeFile(t, path, policyWithUser("alice"))
	h, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	hup := make(chan os.Signal, 1)
	logs := startWatch(t, h, hup).logs

	writeFile(t, path, policyWithUser("bobby")) // same length as "alice"
	if err := os.Chtimes(path, fi.ModTime(), fi.ModTime()); err != nil {
		t.Fatal(err)
	}
	hup <- nil
	testutil.WaitFor(t, "the change to bobby", func() bool { return admits(h, "bobby") })
	logs.WaitFor(t, "trigger=SIGHUP")

	writeFile(t, path, badPolicy)
	hup <- nil
	logs.WaitFor(t, "rejected")
	if !admits(h, "bobby") {
		t.Error("bad policy replaced the current one on SIGHUP")
	}
}
