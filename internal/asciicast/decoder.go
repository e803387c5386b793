package asciicast

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// Decoder reads a recording: asciicast v2, and v1 and v3 converted on the
// fly, so that Next always returns events with v2 times (seconds since the
// start, not intervals) and Header always has Width and Height.
//
// It reads line by line and holds at most one line (MaxLine bytes). A v1
// recording is one JSON document, which it reads whole, up to MaxLine bytes.
//
// Reading is lenient where it costs nothing: blank lines are skipped, v3
// comment lines ("#...") are skipped, a UTF-8 byte order mark before the
// header is ignored, and invalid UTF-8 in strings becomes U+FFFD. Times are
// not checked for order; use a Checker for that.
type Decoder struct {
	// MaxLine is the longest line read, in bytes, without its newline; zero
	// means 64 MiB. A longer line is skipped, without being held in memory,
	// and reported by an error that wraps ErrLineTooLong. Set it before the
	// first call to Header or Next.
	MaxLine int

	r         *bufio.Reader
	buf       []byte // a line longer than the bufio buffer
	line      int64  // number of the last line read
	err       error  // sticky: a read error, or io.EOF once the end is reached
	truncated bool

	hdrDone bool
	header  Header
	hdrErr  error
	clock   float64 // v1, v3: the time of the last event, summed

	code, data []byte // NextRaw's decoded strings

	v1      *json.Decoder // v1: positioned in the stdout array
	v1doc   []byte
	v1frame int
}

// NewDecoder returns a Decoder that reads from r.
func NewDecoder(r io.Reader) *Decoder {
	return &Decoder{r: bufio.NewReaderSize(r, 64<<10)}
}

// Truncated reports whether the recording ends in a partial line: a last
// line without a newline that is not valid JSON, as a recording cut off in
// the middle of a write leaves it. Next reports such an end as io.EOF.
func (d *Decoder) Truncated() bool { return d.truncated }

func (d *Decoder) maxLine() int {
	if d.MaxLine > 0 {
		return d.MaxLine
	}
	return defaultMaxLine
}

// Header returns the header, reading it first if it has not been read.
// Version is the version as read (1, 2 or 3); Width and Height are filled in
// for every version (from "term" for v3). Empty input is an error that wraps
// io.EOF.
func (d *Decoder) Header() (Header, error) {
	if !d.hdrDone {
		d.hdrDone = true
		d.header, d.hdrErr = d.readHeader()
	}
	return d.header, d.hdrErr
}

// Next returns the next event, or io.EOF at the end. Its Time is in seconds
// since the start of the recording, whatever the version.
//
// An error about one line (malformed, too long) names the line; Next may be
// called again to go on with the following line. Read errors are returned
// again by every later call.
func (d *Decoder) Next() (Event, error) {
	h, err := d.Header()
	if err != nil {
		return Event{}, err
	}
	if h.Version == 1 {
		return d.nextV1()
	}
	line, sp, err := d.nextLine(h.Version)
	if err != nil {
		return Event{}, err
	}
	ev, _ := sp.event(line) // nextLine checked the time
	if h.Version == 3 {
		d.clock += ev.Time
		ev.Time = d.clock
	}
	return ev, nil
}

// RawEvent is an event as NextRaw returns it: Code and Data are decoded
// into memory the Decoder reuses, valid until the next call to Next or
// NextRaw.
type RawEvent struct {
	Time float64
	Code []byte
	Data []byte
}

// NextRaw is Next without allocating: it is for readers that look at each
// event once, such as an indexer feeding a terminal emulator.
func (d *Decoder) NextRaw() (RawEvent, error) {
	h, err := d.Header()
	if err != nil {
		return RawEvent{}, err
	}
	if h.Version == 1 {
		ev, err := d.nextV1()
		return RawEvent{Time: ev.Time, Code: []byte(ev.Code), Data: []byte(ev.Data)}, err
	}
	line, sp, err := d.nextLine(h.Version)
	if err != nil {
		return RawEvent{}, err
	}
	ev := RawEvent{Code: line[sp.code0:sp.code1], Data: line[sp.data0:sp.data1]}
	ev.Time, _ = parseTime(line[sp.time0:sp.time1])
	if !sp.codeRaw {
		d.code = unquote(d.code[:0], ev.Code)
		ev.Code = d.code
	}
	if !sp.dataRaw {
		d.data = unquote(d.data[:0], ev.Data)
		ev.Data = d.data
	}
	if h.Version == 3 {
		d.clock += ev.Time
		ev.Time = d.clock
	}
	return ev, nil
}

