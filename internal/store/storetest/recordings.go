package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/reel-rec/reel/internal/store"
)

func (s *suite) testRoundTrip(t *testing.T) {
	big := castLines(s.h.BigSize/100+1, 100)
	binary := []byte("{\"version\":2}\n\x00\xff\xfe not json at all\r\n\x1b[31m")
	tests := []struct {
		name   string
		data   []byte
		chunk  int
		syncN  int // Sync after every syncN writes; 0 only at Close
		status store.Status
		reason string
	}{
		{name: "empty", status: store.StatusComplete},
		{name: "one line", data: castLines(0, 0), chunk: 1 << 20, status: store.StatusComplete},
		{name: "no trailing newline", data: castLines(3, 50)[:150], chunk: 10, status: store.StatusComplete},
		{name: "many small writes", data: castLines(2000, 60), chunk: 7, syncN: 100, status: store.StatusComplete},
		{name: "multi-MiB", data: big, chunk: 32 << 10, syncN: 16, status: store.StatusComplete},
		{name: "malformed bytes kept", data: binary, chunk: 3, syncN: 1, status: store.StatusMalformed, reason: "line 2: not JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := s.newStore(t)
			w := create(t, st, "node-1", base)
			p := tt.data
			for i := 0; len(p) > 0; i++ {
				n := min(tt.chunk, len(p))
				write(t, w, p[:n], n)
				p = p[n:]
				if tt.syncN > 0 && i%tt.syncN == 0 {
					syncW(t, w)
				}
			}
			closeW(t, w, tt.status, tt.reason)

			if got := readAll(t, st, w.Key()); !bytes.Equal(got, tt.data) {
				t.Errorf("Open(%q) after Close: %s", w.Key(), firstDiff(got, tt.data))
			}
			want := store.Info{Key: w.Key(), Node: "node-1", Sender: "node-1", Start: base, Size: int64(len(tt.data)), Status: tt.status, Reason: tt.reason}
			if diff := cmp.Diff(want, stat(t, st, w.Key())); diff != "" {
				t.Errorf("Stat mismatch (-want +got):\n%s", diff)
			}
			raw, err := s.h.ReadRaw(t, st, w.Key())
			if err != nil {
				t.Fatalf("ReadRaw(%q): %v", w.Key(), err)
			}
			if !bytes.Equal(raw, tt.data) {
				t.Errorf("stored bytes: %s", firstDiff(raw, tt.data))
			}
			if _, err := s.h.ReadRaw(t, st, store.TailKey(w.Key())); !isNotFound(err) {
				t.Errorf("ReadRaw(tail) of a %s recording: err = %v, want ErrNotFound", tt.status, err)
			}
		})
	}
}

func (s *suite) testReader(t *testing.T) {
	st := s.newStore(t)
	data := castLines(500, 80)
	w := create(t, st, "node-1", base)
	write(t, w, data, 4096)
	closeW(t, w, store.StatusComplete, "")

	r, err := st.Open(ctxT(t), w.Key())
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.Size() != int64(len(data)) {
		t.Fatalf("Size() = %d, want %d", r.Size(), len(data))
	}

	t.Run("ReadAt", func(t *testing.T) {
		tests := []struct {
			name    string
			off, n  int
			wantN   int
			wantEOF bool
		}{
			{name: "start", off: 0, n: 100, wantN: 100},
			{name: "middle", off: 12345, n: 4000, wantN: 4000},
			{name: "up to end", off: len(data) - 10, n: 10, wantN: 10},
			{name: "past end", off: len(data) - 10, n: 20, wantN: 10, wantEOF: true},
			{name: "at end", off: len(data), n: 5, wantN: 0, wantEOF: true},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				buf := make([]byte, tt.n)
				n, err := r.ReadAt(buf, int64(tt.off))
				if n != tt.wantN {
					t.Errorf("ReadAt(%d bytes at %d) = %d bytes, want %d", tt.n, tt.off, n, tt.wantN)
				}
				if tt.wantEOF != errors.Is(err, io.EOF) || (!tt.wantEOF && err != nil) {
					t.Errorf("ReadAt(%d bytes at %d): err = %v, want EOF: %v", tt.n, tt.off, err, tt.wantEOF)
				}
				if !bytes.Equal(buf[:n], data[tt.off:tt.off+n]) {
					t.Errorf("ReadAt(%d bytes at %d): %s", tt.n, tt.off, firstDiff(buf[:n], data[tt.off:tt.off+n]))
				}
			})
		}
	})

	t.Run("Seek", func(t *testing.T) {
		tests := []struct {
			name   string
			off    int64
			whence int
			want   int64 // resulting position
		}{
			{name: "start", off: 1000, whence: io.SeekStart, want: 1000},
			{name: "current", off: 500, whence: io.SeekCurrent, want: 1500},
			{name: "end", off: -300, whence: io.SeekEnd, want: int64(len(data)) - 300},
			{name: "back to start", off: 0, whence: io.SeekStart, want: 0},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				pos, err := r.Seek(tt.off, tt.whence)
				if err != nil || pos != tt.want {
					t.Fatalf("Seek(%d, %d) = %d, %v; want %d", tt.off, tt.whence, pos, err, tt.want)
				}
				buf := make([]byte, 200)
				n, err := io.ReadFull(r, buf)
				if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
					t.Fatalf("Read after Seek: %v", err)
				}
				if want := data[pos:min(int(pos)+200, len(data))]; !bytes.Equal(buf[:n], want) {
					t.Errorf("Read after Seek: %s", firstDiff(buf[:n], want))
				}
				// Leave the position where the next case expects it.
				if _, err := r.Seek(pos, io.SeekStart); err != nil {
					t.Fatal(err)
				}
			})
		}
	})
}

