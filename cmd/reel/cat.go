package main

import (
	"bufio"
	"context"
	"fmt"
	"io"

	"github.com/reel-rec/reel/internal/asciicast"
	"github.com/reel-rec/reel/internal/review"
)

func init() {
	register(&command{name: "cat", summary: "print a recording's output all at once", run: runCat})
}

const catUsage = `
Usage: reel cat [flags] FILE-or-KEY...

Prints everything the recorded terminal showed (the output events), in
order, with no delays: pipe it to less -R, grep it, or let your terminal
render it. With --input it also prints what the user typed, where the
recording has it (input is rarely recorded).

FILE is a path to a .cast file (asciicast v1, v2 or v3), or "-" for standard
input. KEY is a recording's key "<node>/<time>.cast" in --dst, as "reel ls"
shows it. A desktop recording (.desk) is played in the web UI or exported
with "reel export KEY --video FILE".

A recording that did not end normally (live, interrupted, failed) is printed
as far as it goes, and a note on standard error says so. Lines that are not
asciicast events (a malformed recording) are skipped, everything else is
printed, and reel cat then fails saying which lines it skipped.

Examples:
    reel cat recordings/100.64.0.7/2026-11-01T14-03-22.123456789Z.cast
    reel cat 100.64.0.7/2026-11-01T14-03-22.123456789Z.cast | less -R
    reel cat --input session.cast
    curl -s https://example.com/demo.cast | reel cat -
`

func runCat(ctx context.Context, env *cmdEnv, args []string) error {
	fs := newFlagSet(env, "cat", catUsage)
	sf := addStoreFlags(fs, env)
	input := fs.Bool("input", false, `also print input events ("i"), interleaved with output`)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return usagef("name a recording: a .cast file or a <node>/<time>.cast key")
	}
	out := bufio.NewWriterSize(env.stdout, 64<<10)
	for _, arg := range fs.Args() {
		err := catOne(ctx, env, out, sf, arg, *input)
		if ferr := out.Flush(); err == nil {
			err = ferr
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func catOne(ctx context.Context, env *cmdEnv, out *bufio.Writer, sf *storeFlags, arg string, input bool) error {
	rec, err := openRecording(ctx, env, sf, arg)
	if err != nil {
		return err
	}
	defer rec.Close()
	if err := rec.terminalOnly(arg); err != nil {
		return err
	}
	events := review.NewEvents(rec.r)
	if _, err := events.Header(); err != nil {
		return fmt.Errorf("%s: %w", rec.name, err)
	}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		ev, err := events.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			out.Flush()
			return fmt.Errorf("%s: %w", rec.name, err)
		}
		if ev.Code == asciicast.Output || input && ev.Code == asciicast.Input {
			if _, err := io.WriteString(out, ev.Data); err != nil {
				return err
			}
		}
	}
	if err := out.Flush(); err != nil {
		return err
	}
	notes(env, rec, events)
	if err := events.Skipped(); err != nil {
		return fmt.Errorf("%s: %w", rec.name, err)
	}
	return nil
}
