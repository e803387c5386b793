package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/reel-rec/reel/internal/asciicast"
)

func init() {
	register(&command{name: "play", summary: "replay a recording in the terminal", run: playCmd{clock: realClock{}}.run})
}

const playUsage = `
Usage: reel play [flags] FILE-or-KEY

Replays a recording in this terminal with its recorded timing.

FILE is a path to a .cast file (asciicast v1, v2 or v3), or "-" for standard
input. KEY is a recording's key "<node>/<name>.cast" in --dst, as "reel ls
--json" shows it.

When standard input is a terminal (and the recording does not come from
it), keys control the replay:

    space    pause / resume
    .        while paused: show the next event
    q        quit (so does Ctrl-C)

The terminal is put in raw mode for this and restored however reel play
ends.

Timing is replayed whether or not the output is a terminal, so that
"reel play F | tee out" behaves as on screen; --no-wait (-n) writes
everything at once with no delays and no keys, as "reel cat" does.
--idle-limit defaults to the recording's idle_time_limit, as in asciinema.

Recorded resizes do not resize your terminal (no terminal program can do
that reliably); use a terminal at least as large as the recording. If the
recording was larger than the terminal, a note on standard error says so at
the end. Input events are not shown; markers and exit events are skipped.

--at starts the replay at a moment ("reel search" prints moments): what
was shown before it is written at once, then the replay goes on with the
recorded timing.

Examples:
    reel play recordings/100.64.0.7/2026-11-01T14-03-22.123456789Z.cast
    reel play --speed 2 --idle-limit 1s 100.64.0.7/2026-11-01T14-03-22.123456789Z.cast
    reel play -n session.cast > session.txt
`

// playCmd is "reel play"; clock paces the replay (tests use a fake one).
type playCmd struct{ clock clock }

// clock is the time a replay is paced by.
type clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

func (c playCmd) run(ctx context.Context, env *cmdEnv, args []string) error {
	fs := newFlagSet(env, "play", playUsage)
	sf := addStoreFlags(fs, env)
	speed := fs.Float64("speed", 1, "replay this many times faster (0.5 is half speed)")
	idle := fs.Duration("idle-limit", 0, "shorten pauses longer than this to this (default: the recording's idle_time_limit, if any; 0 keeps every pause)")
	atFlag := fs.String("at", "", "start at this moment of the recording (1:23, 1:02:03, 83s): what came before is shown at once, as reel search prints it")
	var noWait bool
	fs.BoolVar(&noWait, "no-wait", false, "write everything at once: no delays, no keys (non-interactive)")
	fs.BoolVar(&noWait, "n", false, "short for --no-wait")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	switch {
	case fs.NArg() == 0:
		return usagef("name a recording: a .cast file or a <node>/<name>.cast key")
	case fs.NArg() > 1:
		return usagef("play one recording at a time (got %d)", fs.NArg())
	case !(*speed > 0) || math.IsInf(*speed, 0):
		return usagef("--speed must be a positive number, got %v", *speed)
	case *idle < 0:
		return usagef("--idle-limit must not be negative, got %s", *idle)
	}
	at, err := parseMoment(*atFlag)
	if err != nil {
		return usagef("--at: %v", err)
	}
	idleSet := false
	fs.Visit(func(f *flag.Flag) { idleSet = idleSet || f.Name == "idle-limit" })

	rec, err := openRecording(ctx, env, sf, fs.Arg(0))
	if err != nil {
		return err
	}
	defer rec.Close()
	src := newEventSource(rec.r)
	h, err := src.dec.Header()
	if err != nil {
		return fmt.Errorf("%s: %w", rec.name, err)
	}

	p := &player{
		out:    env.stdout,
		clock:  c.clock,
		speed:  *speed,
		noWait: noWait,
		kube:   h.IsKubernetes(),
		at:     at,
		cols:   h.Width,
		rows:   h.Height,
	}
	p.maxCols, p.maxRows = p.cols, p.rows
	if idleSet {
		p.idleLimit = idle.Seconds()
	} else if h.IdleTimeLimit > 0 {
		p.idleLimit = h.IdleTimeLimit
	}

	var bw *bufio.Writer
	restore := func() {}
	if noWait {
		bw = bufio.NewWriterSize(env.stdout, 64<<10)
		p.out = bw
	} else if in, _, ok := isTerminal(env.stdin); ok && fs.Arg(0) != "-" {
		var keys <-chan byte
		restore, keys, err = interactive(in)
		if err != nil {
			return err
		}
		defer restore() // on panic; the call below is the usual one
		p.keys = keys
	}

	err = p.play(ctx, src.next)
	restore() // before any note, which needs a cooked terminal
	if bw != nil {
		if ferr := bw.Flush(); err == nil {
			err = ferr
		}
	}
	if errors.Is(err, errQuit) {
		return nil
	}
	if err != nil {
		if ctx.Err() != nil {
			return errors.New("interrupted")
		}
		return fmt.Errorf("%s: %w", rec.name, err)
	}
	notes(env, rec, src.dec)
	if _, fd, ok := isTerminal(env.stdout); ok {
		if cols, rows, err := term.GetSize(fd); err == nil {
			if n := p.sizeNote(cols, rows); n != "" {
				fmt.Fprintln(env.stderr, n)
			}
		}
	}
	if err := src.skippedError(); err != nil {
		return fmt.Errorf("%s: %w", rec.name, err)
	}
	return nil
}

// errQuit ends a replay the user quit.
var errQuit = errors.New("quit")

