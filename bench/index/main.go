// Command index measures reel's index (see docs/search.md):
//
//	P5: the first page of the recordings list, unfiltered and filtered,
//	    with -n indexed recordings (default 1,000,000): time of the
//	    List call (the server's time), p50 and p99, SQLite or PostgreSQL.
//	P6: the screen text of a corpus of real-looking recordings (made by
//	    bench/corpus) indexed end to end by the indexer (read, decode,
//	    emulate, chunk, write to the index) on one worker: MB of cast per
//	    second of wall time and per CPU-second; the index's size as a
//	    ratio of the text; then substring searches (first page of 50
//	    hits), p50 and p99, each beside grep -r -F -i -l over the same
//	    files.
//
// Run from the repository root:
//
//	go run ./bench/index -mode p5 -db /tmp/p5.db                  # SQLite
//	go run ./bench/index -mode p5 -postgres                       # a private PostgreSQL cluster
//	go run ./bench/corpus -out /tmp/corpus1g -size 1GiB
//	go run ./bench/index -mode p6 -corpus /tmp/corpus1g -db /tmp/p6.db
//
// A -db that exists is reused (its rows are not made again), so queries
// can be measured again without the wait.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"iter"
	"log"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/reel-rec/reel/internal/index"
	"github.com/reel-rec/reel/internal/index/indexer"
	"github.com/reel-rec/reel/internal/index/indextest"
	"github.com/reel-rec/reel/internal/screentext"
	"github.com/reel-rec/reel/internal/store"
)

func main() {
	mode := flag.String("mode", "p5", "p5 or p6")
	n := flag.Int("n", 1_000_000, "p5: recordings in the index")
	db := flag.String("db", "", "SQLite file (reused when it exists); default a temp file")
	pg := flag.Bool("postgres", false, "p5: a private PostgreSQL cluster instead of SQLite")
	pgURL := flag.String("postgres-url", "", "p5: this PostgreSQL database instead (reused when it has rows)")
	runs := flag.Int("runs", 200, "queries of each kind")
	corpus := flag.String("corpus", "", "p6: corpus directory (bench/corpus output)")
	workers := flag.Int("workers", 1, "p6: indexer workers")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile here")
	flag.Parse()
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			log.Fatal(err)
		}
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	log.SetFlags(0)
	ctx := context.Background()

	loc := *db
	if *pgURL != "" {
		loc = *pgURL
	} else if *pg {
		p, err := indextest.StartPostgres(ctx, "")
		if err != nil {
			log.Fatal(err)
		}
		defer p.Stop()
		if loc, err = p.NewDB(ctx); err != nil {
			log.Fatal(err)
		}
	} else if loc == "" {
		d, err := os.MkdirTemp("", "reel-bench-index")
		if err != nil {
			log.Fatal(err)
		}
		defer os.RemoveAll(d)
		loc = filepath.Join(d, "index.db")
	}
	ix, err := index.Open(ctx, loc, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer ix.Close()
	switch *mode {
	case "p5":
		p5(ctx, ix, *n, *runs)
	case "p6":
		if *corpus == "" {
			log.Fatal("p6 needs -corpus")
		}
		p6(ctx, ix, loc, *corpus, *workers, *runs)
	default:
		log.Fatalf("unknown -mode %q", *mode)
	}
}

// Shape of the P5 population.
const (
	nodes = 500
	users = 5000
)

var p5Start = time.Date(2025, 12, 1, 0, 0, 0, 0, time.UTC)

