package recorder_test

import (
	"bytes"
	"context"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	"tailscale.com/sessionrecording"

	"github.com/reel-rec/reel/internal/recorder"
	"github.com/reel-rec/reel/internal/store"
	"github.com/reel-rec/reel/internal/store/fsstore"
	"github.com/reel-rec/reel/internal/testutil"
)

// smallDisk mounts a tmpfs of the given size (needs root, as in CI).
func smallDisk(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size="+size); err != nil {
		testutil.SkipOrFail(t, "cannot mount a small tmpfs (needs root, as in CI): %v", err)
	}
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
	return dir
}

// TestDiskFull: below the reserve new recordings are refused with 507 (so
// senders fail over); when the disk really fills mid-recording the sender
// gets an error frame and the file is cut at its last complete line; once
// space returns, recordings are accepted again without a restart.
func TestDiskFull(t *testing.T) {
	dir := smallDisk(t, "8m")
	st, err := fsstore.Open(dir, fsstore.Options{MinFree: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	// Leave about 2 MiB free.
	filler := filepath.Join(dir, "filler")
	free, _, _, _ := st.Space()
	if err := os.WriteFile(filler, make([]byte, free-2<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := &recorder.Server{Store: st, AckInterval: 50 * time.Millisecond, Metrics: recorder.NewMetrics(nil)}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	}()
	addr := []netip.AddrPort{netip.MustParseAddrPort(ln.Addr().String())}

	// 1. The disk fills mid-recording.
	wc, _, errc, err := sessionrecording.ConnectToRecorder(context.Background(), addr, dial)
	if err != nil {
		t.Fatalf("first recording refused with 2 MiB free: %v", err)
	}
	wc.Write(castHeader(t))
	line := eventLine(1, strings.Repeat("y", 1000))
	var writeErr error
	for i := 0; i < 4000 && writeErr == nil; i++ { // ~4 MiB: more than is free
		_, writeErr = wc.Write(line)
	}
	wc.Close()
	var upErr error
	select {
	case upErr = <-errc:
	case <-time.After(testutil.DefaultWait):
		t.Fatal("sender never told about the full disk")
	}
	if upErr == nil || !strings.Contains(upErr.Error(), "no space left") {
		t.Errorf("sender's error = %v (write error %v), want an error frame naming the full disk", upErr, writeErr)
	}
	var infos []store.Info
	for info, err := range st.List(context.Background(), store.Filter{}) {
		if err != nil {
			t.Fatal(err)
		}
		infos = append(infos, info)
	}
	if len(infos) != 1 || infos[0].Status != store.StatusFailed {
		t.Fatalf("recordings after disk full: %+v, want one failed", infos)
	}
	b, err := os.ReadFile(filepath.Join(dir, infos[0].Key))
	if err != nil {
		t.Fatal(err)
	}
	if len(b) == 0 || b[len(b)-1] != '\n' || (len(b)-len(castHeader(t)))%len(line) != 0 || !bytes.HasPrefix(b, castHeader(t)) {
		t.Errorf("stored %d bytes: not cut at a line boundary", len(b))
	}

	// 2. Below the reserve: refused up front, with a status the client
	// reports (and would fail over on).
	_, _, _, err = sessionrecording.ConnectToRecorder(context.Background(), addr, dial)
	if err == nil || !strings.Contains(err.Error(), "507") {
		t.Errorf("new recording on a full disk: err = %v, want 507 Insufficient Storage", err)
	}

	// 3. Space returns: accepted again, no restart.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if _, err := send(t, addr, castHeader(t), eventLine(1, "after")); err != nil {
		t.Errorf("recording after space returned: %v", err)
	}
	// One refusal at the v2 probe, one at the v1 upload it fell back to.
	if got := srv.Metrics.Errors("insufficient_space"); got != 2 {
		t.Errorf("insufficient_space errors = %d, want 2", got)
	}
}
