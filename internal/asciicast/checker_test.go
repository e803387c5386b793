package asciicast

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const hdr = `{"version":2,"width":80,"height":24,"timestamp":1700000000}` + "\n"

// verdict is everything a Checker says about a whole stream.
type verdict struct {
	Err       string
	Lines     int64
	HasHeader bool
	Header    Header
}

func (v verdict) String() string { return fmt.Sprintf("%q (%d lines)", v.Err, v.Lines) }

// check runs a Checker over the input cut into the given pieces.
func check(maxLine int, pieces ...string) verdict {
	c := &Checker{MaxLine: maxLine}
	for _, p := range pieces {
		if n, err := c.Write([]byte(p)); n != len(p) || err != nil {
			panic(fmt.Sprintf("Write returned %d, %v", n, err))
		}
	}
	var v verdict
	if err := c.Finish(); err != nil {
		v.Err = err.Error()
	}
	v.Lines = c.Lines()
	v.Header, v.HasHeader = c.Header()
	return v
}

type checkerCase struct {
	name    string
	maxLine int
	in      string
	err     string // "" for a good stream
	lines   int64
}

var checkerCases = []checkerCase{
	{name: "header only", in: hdr, lines: 1},
	{
		name:  "tailscale lines",
		in:    hdr + `[0.5,"o","\u001b[1mhello\r\n"]` + "\n" + `[1.25,"r","80x24"]` + "\n" + `[12.345678,"o","\u003cb\u003e \ufffd"]` + "\n",
		lines: 4,
	},
	{name: "json whitespace", in: hdr + " \t[ 1.5 ,\t\"o\" , \"x\" ] \r\n", lines: 2},
	{name: "exponents", in: hdr + `[1e-7,"o","x"]` + "\n" + `[1E+2,"o","x"]` + "\n" + `[1.5e2,"o","x"]` + "\n", lines: 4},
	{name: "negative zero", in: hdr + `[-0,"o","x"]` + "\n" + `[-0.0,"o","x"]` + "\n", lines: 3},
	{name: "equal times", in: hdr + `[2,"o","a"]` + "\n" + `[2.0,"o","b"]` + "\n" + `[20e-1,"o","b"]` + "\n", lines: 4},
	{name: "utf-8 data", in: hdr + `[1,"o","héllo ─│ 日本 🎉"]` + "\n", lines: 2},
	{name: "DEL and slash escape", in: hdr + "[1,\"o\",\"\x7f\\/\"]\n", lines: 2},
	{name: "every escape", in: hdr + `[1,"o","\"\\\/\b\f\n\r\t\u00e9\uD83D\uDE00"]` + "\n", lines: 2},
	{name: "lone surrogate escape", in: hdr + `[1,"o","\ud800"]` + "\n", lines: 2},
	{name: "empty strings", in: hdr + `[0,"",""]` + "\n", lines: 2},
	{name: "long time within limit", in: hdr + "[" + "0." + strings.Repeat("0", 61) + "1" + `,"o",""]` + "\n", lines: 2},
	{name: "line at limit", maxLine: 15, in: `{"version":2}` + "\n" + `[1,"o","abcde"]` + "\n", lines: 2},

	{name: "empty input", in: "", err: "asciicast: empty input"},
	{name: "header without newline", in: `{"version":2}`, err: "asciicast: line 1: header has no newline"},
	{name: "header version 1", in: `{"version":1}` + "\n", err: "asciicast: line 1: header: version 1, want 2", lines: 1},
	{name: "header version 3", in: `{"version":3,"term":{"cols":80,"rows":24}}` + "\n", err: "asciicast: line 1: header: version 3, want 2", lines: 1},
	{name: "header without version", in: `{"width":80}` + "\n", err: "asciicast: line 1: header: version 0, want 2", lines: 1},
	{name: "header not an object", in: "[1,2]\n", err: `asciicast: line 1: header: not a JSON object: "[1,2]"`, lines: 1},
	{name: "header null", in: "null\n", err: `asciicast: line 1: header: not a JSON object: "null"`, lines: 1},
	{name: "header bad JSON", in: `{"version":2` + "\n", err: "asciicast: line 1: header: unexpected end of JSON input", lines: 1},
	{name: "header bad field type", in: `{"version":"2"}` + "\n", err: "asciicast: line 1: header: version: json: cannot unmarshal string into Go value of type int", lines: 1},
	{name: "header empty line", in: "\n" + `[1,"o","x"]` + "\n", err: "asciicast: line 1: header: unexpected end of JSON input", lines: 2},
	{name: "header invalid UTF-8", in: "{\"version\":2,\"title\":\"\xff\"}\n", err: "asciicast: line 1: header: invalid UTF-8", lines: 1},
	{name: "header too long", maxLine: 10, in: `{"version":2}` + "\n" + `[1,"o","x"]` + "\n", err: "asciicast: line 1: header: line too long: more than 10 bytes", lines: 2},
	{name: "header too long without newline", maxLine: 10, in: `{"version":2}`, err: "asciicast: line 1: header: line too long: more than 10 bytes"},

	{name: "empty line", in: hdr + "\n", err: "asciicast: line 2: empty line", lines: 2},
	{name: "blank line", in: hdr + " \r\n", err: "asciicast: line 2: event is not [time, code, data]: want '[', got end of line", lines: 2},
	{name: "partial last line", in: hdr + `[1,"o","x"]` + "\n" + `[2,"o","x"]`, err: "asciicast: line 3: partial line at end of input (no newline)", lines: 2},
	{name: "partial last line cut", in: hdr + `[1,"o","x`, err: "asciicast: line 2: partial line at end of input (no newline)", lines: 1},
	{name: "time goes back", in: hdr + `[3,"o","x"]` + "\n" + `[1.5,"o","x"]` + "\n", err: "asciicast: line 3: event time 1.5 is before the previous event's time 3", lines: 3},
	// Tailscale's concurrent writers put events microseconds out of order.
	{name: "time goes back within the slack", in: hdr + `[2.000105,"o","x"]` + "\n" + `[2.000098,"o","y"]` + "\n" + `[1.5,"o","x"]` + "\n", lines: 4},
	{name: "negative time", in: hdr + `[-0.5,"o","x"]` + "\n", err: "asciicast: line 2: event time -0.5 is negative", lines: 2},
	{name: "time out of range", in: hdr + `[1e400,"o","x"]` + "\n", err: "asciicast: line 2: event time 1e400 is out of range", lines: 2},
	{name: "time too long", in: hdr + "[" + "0." + strings.Repeat("0", 62) + "1" + `,"o",""]` + "\n", err: "asciicast: line 2: event is not [time, code, data]: time longer than 64 characters at column 66", lines: 2},
	{name: "leading zero", in: hdr + `[01,"o","x"]` + "\n", err: "asciicast: line 2: event is not [time, code, data]: want ',' after time, got '1' at column 3", lines: 2},
	{name: "time ends with dot", in: hdr + `[1.,"o","x"]` + "\n", err: "asciicast: line 2: event is not [time, code, data]: want a digit, got ',' at column 4", lines: 2},
	{name: "time with plus", in: hdr + `[+1,"o","x"]` + "\n", err: "asciicast: line 2: event is not [time, code, data]: want a number for time, got '+' at column 2", lines: 2},
	{name: "time as string", in: hdr + `["1","o","x"]` + "\n", err: `asciicast: line 2: event is not [time, code, data]: want a number for time, got '"' at column 2`, lines: 2},
	{name: "bare exponent", in: hdr + `[1e,"o","x"]` + "\n", err: "asciicast: line 2: event is not [time, code, data]: want a digit, got ',' at column 4", lines: 2},
	{name: "two elements", in: hdr + `[1,"o"]` + "\n", err: "asciicast: line 2: event is not [time, code, data]: want ',' after code, got ']' at column 7", lines: 2},
	{name: "four elements", in: hdr + `[1,"o","x","y"]` + "\n", err: "asciicast: line 2: event is not [time, code, data]: want ']' after data, got ',' at column 11", lines: 2},
	{name: "number as code", in: hdr + `[1,2,"x"]` + "\n", err: "asciicast: line 2: event is not [time, code, data]: want code string, got '2' at column 4", lines: 2},
	{name: "object", in: hdr + `{"t":1}` + "\n", err: "asciicast: line 2: event is not [time, code, data]: want '[', got '{' at column 1", lines: 2},
	{name: "garbage after array", in: hdr + `[1,"o","x"]x` + "\n", err: "asciicast: line 2: event is not [time, code, data]: want end of line, got 'x' at column 12", lines: 2},
	{name: "two arrays", in: hdr + `[1,"o","x"][2,"o","y"]` + "\n", err: "asciicast: line 2: event is not [time, code, data]: want end of line, got '[' at column 12", lines: 2},
	{name: "unclosed string", in: hdr + `[1,"o","x]` + "\n", err: "asciicast: line 2: event is not [time, code, data]: line ends inside data string", lines: 2},
	{name: "line ends after time", in: hdr + `[1` + "\n", err: "asciicast: line 2: event is not [time, code, data]: want ',' after time, got end of line", lines: 2},
	{name: "raw tab in string", in: hdr + "[1,\"o\",\"a\tb\"]\n", err: "asciicast: line 2: control character 0x09 in data string at column 10", lines: 2},
	{name: "invalid escape", in: hdr + `[1,"o","\x41"]` + "\n", err: `asciicast: line 2: invalid escape in data string: 'x' after '\' at column 10`, lines: 2},
	{name: "invalid unicode escape", in: hdr + `[1,"o","\u12G4"]` + "\n", err: `asciicast: line 2: invalid \u escape in data string: 'G' at column 13`, lines: 2},
	{name: "short unicode escape", in: hdr + `[1,"o","\u12"]` + "\n", err: `asciicast: line 2: invalid \u escape in data string: '"' at column 13`, lines: 2},
	{name: "invalid byte", in: hdr + "[1,\"o\",\"a\xffb\"]\n", err: "asciicast: line 2: invalid UTF-8 in data string at column 10", lines: 2},
	{name: "invalid byte in code", in: hdr + "[1,\"\xc3\",\"x\"]\n", err: "asciicast: line 2: invalid UTF-8 in code string at column 5", lines: 2},
	{name: "truncated rune", in: hdr + "[1,\"o\",\"\xe2\x82\"]\n", err: "asciicast: line 2: invalid UTF-8 in data string at column 9", lines: 2},
	{name: "truncated rune at line end", in: hdr + "[1,\"o\",\"\xe2\x82\n", err: "asciicast: line 2: invalid UTF-8 in data string at column 9", lines: 2},
	{name: "overlong encoding", in: hdr + "[1,\"o\",\"\xc0\x80\"]\n", err: "asciicast: line 2: invalid UTF-8 in data string at column 9", lines: 2},
	{name: "encoded surrogate", in: hdr + "[1,\"o\",\"\xed\xa0\x80\"]\n", err: "asciicast: line 2: invalid UTF-8 in data string at column 9", lines: 2},
	{name: "above U+10FFFF", in: hdr + "[1,\"o\",\"\xf4\x90\x80\x80\"]\n", err: "asciicast: line 2: invalid UTF-8 in data string at column 9", lines: 2},
	{name: "invalid UTF-8 outside strings", in: hdr + "[1,\"o\",\"x\"]\xc3\xa9\n", err: "asciicast: line 2: event is not [time, code, data]: want end of line, got byte 0xc3 at column 12", lines: 2},
	{name: "line too long", maxLine: 15, in: `{"version":2}` + "\n" + `[1,"o","abcdef"]` + "\n" + `[2,"o","x"]` + "\n", err: "asciicast: line 2: line too long: more than 15 bytes", lines: 3},
	{name: "syntax error before limit wins", maxLine: 15, in: `{"version":2}` + "\n" + `[1,"o",7,"abcdef"]` + "\n", err: "asciicast: line 2: event is not [time, code, data]: want data string, got '7' at column 8", lines: 2},
	{name: "line too long without newline", maxLine: 15, in: `{"version":2}` + "\n" + `[1,"o","abcdefghijk`, err: "asciicast: line 2: line too long: more than 15 bytes", lines: 1},
	{name: "first problem kept", in: hdr + "\n" + `[x]` + "\n" + `[1,"o","x"]` + "\n" + "partial", err: "asciicast: line 2: empty line", lines: 4},
}

