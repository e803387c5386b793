// Command indexing measures how fast reel turns recordings into searchable
// screen text (internal/screentext), per core, in MB of cast per second, on
// a corpus made by bench/corpus:
//
//	go run ./bench/corpus -out /tmp/corpus -size 256MiB
//	go run ./bench/indexing -corpus /tmp/corpus
//
// For each kind of recording (a subdirectory of the corpus) it reads up to
// -mib MiB of its files into memory, then, on one goroutine, times
//
//   - extract: screentext.Extract, the whole job: JSON decoding, the
//     terminal emulator, line bookkeeping and chunking;
//   - decode:  asciicast.Decoder.NextRaw alone, the JSON part;
//   - vt:      vt.Terminal.Write alone on the output events' bytes, the
//     emulator's raw speed (given in MB of output and in MB of cast, to
//     compare with extract).
//
// Each figure is the median of -runs runs. MB/s counts bytes of the cast
// file (the output bytes for "vt out"); "per CPU-s" divides by the
// process's CPU time instead of wall time, so other load on the machine
// shows as the difference. -workers N also runs extract on N goroutines
// at once over all the files and reports the aggregate.
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/reel-rec/reel/internal/asciicast"
	"github.com/reel-rec/reel/internal/screentext"
	"github.com/reel-rec/reel/internal/vt"
)

type recording struct {
	cast       []byte
	cols, rows int
	outputs    [][]byte // output events' data, for the emulator alone
	outBytes   int
}

type kindResult struct {
	name                string
	files               int
	castBytes, outBytes int64
	lines, textBytes    int64
	chunks              int
	extract, decode, vt result
}

type result struct{ wall, cpu time.Duration }

func main() {
	dir := flag.String("corpus", "", "corpus directory made by bench/corpus (required)")
	mib := flag.Int("mib", 64, "read at most this many MiB of each kind")
	runs := flag.Int("runs", 3, "runs of each measurement (the median is reported)")
	workers := flag.Int("workers", 0, "also run extract on this many goroutines at once (0: skip)")
	flag.Parse()
	if *dir == "" {
		flag.Usage()
		os.Exit(2)
	}
	fmt.Printf("# go run ./bench/indexing %s\n", strings.Join(os.Args[1:], " "))
	fmt.Printf("# %s %s/%s, GOMAXPROCS=%d, %d CPUs\n", runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.GOMAXPROCS(0), runtime.NumCPU())
	kinds, err := os.ReadDir(*dir)
	if err != nil {
		log.Fatal(err)
	}
	var results []kindResult
	var all []recording
	for _, k := range kinds {
		if !k.IsDir() {
			continue
		}
		recs, err := load(filepath.Join(*dir, k.Name()), int64(*mib)<<20)
		if err != nil {
			log.Fatalf("indexing: %v", err)
		}
		if len(recs) == 0 {
			continue
		}
		all = append(all, recs...)
		results = append(results, measure(k.Name(), recs, *runs))
	}
	if len(results) == 0 {
		log.Fatalf("indexing: no recordings under %s", *dir)
	}
	total := kindResult{name: "all"}
	for _, r := range results {
		total.files += r.files
		total.castBytes += r.castBytes
		total.outBytes += r.outBytes
		total.lines += r.lines
		total.textBytes += r.textBytes
		total.chunks += r.chunks
		total.extract.wall += r.extract.wall
		total.extract.cpu += r.extract.cpu
		total.decode.wall += r.decode.wall
		total.decode.cpu += r.decode.cpu
		total.vt.wall += r.vt.wall
		total.vt.cpu += r.vt.cpu
	}
	fmt.Println()
	fmt.Printf("%-6s %5s %9s %9s %11s %11s %9s %9s %9s %8s %7s\n",
		"kind", "files", "cast MB", "out MB", "extract", "per CPU-s", "decode", "vt out", "vt cast", "text MB", "chunks")
	for _, r := range append(results, total) {
		fmt.Printf("%-6s %5d %9.1f %9.1f %8.1f MB/s %6.1f MB/s %6.1f MB/s %6.1f MB/s %6.1f MB/s %8.2f %7d\n",
			r.name, r.files, mb(r.castBytes), mb(r.outBytes),
			rate(r.castBytes, r.extract.wall), rate(r.castBytes, r.extract.cpu),
			rate(r.castBytes, r.decode.wall), rate(r.outBytes, r.vt.wall), rate(r.castBytes, r.vt.wall),
			mb(r.textBytes), r.chunks)
	}
	fmt.Println("\nextract: screentext.Extract, one goroutine; decode: asciicast.Decoder.NextRaw alone;")
	fmt.Println("vt out / vt cast: vt.Terminal.Write alone, per MB of output / of cast; text: screen text produced.")
	if *workers > 0 {
		parallel(all, *workers, *runs)
	}
}

