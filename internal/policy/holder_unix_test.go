//go:build unix

package policy

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/reel-rec/reel/internal/testutil"
)

// TestWatchRealSIGHUP sends the process a real SIGHUP and checks that
// Watch reloads the policy.
func TestWatchRealSIGHUP(t *testing.T) {
	// Catch SIGHUP here too, so that a signal sent before Watch has set
	// up its own handler cannot kill the test binary.
	guard := make(chan os.Signal, 16)
	signal.Notify(guard, syscall.SIGHUP)
	defer signal.Stop(guard)

	path := filepath.Join(t.TempDir(), "policy.hujson")
	writeFile(t, path, policyWithUser("alice"))
	h, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.Watch(ctx, slog.New(slog.DiscardHandler), time.Hour)
	}()
	defer func() {
		cancel()
		<-done
	}()

	writeFile(t, path, policyWithUser("bob"))
	// Watch may not have called signal.Notify yet: signal until it reloads.
	testutil.WaitFor(t, "the policy to be reloaded on SIGHUP", func() bool {
		if admits(h, "bob") {
			return true
		}
		if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		return false
	})
}