func (s *suite) testKeyFormat(t *testing.T) {
	est := time.FixedZone("EST", -5*3600)
	tests := []struct {
		name   string
		sender string
		start  time.Time
	}{
		{name: "stable id", sender: "nodeid-abc123CNTRL", start: base},
		{name: "ipv4", sender: "100.64.0.1", start: base},
		{name: "dns name", sender: "host.tailnet-1234.ts.net", start: base},
		{name: "ipv6", sender: "fd7a:115c:a1e0::1", start: base},
		{name: "ipv6 made safe before", sender: store.SafeNode("fd7a:115c:a1e0::1"), start: base},
		{name: "uri", sender: "spiffe://example.org/ns/prod/sa/bastion", start: base},
		{name: "underscore", sender: "A_b-C.d", start: base},
		{name: "whole second", sender: "n1", start: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)},
		{name: "other zone", sender: "n1", start: base.In(est)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := s.newStore(t)
			w := create(t, st, tt.sender, tt.start)
			defer closeW(t, w, store.StatusComplete, "")
			wantNode := store.SafeNode(tt.sender)
			if want := store.RecordingKey(wantNode, tt.start); w.Key() != want {
				t.Errorf("Key() = %q, want %q", w.Key(), want)
			}
			node, start, err := store.ParseKey(w.Key())
			if err != nil {
				t.Fatalf("ParseKey(%q): %v", w.Key(), err)
			}
			if node != wantNode || !start.Equal(tt.start) {
				t.Errorf("ParseKey(%q) = %q, %v; want %q, %v", w.Key(), node, start, wantNode, tt.start)
			}
			for _, c := range w.Key() {
				if !strings.ContainsRune("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-/", c) {
					t.Errorf("Key() %q has byte %q outside [A-Za-z0-9._-/]", w.Key(), c)
				}
			}
		})
	}
}

