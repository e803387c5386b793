// Package player replays asciicast recordings in a terminal with their
// recorded timing: speed, idle limit, pause, step and quit keys, and a
// clean terminal afterwards however the replay ends.
//
// A Player writes output events to Out, each when it is due. Keys (from
// Interactive, which puts the terminal into raw mode) pause, step and quit.
// Reset returns what undoes the terminal modes the replayed output turned
// on (alternate screen, mouse reporting, application keypad, hidden
// cursor, ...) and ends on a fresh line: write it when a replay stops
// early, or always on a terminal.
//
//	p := player.New(os.Stdout, header)
//	restore, keys, err := player.Interactive(os.Stdin)
//	...
//	p.Keys = keys
//	err = p.Play(ctx, events.Next)
//	os.Stdout.Write(p.Reset())
//	restore()
package player

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/reel-rec/reel/internal/asciicast"
)

// Clock is the time a replay is paced by; tests use a fake one.
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// RealClock is the wall clock.
var RealClock Clock = realClock{}

// ErrQuit ends a replay the user quit (q or Ctrl-C as a key).
var ErrQuit = errors.New("quit")

// Keys a replay understands.
const (
	KeyPause = ' '  // pause / resume
	KeyStep  = '.'  // while paused: the next event
	KeyQuit  = 'q'  // quit
	KeyCtrlC = 0x03 // quit, as Ctrl-C reads in raw mode
)

// Player replays a recording's output events with their timing. Set its
// fields before Play; a Player plays once.
type Player struct {
	Out   io.Writer
	Clock Clock // nil: RealClock
	// Speed replays this many times faster; 0 means 1.
	Speed float64
	// IdleLimit shortens pauses longer than this many seconds to it; 0
	// keeps every pause.
	IdleLimit float64
	// NoWait writes every event at once, with no delays and no keys.
	NoWait bool
	// Keys are key presses (KeyPause, ...); nil when not interactive.
	Keys <-chan byte
	// Kubernetes: resize events are HEIGHTxWIDTH (asciicast.ParseResize).
	Kubernetes bool
	// Cols and Rows are the recorded terminal's size at the start.
	Cols, Rows int

	posWall  time.Time // when the last event shown was due (shown)
	paused   bool
	pausedAt time.Time // when the replay was paused, or last stepped

	maxCols, maxRows int   // the largest the recorded terminal was
	modes            modes // terminal modes the output left on
}

// New returns a Player for a recording with header h, writing to out: the
// recorded size, the Kubernetes resize order and the header's
// idle_time_limit are taken from h.
func New(out io.Writer, h asciicast.Header) *Player {
	return &Player{Out: out, Kubernetes: h.ResizeRowsFirst(), Cols: h.Width, Rows: h.Height, IdleLimit: h.IdleTimeLimit}
}

// Play writes the output events next returns to Out, each when it is due:
// at its recorded time (pauses capped at IdleLimit) divided by Speed,
// counted from the previous event's due time, so delays do not add up. A
// pause stops the count; resuming goes on with what was left. It returns
// nil at the end (next returns io.EOF), ErrQuit when the user quit,
// ctx's error when ctx is done, or next's or Out's error.
func (p *Player) Play(ctx context.Context, next func() (asciicast.Event, error)) error {
	if p.Clock == nil {
		p.Clock = RealClock
	}
	if !(p.Speed > 0) {
		p.Speed = 1
	}
	p.maxCols, p.maxRows = max(p.maxCols, p.Cols), max(p.maxRows, p.Rows)
	var (
		prev float64 // recorded time of the previous event
		virt float64 // playback position: recorded time with idle pauses capped
		pos  float64 // virt of the last event shown
	)
	p.posWall = p.Clock.Now()
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
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
		if p.IdleLimit > 0 && gap > p.IdleLimit {
			gap = p.IdleLimit
		}
		virt += gap
		if !p.NoWait {
			step, err := p.wait(ctx, virt-pos)
			if err != nil {
				return err
			}
			if step {
				now := p.Clock.Now()
				p.posWall, p.pausedAt = now, now
			} else {
				p.posWall = p.posWall.Add(p.realDuration(virt - pos))
			}
		}
		pos = virt
		if err := p.show(ev); err != nil {
			return err
		}
	}
}

// wait returns when the next event, gap seconds of playback after the last
// one shown, is due, handling keys meanwhile. step reports that the user
// stepped to it while paused.
func (p *Player) wait(ctx context.Context, gap float64) (step bool, err error) {
	for {
		if p.paused {
			select {
			case <-ctx.Done():
				return false, ctx.Err()
			case k, ok := <-p.Keys:
				switch {
				case !ok || k == KeyPause: // no more keys, or resume
					if !ok {
						p.Keys = nil
					}
					p.paused = false
					p.posWall = p.posWall.Add(p.Clock.Now().Sub(p.pausedAt))
				case k == KeyStep:
					return true, nil
				case k == KeyQuit, k == KeyCtrlC:
					return false, ErrQuit
				}
			}
			continue
		}
		d := p.posWall.Add(p.realDuration(gap)).Sub(p.Clock.Now())
		if d <= 0 {
			return false, nil
		}
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-p.Clock.After(d):
			return false, nil
		case k, ok := <-p.Keys:
			switch {
			case !ok:
				p.Keys = nil
			case k == KeyPause:
				p.paused, p.pausedAt = true, p.Clock.Now()
			case k == KeyQuit, k == KeyCtrlC:
				return false, ErrQuit
			}
		}
	}
}

// realDuration is how long a stretch of recorded time takes to replay.
func (p *Player) realDuration(sec float64) time.Duration {
	return time.Duration(sec / p.Speed * float64(time.Second))
}

// show writes one event: output to the terminal; a resize updates the
// recorded size; the rest is skipped.
func (p *Player) show(ev asciicast.Event) error {
	switch ev.Code {
	case asciicast.Output:
		p.modes.feed(ev.Data)
		_, err := io.WriteString(p.Out, ev.Data)
		return err
	case asciicast.Resize:
		cols, rows, err := asciicast.ParseResize(ev.Data, p.Kubernetes)
		if err != nil {
			return nil // a bad resize changes nothing on screen
		}
		p.Cols, p.Rows = cols, rows
		p.maxCols, p.maxRows = max(p.maxCols, cols), max(p.maxRows, rows)
	}
	return nil
}

// MaxSize is the largest the recorded terminal was in what was played.
func (p *Player) MaxSize() (cols, rows int) {
	return max(p.maxCols, p.Cols), max(p.maxRows, p.Rows)
}

// Reset returns the bytes that undo the terminal modes the output played
// so far left on (alternate screen, mouse reporting, bracketed paste,
// application cursor keys and keypad, hidden cursor, no autowrap, text
// attributes), then a newline if the output did not end at the start of a
// line. It is empty for output that left nothing to undo.
func (p *Player) Reset() []byte { return p.modes.reset() }

// SizeNote returns a note for a reviewer whose terminal is cols×rows when
// the recording is recCols×recRows, or "" when it fits.
func SizeNote(recCols, recRows, cols, rows int) string {
	if recCols <= cols && recRows <= rows {
		return ""
	}
	return fmt.Sprintf("note: the recording is up to %dx%d; this terminal is %dx%d, so some output may wrap", recCols, recRows, cols, rows)
}
