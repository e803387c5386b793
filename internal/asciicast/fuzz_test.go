package asciicast

import (
	"bytes"
	"encoding/json"
	"io"
	"math"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
)

// FuzzChecker checks that the Checker's verdict does not depend on how the
// input is cut into writes, and that it accepts what the Encoder writes.
func FuzzChecker(f *testing.F) {
	for _, tc := range checkerCases {
		f.Add([]byte(tc.in), uint16(len(tc.in)/3), uint16(len(tc.in)/2), uint8(tc.maxLine), 0.25)
	}
	f.Add(tailscaleStream(20), uint16(100), uint16(700), uint8(0), 0.0)
	f.Fuzz(func(t *testing.T, in []byte, a, b uint16, maxLine uint8, dt float64) {
		// Split verdicts.
		ml := int(maxLine) // 0: the default
		s := string(in)
		whole := check(ml, s)
		i, j := int(a)%(len(s)+1), int(b)%(len(s)+1)
		if i > j {
			i, j = j, i
		}
		if got := check(ml, s[:i], s[i:j], s[j:]); !equalVerdict(got, whole) {
			t.Fatalf("cuts at %d, %d: %v; whole: %v", i, j, got, whole)
		}
		if len(s) <= 300 {
			bytewise := make([]string, len(s))
			for k := 0; k < len(s); k++ {
				bytewise[k] = s[k : k+1]
			}
			if got := check(ml, bytewise...); !equalVerdict(got, whole) {
				t.Fatalf("byte by byte: %v; whole: %v", got, whole)
			}
		}

		// The Encoder's output is always accepted.
		if math.IsNaN(dt) || math.IsInf(dt, 0) {
			dt = 0.5
		}
		dt = math.Abs(dt)
		var buf bytes.Buffer
		enc := NewEncoder(&buf)
		if err := enc.WriteHeader(Header{Width: 80, Height: 24, Title: s}); err != nil {
			t.Fatal(err)
		}
		tm := 0.0
		for k, part := range bytes.Split(in, []byte{0}) {
			if tm += dt * float64(k%3); math.IsInf(tm, 0) {
				break
			}
			code := Output
			if len(part) > 0 && part[0] < 8 {
				code = string(part[:1])
			}
			if err := enc.WriteEvent(Event{Time: tm, Code: code, Data: string(part)}); err != nil {
				t.Fatal(err)
			}
		}
		out := buf.String()
		if v := check(0, out); v.Err != "" {
			t.Fatalf("Checker rejects the Encoder's output: %s\n%q", v.Err, out)
		}
		if v := check(0, out[:i%(len(out)+1)], out[i%(len(out)+1):]); v.Err != "" {
			t.Fatalf("Checker rejects the Encoder's output cut at %d: %s", i, v.Err)
		}
	})
}

func equalVerdict(a, b verdict) bool {
	ha, _ := json.Marshal(a.Header)
	hb, _ := json.Marshal(b.Header)
	return a.Err == b.Err && a.Lines == b.Lines && a.HasHeader == b.HasHeader && bytes.Equal(ha, hb)
}

// FuzzScanLine checks the fast scanner against the streaming machine, and
// both against encoding/json.
func FuzzScanLine(f *testing.F) {
	for _, tc := range checkerCases {
		for _, line := range strings.Split(tc.in, "\n") {
			f.Add([]byte(line))
		}
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		if bytes.IndexByte(line, '\n') >= 0 {
			return // lines hold no newline
		}
		compareScanners(t, line)

		// encoding/json's opinion: an array of a number and two strings.
		var raw []json.RawMessage
		jsonOK := json.Unmarshal(line, &raw) == nil && len(raw) == 3
		var num json.Number
		var code, data string
		if jsonOK {
			d := json.NewDecoder(bytes.NewReader(raw[0]))
			d.UseNumber()
			_, isFloat := strconv.ParseFloat(string(raw[0]), 64)
			jsonOK = d.Decode(&num) == nil && isFloat == nil &&
				json.Unmarshal(raw[1], &code) == nil && json.Unmarshal(raw[2], &data) == nil &&
				raw[1][0] == '"' && raw[2][0] == '"'
			if jsonOK && len(num) > maxTimeLen {
				return // we refuse long times on purpose
			}
		}
		var ev Event
		err := ev.UnmarshalJSON(line)
		if (err == nil) != jsonOK {
			t.Fatalf("line %q: Event.UnmarshalJSON error %v, encoding/json ok=%v", line, err, jsonOK)
		}
		if err == nil {
			want, _ := strconv.ParseFloat(string(num), 64)
			if ev.Time != want || ev.Code != code || ev.Data != data {
				t.Fatalf("line %q: got %#v, encoding/json reads %v %q %q", line, ev, want, code, data)
			}
		}
		sp, strictOK := scanLine(line, true)
		if strictOK {
			_, strictOK = parseTime(line[sp.time0:sp.time1])
		}
		if lenientOK := err == nil; strictOK != (lenientOK && utf8.Valid(line)) {
			t.Fatalf("line %q: strict scan ok=%v, lenient ok=%v, valid UTF-8 %v", line, strictOK, lenientOK, utf8.Valid(line))
		}
	})
}

