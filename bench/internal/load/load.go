// Package load holds what reel's load tools share: the recording they
// upload, split into lines once (senders write one event line per write,
// as Tailscale's do, without scanning for newlines on the hot path); the
// loops that upload it with Tailscale's client, hold idle sessions and wait
// for a server; one definition of the median and percentiles; and small
// helpers for ports and process memory.
package load

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"tailscale.com/sessionrecording"

	"github.com/reel-rec/reel/internal/testutil"
)

// Header is the first line of every generated recording.
const Header = `{"version":2,"width":200,"height":50,"timestamp":1700000000,"srcNode":"bench","srcNodeID":"nBENCH","sshUser":"alice","localUser":"root","connectionID":"c","env":{"TERM":"xterm"}}` + "\n"

// Lines builds one recording of about mib MiB: the header, then output
// events of 40 to 4,040 random letters with some newlines, each line ending
// in '\n'. The same seed gives the same recording.
func Lines(mib int, seed uint64) [][]byte {
	r := rand.New(rand.NewPCG(seed, 1))
	lines := [][]byte{[]byte(Header)}
	size, at := len(Header), 0.0
	for size < mib<<20 {
		at += r.Float64() / 100
		text := make([]byte, 40+r.IntN(4000))
		for i := range text {
			text[i] = 'a' + byte(r.IntN(26))
			if r.IntN(60) == 0 {
				text[i] = '\n'
			}
		}
		ev, _ := json.Marshal([]any{float64(int(at*1e6)) / 1e6, "o", string(text)})
		lines = append(lines, append(ev, '\n'))
		size += len(ev) + 1
	}
	return lines
}

// Size is the total length of lines.
func Size(lines [][]byte) int {
	n := 0
	for _, l := range lines {
		n += len(l)
	}
	return n
}

// FreeAddr returns a loopback address nobody listens on right now.
func FreeAddr() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// Dial is a plain TCP dialer in the shape sessionrecording wants.
func Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, network, addr)
}

// DialFunc dials a recorder: a plain TCP dialer (Dial) or a tailnet node's.
type DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error)

// WaitListen waits until something accepts TCP connections on addr. It
// gives up when exited (if not nil) is closed first, or after a minute.
func WaitListen(addr string, exited <-chan struct{}) error {
	gone := false
	err := testutil.Poll(time.Minute, func() bool {
		select {
		case <-exited:
			gone = true
			return true
		default:
		}
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	if gone {
		return fmt.Errorf("the server for %s exited", addr)
	}
	if err != nil {
		return fmt.Errorf("nothing listens on %s: %w", addr, err)
	}
	return nil
}

// WaitUntil calls cond every few milliseconds until it holds, or fails
// after d.
func WaitUntil(d time.Duration, cond func() bool) error { return testutil.Poll(d, cond) }

// Send uploads every body at once with Tailscale's client
// (tailscale.com/sessionrecording, v2 with durable acks) through dial,
// writing one event line per write as Tailscale's senders do, and waits
// until the recorder has confirmed each upload.
func Send(ap netip.AddrPort, dial DialFunc, bodies [][][]byte) error {
	errs := make(chan error, len(bodies))
	for _, body := range bodies {
		go func() {
			wc, _, errc, err := sessionrecording.ConnectToRecorder(context.Background(), []netip.AddrPort{ap}, dial)
			if err != nil {
				errs <- err
				return
			}
			for _, line := range body {
				if _, err := wc.Write(line); err != nil {
					errs <- err
					return
				}
			}
			wc.Close()
			errs <- <-errc
		}()
	}
	var first error
	for range bodies {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return first
}

// Idle is a set of idle v2 sessions held open by HoldIdle.
type Idle struct {
	mu       sync.Mutex
	sessions []*idleSession
	wg       sync.WaitGroup
}

type idleSession struct {
	pw     *io.PipeWriter
	worst  time.Duration // the longest gap between two ack frames
	frames int
	ended  error // why the session ended early, if it did
}

// HoldIdle opens n v2 uploads to the recorder at ap (through dial) that
// send a header and then nothing, as an idle SSH session does, and
// watches the ack frames each receives until Close.
func HoldIdle(ap netip.AddrPort, dial DialFunc, n int) (*Idle, error) {
	id := &Idle{}
	for i := range n {
		s := &idleSession{}
		var p http.Protocols
		p.SetUnencryptedHTTP2(true)
		hc := &http.Client{Transport: &http.Transport{Protocols: &p, DialContext: dial}}
		pr, pw := io.Pipe()
		s.pw = pw
		req, _ := http.NewRequest("POST", "http://"+ap.String()+"/v2/record", pr)
		resp, err := hc.Do(req)
		if err == nil && resp.StatusCode != http.StatusOK {
			err = fmt.Errorf("%s", resp.Status)
		}
		if err != nil {
			id.Close()
			return nil, fmt.Errorf("session %d: %w", i, err)
		}
		go pw.Write(fmt.Appendf(nil, `{"version":2,"width":80,"height":24,"timestamp":%d}`+"\n", time.Now().Unix()))
		id.mu.Lock()
		id.sessions = append(id.sessions, s)
		id.mu.Unlock()
		id.wg.Go(func() { id.watch(s, resp.Body) })
	}
	return id, nil
}

// watch reads a session's ack frames until it ends.
func (id *Idle) watch(s *idleSession, body io.ReadCloser) {
	defer body.Close()
	br := bufio.NewReader(body)
	last := time.Now()
	for {
		line, err := br.ReadBytes('\n')
		now := time.Now()
		id.mu.Lock()
		if err == nil && strings.Contains(string(line), "error") {
			err = fmt.Errorf("error frame: %s", line)
		}
		if err != nil {
			s.ended = err
			id.mu.Unlock()
			return
		}
		if gap := now.Sub(last); gap > s.worst && s.frames > 0 {
			s.worst = gap
		}
		s.frames++
		id.mu.Unlock()
		last = now
	}
}

// Worst returns the longest gap between two ack frames any session has
// seen so far, and how many sessions have ended.
func (id *Idle) Worst() (worst time.Duration, ended int) {
	id.mu.Lock()
	defer id.mu.Unlock()
	for _, s := range id.sessions {
		worst = max(worst, s.worst)
		if s.ended != nil {
			ended++
		}
	}
	return worst, ended
}

// Close ends every session normally and waits for them.
func (id *Idle) Close() {
	id.mu.Lock()
	for _, s := range id.sessions {
		s.pw.Close()
	}
	id.mu.Unlock()
	id.wg.Wait()
}

// Median of v: the middle value, or the mean of the two middle values for
// an even count. v is not changed.
func Median[T ~int64 | ~float64](v []T) T {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// Percentile of v by the nearest-rank method: the smallest value that at
// least fraction p (0 < p <= 1) of the values are at or below. v is not
// changed.
func Percentile[T cmp.Ordered](v []T, p float64) T {
	s := slices.Clone(v)
	slices.Sort(s)
	rank := int(math.Ceil(p*float64(len(s)) - 1e-9)) // 1-based; 1e-9 absorbs 0.99*3000 = 2970.0000000000005
	return s[max(0, min(rank-1, len(s)-1))]
}

// RSS is a process's resident set size in bytes, from /proc.
func RSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.Fields(v)[0], 10, 64)
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("no VmRSS for pid %d", pid)
}