func p5Row(i, n int) index.Recording {
	r := rand.New(rand.NewPCG(uint64(i), 7))
	start := p5Start.Add(time.Duration(int64(i) * int64(365*24*time.Hour) / int64(n)))
	node := fmt.Sprintf("node-%03d", r.IntN(nodes))
	u := fmt.Sprintf("user%04d", int(float64(users)*r.Float64()*r.Float64())) // some users much busier
	rec := index.Recording{
		Key:   store.RecordingKey(node, start),
		Node:  node,
		Start: start,
		End:   start.Add(time.Duration(r.ExpFloat64()*600) * time.Second),
		Size:  int64(r.ExpFloat64() * 200_000),
		User:  u + "@example.com", Login: u, LocalUser: "root",
		Command: "bash -l", Kind: index.KindSSH, Status: "complete",
	}
	rec.Indexed = rec.Size
	if r.IntN(100) < 15 {
		rec.Kind, rec.Pod, rec.Namespace, rec.Container = index.KindKubernetes, "web-0", "prod", "app"
	}
	switch x := r.IntN(1000); {
	case x < 15:
		rec.Status, rec.Reason = "interrupted", "the sender's upload broke off"
	case x < 25:
		rec.Status, rec.Reason = "failed", "storage failed: disk full"
	case x < 30:
		rec.Status, rec.Reason = "malformed", "line 3: not JSON"
	}
	if i >= n-20 {
		rec.Status, rec.End = "live", time.Time{}
	}
	return rec
}

