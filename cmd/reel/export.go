package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/reel-rec/reel/internal/store"
)

func init() {
	register(&command{name: "export", summary: "export a recording (text, cast, html, gif; a desktop's video or image), or a bundle for reel verify", run: runExport})
}

const exportUsage = `
Usage: reel export [flags] FILE-or-KEY (--video OUT | --frame AT --png OUT)
       reel export [flags] --format cast|text|html|gif [-o FILE] FILE-or-KEY
       reel export [flags] --bundle DIR|FILE.tar KEY...

Exports a desktop recording (reel vnc; key "<node>/<name>.desk"), on this
machine, not on the recorder:

  --video OUT   a Motion-JPEG video in an AVI file, which common players
                (VLC, mpv, ffmpeg) open; --from and --to take a part,
                --fps sets the frame rate. A progress bar goes to stderr.
  --frame AT --png OUT
                the screen at time AT (with the pointer), as a PNG image.

Times are Go durations ("1m30s", "250ms") or seconds ("90.5") from the
start of the recording.

Examples:
    reel export 100.64.0.7/2026-11-01T14-03-22.123456789Z.desk --video session.avi
    reel export --from 5m --to 6m KEY --video minute.avi
    reel export --frame 1m02s --png shot.png KEY
` + terminalExportUsage

// exportOptions are the flags every export format may use.
type exportOptions struct {
	video, png, frame string
	from, to          time.Duration
	fps, quality      int
	progress          io.Writer
}

// exporters by recording kind. Terminal recordings get theirs with
// --format (cast, text, html, gif).
var exporters = map[store.Kind]func(ctx context.Context, r io.ReadSeeker, opts exportOptions, env *cmdEnv) error{
	store.KindDesktop: exportDesktop,
}

func runExport(ctx context.Context, env *cmdEnv, args []string) error {
	fs := newFlagSet(env, "export", exportUsage)
	sf := addStoreFlags(fs, env)
	var o exportOptions
	var from, to string
	var quiet bool
	fs.StringVar(&o.video, "video", "", "write a video (Motion-JPEG in AVI) to this file")
	fs.StringVar(&o.png, "png", "", "with --frame: write the frame as a PNG to this file")
	fs.StringVar(&o.frame, "frame", "", "with --png: the time of the frame")
	fs.StringVar(&from, "from", "", "start of the part to export (default: the start)")
	fs.StringVar(&to, "to", "", "end of the part to export (default: the end)")
	fs.IntVar(&o.fps, "fps", 10, "frames per second of a video, or at most of a GIF (1 to 60)")
	fs.IntVar(&o.quality, "quality", 90, "JPEG quality of video frames (1 to 100)")
	fs.BoolVar(&quiet, "quiet", false, "no progress bar")
	var tf terminalExport // --format, -o, --bundle: export_format.go
	tf.addFlags(fs)
	// Flags may come before and after the recording's name.
	var names []string
	for {
		if err := parseFlags(fs, args); err != nil {
			return err
		}
		if fs.NArg() == 0 {
			break
		}
		names = append(names, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if done, err := tf.run(ctx, env, sf, names, o, from, to, quiet); done {
		return err
	}
	if len(names) != 1 {
		return usagef("name one recording: a file or a <node>/<name>.desk key")
	}
	switch {
	case (o.video == "") == (o.png == ""):
		return usagef("say what to write: --video FILE, or --frame AT --png FILE")
	case o.png != "" && o.frame == "":
		return usagef("--png needs --frame AT")
	case o.fps < 1 || o.fps > 60:
		return usagef("--fps %d: want 1 to 60", o.fps)
	case o.quality < 1 || o.quality > 100:
		return usagef("--quality %d: want 1 to 100", o.quality)
	}
	var err error
	if o.from, err = parseAt(from, 0); err != nil {
		return usagef("--from: %v", err)
	}
	if o.to, err = parseAt(to, -1); err != nil {
		return usagef("--to: %v", err)
	}
	if o.to >= 0 && o.to < o.from {
		return usagef("--to comes before --from")
	}
	if !quiet {
		o.progress = env.stderr
	}
	arg := names[0]
	rec, err := openRecording(ctx, env, sf, arg)
	if err != nil {
		return err
	}
	defer rec.Close()
	rs, ok := rec.r.(io.ReadSeeker)
	if ok {
		_, err := rs.Seek(0, io.SeekCurrent)
		ok = err == nil
	}
	if !ok { // standard input: read it whole
		b, err := io.ReadAll(rec.r)
		if err != nil {
			return err
		}
		rs = bytes.NewReader(b)
	}
	kind, err := sniffKind(rs)
	if err != nil {
		return fmt.Errorf("%s: %w", arg, err)
	}
	export := exporters[kind]
	if export == nil {
		return fmt.Errorf("%s: a %s recording: export it with --format cast, text, html or gif", arg, kind)
	}
	return export(ctx, rs, o, env)
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

// sniffKind tells a recording's kind from its first bytes (a file may have
// been renamed) and rewinds r.
func sniffKind(r io.ReadSeeker) (store.Kind, error) {
	head := make([]byte, 256)
	n, err := io.ReadFull(r, head)
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		return "", err
	}
	if _, err := r.Seek(0, io.SeekStart); err != nil {
		return "", err
	}
	if isDesktopHeader(head[:n]) {
		return store.KindDesktop, nil
	}
	return store.KindTerminal, nil
}