// testSenders: distinct sender identities, however alike once made
// path-safe, get distinct nodes; each identity is kept, byte for byte,
// and shown by Stat, List and Recover, also after a restart and to a
// reader.
func (s *suite) testSenders(t *testing.T) {
	long := strings.Repeat("a", 128)
	senders := []string{
		"a b", "a/b", "a\x00b", "a-b", "a_b", // alike once made safe
		"-rf", "--help", "-", ".hidden", "..", "../../etc", "/", // not a flag, not a path
		long + "x", long + "y", long, long + long, // cut to a shared prefix
		"fd7a:115c:a1e0::1", "::1", "--1", // an IPv6 address, and what old versions made of "::1"
		"spiffe://example.org/ns/prod/sa/bastion",
		"CN=alice,O=Example", "émile", "\xff\xfe", "tab\there", strings.Repeat("é", store.MaxSenderLen/2),
		"plain-node.example.com", "a_bcdefghijklmnopq", // safe: kept as they are
	}
	st := s.newStoreNoClose(t)
	want := map[string]string{}  // key -> sender
	nodes := map[string]string{} // node -> sender
	var live []store.Writer
	for i, sender := range senders {
		w := create(t, st, sender, base)
		node, _, err := store.ParseKey(w.Key())
		if err != nil {
			t.Fatalf("Create(%q): key %q: %v", sender, w.Key(), err)
		}
		if node != store.SafeNode(sender) {
			t.Errorf("Create(%q): node %q, want SafeNode's %q", sender, node, store.SafeNode(sender))
		}
		if other, dup := nodes[node]; dup {
			t.Errorf("senders %q and %q share node %q", other, sender, node)
		}
		nodes[node] = sender
		if node[0] == '-' || node[0] == '.' {
			t.Errorf("Create(%q): node %q starts with %q", sender, node, node[0])
		}
		write(t, w, castLines(1, 10), 100)
		if i%3 == 0 {
			syncW(t, w)
			live = append(live, w) // left live for Recover
		} else {
			closeW(t, w, store.StatusComplete, "")
		}
		want[w.Key()] = sender
		if _, err := st.PutEvent(ctxT(t), sender, base, []byte(`{"type":"x"}`)); err != nil {
			t.Errorf("PutEvent(%q): %v", sender, err)
		}
	}
	senderOf := func(infos []store.Info) map[string]string {
		got := map[string]string{}
		for _, info := range infos {
			got[info.Key] = info.Sender
			if info.Node != store.SafeNode(info.Sender) && info.Node != info.Sender {
				t.Errorf("%s: node %q is not SafeNode(%q)", info.Key, info.Node, info.Sender)
			}
		}
		return got
	}
	statAll := func(st store.Store) map[string]string {
		got := map[string]string{}
		for key := range want {
			got[key] = stat(t, st, key).Sender
		}
		return got
	}
	check := func(what string, st store.Store) {
		t.Helper()
		if diff := cmp.Diff(want, senderOf(list(t, st, store.Filter{}))); diff != "" {
			t.Errorf("%s: List's senders (-want +got):\n%s", what, diff)
		}
		if diff := cmp.Diff(want, statAll(st)); diff != "" {
			t.Errorf("%s: Stat's senders (-want +got):\n%s", what, diff)
		}
		for node, sender := range nodes {
			if evs := listEvents(t, st, node, time.Time{}, time.Time{}); len(evs) != 1 {
				t.Errorf("%s: ListEvents(%q) (of sender %q) = %d events, want 1", what, node, sender, len(evs))
			}
		}
	}
	check("live", st)

	st2 := s.crash(t, st)
	infos, err := st2.Recover(ctxT(t))
	if err != nil {
		t.Fatalf("Recover: %v", err)
	}
	wantRecovered := map[string]string{}
	for _, w := range live {
		wantRecovered[w.Key()] = want[w.Key()]
	}
	if diff := cmp.Diff(wantRecovered, senderOf(infos)); diff != "" {
		t.Errorf("Recover's senders (-want +got):\n%s", diff)
	}
	check("after a restart", st2)

	// Another recording of an identity already known lands beside the
	// first; the kept identity is not confused.
	w := create(t, st2, "a/b", base.Add(time.Second))
	closeW(t, w, store.StatusComplete, "")
	want[w.Key()] = "a/b"
	check("a second recording", st2)

	if s.h.Reader != nil {
		r := s.h.Reader(t, st2)
		defer r.Close()
		check("reader", r)
	}
}

