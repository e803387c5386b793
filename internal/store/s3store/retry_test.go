package s3store_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reel-rec/reel/internal/store"
	"github.com/reel-rec/reel/internal/store/s3store"
	"github.com/reel-rec/reel/internal/testutil"
)

// TestUploadRetriesAreTheStores: a PUT the server refuses is tried again
// by the store's own uploader, with a fresh reader of the spool file, and
// never by the S3 client inside the same attempt. The client's retry seeks
// the body back while the HTTP transport may still be sending it from the
// refused attempt: a data race that -race caught in TestOutage.
func TestUploadRetriesAreTheStores(t *testing.T) {
	const refusals = 2
	var puts, refused atomic.Int64
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodHead && strings.Count(strings.Trim(r.URL.Path, "/"), "/") == 0:
			// The bucket exists.
		case r.Method == http.MethodHead:
			w.WriteHeader(http.StatusNotFound) // no such object yet
		case r.Method == http.MethodPut:
			puts.Add(1)
			if refused.Add(1) <= refusals {
				// Refuse early, with most of the body unread, as a busy
				// server does.
				io.CopyN(io.Discard, r.Body, 1024)
				w.Header().Set("Content-Type", "application/xml")
				w.WriteHeader(http.StatusServiceUnavailable)
				io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code><Message>busy</Message><RequestId>1</RequestId></Error>`)
				return
			}
			io.Copy(io.Discard, r.Body)
			w.Header().Set("ETag", `"0123456789abcdef0123456789abcdef"`)
		default:
			http.Error(w, "unexpected "+r.Method+" "+r.URL.String(), http.StatusNotImplemented)
			t.Errorf("unexpected request %s %s", r.Method, r.URL)
		}
	}))
	defer hs.Close()

	s, err := s3store.Open(t.Context(), s3store.Config{
		Endpoint:  hs.Listener.Addr().String(),
		Insecure:  true,
		Bucket:    "reel-test",
		Region:    "us-east-1",
		AccessKey: "reeltestaccess",
		SecretKey: "reeltestsecret",
		SpoolDir:  filepath.Join(t.TempDir(), "spool"),
		PartSize:  s3store.MinPartSize,
		RetryMin:  10 * time.Millisecond,
		RetryMax:  50 * time.Millisecond,
		Log:       testLogger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	w, err := s.Create(t.Context(), "node-1", start0)
	if err != nil {
		t.Fatal(err)
	}
	mustWrite(t, w, lines(4000, 1000)) // 4 MB: one PUT, still being sent when refused
	if err := w.Close(store.StatusComplete, ""); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), testutil.DefaultWait)
	defer cancel()
	if err := s.Flush(ctx); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	if got, retries := puts.Load(), s.Metrics().Retries; got != refusals+1 || retries != refusals {
		t.Errorf("%d PUTs and %d retries by the store for %d refusals; want %d PUTs, each refusal retried by the store",
			got, retries, refusals, refusals+1)
	}
}
