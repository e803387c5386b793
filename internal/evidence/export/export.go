// Package export turns a terminal recording into what an investigation
// hands on: a part of the recording as asciicast, the text as the screen
// showed it (emulated by internal/vt, never the raw escape sequences), an
// animated GIF rendered in pure Go with a bundled monospace font (Go Mono),
// and a self-contained HTML page with the player. The GIF and the font stay
// in this package.
package export

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"strings"

	"github.com/reel-rec/reel/internal/asciicast"
	"github.com/reel-rec/reel/internal/vt"
)

// Range is a part of a recording, in seconds from its start. To < 0 means
// to the end.
type Range struct {
	From, To float64
}

// All is the whole recording.
var All = Range{From: 0, To: -1}

func (r Range) before(t float64) bool { return t < r.From }
func (r Range) after(t float64) bool  { return r.To >= 0 && t > r.To }

// Progress is told how far an export has got: bytes of the recording read,
// of total (0 when not known).
type Progress func(done, total int64)

// countingReader reports bytes read to a Progress.
type countingReader struct {
	r     io.Reader
	n     int64
	total int64
	p     Progress
}

func (c *countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n += int64(n)
	if c.p != nil && n > 0 {
		c.p(c.n, c.total)
	}
	return n, err
}

func counting(r io.Reader, total int64, p Progress) io.Reader {
	if p == nil {
		return r
	}
	return &countingReader{r: r, total: total, p: p}
}

// Cast writes the events of rg as a recording of its own: the header (its
// duration dropped, its timestamp moved by From), then the events in rg
// with times shifted so the part starts at 0. The size the terminal had at
// From is kept as the header's, so the part plays as it was seen; the
// screen's contents before From are not reproduced (the output that drew
// them is outside the part).
func Cast(w io.Writer, r io.Reader, rg Range) error {
	dec := asciicast.NewDecoder(r)
	h, err := dec.Header()
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	var events []asciicast.Event
	for {
		ev, err := dec.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("export: %w", err)
		}
		if rg.after(ev.Time) {
			break
		}
		if rg.before(ev.Time) {
			if ev.Code == asciicast.Resize {
				if cols, rows, err := asciicast.ParseResize(ev.Data, h.IsKubernetes()); err == nil {
					h.Width, h.Height = cols, rows
				}
			}
			continue
		}
		ev.Time = math.Max(0, ev.Time-rg.From)
		events = append(events, ev)
	}
	h.Duration = 0
	if rg.From > 0 && h.Timestamp > 0 {
		h.Timestamp += int64(rg.From)
	}
	bw := bufio.NewWriter(w)
	hb, err := h.MarshalJSON()
	if err != nil {
		return err
	}
	bw.Write(append(hb, '\n'))
	var line []byte
	for _, ev := range events {
		line = asciicast.AppendEvent(line[:0], ev)
		bw.Write(append(line, '\n'))
	}
	return bw.Flush()
}

// Screen is the terminal as a recording left it.
type Screen struct {
	// Scrolled holds the lines that left the main screen (scrolled off or
	// cleared) within the range, in order, wrapped rows joined.
	Scrolled []string
	// Lines is the screen showing at the end of the range (the alternate
	// screen if a full-screen program had it), one string per row, without
	// trailing blanks and blank rows at the end.
	Lines []string
	// Cols and Rows are the terminal's size then.
	Cols, Rows int
	// Time is the time of the last event applied.
	Time float64
}

// replay feeds r's output and resizes up to rg.To through a terminal.
// frame, if set, is called after each event with the terminal and the
// event's time.
func replay(r io.Reader, rg Range, frame func(t *vt.Terminal, at float64)) (*vt.Terminal, *Screen, error) {
	dec := asciicast.NewDecoder(r)
	h, err := dec.Header()
	if err != nil {
		return nil, nil, fmt.Errorf("export: %w", err)
	}
	cols, rows := h.Width, h.Height
	if cols <= 0 || rows <= 0 {
		cols, rows = 80, 24
	}
	term := vt.New(cols, rows)
	s := &Screen{}
	var part strings.Builder
	var now float64
	term.LineOff = func(l vt.Line) {
		if float64(l.Stamp)/1e6 < rg.From {
			part.Reset()
			return
		}
		part.Write(l.Text)
		if l.Wrapped {
			return
		}
		s.Scrolled = append(s.Scrolled, strings.TrimRight(part.String(), " "))
		part.Reset()
	}
	for {
		ev, err := dec.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, nil, fmt.Errorf("export: %w", err)
		}
		if rg.after(ev.Time) {
			break
		}
		now = math.Max(now, ev.Time) // tolerate the small steps back senders make
		term.SetStamp(int64(now * 1e6))
		switch ev.Code {
		case asciicast.Output:
			term.WriteString(ev.Data)
		case asciicast.Resize:
			c, r, err := asciicast.ParseResize(ev.Data, h.IsKubernetes())
			if err != nil {
				continue
			}
			term.Resize(c, r)
		default:
			continue
		}
		if frame != nil {
			frame(term, now)
		}
	}
	s.Lines = term.Lines()
	s.Cols, s.Rows = term.Size()
	s.Time = now
	return term, s, nil
}

// Text replays r up to rg.To and returns the screen it leaves, with the
// lines that scrolled off within rg.
func Text(r io.Reader, size int64, rg Range, p Progress) (*Screen, error) {
	_, s, err := replay(counting(r, size, p), rg, nil)
	return s, err
}

// WriteText writes s as plain text: the lines that scrolled off, then the
// screen's.
func WriteText(w io.Writer, s *Screen) error {
	bw := bufio.NewWriter(w)
	for _, l := range s.Scrolled {
		bw.WriteString(l)
		bw.WriteByte('\n')
	}
	for _, l := range s.Lines {
		bw.WriteString(l)
		bw.WriteByte('\n')
	}
	return bw.Flush()
}
