package asciicast

import (
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/google/go-cmp/cmp"
)

// decoded is everything a Decoder returns for an input.
type decoded struct {
	Header    Header
	HeaderErr string
	Events    []Event
	Errs      []string // errors from Next, in order, until io.EOF
	Truncated bool
}

func decodeAll(in string, maxLine int) decoded {
	dec := NewDecoder(strings.NewReader(in))
	dec.MaxLine = maxLine
	var d decoded
	h, err := dec.Header()
	d.Header = h
	if err != nil {
		d.HeaderErr = err.Error()
	}
	for range len(in) + 2 {
		ev, err := dec.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			d.Errs = append(d.Errs, err.Error())
			if err.Error() == d.HeaderErr {
				break // the header error, again
			}
			continue
		}
		d.Events = append(d.Events, ev)
	}
	d.Truncated = dec.Truncated()
	return d
}

var v2Header = Header{Version: 2, Width: 80, Height: 24, Timestamp: 1700000000}

const v2Line = `{"version":2,"width":80,"height":24,"timestamp":1700000000}`

func TestDecoder(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		maxLine int
		want    decoded
	}{
		{
			name: "v2",
			in:   v2Line + "\n" + `[0.5,"o","\u001b[1mhi\r\n"]` + "\n" + `[1,"r","100x30"]` + "\n" + `[2.25,"i","ls"]` + "\n",
			want: decoded{Header: v2Header, Events: []Event{{0.5, Output, "\x1b[1mhi\r\n"}, {1, Resize, "100x30"}, {2.25, Input, "ls"}}},
		},
		{
			name: "header only",
			in:   v2Line + "\n",
			want: decoded{Header: v2Header},
		},
		{
			name: "CRLF, blank lines, BOM",
			in:   "\uFEFF" + v2Line + "\r\n\r\n" + `[1,"o","a"]` + "\r\n  \n" + `[2,"o","b"]` + "\r\n",
			want: decoded{Header: v2Header, Events: []Event{{1, Output, "a"}, {2, Output, "b"}}},
		},
		{
			name: "last line without newline is an event",
			in:   v2Line + "\n" + `[1,"o","a"]` + "\n" + `[2,"o","b"]`,
			want: decoded{Header: v2Header, Events: []Event{{1, Output, "a"}, {2, Output, "b"}}},
		},
		{
			name: "truncated last line",
			in:   v2Line + "\n" + `[1,"o","a"]` + "\n" + `[2,"o","b`,
			want: decoded{Header: v2Header, Events: []Event{{1, Output, "a"}}, Truncated: true},
		},
		{
			name: "truncated mid-rune",
			in:   v2Line + "\n" + `[1,"o","a"]` + "\n" + "[2,\"o\",\"\xe2\x82",
			want: decoded{Header: v2Header, Events: []Event{{1, Output, "a"}}, Truncated: true},
		},
		{
			name: "complete JSON but not an event on the last line",
			in:   v2Line + "\n" + `[1,"o"]`,
			want: decoded{Header: v2Header, Errs: []string{"asciicast: line 2: event is not [time, code, data]: want ',' after code, got ']' at column 7"}},
		},
		{
			name: "bad lines are reported and skipped",
			in:   v2Line + "\n" + `[1,"o","a"]` + "\n" + `{"x":1}` + "\n" + `[1e999,"o","a"]` + "\n" + `[3,"o","c"]` + "\n",
			want: decoded{Header: v2Header, Events: []Event{{1, Output, "a"}, {3, Output, "c"}}, Errs: []string{
				"asciicast: line 3: event is not [time, code, data]: want '[', got '{' at column 1",
				"asciicast: line 4: event time 1e999 is out of range",
			}},
		},
		{
			name: "times are not checked",
			in:   v2Line + "\n" + `[2,"o","a"]` + "\n" + `[1,"o","b"]` + "\n",
			want: decoded{Header: v2Header, Events: []Event{{2, Output, "a"}, {1, Output, "b"}}},
		},
		{
			name: "invalid UTF-8 replaced",
			in:   v2Line + "\n" + "[1,\"o\",\"a\xffb\"]\n",
			want: decoded{Header: v2Header, Events: []Event{{1, Output, "a\uFFFDb"}}},
		},
		{
			name:    "long line skipped",
			maxLine: 64,
			in:      v2Line + "\n" + `[1,"o","` + strings.Repeat("x", 100) + `"]` + "\n" + `[2,"o","b"]` + "\n",
			want: decoded{Header: v2Header, Events: []Event{{2, Output, "b"}},
				Errs: []string{"asciicast: line 2: line too long: more than 64 bytes"}},
		},
		{
			name:    "long last line without newline",
			maxLine: 64,
			in:      v2Line + "\n" + `[1,"o","` + strings.Repeat("x", 100),
			want:    decoded{Header: v2Header, Errs: []string{"asciicast: line 2: line too long: more than 64 bytes"}},
		},
		{
			name: "v3",
			in: `{"version":3,"term":{"cols":90,"rows":30,"type":"xterm-256color"},"timestamp":1504467315,"title":"Demo","env":{"SHELL":"/bin/zsh"},"tags":["demo"]}` + "\n" +
				"# a comment\n" + `[0.248,"o","Hello"]` + "\n" + `[1.001,"o","ok"]` + "\n" + "# resized\n" + `[2.05,"r","90x30"]` + "\n" + `[0.5,"x","0"]` + "\n",
			want: decoded{
				Header: Header{Version: 3, Width: 90, Height: 30, Timestamp: 1504467315, Title: "Demo", Env: map[string]string{"SHELL": "/bin/zsh"},
					Extra: map[string]json.RawMessage{"term": json.RawMessage(`{"cols":90,"rows":30,"type":"xterm-256color"}`), "tags": json.RawMessage(`["demo"]`)}},
				Events: []Event{{sum(0.248), Output, "Hello"}, {sum(0.248, 1.001), Output, "ok"}, {sum(0.248, 1.001, 2.05), Resize, "90x30"}, {sum(0.248, 1.001, 2.05, 0.5), Exit, "0"}},
			},
		},
		{
			name: "v1 pretty",
			in: "{\n  \"version\": 1,\n  \"width\": 80,\n  \"height\": 24,\n  \"duration\": 1.5,\n  \"command\": \"/bin/zsh\",\n  \"title\": \"\",\n" +
				"  \"env\": {\"TERM\": \"xterm-256color\"},\n  \"stdout\": [\n    [\n      0.25,\n      \"\\u001b[1mHello\\n\"\n    ],\n" +
				"    [\n      1.25,\n      \"World\"\n    ]\n  ]\n}\n",
			want: decoded{
				Header: Header{Version: 1, Width: 80, Height: 24, Duration: 1.5, Command: "/bin/zsh", Env: map[string]string{"TERM": "xterm-256color"}},
				Events: []Event{{0.25, Output, "\x1b[1mHello\n"}, {1.5, Output, "World"}},
			},
		},
		{
			name: "v1 one line, stdout first, field after it",
			in:   `{"stdout":[[0.5,"a"],[0.5,"b"]],"version":1,"width":100,"height":40,"x-extra":true}`,
			want: decoded{
				Header: Header{Version: 1, Width: 100, Height: 40, Extra: map[string]json.RawMessage{"x-extra": json.RawMessage("true")}},
				Events: []Event{{0.5, Output, "a"}, {1, Output, "b"}},
			},
		},
		{
			name: "v1 bad frame",
			in:   "{\"version\":1,\"width\":1,\"height\":1,\n\"stdout\":[\n[0.5,\"a\"],\n[\"x\",\"b\"],\n[1]\n,[1,\"c\"]]}\n",
			want: decoded{
				Header: Header{Version: 1, Width: 1, Height: 1},
				Events: []Event{{0.5, Output, "a"}, {1.5, Output, "c"}},
				Errs: []string{
					`asciicast: line 4: v1 stdout frame 2: delay "x" is not a number`,
					"asciicast: line 5: v1 stdout frame 3: 1 elements, want [delay, data]",
				},
			},
		},
		{
			name: "v1 without stdout",
			in:   `{"version":1,"width":1,"height":1}`,
			want: decoded{Header: Header{Version: 1, Width: 1, Height: 1}},
		},
		{
			name: "empty input",
			in:   "",
			want: decoded{HeaderErr: "asciicast: empty input: EOF", Errs: []string{"asciicast: empty input: EOF"}},
		},
		{
			name: "truncated header",
			in:   `{"version":2,"wid`,
			want: decoded{HeaderErr: "asciicast: line 1: header cut off: unexpected EOF", Errs: []string{"asciicast: line 1: header cut off: unexpected EOF"}, Truncated: true},
		},
		{
			name: "broken header followed by events",
			in:   `{"version":2,"width"` + "\n" + `[1,"o","a"]` + "\n",
			want: decoded{HeaderErr: "asciicast: line 2: header: invalid character '[' after object key", Errs: []string{"asciicast: line 2: header: invalid character '[' after object key"}},
		},
		{
			name: "header not JSON",
			in:   "hello\n",
			want: decoded{HeaderErr: "asciicast: line 1: header: invalid character 'h' looking for beginning of value", Errs: []string{"asciicast: line 1: header: invalid character 'h' looking for beginning of value"}},
		},
		{
			name: "unsupported version",
			in:   `{"version":4}` + "\n",
			want: decoded{HeaderErr: "asciicast: line 1: header: unsupported version 4", Errs: []string{"asciicast: line 1: header: unsupported version 4"}},
		},
		{
			name: "v2 header over two lines",
			in:   "{\"version\":2,\n\"width\":80}\n",
			want: decoded{HeaderErr: "asciicast: line 1: header: unsupported version 2 in a multi-line document", Errs: []string{"asciicast: line 1: header: unsupported version 2 in a multi-line document"}},
		},
		{
			name:    "v1 document too long",
			maxLine: 40,
			in:      "{\"version\":1,\n\"stdout\":[[0.5,\"aaaaaaaaaaaaaaaaaaaaaaaaaaaa\"]]}\n",
			want: decoded{HeaderErr: "asciicast: line 1: line too long: a JSON document of more than 40 bytes",
				Errs: []string{"asciicast: line 1: line too long: a JSON document of more than 40 bytes"}},
		},
		{
			name: "v1 document cut off",
			in:   "{\"version\":1,\n\"stdout\":[[0.5,\"a\"],",
			want: decoded{HeaderErr: "asciicast: line 2: JSON document cut off: unexpected EOF",
				Errs: []string{"asciicast: line 2: JSON document cut off: unexpected EOF"}, Truncated: true},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := decodeAll(tc.in, tc.maxLine)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestDecoderErrorsWrap(t *testing.T) {
	dec := NewDecoder(strings.NewReader(""))
	if _, err := dec.Header(); !errors.Is(err, io.EOF) {
		t.Errorf("empty input: Header error %v, want io.EOF wrapped", err)
	}
	dec = NewDecoder(strings.NewReader(v2Line + "\n" + strings.Repeat("x", 200) + "\n"))
	dec.MaxLine = 100
	if _, err := dec.Next(); !errors.Is(err, ErrLineTooLong) {
		t.Errorf("long line: Next error %v, want ErrLineTooLong wrapped", err)
	}
	dec = NewDecoder(strings.NewReader(`{"version":2`))
	if _, err := dec.Header(); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("cut header: Header error %v, want io.ErrUnexpectedEOF wrapped", err)
	}
}

// TestDecoderReadError: a read error is returned, with the line it came
// after, by this and every later call.
func TestDecoderReadError(t *testing.T) {
	boom := errors.New("connection reset")
	r := io.MultiReader(strings.NewReader(v2Line+"\n"+`[1,"o","a"]`+"\n"+`[2,"o"`), iotest.ErrReader(boom))
	dec := NewDecoder(r)
	if ev, err := dec.Next(); err != nil || ev.Data != "a" {
		t.Fatalf("first event: %v, %v", ev, err)
	}
	for range 2 {
		_, err := dec.Next()
		if !errors.Is(err, boom) || err.Error() != "asciicast: read after line 2: connection reset" {
			t.Fatalf("Next: %v, want the read error", err)
		}
	}
	if dec.Truncated() {
		t.Error("Truncated() after a read error, want false: the line is not the last")
	}
}

// TestDecoderLongLineMemory: skipping a line far over MaxLine does not hold
// it, and a long line within MaxLine is read whole across bufio's buffer.
func TestDecoderLongLineMemory(t *testing.T) {
	long := `[1,"o","` + strings.Repeat("x", 8<<20) + `"]`
	in := v2Line + "\n" + long + "\n" + `[2,"o","` + strings.Repeat("y", 200<<10) + `"]` + "\n"
	dec := NewDecoder(strings.NewReader(in))
	dec.MaxLine = 1 << 20
	if _, err := dec.Next(); !errors.Is(err, ErrLineTooLong) {
		t.Fatalf("Next: %v, want ErrLineTooLong", err)
	}
	if c := cap(dec.buf); c > 2<<20 {
		t.Errorf("line buffer grew to %d bytes skipping an 8 MiB line, want at most about MaxLine", c)
	}
	ev, err := dec.Next()
	if err != nil || len(ev.Data) != 200<<10 || ev.Time != 2 {
		t.Fatalf("next event: %d bytes at %v, %v", len(ev.Data), ev.Time, err)
	}
}

func TestDecoderOneByteReads(t *testing.T) {
	in := v2Line + "\n" + `[0.5,"o","\u001b[1mhi"]` + "\n" + `[1,"r","100x30"]` + "\n" + `[2,"o","cut`
	want := decodeAll(in, 0)
	dec := NewDecoder(iotest.OneByteReader(strings.NewReader(in)))
	var got decoded
	got.Header, _ = dec.Header()
	for {
		ev, err := dec.Next()
		if err != nil {
			break
		}
		got.Events = append(got.Events, ev)
	}
	got.Truncated = dec.Truncated()
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("one-byte reads (-whole +bytewise):\n%s", diff)
	}
}