func mb(n int64) float64 { return float64(n) / 1e6 }

func rate(n int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / 1e6 / d.Seconds()
}

// load reads the kind's files, in name order, up to limit bytes (at least
// one file).
func load(dir string, limit int64) ([]recording, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.cast"))
	if err != nil {
		return nil, err
	}
	sort.Strings(files)
	var recs []recording
	var size int64
	for _, f := range files {
		if size >= limit {
			break
		}
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		rec := recording{cast: b}
		dec := asciicast.NewDecoder(bytes.NewReader(b))
		h, err := dec.Header()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		rec.cols, rec.rows = h.Width, h.Height
		for {
			ev, err := dec.NextRaw()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return nil, fmt.Errorf("%s: %w", f, err)
			}
			if string(ev.Code) == asciicast.Output {
				rec.outputs = append(rec.outputs, slices.Clone(ev.Data))
				rec.outBytes += len(ev.Data)
			}
		}
		recs = append(recs, rec)
		size += int64(len(b))
	}
	return recs, nil
}

func measure(name string, recs []recording, runs int) kindResult {
	r := kindResult{name: name, files: len(recs)}
	for _, rec := range recs {
		r.castBytes += int64(len(rec.cast))
		r.outBytes += int64(rec.outBytes)
	}
	r.extract = median(runs, func() {
		r.lines, r.textBytes, r.chunks = 0, 0, 0
		for _, rec := range recs {
			err := screentext.Extract(bytes.NewReader(rec.cast), screentext.Options{}, func(c screentext.Chunk) {
				r.lines += int64(len(c.Times))
				r.textBytes += int64(len(c.Text))
				r.chunks++
			})
			if err != nil {
				log.Fatalf("indexing: %s: %v", name, err)
			}
		}
	})
	r.decode = median(runs, func() {
		for _, rec := range recs {
			dec := asciicast.NewDecoder(bytes.NewReader(rec.cast))
			for {
				if _, err := dec.NextRaw(); err != nil {
					break
				}
			}
		}
	})
	r.vt = median(runs, func() {
		for _, rec := range recs {
			term := vt.New(rec.cols, rec.rows)
			for _, o := range rec.outputs {
				term.Write(o)
			}
		}
	})
	return r
}

// median runs f runs times and returns the run with the median wall time.
func median(runs int, f func()) result {
	var rs []result
	for range max(runs, 1) {
		runtime.GC()
		c0, w0 := cpuTime(), time.Now()
		f()
		rs = append(rs, result{wall: time.Since(w0), cpu: cpuTime() - c0})
	}
	sort.Slice(rs, func(i, j int) bool { return rs[i].wall < rs[j].wall })
	return rs[len(rs)/2]
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// parallel runs extract over all recordings on n goroutines.
func parallel(recs []recording, n, runs int) {
	var total int64
	for _, r := range recs {
		total += int64(len(r.cast))
	}
	res := median(runs, func() {
		var wg sync.WaitGroup
		next := make(chan recording)
		for range n {
			wg.Go(func() {
				for rec := range next {
					screentext.Extract(bytes.NewReader(rec.cast), screentext.Options{}, func(screentext.Chunk) {})
				}
			})
		}
		for _, r := range recs {
			next <- r
		}
		close(next)
		wg.Wait()
	})
	fmt.Printf("\nextract on %d goroutines: %.1f MB/s aggregate, %.1f MB per CPU-s (%.1f MB of cast)\n",
		n, rate(total, res.wall), rate(total, res.cpu), mb(total))
}
