package main

// TEMPORARY, for the evidence branch's own tests until reel export
// (cmd/reel/export.go, branch vnc) is merged: the lead deletes this file
// then, and dispatches --format and --bundle from that export command (see
// export_format.go). exportOptions, parseAt and writeOutput here are
// copies of that branch's, so that export_format.go builds against either.

import (
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
)

func init() {
	register(&command{name: "export", summary: "export a recording, or a bundle for reel verify", run: runExport})
}

const exportUsage = `
Usage: reel export [flags] (--format FORMAT [-o FILE] FILE-or-KEY | --bundle DIR|FILE.tar KEY...)

Times are Go durations ("1m30s", "250ms") or seconds ("90.5") from the
start of the recording.
` + terminalExportUsage

// exportOptions are the flags every export format may use.
type exportOptions struct {
	video, png, frame string
	from, to          time.Duration
	fps, quality      int
	progress          io.Writer
}

func runExport(ctx context.Context, env *cmdEnv, args []string) error {
	fs := newFlagSet(env, "export", exportUsage)
	sf := addStoreFlags(fs, env)
	var o exportOptions
	var from, to string
	var quiet bool
	fs.StringVar(&from, "from", "", "start of the part to export: a `TIME` (default: the start)")
	fs.StringVar(&to, "to", "", "end of the part to export: a `TIME` (default: the end)")
	fs.IntVar(&o.fps, "fps", 10, "GIF frames per second at most (1 to 60)")
	fs.BoolVar(&quiet, "quiet", false, "no progress bar")
	var tf terminalExport
	tf.addFlags(fs)
	names, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if done, err := tf.run(ctx, env, sf, names, o, from, to, quiet); done {
		return err
	}
	return usagef("say what to write: --format FORMAT, or --bundle DIR|FILE.tar")
}

// parseAt parses a time in the recording: a duration or seconds. Empty
// gives def.
func parseAt(s string, def time.Duration) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return def, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return d, nil
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil && f >= 0 {
		return time.Duration(f * float64(time.Second)), nil
	}
	return 0, fmt.Errorf("%q is not a time: want a duration such as 1m30s or seconds such as 90.5", s)
}

// writeOutput writes a file through fn, removing it when fn fails.
func writeOutput(path string, fn func(io.Writer) error) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := fn(f); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	return f.Close()
}
