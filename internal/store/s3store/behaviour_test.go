package s3store_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/reel-rec/reel/internal/store"
	"github.com/reel-rec/reel/internal/store/s3store"
	"github.com/reel-rec/reel/internal/store/s3store/s3test"
	"github.com/reel-rec/reel/internal/testutil"
)

var start0 = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

// lines returns n asciicast event lines of about size bytes each, after a
// header.
func lines(n, size int) []byte {
	var b bytes.Buffer
	b.WriteString(`{"version":2,"width":80,"height":24}` + "\n")
	pad := strings.Repeat("y", max(size-30, 0))
	for i := range n {
		fmt.Fprintf(&b, "[%d.5,\"o\",\"%06d %s\"]\n", i, i, pad)
	}
	return b.Bytes()
}

func mustWrite(t *testing.T, w store.Writer, p []byte) {
	t.Helper()
	for len(p) > 0 {
		n := min(len(p), 64<<10)
		if _, err := w.Write(p[:n]); err != nil {
			t.Fatalf("Write: %v", err)
		}
		p = p[n:]
	}
	if err := w.Sync(); err != nil {
		t.Fatalf("Sync: %v", err)
	}
}

// uploads lists the bucket's multipart uploads in progress.
func (e *env) uploads(t *testing.T, cfg s3store.Config) []minio.ObjectMultipartInfo {
	t.Helper()
	us, err := s3test.Uploads(t.Context(), e.client, cfg.Bucket)
	if err != nil {
		t.Fatal(err)
	}
	return us
}

func eachServer(t *testing.T, f func(t *testing.T, e *env)) {
	for _, name := range s3test.Names {
		t.Run(name, func(t *testing.T) { f(t, newEnv(t, name)) })
	}
}

// TestPartsWhileLive checks that a live recording goes up in parts of
// whole lines as they fill, before it ends.
func TestPartsWhileLive(t *testing.T) {
	eachServer(t, func(t *testing.T, e *env) {
		cfg := e.config(t)
		s := e.open(t, cfg)
		defer s.Close()
		w, err := s.Create(t.Context(), "node-1", start0)
		if err != nil {
			t.Fatal(err)
		}
		data := lines(120000, 100) // ~12 MiB: two parts while live
		mustWrite(t, w, data[:len(data)*3/4])
		testutil.WaitFor(t, "a part uploaded while live", func() bool {
			us := e.uploads(t, cfg)
			return len(us) == 1 && us[0].Size > 0
		})
		if m := s.Metrics(); m.LiveRecordings != 1 || m.SpoolBytes < int64(len(data)/2) {
			t.Errorf("Metrics while live = %+v", m)
		}
		mustWrite(t, w, data[len(data)*3/4:])
		if err := w.Close(store.StatusComplete, ""); err != nil {
			t.Fatal(err)
		}
		flush(t, s)
		got, err := e.readObject(t.Context(), cfg, w.Key())
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("object: %d bytes, %v; want %d bytes equal to what was written", len(got), err, len(data))
		}
		if us := e.uploads(t, cfg); len(us) != 0 {
			t.Errorf("multipart uploads left over: %+v", us)
		}
		if m := s.Metrics(); m.SpoolBytes != 0 || m.UploadsPending != 0 || m.Landed != 1 || m.LandedBytes != int64(len(data)) {
			t.Errorf("Metrics after landing = %+v", m)
		}
	})
}