// FuzzTimeProblem checks the text comparison of times against float64
// comparison, and parseTime against strconv.
func FuzzTimeProblem(f *testing.F) {
	for _, p := range [][2]string{{"1", "0.5"}, {"12.5", "12.50"}, {"1e2", "99.9"}, {"-0", "0"},
		{"1.00000000000000001", "1"}, {"0.1", "1e-1"}, {"10", "9.99"}, {"-1", "0"}, {"1e400", "0"}} {
		f.Add(p[0], p[1])
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		if !validTime(a) || !validTime(b) {
			return
		}
		fa, okA := parseTime([]byte(a))
		wa, errA := strconv.ParseFloat(a, 64)
		if okA != (errA == nil) || okA && fa != wa {
			t.Fatalf("parseTime(%q) = %v, %v; strconv: %v, %v", a, fa, okA, wa, errA)
		}
		fb, okB := parseTime([]byte(b))
		if !okB || fb < 0 {
			return // not a possible previous time
		}
		err := timeProblem([]byte(a), []byte(b))
		if want := okA && fa >= 0 && fa >= fb-TimeSlack; (err == nil) != want {
			t.Fatalf("timeProblem(%q, %q) = %v, want ok=%v (%v vs %v)", a, b, err, want, fa, fb)
		}
	})
}

// validTime reports whether s is a JSON number the scanner takes as a time.
func validTime(s string) bool {
	sp, ok := scanLine([]byte("["+s+`,"",""]`), true)
	return ok && sp.time1-sp.time0 == len(s)
}

// FuzzAppendTime checks appendTime against strconv's exact rounding.
func FuzzAppendTime(f *testing.F) {
	for _, t := range []float64{0, 1, 0.0078125, 1.5, 12.345678, 1e-7, 5e-7, 8589934592.5, 1e300, -3.25, 0.1 + 0.2} {
		f.Add(t)
	}
	f.Fuzz(func(t *testing.T, x float64) {
		got := string(appendTime(nil, x))
		want := "0"
		if !math.IsNaN(x) && !math.IsInf(x, 0) {
			want = strings.TrimRight(strconv.FormatFloat(x, 'f', 6, 64), "0")
			want = strings.TrimSuffix(want, ".")
			if want == "-0" || want == "" {
				want = "0"
			}
		}
		if got != want {
			t.Fatalf("appendTime(%v) = %s, want %s", x, got, want)
		}
	})
}

// FuzzAppendString: appendString writes what encoding/json writes for a
// string when it does not escape HTML: the same escapes (\n, \r, \t, \b,
// \f, \u00XX, \u2028, \u2029), U+FFFD for invalid UTF-8, everything else as
// it is.
func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "plain text", "a\"b\\c", "\x1b[1mbold\x1b[0m\r\n", "tab\tff\fbs\b\x00\x1f\x7f",
		"héllo wörld ┌─┐ 😀", "\xff\xfe bad \xc3", "\u2028\u2029", "<html> & 'q'", "0123456789abcdef\x01",
		"\xed\xa0\x80 surrogate", "cut é\xc3", strings.Repeat("x", 7) + "\n" + strings.Repeat("y", 9) + "\"" + strings.Repeat("z", 17)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var want bytes.Buffer
		enc := json.NewEncoder(&want)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(s); err != nil {
			t.Fatal(err)
		}
		got := appendString([]byte("prefix"), s)
		if string(got) != "prefix"+strings.TrimSuffix(want.String(), "\n") {
			t.Fatalf("appendString(%q) = %s, want %s", s, got[len("prefix"):], want.Bytes())
		}
	})
}

