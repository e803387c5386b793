package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"math"

	"github.com/reel-rec/reel/internal/asciicast"
	"github.com/reel-rec/reel/internal/review"
	"github.com/reel-rec/reel/internal/review/player"
)

func init() {
	register(&command{name: "play", summary: "replay a recording in the terminal", run: playCmd{clock: player.RealClock}.run})
}

const playUsage = `
Usage: reel play [flags] FILE-or-KEY

Replays a recording in this terminal with its recorded timing.

FILE is a path to a .cast file (asciicast v1, v2 or v3), or "-" for standard
input. KEY is a recording's key "<node>/<time>.cast" in --dst, as "reel ls"
shows it. A desktop recording (.desk) is played in the web UI or exported
with "reel export KEY --video FILE".

When standard input is a terminal (and the recording does not come from
it), keys control the replay:

    space    pause / resume
    .        while paused: show the next event
    q        quit (so does Ctrl-C)

The terminal is put in raw mode for this and restored however reel play
ends (q, Ctrl-C, SIGTERM, the end): what the recording turned on (the
alternate screen, mouse reporting, application keypad, a hidden cursor) is
turned off again, and the shell prompt comes back on a fresh line.

Timing is replayed whether or not the output is a terminal, so that
"reel play F | tee out" behaves as on screen; --no-wait (-n) writes
everything at once with no delays and no keys, as "reel cat" does.
--idle-limit defaults to the recording's idle_time_limit, as in asciinema.
--at starts at a moment ("reel search" prints them): what was shown before
it is written at once, then the replay goes on with the recorded timing.

Recorded resizes do not resize your terminal (no terminal program can do
that reliably); use a terminal at least as large as the recording. If the
recording starts larger than the terminal, a note on standard error says so
before the replay (and at the end, if it only grew larger later). Input
events are not shown; markers and exit events are skipped.

Examples:
    reel play recordings/100.64.0.7/2026-11-01T14-03-22.123456789Z.cast
    reel play --speed 2 --idle-limit 1s 100.64.0.7/2026-11-01T14-03-22.123456789Z.cast
    reel play -n session.cast > session.txt
`

// playCmd is "reel play"; clock paces the replay (tests use a fake one).
type playCmd struct{ clock player.Clock }

func (c playCmd) run(ctx context.Context, env *cmdEnv, args []string) error {
	fs := newFlagSet(env, "play", playUsage)
	sf := addStoreFlags(fs, env)
	speed := fs.Float64("speed", 1, "replay this many times faster (0.5 is half speed)")
	idle := fs.Duration("idle-limit", 0, "shorten pauses longer than this to this (default: the recording's idle_time_limit, if any; 0 keeps every pause)")
	atFlag := fs.String("at", "", "start at this moment (1:23, 1:02:03, 83s), as reel search prints it: what came before is shown at once")
	var noWait bool
	fs.BoolVar(&noWait, "no-wait", false, "write everything at once: no delays, no keys (non-interactive)")
	fs.BoolVar(&noWait, "n", false, "short for --no-wait")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	switch {
	case fs.NArg() == 0:
		return usagef("name a recording: a .cast file or a <node>/<time>.cast key")
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
	if err := rec.terminalOnly(fs.Arg(0)); err != nil {
		return err
	}
	events := review.NewEvents(rec.r)
	h, err := events.Header()
	if err != nil {
		return fmt.Errorf("%s: %w", rec.name, err)
	}

	p := player.New(env.stdout, h)
	p.Clock, p.Speed, p.NoWait = c.clock, *speed, noWait
	if idleSet {
		p.IdleLimit = idle.Seconds()
	}

	// A terminal smaller than the recording: say so before the replay.
	cols, rows, isTerm := player.Size(env.stdout)
	warned := false
	if isTerm {
		if n := player.SizeNote(h.Width, h.Height, cols, rows); n != "" {
			fmt.Fprintln(env.stderr, n)
			warned = true
		}
	}

	var bw *bufio.Writer
	restore := func() {}
	if noWait {
		bw = bufio.NewWriterSize(env.stdout, 64<<10)
		p.Out = bw
	} else if in, _, ok := player.IsTerminal(env.stdin); ok && fs.Arg(0) != "-" {
		var keys <-chan byte
		restore, keys, err = player.Interactive(in)
		if err != nil {
			return err
		}
		defer restore() // on panic; the call below is the usual one
		p.Keys = keys
	}

	next := events.Next
	if at > 0 {
		// Events before --at come at time 0, at once; the rest keep their
		// timing from there.
		next = func() (asciicast.Event, error) {
			ev, err := events.Next()
			ev.Time = max(ev.Time-at, 0)
			return ev, err
		}
	}
	err = p.Play(ctx, next)
	if err != nil || isTerm {
		// Stopped early, or on a terminal: leave it as it was found
		// (main screen, modes off, cursor shown) on a fresh line.
		if _, werr := p.Out.Write(p.Reset()); err == nil {
			err = werr
		}
	}
	if bw != nil {
		if ferr := bw.Flush(); err == nil {
			err = ferr
		}
	}
	restore() // before any note, which needs a cooked terminal
	if errors.Is(err, player.ErrQuit) {
		return nil
	}
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("%s: %w", rec.name, err)
	}
	notes(env, rec, events)
	if mc, mr := p.MaxSize(); isTerm && !warned {
		if n := player.SizeNote(mc, mr, cols, rows); n != "" {
			fmt.Fprintln(env.stderr, n)
		}
	}
	if err := events.Skipped(); err != nil {
		return fmt.Errorf("%s: %w", rec.name, err)
	}
	return nil
}