// TestOutage stops the server in the middle of a session: Sync goes on
// succeeding from the spool, uploads retry, and everything lands when the
// server is back.
func TestOutage(t *testing.T) {
	eachServer(t, func(t *testing.T, e *env) {
		cfg := e.config(t)
		s := e.open(t, cfg)
		defer s.Close()
		w, err := s.Create(t.Context(), "node-1", start0)
		if err != nil {
			t.Fatal(err)
		}
		data := lines(150000, 80)
		third := len(data) / 3
		mustWrite(t, w, data[:third])

		e.srv.Stop()
		mustWrite(t, w, data[third:2*third]) // acked from the spool
		evID, err := s.PutEvent(t.Context(), "node-1", start0, []byte(`{"during":"outage"}`))
		if err != nil {
			t.Fatalf("PutEvent during the outage: %v", err)
		}
		w2, err := s.Create(t.Context(), "node-2", start0)
		if err != nil {
			t.Fatalf("Create during the outage: %v", err)
		}
		mustWrite(t, w2, data[:1000])
		if err := w2.Close(store.StatusComplete, ""); err != nil {
			t.Fatal(err)
		}
		mustWrite(t, w, data[2*third:])
		if err := w.Close(store.StatusComplete, ""); err != nil {
			t.Fatalf("Close during the outage: %v", err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
		if err := s.Flush(ctx); err == nil {
			t.Error("Flush succeeded with the server down")
		}
		cancel()
		testutil.WaitFor(t, "failed attempts to be counted", func() bool { m := s.Metrics(); return m.Retries > 0 && m.UploadsFailing > 0 })
		if m := s.Metrics(); m.LastError == "" || m.UploadsPending < 2 {
			t.Errorf("Metrics during the outage = %+v", m)
		}
		// Reads are served from the spool meanwhile.
		if info, err := s.Stat(t.Context(), w.Key()); err != nil || info.Size != int64(len(data)) || info.Status != store.StatusComplete {
			t.Errorf("Stat during the outage = %+v, %v", info, err)
		}

		e.srv.Restart(t)
		flush(t, s)
		for key, want := range map[string][]byte{w.Key(): data, w2.Key(): data[:1000]} {
			got, err := e.readObject(t.Context(), cfg, key)
			if err != nil || !bytes.Equal(got, want) {
				t.Errorf("object %s after the outage: %d bytes, %v; want %d", key, len(got), err, len(want))
			}
		}
		if ev, err := s.GetEvent(t.Context(), evID); err != nil || string(ev) != `{"during":"outage"}` {
			t.Errorf("event after the outage: %s, %v", ev, err)
		}
		if m := s.Metrics(); m.UploadsFailing != 0 || m.UploadsPending != 0 || m.SpoolBytes != 0 {
			t.Errorf("Metrics after the outage = %+v", m)
		}
	})
}

// TestCrashResumesUpload crashes the store with a multipart upload under
// way: the restarted store completes it (interrupted, cut at the last
// line) and leaves no upload behind.
func TestCrashResumesUpload(t *testing.T) {
	eachServer(t, func(t *testing.T, e *env) {
		cfg := e.config(t)
		s := e.open(t, cfg)
		w, err := s.Create(t.Context(), "node-1", start0)
		if err != nil {
			t.Fatal(err)
		}
		data := lines(80000, 100)
		mustWrite(t, w, data)
		testutil.WaitFor(t, "a part uploaded", func() bool { us := e.uploads(t, cfg); return len(us) == 1 && us[0].Size > 0 })
		before := e.uploads(t, cfg)[0].UploadID
		mustWrite(t, w, []byte(`[9999,"o","half a li`))
		s3store.Crash(s)

		s2 := e.open(t, cfg)
		defer s2.Close()
		infos, err := s2.Recover(t.Context())
		if err != nil || len(infos) != 1 || infos[0].Key != w.Key() || infos[0].Size != int64(len(data)) {
			t.Fatalf("Recover = %+v, %v", infos, err)
		}
		flush(t, s2)
		got, err := e.readObject(t.Context(), cfg, w.Key())
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("object: %d bytes, %v; want the %d bytes up to the last line", len(got), err, len(data))
		}
		tail, err := e.readObject(t.Context(), cfg, store.TailKey(w.Key()))
		if err != nil || string(tail) != `[9999,"o","half a li` {
			t.Errorf("tail = %q, %v", tail, err)
		}
		if us := e.uploads(t, cfg); len(us) != 0 {
			t.Errorf("uploads left over (the first was %s): %+v", before, us)
		}
		if info, err := s2.Stat(t.Context(), w.Key()); err != nil || info.Status != store.StatusInterrupted {
			t.Errorf("Stat = %+v, %v", info, err)
		}
	})
}

// TestUploadVanished aborts a recording's multipart upload behind the
// store's back: the store starts it again and the recording still lands
// whole.
func TestUploadVanished(t *testing.T) {
	e := newEnv(t, "versitygw")
	cfg := e.config(t)
	s := e.open(t, cfg)
	defer s.Close()
	w, err := s.Create(t.Context(), "node-1", start0)
	if err != nil {
		t.Fatal(err)
	}
	data := lines(150000, 100)
	mustWrite(t, w, data[:len(data)/2])
	testutil.WaitFor(t, "a part uploaded", func() bool { us := e.uploads(t, cfg); return len(us) == 1 && us[0].Size > 0 })
	u := e.uploads(t, cfg)[0]
	if err := e.client.RemoveIncompleteUpload(t.Context(), cfg.Bucket, u.Key); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, w, data[len(data)/2:])
	if err := w.Close(store.StatusComplete, ""); err != nil {
		t.Fatal(err)
	}
	flush(t, s)
	got, err := e.readObject(t.Context(), cfg, w.Key())
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("object: %d bytes, %v; want %d", len(got), err, len(data))
	}
}