func (s *suite) testConcurrentCreate(t *testing.T) {
	const n = 50
	st := s.newStore(t)
	ws := make([]store.Writer, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { ws[i], errs[i] = st.Create(ctxT(t), "busy-node", base) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("Create: %v", err)
	}
	keys := map[string]int{}
	for i, w := range ws {
		if j, dup := keys[w.Key()]; dup {
			t.Errorf("writers %d and %d share key %q", j, i, w.Key())
		}
		keys[w.Key()] = i
		node, start, err := store.ParseKey(w.Key())
		if err != nil {
			t.Errorf("ParseKey(%q): %v", w.Key(), err)
			continue
		}
		if node != "busy-node" || start.Before(base) || start.After(base.Add(time.Second)) {
			t.Errorf("key %q: node %q start %v; want busy-node, within a second after %v", w.Key(), node, start, base)
		}
	}
	// Each writer's bytes land in its own recording.
	for i, w := range ws {
		wg.Go(func() {
			if _, err := fmt.Fprintf(w, "{\"version\":2,\"writer\":%d}\n", i); err != nil {
				errs[i] = err
				return
			}
			errs[i] = w.Close(store.StatusComplete, "")
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("write/Close: %v", err)
	}
	for i, w := range ws {
		if got, want := string(readAll(t, st, w.Key())), fmt.Sprintf("{\"version\":2,\"writer\":%d}\n", i); got != want {
			t.Errorf("%s holds %q, want %q", w.Key(), got, want)
		}
	}
	var wantKeys []string
	for k := range keys {
		wantKeys = append(wantKeys, k)
	}
	slices.Sort(wantKeys)
	if diff := cmp.Diff(wantKeys, infoKeys(list(t, st, store.Filter{Node: "busy-node"}))); diff != "" {
		t.Errorf("List keys (-want +got):\n%s", diff)
	}
}

func (s *suite) testConcurrentWriters(t *testing.T) {
	const n = 8
	st := s.newStore(t)
	datas := make([][]byte, n)
	ws := make([]store.Writer, n)
	for i := range n {
		datas[i] = castLines(3000+i*100, 40+i)
		ws[i] = create(t, st, fmt.Sprintf("node-%d", i%3), base.Add(time.Duration(i)*time.Millisecond))
	}
	errs := make([]error, 2*n)
	var wg sync.WaitGroup
	for i := range n {
		done := make(chan struct{})
		// wrote holds a token while there are bytes to sync.
		wrote := make(chan struct{}, 1)
		wg.Go(func() { // the writing goroutine
			defer close(done)
			p := datas[i]
			for len(p) > 0 {
				k := min(len(p), 1+rand.IntN(700))
				if _, err := ws[i].Write(p[:k]); err != nil {
					errs[i] = err
					return
				}
				p = p[k:]
				select {
				case wrote <- struct{}{}:
				default:
				}
			}
		})
		wg.Go(func() { // the syncing goroutine, as the recorder runs it: syncs while writes go on
			for {
				select {
				case <-done:
					return
				case <-wrote:
				}
				if err := ws[i].Sync(); err != nil {
					errs[n+i] = err
					return
				}
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	for i, w := range ws {
		closeW(t, w, store.StatusComplete, "")
		if got := readAll(t, st, w.Key()); !bytes.Equal(got, datas[i]) {
			t.Errorf("writer %d (%s): %s", i, w.Key(), firstDiff(got, datas[i]))
		}
	}
}

func infoKeys(infos []store.Info) []string {
	keys := []string{}
	for _, info := range infos {
		keys = append(keys, info.Key)
	}
	return keys
}

func (s *suite) testList(t *testing.T) {
	st := s.newStore(t)
	nodes := []string{"gamma", "alpha", "beta"}
	type made struct {
		node  string
		start time.Time
	}
	var todo []made
	for _, node := range nodes {
		for i := range 5 {
			todo = append(todo, made{node, base.Add(time.Duration(i) * time.Minute)})
		}
	}
	rand.Shuffle(len(todo), func(i, j int) { todo[i], todo[j] = todo[j], todo[i] })
	infos := map[string]store.Info{}
	var live store.Writer
	for i, m := range todo {
		w := create(t, st, m.node, m.start)
		data := castLines(i, 30)
		write(t, w, data, 100)
		info := store.Info{Key: w.Key(), Node: m.node, Sender: m.node, Start: m.start, Size: int64(len(data)), Status: store.StatusComplete}
		if m.node == "beta" && m.start.Equal(base.Add(2*time.Minute)) {
			syncW(t, w)
			live = w
			info.Status = store.StatusLive
		} else {
			closeW(t, w, store.StatusComplete, "")
		}
		infos[w.Key()] = info
	}
	defer closeW(t, live, store.StatusComplete, "")

	want := func(node string, since, until time.Time) []store.Info {
		out := []store.Info{}
		for _, info := range infos {
			if (node == "" || info.Node == node) && !info.Start.Before(since) && (until.IsZero() || info.Start.Before(until)) {
				out = append(out, info)
			}
		}
		slices.SortFunc(out, func(a, b store.Info) int { return strings.Compare(a.Key, b.Key) })
		return out
	}
	tests := []struct {
		name string
		f    store.Filter
	}{
		{name: "all", f: store.Filter{}},
		{name: "node", f: store.Filter{Node: "beta"}},
		{name: "since is inclusive", f: store.Filter{Since: base.Add(2 * time.Minute)}},
		{name: "until is exclusive", f: store.Filter{Until: base.Add(2 * time.Minute)}},
		{name: "window", f: store.Filter{Since: base.Add(time.Minute), Until: base.Add(3 * time.Minute)}},
		{name: "node and window", f: store.Filter{Node: "alpha", Since: base.Add(time.Minute), Until: base.Add(3 * time.Minute)}},
		{name: "between starts", f: store.Filter{Since: base.Add(90 * time.Second), Until: base.Add(150 * time.Second)}},
		{name: "after all", f: store.Filter{Since: base.Add(time.Hour)}},
		{name: "empty window", f: store.Filter{Since: base.Add(time.Minute), Until: base.Add(time.Minute)}},
		{name: "unknown node", f: store.Filter{Node: "delta"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := list(t, st, tt.f)
			if diff := cmp.Diff(want(tt.f.Node, tt.f.Since, tt.f.Until), append([]store.Info{}, got...)); diff != "" {
				t.Errorf("List(%+v) (-want +got):\n%s", tt.f, diff)
			}
		})
	}
	t.Run("Stat agrees", func(t *testing.T) {
		for key, info := range infos {
			if diff := cmp.Diff(info, stat(t, st, key)); diff != "" {
				t.Errorf("Stat(%q) (-want +got):\n%s", key, diff)
			}
		}
	})
	t.Run("stop early", func(t *testing.T) {
		n := 0
		for _, err := range st.List(ctxT(t), store.Filter{}) {
			if err != nil {
				t.Fatal(err)
			}
			n++
			if n == 3 {
				break
			}
		}
		if n != 3 {
			t.Errorf("List yielded %d before break, want 3", n)
		}
	})
}

// cutTail returns the part of data up to its last '\n' and the rest.
func cutTail(data []byte) (main, tail []byte) {
	i := bytes.LastIndexByte(data, '\n')
	return data[:i+1], data[i+1:]
}

func (s *suite) testStatuses(t *testing.T) {
	lines := castLines(20, 50)
	partial := append(slices.Clip(lines), `[9.5,"o","half a li`...)
	tests := []struct {
		name     string
		data     []byte
		status   store.Status
		reason   string
		wantMain []byte
		wantTail []byte // nil: no tail stored
	}{
		{name: "complete keeps a partial last line", data: partial, status: store.StatusComplete, wantMain: partial},
		{name: "malformed kept byte for byte", data: []byte("garbage\x00\xff no newline"), status: store.StatusMalformed, reason: "header: not JSON", wantMain: []byte("garbage\x00\xff no newline")},
		{name: "failed cut at last line", data: partial, status: store.StatusFailed, reason: "disk full", wantMain: lines, wantTail: partial[len(lines):]},
		{name: "interrupted cut at last line", data: partial, status: store.StatusInterrupted, reason: "connection reset", wantMain: lines, wantTail: partial[len(lines):]},
		{name: "failed on a line end needs no cut", data: lines, status: store.StatusFailed, reason: "sender gone", wantMain: lines},
		{name: "interrupted without any newline", data: []byte(`{"version":2,"wid`), status: store.StatusInterrupted, reason: "eof", wantMain: []byte{}, wantTail: []byte(`{"version":2,"wid`)},
		{name: "failed empty", data: nil, status: store.StatusFailed, reason: "no space", wantMain: []byte{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := s.newStore(t)
			w := create(t, st, "node-1", base)
			write(t, w, tt.data, 33)
			closeW(t, w, tt.status, tt.reason)

			want := store.Info{Key: w.Key(), Node: "node-1", Sender: "node-1", Start: base, Size: int64(len(tt.wantMain)), Status: tt.status, Reason: tt.reason}
			if diff := cmp.Diff(want, stat(t, st, w.Key())); diff != "" {
				t.Errorf("Stat (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff([]store.Info{want}, list(t, st, store.Filter{})); diff != "" {
				t.Errorf("List (-want +got):\n%s", diff)
			}
			if got := readAll(t, st, w.Key()); !bytes.Equal(got, tt.wantMain) {
				t.Errorf("stored recording: %s", firstDiff(got, tt.wantMain))
			}
			if raw, err := s.h.ReadRaw(t, st, w.Key()); err != nil || !bytes.Equal(raw, tt.wantMain) {
				t.Errorf("ReadRaw(%q) = %s, %v", w.Key(), firstDiff(raw, tt.wantMain), err)
			}
			tail, err := s.h.ReadRaw(t, st, store.TailKey(w.Key()))
			switch {
			case tt.wantTail == nil && !isNotFound(err):
				t.Errorf("ReadRaw(tail) = %q, %v; want ErrNotFound", tail, err)
			case tt.wantTail != nil && (err != nil || !bytes.Equal(tail, tt.wantTail)):
				t.Errorf("ReadRaw(tail) = %q, %v; want %q", tail, err, tt.wantTail)
			}
		})
	}
}

func (s *suite) testLive(t *testing.T) {
	st := s.newStore(t)
	data := castLines(300, 70)
	first, second := data[:len(data)/3], data[len(data)/3:]
	w := create(t, st, "node-1", base)
	write(t, w, first, 999)
	syncW(t, w)

	want := store.Info{Key: w.Key(), Node: "node-1", Sender: "node-1", Start: base, Size: int64(len(first)), Status: store.StatusLive}
	if diff := cmp.Diff(want, stat(t, st, w.Key())); diff != "" {
		t.Errorf("Stat of a live recording (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]store.Info{want}, list(t, st, store.Filter{})); diff != "" {
		t.Errorf("List with a live recording (-want +got):\n%s", diff)
	}
	early, err := st.Open(ctxT(t), w.Key())
	if err != nil {
		t.Fatalf("Open of a live recording: %v", err)
	}
	defer early.Close()
	if got, err := io.ReadAll(early); err != nil || !bytes.Equal(got, first) {
		t.Errorf("read live recording: %s, %v", firstDiff(got, first), err)
	}
	if early.Size() != int64(len(first)) {
		t.Errorf("live reader Size() = %d, want %d", early.Size(), len(first))
	}

	write(t, w, second, 999)
	syncW(t, w)
	if got := readAll(t, st, w.Key()); !bytes.Equal(got, data) {
		t.Errorf("reopened live recording: %s", firstDiff(got, data))
	}
	if got := stat(t, st, w.Key()); got.Size != int64(len(data)) || got.Status != store.StatusLive {
		t.Errorf("Stat after more writes: size %d status %s, want %d live", got.Size, got.Status, len(data))
	}
	closeW(t, w, store.StatusComplete, "")
	want.Size, want.Status = int64(len(data)), store.StatusComplete
	if diff := cmp.Diff(want, stat(t, st, w.Key())); diff != "" {
		t.Errorf("Stat after Close (-want +got):\n%s", diff)
	}
	if got := readAll(t, st, w.Key()); !bytes.Equal(got, data) {
		t.Errorf("closed recording: %s", firstDiff(got, data))
	}
}

func (s *suite) testNotFound(t *testing.T) {
	st := s.newStore(t)
	w := create(t, st, "node-1", base)
	write(t, w, castLines(1, 10), 100)
	closeW(t, w, store.StatusComplete, "")

	missing := []string{
		store.RecordingKey("node-1", base.Add(time.Nanosecond)), // a neighbour of one that exists
		store.RecordingKey("node-2", base),                      // a node with nothing
	}
	for _, key := range missing {
		t.Run(key, func(t *testing.T) {
			if _, err := st.Open(ctxT(t), key); !isNotFound(err) {
				t.Errorf("Open(%q): err = %v, want ErrNotFound", key, err)
			}
			if _, err := st.Stat(ctxT(t), key); !isNotFound(err) {
				t.Errorf("Stat(%q): err = %v, want ErrNotFound", key, err)
			}
		})
	}
	t.Run("events of an unknown node", func(t *testing.T) {
		for ev, err := range st.ListEvents(ctxT(t), "node-2", time.Time{}, time.Time{}) {
			t.Errorf("ListEvents(node-2) yielded %+v, %v; want nothing", ev, err)
		}
	})
	t.Run("bad event ids", func(t *testing.T) {
		for _, id := range []string{"", "nope", "../../etc/passwd", "node-1/events/x.jsonl:0", "/etc/passwd:0"} {
			if _, err := st.GetEvent(ctxT(t), id); !isNotFound(err) && !errors.Is(err, store.ErrInvalidKey) {
				t.Errorf("GetEvent(%q): err = %v, want ErrNotFound or ErrInvalidKey", id, err)
			}
		}
	})
}

func (s *suite) testInvalidKeys(t *testing.T) {
	st := s.newStore(t)
	// A real recording, so that traversal attempts have something to reach.
	w := create(t, st, "node-1", base)
	write(t, w, castLines(1, 10), 100)
	closeW(t, w, store.StatusComplete, "")
	name := store.RecordingName(base)

	keys := []string{
		"",
		name,
		"../x/y.cast",
		"a/../../b.cast",
		"node-1/../node-1/" + name,
		"node-1/./" + name,
		"node-1//" + name,
		"./node-1/" + name,
		"/node-1/" + name,
		"/etc/passwd",
		"../../etc/passwd",
		"../" + name,
		"../node-1/" + name,
		"..",
		"node-1/..",
		"a/b/" + name,
		"node-1/" + name + ".tail",
		"node-1/" + name + ".status",
		"node-1/x.cast",
		".hidden/" + name,
		"no de/" + name,
		"node-1\\..\\" + name,
		"node-1/" + name + "\x00",
		"node-1/" + strings.TrimSuffix(name, ".cast"),
	}
	for _, key := range keys {
		t.Run(fmt.Sprintf("key %q", key), func(t *testing.T) {
			if r, err := st.Open(ctxT(t), key); !errors.Is(err, store.ErrInvalidKey) {
				if err == nil {
					r.Close()
				}
				t.Errorf("Open(%q): err = %v, want ErrInvalidKey", key, err)
			}
			if _, err := st.Stat(ctxT(t), key); !errors.Is(err, store.ErrInvalidKey) {
				t.Errorf("Stat(%q): err = %v, want ErrInvalidKey", key, err)
			}
		})
	}

	for _, sender := range []string{"", strings.Repeat("a", store.MaxSenderLen+1)} {
		t.Run(fmt.Sprintf("sender of %d bytes", len(sender)), func(t *testing.T) {
			if w, err := st.Create(ctxT(t), sender, base); !errors.Is(err, store.ErrInvalidKey) {
				if err == nil {
					w.Close(store.StatusFailed, "test")
				}
				t.Errorf("Create: err = %v, want ErrInvalidKey", err)
			}
			if _, err := st.PutEvent(ctxT(t), sender, base, []byte(`{}`)); !errors.Is(err, store.ErrInvalidKey) {
				t.Errorf("PutEvent: err = %v, want ErrInvalidKey", err)
			}
		})
	}

	nodes := []string{"", ".", "..", "../x", "a/b", "/abs", ".hidden", "a b", "x\x00", "n\\..", strings.Repeat("a", 200)}
	for _, node := range nodes {
		t.Run(fmt.Sprintf("node %q", node), func(t *testing.T) {
			n := 0
			for ev, err := range st.ListEvents(ctxT(t), node, time.Time{}, time.Time{}) {
				n++
				if !errors.Is(err, store.ErrInvalidKey) {
					t.Errorf("ListEvents(%q) yielded %+v, %v; want only ErrInvalidKey", node, ev, err)
				}
			}
			if n != 1 {
				t.Errorf("ListEvents(%q) yielded %d values, want one error", node, n)
			}
			if node == "" {
				return // the zero Filter lists every node
			}
			n = 0
			for info, err := range st.List(ctxT(t), store.Filter{Node: node}) {
				n++
				if !errors.Is(err, store.ErrInvalidKey) {
					t.Errorf("List(Node: %q) yielded %+v, %v; want only ErrInvalidKey", node, info, err)
				}
			}
			if n != 1 {
				t.Errorf("List(Node: %q) yielded %d values, want one error", node, n)
			}
		})
	}
}