// nextLine reads the next event line of a v2 or v3 recording and scans it.
func (d *Decoder) nextLine(version int) ([]byte, span, error) {
	for {
		line, complete, err := d.readLine()
		if err != nil {
			return nil, span{}, err
		}
		if len(bytes.Trim(line, " \t\r")) == 0 || version == 3 && line[0] == '#' {
			continue
		}
		var sp span
		ok := false
		if n, scanned := scanEvent(line, false, &sp); scanned && n == len(line) {
			_, ok = parseTime(line[sp.time0:sp.time1])
		}
		if !ok {
			if !complete && !json.Valid(line) {
				d.truncated = true
				return nil, span{}, io.EOF
			}
			return nil, span{}, d.lineError(line)
		}
		return line, sp, nil
	}
}

// lineError says why a line is not an event.
func (d *Decoder) lineError(line []byte) error {
	var m lineMachine
	m.reset(nil, false, false)
	m.feed(line)
	m.eol()
	err := m.problem
	if err == nil { // cannot happen: the machine and the scanner agree
		err = errors.New("event is not [time, code, data]")
	}
	return fmt.Errorf("asciicast: line %d: %w", d.line, err)
}

// readLine returns the next line without its newline, and whether it had
// one. The line is valid until the next call. A line over MaxLine is read
// through and dropped, and reported by an error.
func (d *Decoder) readLine() (line []byte, complete bool, err error) {
	if d.err != nil {
		return nil, false, d.err
	}
	maxLen := d.maxLine()
	d.buf = d.buf[:0]
	tooLong := false
	for {
		frag, err := d.r.ReadSlice('\n')
		switch {
		case err == nil: // frag ends the line
			d.line++
			frag = frag[:len(frag)-1]
			if tooLong || len(d.buf)+len(frag) > maxLen {
				return nil, true, d.tooLong()
			}
			if len(d.buf) == 0 {
				return frag, true, nil
			}
			d.buf = append(d.buf, frag...)
			return d.buf, true, nil
		case errors.Is(err, bufio.ErrBufferFull):
			if !tooLong && len(d.buf)+len(frag) > maxLen {
				tooLong, d.buf = true, d.buf[:0]
			}
			if !tooLong {
				d.buf = append(d.buf, frag...)
			}
		case err == io.EOF && (len(frag) > 0 || len(d.buf) > 0 || tooLong):
			d.line++
			d.err = io.EOF
			if tooLong || len(d.buf)+len(frag) > maxLen {
				return nil, false, d.tooLong()
			}
			d.buf = append(d.buf, frag...)
			return d.buf, false, nil
		case err == io.EOF:
			d.err = io.EOF
			return nil, false, io.EOF
		default:
			d.err = fmt.Errorf("asciicast: read after line %d: %w", d.line, err)
			return nil, false, d.err
		}
	}
}

func (d *Decoder) tooLong() error {
	return fmt.Errorf("asciicast: line %d: %w: more than %d bytes", d.line, ErrLineTooLong, d.maxLine())
}

func (d *Decoder) readHeader() (Header, error) {
	line, complete, err := d.readLine()
	switch {
	case err == io.EOF:
		return Header{}, fmt.Errorf("asciicast: empty input: %w", io.EOF)
	case err != nil:
		return Header{}, err
	}
	line = bytes.TrimPrefix(line, []byte("\uFEFF"))
	if json.Valid(line) {
		var h Header
		if err := h.decode(line); err != nil {
			return Header{}, fmt.Errorf("asciicast: line 1: header: %w", err)
		}
		switch h.Version {
		case 1:
			return d.startV1(bytes.Clone(line))
		case 2:
		case 3:
			if err := fillTerm(&h); err != nil {
				return Header{}, fmt.Errorf("asciicast: line 1: header: %w", err)
			}
		default:
			return Header{}, fmt.Errorf("asciicast: line 1: header: unsupported version %d", h.Version)
		}
		return h, nil
	}
	if !complete {
		d.truncated = true
		return Header{}, fmt.Errorf("asciicast: line 1: header cut off: %w", io.ErrUnexpectedEOF)
	}
	if t := bytes.TrimLeft(line, " \t\r"); len(t) > 0 && t[0] == '{' {
		// An object over several lines: a v1 document, perhaps.
		return d.readV1(line)
	}
	var h Header
	err = h.decode(line)
	if err == nil { // cannot happen: line is not valid JSON
		err = errors.New("invalid JSON")
	}
	return Header{}, fmt.Errorf("asciicast: line 1: header: %w", err)
}

// fillTerm sets Width and Height of a v3 header from its term object.
func fillTerm(h *Header) error {
	raw, ok := h.Extra["term"]
	if !ok {
		return nil
	}
	var term struct{ Cols, Rows int }
	if err := json.Unmarshal(raw, &term); err != nil {
		return fmt.Errorf("term: %w", err)
	}
	h.Width, h.Height = term.Cols, term.Rows
	return nil
}

