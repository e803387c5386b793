package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/reel-rec/reel/internal/asciicast"
	"github.com/reel-rec/reel/internal/evidence"
	"github.com/reel-rec/reel/internal/store"
	"github.com/reel-rec/reel/internal/store/fsstore"
	"github.com/reel-rec/reel/internal/testutil"
)

// ackStream is a v2 upload that exposes the acks it receives, which the
// real client keeps to itself.
type ackStream struct {
	pw    *io.PipeWriter
	sent  bytes.Buffer // everything written, in order
	acked atomic.Int64 // the largest ack received
	done  chan struct{}
}

func openAckStream(t testing.TB, hc *http.Client, addr string) *ackStream {
	t.Helper()
	pr, pw := io.Pipe()
	req, err := http.NewRequest("POST", "http://"+addr+"/v2/record", pr)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("POST /v2/record: %s", resp.Status)
	}
	s := &ackStream{pw: pw, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		defer resp.Body.Close()
		dec := json.NewDecoder(resp.Body)
		for {
			var f struct {
				Ack   int64
				Error string
			}
			if dec.Decode(&f) != nil || f.Error != "" {
				return
			}
			if f.Ack > s.acked.Load() {
				s.acked.Store(f.Ack)
			}
		}
	}()
	return s
}

func (s *ackStream) write(b []byte) error {
	s.sent.Write(b)
	_, err := s.pw.Write(b)
	return err
}

func h2cClient() *http.Client {
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	return &http.Client{Transport: &http.Transport{Protocols: &p}}
}

// TestKill9KeepsEveryAckedByte: 32 live v2 streams, kill -9 the recorder,
// restart it; every byte acked before the kill is in storage, and every
// file decodes as asciicast.
func TestKill9KeepsEveryAckedByte(t *testing.T) {
	dst := t.TempDir()
	p := startServe(t, dst)
	const n = 32
	streams := make([]*ackStream, n)
	for i := range streams {
		hc := h2cClient() // one connection per session, as real senders do
		defer hc.CloseIdleConnections()
		streams[i] = openAckStream(t, hc, p.addr)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	for i, s := range streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.write([]byte(fmt.Sprintf(`{"version":2,"width":80,"height":24,"timestamp":%d,"srcNode":"n%d"}`+"\n", time.Now().Unix(), i)))
			for j := 0; ctx.Err() == nil; j++ {
				line := fmt.Sprintf(`[%d.%03d,"o","stream %d line %d %s\r\n"]`+"\n", j/1000, j%1000, i, j, strings.Repeat("x", j%200))
				if j%7 == 0 {
					// Split a line across writes, so the kill can land mid-line.
					if s.write([]byte(line[:10])) != nil || s.write([]byte(line[10:])) != nil {
						return
					}
				} else if s.write([]byte(line)) != nil {
					return
				}
			}
		}()
	}
	// Kill once every stream has had bytes acked (a loaded machine may
	// take seconds), so that every stream has something to lose.
	testutil.WaitFor(t, "acks on every stream", func() bool {
		for _, s := range streams {
			if s.acked.Load() == 0 {
				return false
			}
		}
		return true
	})
	cancel()
	// Snapshot acks just before the kill; anything acked later only adds.
	acked := make([]int64, n)
	for i, s := range streams {
		acked[i] = s.acked.Load()
	}
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-p.done
	for _, s := range streams {
		s.pw.CloseWithError(io.ErrClosedPipe)
	}
	wg.Wait()
	totalAcked := int64(0)
	for _, a := range acked {
		totalAcked += a
	}
	if totalAcked == 0 {
		t.Fatal("nothing was acked: the test proves nothing")
	}

	// Restart: recovery closes out the 32 open recordings.
	p2 := startServe(t, dst)
	p2.cmd.Process.Signal(syscall.SIGTERM)
	if err := p2.wait(); err != nil {
		t.Fatalf("second reel serve: %v", err)
	}
	if n := strings.Count(serveLogs(p2), "closed out a recording interrupted by a crash"); n != 32 {
		t.Errorf("restart logged %d recoveries, want 32:\n%s", n, serveLogs(p2))
	}

	files, _ := filepath.Glob(filepath.Join(dst, "127.0.0.1", "*.cast"))
	if len(files) != n {
		t.Fatalf("%d recordings on disk, want %d", len(files), n)
	}
	byNode := map[string][]byte{}
	sealByNode := map[string]*evidence.Seal{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		tail, _ := os.ReadFile(f + ".tail")
		dec := asciicast.NewDecoder(bytes.NewReader(b))
		h, err := dec.Header()
		if err != nil {
			t.Errorf("%s: header: %v", f, err)
			continue
		}
		for {
			_, err := dec.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Errorf("%s: does not decode: %v", f, err)
				break
			}
		}
		if dec.Truncated() {
			t.Errorf("%s: ends in a partial line after recovery", f)
		}
		var st struct{ Status store.Status }
		sb, _ := os.ReadFile(f + ".status")
		if json.Unmarshal(sb, &st); st.Status != store.StatusInterrupted {
			t.Errorf("%s: status %q, want interrupted", f, st.Status)
		}
		byNode[h.SrcNode] = append(b, tail...)
		if sb, err := os.ReadFile(f + evidence.SealSuffix); err != nil {
			t.Errorf("%s: no seal after recovery: %v", f, err)
		} else if seal, err := evidence.ParseSeal(sb); err != nil {
			t.Errorf("%s: seal: %v", f, err)
		} else {
			sealByNode[h.SrcNode] = seal
		}
	}
	for i, s := range streams {
		got := byNode[fmt.Sprintf("n%d", i)]
		if int64(len(got)) < acked[i] {
			t.Errorf("stream %d: %d bytes acked but only %d stored", i, acked[i], len(got))
			continue
		}
		if !bytes.Equal(got[:acked[i]], s.sent.Bytes()[:acked[i]]) {
			t.Errorf("stream %d: stored bytes differ from sent within the acked range", i)
		}
		// The chain covers every acked byte: the seal made at the restart
		// vouches for them as acknowledged in sync rounds.
		if seal := sealByNode[fmt.Sprintf("n%d", i)]; seal != nil && (seal.Acked < acked[i] || !seal.Recovered || seal.Status != store.StatusInterrupted) {
			t.Errorf("stream %d: %d bytes acked, the seal says %d acked in sync rounds (recovered %v, %s)", i, acked[i], seal.Acked, seal.Recovered, seal.Status)
		}
	}
	// Every recording verifies, as interrupted, with the recorder's
	// public key alone.
	pub, err := localPublicKey(filepath.Join(dst, ".reel", "evidence"))
	if err != nil {
		t.Fatal(err)
	}
	ro, err := fsstore.OpenReadOnly(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	kr := evidence.Keyring{}
	kr.Add(pub)
	rep, err := evidence.Verify(t.Context(), ro, evidence.VerifyOptions{Keys: kr})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() || len(rep.Recordings) != n {
		t.Errorf("after kill -9 and restart, verify finds %d problems in %d recordings", rep.Problems(), len(rep.Recordings))
	}
	for _, r := range rep.Recordings {
		for _, p := range r.Problems {
			t.Errorf("%s: %s: %s", r.Key, p.Kind, p.Detail)
		}
		if !r.Sealed || r.Status != store.StatusInterrupted {
			t.Errorf("%s: sealed %v, status %s; want sealed, interrupted", r.Key, r.Sealed, r.Status)
		}
	}
	t.Logf("%d streams, %d bytes acked before kill -9, all present and sealed", n, totalAcked)
}
