package policy

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
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

// syncBuffer is a bytes.Buffer safe for a logger and a test to share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// eventually waits up to 10 s for cond.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// startWatch runs h.watch until the test ends.
func startWatch(t *testing.T, h *Holder, interval time.Duration, hup <-chan os.Signal) *syncBuffer {
	t.Helper()
	var logs syncBuffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.watch(ctx, log, interval, hup)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return &logs
}

func TestWatchFileChange(t *testing.T) {
	path := filepath.Join(t.TempDir(), "policy.hujson")
	writeFile(t, path, policyWithUser("alice"))
	h, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	logs := startWatch(t, h, 5*time.Millisecond, nil)

	writeFile(t, path, policyWithUser("bob"))
	eventually(t, "the change to bob", func() bool { return admits(h, "bob") })
	eventually(t, "the reload log line", func() bool {
		return strings.Contains(logs.String(), `msg="policy: reloaded"`) && strings.Contains(logs.String(), `trigger="file changed"`)
	})

	writeFile(t, path, badPolicy)
	eventually(t, "the rejection log line", func() bool {
		return strings.Contains(logs.String(), `msg="policy: new policy rejected, keeping the current one"`)
	})
	if !strings.Contains(logs.String(), `unknown action \"acept\"`) {
		t.Errorf("rejection log does not say why:\n%s", logs)
	}
	if !admits(h, "bob") {
		t.Error("bad change replaced the current policy")
	}
	// The bad file is tried once, not on every poll.
	time.Sleep(50 * time.Millisecond)
	if n := strings.Count(logs.String(), "rejected"); n != 1 {
		t.Errorf("rejection logged %d times, want 1:\n%s", n, logs)
	}

	writeFile(t, path, policyWithUser("carol"))
	eventually(t, "the change to carol after a bad file", func() bool { return admits(h, "carol") })
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
	logs := startWatch(t, h, time.Hour, hup)

	writeFile(t, path, policyWithUser("bobby")) // same length as "alice"
	if err := os.Chtimes(path, fi.ModTime(), fi.ModTime()); err != nil {
		t.Fatal(err)
	}
	hup <- nil
	eventually(t, "the change to bobby", func() bool { return admits(h, "bobby") })
	eventually(t, "the reload log line", func() bool { return strings.Contains(logs.String(), "trigger=SIGHUP") })

	writeFile(t, path, badPolicy)
	hup <- nil
	eventually(t, "the rejection log line", func() bool { return strings.Contains(logs.String(), "rejected") })
	if !admits(h, "bobby") {
		t.Error("bad policy replaced the current one on SIGHUP")
	}
}