func FuzzParseResize(f *testing.F) {
	for _, s := range []string{"80x24", "24x80", "0x0", "65535x65535", "65536x1", "x", "1x", "+1x2", "1x2x3", " 1x2", "٣x4"} {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, s string, kube bool) {
		cols, rows, err := ParseResize(s, kube)
		if err != nil {
			if cols != 0 || rows != 0 {
				t.Fatalf("ParseResize(%q) = %d, %d with error %v", s, cols, rows, err)
			}
			return
		}
		if cols < 1 || cols > 65535 || rows < 1 || rows > 65535 {
			t.Fatalf("ParseResize(%q) = %d, %d: out of range", s, cols, rows)
		}
		first, second := cols, rows
		if kube {
			first, second = rows, cols
		}
		// What was parsed prints back as the input, but for leading zeros.
		a, b, _ := strings.Cut(s, "x")
		if strings.TrimLeft(a, "0") != strconv.Itoa(first) || strings.TrimLeft(b, "0") != strconv.Itoa(second) {
			t.Fatalf("ParseResize(%q, %v) = %d, %d", s, kube, cols, rows)
		}
	})
}

// FuzzDecoder feeds the Decoder anything: it must not panic, must end, and
// must read every stream the Checker accepts without an error; what it reads
// must encode back into a stream the Checker accepts.
func FuzzDecoder(f *testing.F) {
	for _, tc := range checkerCases {
		f.Add([]byte(tc.in), uint8(tc.maxLine))
	}
	f.Add([]byte("{\n\"version\":1,\"width\":1,\"height\":2,\n\"stdout\":[[0.5,\"a\"],\n[1,\"b\"]]}\n"), uint8(0))
	f.Add([]byte(`{"version":3,"term":{"cols":90,"rows":30}}`+"\n#c\n"+`[0.5,"o","a"]`+"\n"+`[1,"x","0"]`), uint8(0))
	f.Add([]byte(`{"version":2}`+"\n"+`[1,"o","`+strings.Repeat("x", 300)+`"]`+"\n"), uint8(100))
	f.Add([]byte("{\"version\":2,\"x\":\"\xff\",\"\xfe\":[1e999]}\n"), uint8(0))
	f.Fuzz(func(t *testing.T, in []byte, maxLine uint8) {
		ml := int(maxLine)
		if want, got := decodeAll(string(in), ml), rawAll(string(in), ml); !cmp.Equal(want, got) {
			t.Fatalf("NextRaw differs from Next (-Next +NextRaw):\n%s", cmp.Diff(want, got))
		}
		dec := NewDecoder(bytes.NewReader(in))
		dec.MaxLine = ml
		h, herr := dec.Header()
		var evs []Event
		var errs []error
		ended := false
		for range len(in) + 2 {
			ev, err := dec.Next()
			if err == io.EOF {
				ended = true
				break
			}
			if err != nil {
				errs = append(errs, err)
				if herr != nil || !strings.Contains(err.Error(), "line") {
					ended = true // header and read errors repeat
					break
				}
				continue
			}
			evs = append(evs, ev)
		}
		if !ended {
			t.Fatalf("Next did not reach the end in %d calls", len(in)+2)
		}

		// Any header read, written again as v2, passes the Checker.
		if herr == nil {
			h2 := h
			h2.Version = 2
			var buf bytes.Buffer
			if err := NewEncoder(&buf).WriteHeader(h2); err != nil {
				t.Fatalf("re-encode header %+v: %v", h2, err)
			}
			if v := check(0, buf.String()); v.Err != "" {
				t.Fatalf("Checker rejects a re-encoded header: %s\n%q", v.Err, buf.String())
			}
		}

		c := Checker{MaxLine: ml}
		c.Write(in)
		if c.Finish() != nil {
			return
		}
		// A valid v2 stream.
		if herr != nil || len(errs) > 0 || dec.Truncated() {
			t.Fatalf("Checker accepts the input, Decoder: header %v, errors %v, truncated %v", herr, errs, dec.Truncated())
		}
		if int64(len(evs)) != c.Lines()-1 {
			t.Fatalf("Decoder read %d events, Checker counted %d lines", len(evs), c.Lines())
		}
		var buf bytes.Buffer
		enc := NewEncoder(&buf)
		if err := enc.WriteHeader(h); err != nil {
			t.Fatalf("re-encode header %+v: %v", h, err)
		}
		for _, ev := range evs {
			if err := enc.WriteEvent(ev); err != nil {
				t.Fatalf("re-encode %+v: %v", ev, err)
			}
		}
		if v := check(0, buf.String()); v.Err != "" {
			t.Fatalf("Checker rejects the re-encoded stream: %s\n%s", v.Err, buf.String())
		}
		back := NewDecoder(&buf)
		for i, want := range evs {
			got, err := back.Next()
			if err != nil || got.Code != want.Code || got.Data != want.Data ||
				math.Abs(got.Time-want.Time) > 5e-7*math.Max(1, math.Abs(want.Time)*1e-9) {
				t.Fatalf("event %d read back as %+v, %v; want %+v", i, got, err, want)
			}
		}
	})
}