// readV1 reads the JSON document that starts with line 1 and spreads over
// more lines, up to MaxLine bytes in all.
func (d *Decoder) readV1(first []byte) (Header, error) {
	maxLen := d.maxLine()
	var seen bytes.Buffer // what the JSON decoder read, for line numbers
	seen.Write(first)
	seen.WriteByte('\n')
	rest := io.LimitReader(d.r, int64(maxLen-seen.Len())+1)
	jd := json.NewDecoder(io.MultiReader(bytes.NewReader(bytes.Clone(seen.Bytes())), io.TeeReader(rest, &seen)))
	var doc json.RawMessage
	if err := jd.Decode(&doc); err != nil {
		var se *json.SyntaxError
		switch {
		case seen.Len() > maxLen:
			return Header{}, fmt.Errorf("asciicast: line 1: %w: a JSON document of more than %d bytes", ErrLineTooLong, maxLen)
		case errors.As(err, &se):
			return Header{}, fmt.Errorf("asciicast: line %d: header: %w", lineAt(seen.Bytes(), se.Offset), err)
		case errors.Is(err, io.ErrUnexpectedEOF):
			d.truncated = true
			return Header{}, fmt.Errorf("asciicast: line %d: JSON document cut off: %w", lineAt(seen.Bytes(), int64(seen.Len())), err)
		default:
			return Header{}, fmt.Errorf("asciicast: line 1: header: %w", err)
		}
	}
	d.err = io.EOF // the document is the whole recording
	return d.startV1(doc)
}

// lineAt returns the number of the line that holds b[off].
func lineAt(b []byte, off int64) int64 {
	off = min(off, int64(len(b)))
	return 1 + int64(bytes.Count(b[:off], []byte{'\n'}))
}

// startV1 takes a whole v1 document: its members but stdout make the header,
// and the decoder is left at the start of the stdout array.
func (d *Decoder) startV1(doc []byte) (Header, error) {
	var h Header
	if err := h.decode(doc); err != nil {
		return Header{}, fmt.Errorf("asciicast: line 1: header: %w", err)
	}
	if h.Version != 1 {
		return Header{}, fmt.Errorf("asciicast: line 1: header: unsupported version %d in a multi-line document", h.Version)
	}
	delete(h.Extra, "stdout")
	if len(h.Extra) == 0 {
		h.Extra = nil
	}
	d.v1doc = doc
	d.v1 = json.NewDecoder(bytes.NewReader(doc))
	d.v1.Token() // '{', valid: h.decode read the document
	for d.v1.More() {
		key, _ := d.v1.Token()
		if key == "stdout" {
			if tok, err := d.v1.Token(); err != nil || tok != json.Delim('[') {
				return Header{}, fmt.Errorf("asciicast: line %d: v1 stdout is not an array", d.v1Line())
			}
			return h, nil
		}
		var skip json.RawMessage
		d.v1.Decode(&skip)
	}
	d.v1 = nil // no stdout: no events
	d.err = io.EOF
	return h, nil
}

func (d *Decoder) v1Line() int64 { return lineAt(d.v1doc, d.v1.InputOffset()) }

// nextV1 returns the next frame [delay, data] of a v1 stdout array.
func (d *Decoder) nextV1() (Event, error) {
	if d.v1 == nil || !d.v1.More() {
		d.v1 = nil
		return Event{}, io.EOF
	}
	d.v1frame++
	off := d.v1.InputOffset() // the frame starts after spaces and a comma
	for off < int64(len(d.v1doc)) && bytes.IndexByte([]byte(" \t\r\n,"), d.v1doc[off]) >= 0 {
		off++
	}
	line := lineAt(d.v1doc, off)
	var frame []json.RawMessage
	var ev Event
	err := d.v1.Decode(&frame) // the document is valid JSON: an error is about this frame only
	if err == nil {
		switch {
		case len(frame) != 2:
			err = fmt.Errorf("%d elements, want [delay, data]", len(frame))
		case !isNumber(frame[0]):
			err = fmt.Errorf("delay %.20s is not a number", frame[0])
		case frame[1][0] != '"':
			err = fmt.Errorf("data %.20s is not a string", frame[1])
		default:
			if err = json.Unmarshal(frame[0], &ev.Time); err == nil {
				err = json.Unmarshal(frame[1], &ev.Data)
			}
		}
	}
	if err != nil {
		return Event{}, fmt.Errorf("asciicast: line %d: v1 stdout frame %d: %w", line, d.v1frame, err)
	}
	d.clock += ev.Time
	ev.Time, ev.Code = d.clock, Output
	return ev, nil
}

func isNumber(raw []byte) bool {
	return len(raw) > 0 && (raw[0] == '-' || isDigit(raw[0]))
}