func TestChecker(t *testing.T) {
	for _, tc := range checkerCases {
		t.Run(tc.name, func(t *testing.T) {
			got := check(tc.maxLine, tc.in)
			want := verdict{Err: tc.err, Lines: tc.lines}
			if diff := cmp.Diff(want, got, cmp.FilterPath(func(p cmp.Path) bool {
				f := p.Last().String()
				return f == ".Header" || f == ".HasHeader"
			}, cmp.Ignore())); diff != "" {
				t.Errorf("verdict (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCheckerProblemBeforeFinish(t *testing.T) {
	var c Checker
	c.Write([]byte(hdr + `[2,"o","x"]` + "\n"))
	if err := c.Problem(); err != nil {
		t.Fatalf("Problem() = %v after good lines", err)
	}
	c.Write([]byte(`[0.5,"o","x"]` + "\n" + `[`))
	want := "asciicast: line 3: event time 0.5 is before the previous event's time 2"
	if err := c.Problem(); err == nil || err.Error() != want {
		t.Fatalf("Problem() = %v, want %s", err, want)
	}
	if err := c.Finish(); err == nil || err.Error() != want {
		t.Fatalf("Finish() = %v, want the first problem %s", err, want)
	}
	if got := c.Lines(); got != 3 {
		t.Errorf("Lines() = %d, want 3", got)
	}
}

func TestCheckerLineTooLongIs(t *testing.T) {
	for _, in := range []string{
		`{"version":2}` + "\n" + `[1,"o","` + strings.Repeat("a", 100) + `"]` + "\n",
		strings.Repeat(" ", 100) + `{"version":2}` + "\n",
	} {
		c := Checker{MaxLine: 50}
		c.Write([]byte(in))
		if err := c.Finish(); !errors.Is(err, ErrLineTooLong) {
			t.Errorf("Finish() = %v, want ErrLineTooLong", err)
		}
	}
}

func TestCheckerHeader(t *testing.T) {
	var c Checker
	in := `{"version":2,"width":100,"height":30,"timestamp":1,"srcNode":"n.ts.net","x-new":[1]}`
	c.Write([]byte(in))
	if _, ok := c.Header(); ok {
		t.Fatal("Header() ok before the header's newline")
	}
	c.Write([]byte("\n"))
	got, ok := c.Header()
	if !ok {
		t.Fatal("Header() not ok after line 1")
	}
	want := Header{Version: 2, Width: 100, Height: 30, Timestamp: 1, SrcNode: "n.ts.net",
		Extra: map[string]json.RawMessage{"x-new": json.RawMessage(`[1]`)}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Header() (-want +got):\n%s", diff)
	}
}

// tailscaleStream builds a stream the way Tailscale's senders write it:
// json.Marshal of CastHeader-like values and of []any{seconds, code, string}.
func tailscaleStream(n int) []byte {
	h, _ := json.Marshal(map[string]any{"version": 2, "width": 80, "height": 24, "timestamp": 1700000000,
		"srcNode": "laptop.tail-scale.ts.net", "srcNodeID": "nX1", "env": map[string]string{"TERM": "xterm"},
		"sshUser": "root", "localUser": "root", "connectionID": "c1"})
	b := append(h, '\n')
	chunks := []string{
		"\x1b[1mhello\r\n", "$ ", "l", "s", "\r\n", "a.txt  b.txt  <dir>/ & more\r\n",
		"\x1b[?2004h\x1b]0;root@host: ~\x07root@host:~# ", "héllo wörld ─│┌┐ 日本語 🎉\r\n",
		strings.Repeat("0123456789abcdef", 40) + "\r\n", "bad \xff byte\r\n", "\u2028",
	}
	t := 0.0
	for i := range n {
		t += 0.0123457 * float64(i%7)
		var ev []byte
		if i%50 == 49 {
			ev, _ = json.Marshal([]any{t, "r", "100x30"})
		} else {
			ev, _ = json.Marshal([]any{t, "o", chunks[i%len(chunks)]})
		}
		b = append(b, ev...)
		b = append(b, '\n')
	}
	return b
}

func TestCheckerTailscaleStream(t *testing.T) {
	in := tailscaleStream(1000)
	if got := check(0, string(in)); got.Err != "" || got.Lines != 1001 {
		t.Errorf("Checker on a Tailscale-style stream: %v, want no problem and 1001 lines", got)
	}
}

// splitInputs are the inputs the split property is checked on.
func splitInputs() []checkerCase {
	cases := append([]checkerCase(nil), checkerCases...)
	cases = append(cases, checkerCase{name: "tailscale stream", in: string(tailscaleStream(30))})
	return cases
}

// TestCheckerSplit checks that the verdict does not depend on where writes
// cut the stream: every single cut point, every pair of cut points for short
// inputs, and one byte per write.
func TestCheckerSplit(t *testing.T) {
	for _, tc := range splitInputs() {
		t.Run(tc.name, func(t *testing.T) {
			in := tc.in
			whole := check(tc.maxLine, in)
			for i := 0; i <= len(in); i++ {
				if got := check(tc.maxLine, in[:i], in[i:]); !cmp.Equal(whole, got) {
					t.Fatalf("cut at %d: %v, whole: %v\n%s", i, got, whole, cmp.Diff(whole, got))
				}
			}
			if len(in) <= 200 {
				for i := 0; i <= len(in); i++ {
					for j := i; j <= len(in); j++ {
						if got := check(tc.maxLine, in[:i], in[i:j], in[j:]); !cmp.Equal(whole, got) {
							t.Fatalf("cuts at %d, %d: %v, whole: %v", i, j, got, whole)
						}
					}
				}
			}
			bytewise := make([]string, len(in))
			for i := 0; i < len(in); i++ {
				bytewise[i] = in[i : i+1]
			}
			if got := check(tc.maxLine, bytewise...); !cmp.Equal(whole, got) {
				t.Fatalf("byte by byte: %v, whole: %v", got, whole)
			}
		})
	}
}

// TestScannerAgreesWithMachine checks the fast scanner and the streaming
// machine on single lines: same acceptance and same time.
func TestScannerAgreesWithMachine(t *testing.T) {
	for _, tc := range splitInputs() {
		for _, line := range strings.Split(tc.in, "\n") {
			compareScanners(t, []byte(line))
		}
	}
}

func compareScanners(t *testing.T, line []byte) {
	t.Helper()
	for _, strict := range []bool{false, true} {
		sp, ok := scanLine(line, strict)
		var m lineMachine
		m.reset(nil, false, strict)
		m.feed(line)
		m.eol()
		if ok {
			_, ok = parseTime(line[sp.time0:sp.time1])
		}
		if ok != (m.problem == nil) {
			t.Fatalf("line %q strict=%v: scanLine ok=%v, machine problem %v", line, strict, ok, m.problem)
		}
		if ok && string(line[sp.time0:sp.time1]) != string(m.time()) {
			t.Fatalf("line %q: scanLine time %q, machine time %q", line, line[sp.time0:sp.time1], m.time())
		}
	}
}

func TestCheckerAllocs(t *testing.T) {
	in := tailscaleStream(3000)
	var c Checker
	c.Write(in[:len(in)/3])
	// AllocsPerRun calls the function twice (one warm-up); each call writes
	// the next third, in pieces that cut lines, so both paths run.
	next := len(in) / 3
	allocs := testing.AllocsPerRun(1, func() {
		end := next + len(in)/3
		for ; next < end; next += 1000 {
			c.Write(in[next:min(next+1000, end)])
		}
		next = end
	})
	c.Write(in[next:])
	if err := c.Finish(); err != nil {
		t.Fatal(err)
	}
	if allocs != 0 {
		t.Errorf("Checker.Write allocated %v times for %d bytes of events, want 0", allocs, len(in)/3)
	}
}

func TestCheckerLongLineNoAllocs(t *testing.T) {
	var c Checker
	c.Write([]byte(hdr + `[1,"o","`))
	chunk := []byte(strings.Repeat("abcdefgh", 512))
	allocs := testing.AllocsPerRun(100, func() { c.Write(chunk) })
	c.Write([]byte(`"]` + "\n"))
	if err := c.Finish(); err != nil {
		t.Fatal(err)
	}
	if allocs != 0 {
		t.Errorf("writing a long line allocated %v times per write, want 0", allocs)
	}
}
