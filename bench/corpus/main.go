// Command corpus records real-looking terminal sessions as asciicast v2
// files, for the screen-text and search benchmarks, and scales them up.
//
// It runs real programs on a pseudo-terminal and records what they print,
// with the times it arrives, through reel's asciicast encoder:
//
//	shell  bash with a coloured prompt and a window title: ls --color, cat,
//	       grep, git log --stat, ps, a wrapped long line, a \r progress bar,
//	       a resize, clear
//	top    top redrawing its screen
//	vim    vim (or vi) editing a file on the alternate screen
//	logs   tail -f of a log that grows while it is watched
//	bulk   seq and yes | head: bulk output
//
// A program that is not installed is skipped with a message. Then, with
// -size, it writes copies of the recordings with varied text (letters and
// digits outside escape sequences shifted per copy, so no two copies index
// alike; sizes, timing and escape sequences unchanged) until the corpus
// holds that many bytes, an equal share for each kind. The copies are deterministic for a given -seed;
// the base recordings are as deterministic as the programs are.
//
//	go run ./bench/corpus -out /tmp/corpus               # base recordings
//	go run ./bench/corpus -out /tmp/corpus -size 1GiB    # and copies up to 1 GiB
//
// Layout: OUT/<kind>/0000.cast is the recording, OUT/<kind>/NNNN.cast its
// copies.
package main

import (
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

func main() {
	out := flag.String("out", "", "directory to write the corpus to (required)")
	size := flag.String("size", "0", "scale the corpus to at least this many bytes with varied copies (e.g. 1GiB, 200MiB)")
	seed := flag.Int64("seed", 1, "seed for the copies' text variations")
	only := flag.String("only", "", "comma-separated kinds to record (default: all: "+strings.Join(kindNames(), ",")+")")
	cols := flag.Int("cols", 100, "terminal width")
	rows := flag.Int("rows", 30, "terminal height")
	flag.Parse()
	if *out == "" {
		flag.Usage()
		os.Exit(2)
	}
	target, err := parseSize(*size)
	if err != nil {
		log.Fatalf("corpus: -size: %v", err)
	}
	want := map[string]bool{}
	for _, k := range strings.Split(*only, ",") {
		if k = strings.TrimSpace(k); k != "" {
			if _, ok := kinds[k]; !ok {
				log.Fatalf("corpus: unknown kind %q (have %s)", k, strings.Join(kindNames(), ", "))
			}
			want[k] = true
		}
	}
	var base []string
	for _, name := range kindNames() {
		if len(want) > 0 && !want[name] {
			continue
		}
		dir := filepath.Join(*out, name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			log.Fatal(err)
		}
		file := filepath.Join(dir, "0000.cast")
		n, err := record(kinds[name], file, *cols, *rows)
		switch {
		case err == errSkipped:
			continue
		case err != nil:
			log.Fatalf("corpus: %s: %v", name, err)
		}
		fmt.Printf("%-6s %s: %d bytes\n", name, file, n)
		base = append(base, file)
	}
	if target > 0 && len(base) > 0 {
		if err := scale(base, target, *seed); err != nil {
			log.Fatalf("corpus: %v", err)
		}
	}
}

func kindNames() []string {
	var names []string
	for k := range kinds {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

// parseSize reads 1GiB, 200MiB, 64KiB or a plain number of bytes.
func parseSize(s string) (int64, error) {
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"G", 1 << 30}, {"M", 1 << 20}, {"K", 1 << 10}} {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSuffix(s, u.suffix), u.mult
			break
		}
	}
	n, err := strconv.ParseFloat(s, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%q is not a size", s)
	}
	return int64(n * float64(mult)), nil
}