// player replays a recording's output events with their timing.
type player struct {
	out       io.Writer
	clock     clock
	speed     float64     // > 0
	idleLimit float64     // seconds; pauses longer are cut to this; 0: none
	noWait    bool        // no delays at all
	at        float64     // events before this time are shown at once
	keys      <-chan byte // key presses; nil when not interactive

	posWall  time.Time // when the last event shown was due (shown)
	paused   bool
	pausedAt time.Time // when the replay was paused, or last stepped

	kube             bool // resize events are HEIGHTxWIDTH
	cols, rows       int  // the recorded terminal's current size
	maxCols, maxRows int  // and the largest it was
}

// Keys a replay understands.
const (
	keyPause = ' '
	keyStep  = '.'
	keyQuit  = 'q'
	keyCtrlC = 3
)

// play writes dec's output events to p.out, each when it is due: at its
// recorded time (pauses capped at idleLimit) divided by speed, counted from
// the previous event's due time, so delays do not add up. A pause stops
// the count; resuming goes on with what was left.
func (p *player) play(ctx context.Context, next func() (asciicast.Event, error)) error {
	var (
		prev float64 // recorded time of the previous event
		virt float64 // playback position: recorded time with idle pauses capped
		pos  float64 // virt of the last event shown
	)
	p.posWall = p.clock.Now()
	for {
		ev, err := next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		gap := ev.Time - prev
		if !(gap > 0) { // negative or NaN: show at once
			gap = 0
		}
		prev = ev.Time
		if p.idleLimit > 0 && gap > p.idleLimit {
			gap = p.idleLimit
		}
		virt += gap
		if ev.Time < p.at {
			p.posWall = p.clock.Now() // before --at: shown at once
		} else if !p.noWait {
			step, err := p.wait(ctx, virt-pos)
			if err != nil {
				return err
			}
			if step {
				now := p.clock.Now()
				p.posWall, p.pausedAt = now, now
			} else {
				p.posWall = p.posWall.Add(p.realDuration(virt - pos))
			}
		}
		pos = virt
		if ev.Time < p.at {
			pos += p.at - ev.Time // the replay goes on from p.at
		}
		if err := p.show(ev); err != nil {
			return err
		}
	}
}

// wait returns when the next event, gap seconds of playback after the last
// one shown, is due, handling keys meanwhile. step reports that the user
// stepped to it while paused.
func (p *player) wait(ctx context.Context, gap float64) (step bool, err error) {
	for {
		if p.paused {
			select {
			case <-ctx.Done():
				return false, ctx.Err()
			case k, ok := <-p.keys:
				switch {
				case !ok || k == keyPause: // no more keys, or resume
					if !ok {
						p.keys = nil
					}
					p.paused = false
					p.posWall = p.posWall.Add(p.clock.Now().Sub(p.pausedAt))
				case k == keyStep:
					return true, nil
				case k == keyQuit, k == keyCtrlC:
					return false, errQuit
				}
			}
			continue
		}
		d := p.posWall.Add(p.realDuration(gap)).Sub(p.clock.Now())
		if d <= 0 {
			return false, nil
		}
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-p.clock.After(d):
			return false, nil
		case k, ok := <-p.keys:
			switch {
			case !ok:
				p.keys = nil
			case k == keyPause:
				p.paused, p.pausedAt = true, p.clock.Now()
			case k == keyQuit, k == keyCtrlC:
				return false, errQuit
			}
		}
	}
}

// realDuration is how long a stretch of recorded time takes to replay.
func (p *player) realDuration(sec float64) time.Duration {
	return time.Duration(sec / p.speed * float64(time.Second))
}

// show writes one event: output to the terminal; a resize updates the
// recorded size; the rest is skipped.
func (p *player) show(ev asciicast.Event) error {
	switch ev.Code {
	case asciicast.Output:
		_, err := io.WriteString(p.out, ev.Data)
		return err
	case asciicast.Resize:
		cols, rows, err := asciicast.ParseResize(ev.Data, p.kube)
		if err != nil {
			return nil // a bad resize changes nothing on screen
		}
		p.cols, p.rows = cols, rows
		p.maxCols, p.maxRows = max(p.maxCols, cols), max(p.maxRows, rows)
	}
	return nil
}

// sizeNote returns a note when the recording was larger than a terminal of
// cols×rows, or "".
func (p *player) sizeNote(cols, rows int) string {
	if p.maxCols <= cols && p.maxRows <= rows {
		return ""
	}
	return fmt.Sprintf("note: the recording was up to %dx%d; this terminal is %dx%d, so some output may have wrapped", p.maxCols, p.maxRows, cols, rows)
}

// parseMoment reads a moment in a recording: "" (the start), M:SS, H:MM:SS,
// or a number of seconds with an optional unit (83, 83.5s, 2m).
func parseMoment(s string) (float64, error) {
	s = strings.TrimPrefix(strings.TrimSpace(s), "+")
	if s == "" {
		return 0, nil
	}
	if strings.Contains(s, ":") {
		var total float64
		parts := strings.Split(s, ":")
		if len(parts) > 3 {
			return 0, fmt.Errorf("%q: want M:SS or H:MM:SS", s)
		}
		for _, p := range parts {
			v, err := strconv.ParseFloat(p, 64)
			if err != nil || v < 0 || math.IsInf(v, 0) {
				return 0, fmt.Errorf("%q: want M:SS or H:MM:SS", s)
			}
			total = total*60 + v
		}
		return total, nil
	}
	if v, err := strconv.ParseFloat(s, 64); err == nil && v >= 0 && !math.IsInf(v, 0) {
		return v, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return d.Seconds(), nil
	}
	return 0, fmt.Errorf("%q is not a moment (1:23, 1:02:03, 83s)", s)
}