func p5(ctx context.Context, ix index.Index, n, runs int) {
	have := 0
	after := ""
	rows, _, err := ix.List(ctx, index.Filter{}, index.Page{Limit: 1, Sort: index.SortStartAsc})
	if err != nil {
		log.Fatal(err)
	}
	if len(rows) > 0 {
		// Reused: count what is there.
		for {
			page, next, err := ix.List(ctx, index.Filter{}, index.Page{Limit: index.MaxLimit, After: after})
			if err != nil {
				log.Fatal(err)
			}
			have += len(page)
			if next == "" {
				break
			}
			after = next
		}
	}
	if have < n {
		fmt.Printf("P5: indexing %d recordings (%d there)...\n", n-have, have)
		t0 := time.Now()
		// Batches of 1000 rows per transaction (index.Batcher), from 4
		// goroutines.
		bat, _ := ix.(index.Batcher)
		var next atomic.Int64
		next.Store(int64(have))
		var wg sync.WaitGroup
		const batch = 1000
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					i := int(next.Add(batch) - batch)
					if i >= n {
						return
					}
					var rs []index.Recording
					for j := i; j < min(i+batch, n); j++ {
						rs = append(rs, p5Row(j, n))
					}
					var err error
					if bat != nil {
						err = bat.PutRecordings(ctx, rs)
					} else {
						for _, r := range rs {
							if err = ix.PutRecording(ctx, r); err != nil {
								break
							}
						}
					}
					if err != nil {
						log.Fatal(err)
					}
					if i%100000 == 0 && i > 0 {
						fmt.Printf("  %d rows, %.0f rows/s\n", i, float64(i-have)/time.Since(t0).Seconds())
					}
				}
			}()
		}
		wg.Wait()
		fmt.Printf("  done in %s\n", time.Since(t0).Round(time.Second))
		have = n
	}
	fmt.Printf("P5: first page (50 rows) of %d recordings, %d queries each; List call time\n", have, runs)
	r := rand.New(rand.NewPCG(1, 2))
	queries := []struct {
		name string
		f    func() (index.Filter, index.Page)
	}{
		{"unfiltered, newest first", func() (index.Filter, index.Page) { return index.Filter{}, index.Page{} }},
		{"unfiltered, oldest first", func() (index.Filter, index.Page) { return index.Filter{}, index.Page{Sort: index.SortStartAsc} }},
		{"unfiltered, largest first", func() (index.Filter, index.Page) { return index.Filter{}, index.Page{Sort: index.SortSizeDesc} }},
		{"unfiltered, longest first", func() (index.Filter, index.Page) { return index.Filter{}, index.Page{Sort: index.SortDurDesc} }},
		{"node", func() (index.Filter, index.Page) {
			return index.Filter{Node: fmt.Sprintf("node-%03d", r.IntN(nodes))}, index.Page{}
		}},
		{"node prefix", func() (index.Filter, index.Page) {
			return index.Filter{Node: fmt.Sprintf("node-%d*", r.IntN(5))}, index.Page{}
		}},
		{"user (busy or quiet)", func() (index.Filter, index.Page) {
			return index.Filter{User: fmt.Sprintf("user%04d", int(float64(users)*r.Float64()*r.Float64()))}, index.Page{}
		}},
		{"status failed (rare)", func() (index.Filter, index.Page) { return index.Filter{Status: "failed"}, index.Page{} }},
		{"status live (20 rows)", func() (index.Filter, index.Page) { return index.Filter{Status: "live"}, index.Page{} }},
		{"kind kubernetes", func() (index.Filter, index.Page) { return index.Filter{Kind: index.KindKubernetes}, index.Page{} }},
		{"last 7 days", func() (index.Filter, index.Page) {
			return index.Filter{Since: p5Start.Add(358 * 24 * time.Hour)}, index.Page{}
		}},
		{"a day in the middle", func() (index.Filter, index.Page) {
			d := p5Start.Add(time.Duration(r.IntN(360)) * 24 * time.Hour)
			return index.Filter{Since: d, Until: d.Add(24 * time.Hour)}, index.Page{}
		}},
		{"node + user + status", func() (index.Filter, index.Page) {
			return index.Filter{Node: fmt.Sprintf("node-%03d", r.IntN(nodes)), User: fmt.Sprintf("user%04d", r.IntN(50)), Status: "complete"}, index.Page{}
		}},
		{"viewer: 10 nodes", func() (index.Filter, index.Page) {
			var ns []string
			for range 10 {
				ns = append(ns, fmt.Sprintf("node-%03d", r.IntN(nodes)))
			}
			return index.Filter{Nodes: ns}, index.Page{}
		}},
		{"viewer 10 nodes + user", func() (index.Filter, index.Page) {
			var ns []string
			for range 10 {
				ns = append(ns, fmt.Sprintf("node-%03d", r.IntN(nodes)))
			}
			return index.Filter{Nodes: ns, User: fmt.Sprintf("user%04d", r.IntN(200))}, index.Page{}
		}},
		{"page 20 (keyset)", nil},
	}
	fmt.Printf("  %-28s %10s %10s %10s\n", "query", "p50", "p99", "max")
	for _, q := range queries {
		var ds []time.Duration
		for range runs {
			var f index.Filter
			var p index.Page
			if q.f != nil {
				f, p = q.f()
			}
			p.Limit = 50
			if q.f == nil {
				// The 20th page: 19 pages first, then time the 20th.
				for range 19 {
					_, next, err := ix.List(ctx, f, p)
					if err != nil {
						log.Fatal(err)
					}
					p.After = next
				}
			}
			t0 := time.Now()
			rows, _, err := ix.List(ctx, f, p)
			ds = append(ds, time.Since(t0))
			if err != nil {
				log.Fatal(err)
			}
			_ = rows
		}
		p50, p99, mx := pct(ds)
		fmt.Printf("  %-28s %10s %10s %10s\n", q.name, p50, p99, mx)
	}
}

func pct(ds []time.Duration) (p50, p99, mx time.Duration) {
	slices.Sort(ds)
	at := func(q float64) time.Duration {
		return ds[min(len(ds)-1, int(q*float64(len(ds))))].Round(10 * time.Microsecond)
	}
	return at(0.5), at(0.99), ds[len(ds)-1].Round(10 * time.Microsecond)
}

// dirStore is a read-only store.Store over a corpus directory: every
// .cast file, complete, under a made-up key.
type dirStore struct {
	paths map[string]string
	infos []store.Info
	byKey map[string]store.Info
}