// logRecorder keeps log records for tests to look at.
type logRecorder struct {
	mu   sync.Mutex
	msgs []string
}

func (l *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRecorder) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.msgs = append(l.msgs, r.Level.String()+" "+r.Message)
	return nil
}
func (l *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logRecorder) WithGroup(string) slog.Handler      { return l }
func (l *logRecorder) has(prefix string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, m := range l.msgs {
		if strings.HasPrefix(m, prefix) {
			return true
		}
	}
	return false
}

// TestSpoolLimit fills the spool while the bucket is down: a warning
// first, then new recordings are refused, then writes fail.
func TestSpoolLimit(t *testing.T) {
	e := newEnv(t, "versitygw")
	cfg := e.config(t)
	cfg.SpoolLimit = 1 << 20
	logs := &logRecorder{}
	cfg.Log = slog.New(logs)
	s := e.open(t, cfg)
	defer s.Close()
	e.srv.Stop()

	w, err := s.Create(t.Context(), "node-1", start0)
	if err != nil {
		t.Fatal(err)
	}
	line := append(bytes.Repeat([]byte("z"), 1023), '\n')
	write := func(kib int) error {
		for range kib {
			if _, err := w.Write(line); err != nil {
				return err
			}
		}
		return nil
	}
	if err := write(800); err != nil { // 78%
		t.Fatal(err)
	}
	if s.Metrics().SpoolAlarm || logs.has("WARN s3 spool") {
		t.Error("alarm before the warning level")
	}
	if err := write(20); err != nil { // 80%
		t.Fatal(err)
	}
	if !s.Metrics().SpoolAlarm || !logs.has("WARN s3 spool is filling up") {
		t.Errorf("no alarm at 80%%: metrics %+v, logs %q", s.Metrics(), logs.msgs)
	}
	if _, err := s.Create(t.Context(), "node-1", start0.Add(time.Second)); err != nil {
		t.Errorf("Create at 80%%: %v", err)
	}
	if err := write(120); err != nil { // 92%
		t.Fatal(err)
	}
	if _, err := s.Create(t.Context(), "node-1", start0.Add(2*time.Second)); !errors.Is(err, store.ErrInsufficientSpace) {
		t.Errorf("Create at 92%%: %v, want ErrInsufficientSpace", err)
	}
	if _, err := s.PutEvent(t.Context(), "node-1", start0, []byte(`{"still":"fits"}`)); err != nil {
		t.Errorf("PutEvent at 92%%: %v", err)
	}
	err = write(200)
	if !errors.Is(err, store.ErrInsufficientSpace) {
		t.Fatalf("Write past the limit: %v, want ErrInsufficientSpace", err)
	}
	if m := s.Metrics(); m.SpoolBytes > m.SpoolLimit {
		t.Errorf("spool holds %d bytes, more than its limit %d", m.SpoolBytes, m.SpoolLimit)
	}
	if err := w.Close(store.StatusFailed, err.Error()); err != nil {
		t.Fatal(err)
	}
	e.srv.Restart(t)
	flush(t, s)
	if m := s.Metrics(); m.SpoolAlarm || m.SpoolBytes != 0 {
		t.Errorf("Metrics after the bucket came back = %+v", m)
	}
	if !logs.has("INFO s3 spool is back below") {
		t.Errorf("no all-clear logged: %q", logs.msgs)
	}
	if _, err := s.Create(t.Context(), "node-1", start0.Add(3*time.Second)); err != nil {
		t.Errorf("Create after the spool drained: %v", err)
	}
}