// sum adds in float64 at run time, as the decoder does (constant
// expressions would be exact).
func sum(xs ...float64) float64 {
	t := 0.0
	for _, x := range xs {
		t += x
	}
	return t
}

// rawAll is decodeAll with NextRaw.
func rawAll(in string, maxLine int) decoded {
	dec := NewDecoder(strings.NewReader(in))
	dec.MaxLine = maxLine
	var d decoded
	h, err := dec.Header()
	d.Header = h
	if err != nil {
		d.HeaderErr = err.Error()
	}
	for range len(in) + 2 {
		ev, err := dec.NextRaw()
		if err == io.EOF {
			break
		}
		if err != nil {
			d.Errs = append(d.Errs, err.Error())
			if err.Error() == d.HeaderErr {
				break
			}
			continue
		}
		d.Events = append(d.Events, Event{Time: ev.Time, Code: string(ev.Code), Data: string(ev.Data)})
	}
	d.Truncated = dec.Truncated()
	return d
}

// NextRaw reads what Next reads, every version, every error.
func TestNextRaw(t *testing.T) {
	inputs := []string{
		v2Line + "\n" + `[0.5,"o","plain"]` + "\n" + `[1,"o","esc \u001b[1m \"q\" \\ \ud83d\ude00 \ud800"]` + "\n" + `[1.5,"\u0072","80x24"]` + "\n",
		`{"version":3,"term":{"cols":90,"rows":30}}` + "\n#c\n" + `[0.5,"o","a"]` + "\n" + `[1,"x","0"]`,
		`{"stdout":[[0.5,"a"],[0.5,"b\u001b"]],"version":1,"width":100,"height":40}`,
		v2Line + "\n" + `[1,"o"]` + "\n" + `[2,"o","ok"]` + "\n" + `[3,"o","cut`,
	}
	for _, tc := range checkerCases {
		inputs = append(inputs, tc.in)
	}
	for i, in := range inputs {
		want, got := decodeAll(in, 0), rawAll(in, 0)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("input %d %.60q: NextRaw (-Next +NextRaw):\n%s", i, in, diff)
		}
	}
}

func TestNextRawAllocs(t *testing.T) {
	var b strings.Builder
	b.WriteString(v2Line + "\n")
	for range 1000 {
		b.WriteString(`[1.25,"o","text with \u001b[1mescapes\u001b[0m and \"quotes\"\r\n"]` + "\n")
	}
	in := b.String()
	r := strings.NewReader(in)
	dec := NewDecoder(r)
	dec.Header()
	dec.NextRaw() // sizes the scratch buffers
	allocs := testing.AllocsPerRun(500, func() {
		if _, err := dec.NextRaw(); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 0 {
		t.Errorf("%v allocations per event read with NextRaw, want 0", allocs)
	}
}