func newDirStore(dir string) (*dirStore, error) {
	s := &dirStore{paths: map[string]string{}, byKey: map[string]store.Info{}}
	t := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".cast") {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		node := store.SafeNode(filepath.Base(filepath.Dir(p)))
		t = t.Add(time.Second)
		key := store.RecordingKey(node, t)
		s.paths[key] = p
		info := store.Info{Key: key, Node: node, Start: t, Size: fi.Size(), Status: store.StatusComplete}
		s.infos = append(s.infos, info)
		s.byKey[key] = info
		return nil
	})
	return s, err
}

func (s *dirStore) Create(context.Context, string, time.Time) (store.Writer, error) {
	return nil, errors.New("read-only")
}

type fileReader struct {
	*os.File
	size int64
}

func (f fileReader) Size() int64 { return f.size }

func (s *dirStore) Open(ctx context.Context, key string) (store.Reader, error) {
	p, ok := s.paths[key]
	if !ok {
		return nil, store.ErrNotFound
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	fi, _ := f.Stat()
	return fileReader{f, fi.Size()}, nil
}

func (s *dirStore) Stat(ctx context.Context, key string) (store.Info, error) {
	if i, ok := s.byKey[key]; ok {
		return i, nil
	}
	return store.Info{}, store.ErrNotFound
}

func (s *dirStore) List(ctx context.Context, f store.Filter) iter.Seq2[store.Info, error] {
	return func(yield func(store.Info, error) bool) {
		for _, i := range s.infos {
			if !yield(i, nil) {
				return
			}
		}
	}
}

func (s *dirStore) PutEvent(context.Context, string, time.Time, []byte) (string, error) {
	return "", errors.New("read-only")
}
func (s *dirStore) GetEvent(context.Context, string) ([]byte, error) { return nil, store.ErrNotFound }
func (s *dirStore) ListEvents(context.Context, string, time.Time, time.Time) iter.Seq2[store.Event, error] {
	return func(func(store.Event, error) bool) {}
}
func (s *dirStore) Recover(context.Context) ([]store.Info, error) { return nil, nil }
func (s *dirStore) Close() error                                  { return nil }

// countingIndex counts the text that goes into the index.
type countingIndex struct {
	index.Index
	text, chunks atomic.Int64
}

func (c *countingIndex) AddChunks(ctx context.Context, key string, indexed int64, cs []index.Chunk) error {
	for _, ch := range cs {
		c.text.Add(int64(len(ch.Text)))
	}
	c.chunks.Add(int64(len(cs)))
	return c.Index.AddChunks(ctx, key, indexed, cs)
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func p6(ctx context.Context, ix index.Index, loc, corpus string, workers, runs int) {
	st, err := newDirStore(corpus)
	if err != nil {
		log.Fatal(err)
	}
	var castBytes int64
	for _, i := range st.infos {
		castBytes += i.Size
	}
	fmt.Printf("P6: corpus %s: %d recordings, %.1f MiB of cast\n", corpus, len(st.infos), float64(castBytes)/(1<<20))
	probe, _, err := ix.List(ctx, index.Filter{}, index.Page{Limit: 1})
	if err != nil {
		log.Fatal(err)
	}
	if len(probe) == 0 {
		ci := &countingIndex{Index: ix}
		in := &indexer.Indexer{Store: st, Index: ci, Workers: workers}
		in.Start(ctx, false)
		c0, t0 := cpuTime(), time.Now()
		if err := in.CatchUp(ctx); err != nil {
			log.Fatal(err)
		}
		if err := in.Wait(ctx); err != nil {
			log.Fatal(err)
		}
		wall, cpu := time.Since(t0), cpuTime()-c0
		in.Close()
		mb := float64(castBytes) / 1e6
		fmt.Printf("  indexed end to end with %d worker(s) in %s (CPU %s): %.1f MB/s of cast wall, %.1f MB/s per CPU-second\n",
			workers, wall.Round(time.Millisecond), cpu.Round(time.Millisecond), mb/wall.Seconds(), mb/cpu.Seconds())
		fmt.Printf("  screen text: %.1f MiB in %d chunks (%.1f%% of the cast)\n", float64(ci.text.Load())/(1<<20), ci.chunks.Load(), 100*float64(ci.text.Load())/float64(castBytes))
		os.WriteFile(loc+".text", []byte(fmt.Sprint(ci.text.Load())), 0o644)
	}
	if !strings.Contains(loc, "://") {
		var textBytes int64
		if b, err := os.ReadFile(loc + ".text"); err == nil {
			fmt.Sscan(string(b), &textBytes)
		}
		var size int64
		for _, suf := range []string{"", "-wal"} {
			if fi, err := os.Stat(loc + suf); err == nil {
				size += fi.Size()
			}
		}
		if textBytes > 0 {
			fmt.Printf("  index file %.1f MiB: %.2f x the screen text, %.3f x the cast\n", float64(size)/(1<<20), float64(size)/float64(textBytes), float64(size)/float64(castBytes))
		}
	}

	// Queries: words and phrases from the corpus's screen text (rare to
	// common), and strings that are nowhere.
	queries := sampleQueries(st, 12)
	queries = append(queries, "root", "error", "the", "Makefile", "load average", "zq9xk-nowhere", "ENOENT: no such")
	fmt.Printf("  %-30s %6s %10s %10s %12s %8s\n", "query", "hits", "p50", "p99", "grep -rFil", "ratio")
	var all []time.Duration
	var ratios []float64
	for _, q := range queries {
		var ds []time.Duration
		nhits := 0
		for range max(runs/10, 5) {
			t0 := time.Now()
			hits, _, err := ix.Search(ctx, q, index.Filter{}, index.Page{Limit: 50})
			ds = append(ds, time.Since(t0))
			if err != nil {
				log.Fatal(err)
			}
			nhits = len(hits)
		}
		all = append(all, ds...)
		p50, p99, _ := pct(ds)
		t0 := time.Now()
		exec.Command("grep", "-r", "-F", "-i", "-l", "--", q, corpus).Run()
		g := time.Since(t0)
		ratio := g.Seconds() / p50.Seconds()
		ratios = append(ratios, ratio)
		fmt.Printf("  %-30q %6d %10s %10s %12s %7.0fx\n", q, nhits, p50, p99, g.Round(time.Millisecond), ratio)
	}
	p50, p99, mx := pct(all)
	sort.Float64s(ratios)
	fmt.Printf("  all queries: p50 %s, p99 %s, max %s; grep -rFil / search p50: median %.0fx\n", p50, p99, mx, ratios[len(ratios)/2])
}

// sampleQueries picks n substrings (5 to 20 characters) of lines from the
// screen text of a few recordings.
func sampleQueries(st *dirStore, n int) []string {
	r := rand.New(rand.NewPCG(3, 4))
	var lines []string
	for i := 0; i < 40 && i < len(st.infos); i++ {
		info := st.infos[r.IntN(len(st.infos))]
		f, err := os.Open(st.paths[info.Key])
		if err != nil {
			continue
		}
		screentext.Extract(io.LimitReader(f, 4<<20), screentext.Options{}, func(c screentext.Chunk) {
			for l := range strings.SplitSeq(c.Text, "\n") {
				if len([]rune(strings.TrimSpace(l))) >= 12 {
					lines = append(lines, strings.TrimSpace(l))
				}
			}
		})
		f.Close()
	}
	var out []string
	for len(out) < n && len(lines) > 0 {
		rs := []rune(lines[r.IntN(len(lines))])
		k := 5 + r.IntN(16)
		if k > len(rs) {
			k = len(rs)
		}
		i := r.IntN(len(rs) - k + 1)
		q := strings.TrimSpace(string(rs[i : i+k]))
		if len([]rune(q)) >= 3 {
			out = append(out, q)
		}
	}
	return out
}