// TestUnreachableAtOpen opens a recorder's store while the server is down:
// it starts, spools, and uploads once the server is up.
func TestUnreachableAtOpen(t *testing.T) {
	e := newEnv(t, "versitygw")
	cfg := e.config(t)
	s := e.open(t, cfg) // creates the bucket
	s.Close()
	e.srv.Stop()
	s = e.open(t, cfg)
	defer s.Close()
	w, err := s.Create(t.Context(), "node-1", start0)
	if err != nil {
		t.Fatal(err)
	}
	mustWrite(t, w, lines(10, 10))
	if err := w.Close(store.StatusComplete, ""); err != nil {
		t.Fatal(err)
	}
	e.srv.Restart(t)
	flush(t, s)
	if got, err := e.readObject(t.Context(), cfg, w.Key()); err != nil || !bytes.Equal(got, lines(10, 10)) {
		t.Errorf("object = %q, %v", got, err)
	}

	t.Run("read-only needs the bucket", func(t *testing.T) {
		e.srv.Stop()
		defer e.srv.Restart(t)
		ro := cfg
		ro.SpoolDir = ""
		if _, err := s3store.Open(t.Context(), ro); err == nil {
			t.Error("read-only Open succeeded with the server down")
		}
	})
}

func TestOpenErrors(t *testing.T) {
	e := newEnv(t, "versitygw")
	good := e.config(t)
	e.open(t, good).Close()
	tests := []struct {
		name   string
		change func(c *s3store.Config)
		want   string
	}{
		{name: "missing bucket", change: func(c *s3store.Config) { c.Bucket = "no-such-bucket"; c.CreateBucket = false }, want: "does not exist"},
		{name: "wrong secret", change: func(c *s3store.Config) { c.SecretKey = "wrong" }, want: "bucket"},
		{name: "no bucket", change: func(c *s3store.Config) { c.Bucket = "" }, want: "no bucket"},
		{name: "tiny parts", change: func(c *s3store.Config) { c.PartSize = 1 << 20 }, want: "part size"},
		{name: "spool of another bucket", change: func(c *s3store.Config) {
			c.Bucket = "reel-other"
			os.WriteFile(c.SpoolDir+"/rec/x", []byte("pending"), 0o644)
		}, want: "holds uploads for bucket"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := good
			tt.change(&cfg)
			s, err := s3store.Open(t.Context(), cfg)
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Open: %v; want it to mention %q", err, tt.want)
			}
		})
	}
}

func TestReadOnly(t *testing.T) {
	e := newEnv(t, "versitygw")
	cfg := e.config(t)
	e.open(t, cfg).Close()
	cfg.SpoolDir = ""
	s := e.open(t, cfg)
	defer s.Close()
	if _, err := s.Create(t.Context(), "node-1", start0); err == nil {
		t.Error("Create on a read-only store succeeded")
	}
	if _, err := s.PutEvent(t.Context(), "node-1", start0, []byte(`{}`)); err == nil {
		t.Error("PutEvent on a read-only store succeeded")
	}
}

// TestSendContentMD5 runs a round trip with Content-MD5 on every upload
// (as Cloudflare R2 needs), which the servers check.
func TestSendContentMD5(t *testing.T) {
	eachServer(t, func(t *testing.T, e *env) {
		cfg := e.config(t)
		cfg.SendContentMD5 = true
		s := e.open(t, cfg)
		defer s.Close()
		data := lines(70000, 100)
		w, err := s.Create(t.Context(), "node-1", start0)
		if err != nil {
			t.Fatal(err)
		}
		mustWrite(t, w, data)
		mustWrite(t, w, []byte("partial"))
		if err := w.Close(store.StatusFailed, "test"); err != nil {
			t.Fatal(err)
		}
		flush(t, s)
		if got, err := e.readObject(t.Context(), cfg, w.Key()); err != nil || !bytes.Equal(got, data) {
			t.Errorf("object: %d bytes, %v", len(got), err)
		}
		if m := s.Metrics(); m.Retries != 0 {
			t.Errorf("uploads failed: %s", m.LastError)
		}
	})
}
