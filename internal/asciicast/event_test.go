package asciicast

import (
	"encoding/json"
	"math"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestAppendEvent(t *testing.T) {
	tests := []struct {
		name string
		ev   Event
		want string
	}{
		{"integer time", Event{2, Output, "x"}, `[2,"o","x"]`},
		{"zero", Event{0, Output, ""}, `[0,"o",""]`},
		{"negative zero", Event{math.Copysign(0, -1), Output, ""}, `[0,"o",""]`},
		{"short fraction", Event{1.5, Output, ""}, `[1.5,"o",""]`},
		{"six decimals", Event{12.345678, Output, ""}, `[12.345678,"o",""]`},
		{"rounded up", Event{12.3456789, Output, ""}, `[12.345679,"o",""]`},
		{"rounded to integer", Event{0.9999996, Output, ""}, `[1,"o",""]`},
		{"tie to even down", Event{0.0078125, Output, ""}, `[0.007812,"o",""]`},
		{"tie to even up", Event{0.0234375, Output, ""}, `[0.023438,"o",""]`},
		{"tiny", Event{1e-7, Output, ""}, `[0,"o",""]`},
		{"float sum", Event{0.1 + 0.2, Output, ""}, `[0.3,"o",""]`},
		{"negative", Event{-1.25, Output, ""}, `[-1.25,"o",""]`},
		{"huge", Event{1e21, Output, ""}, `[1000000000000000000000,"o",""]`},
		{"past 2^33", Event{8589934592.5, Output, ""}, `[8589934592.5,"o",""]`},
		{"NaN", Event{math.NaN(), Output, ""}, `[0,"o",""]`},
		{"terminal escapes", Event{1, Output, "\x1b[1mhello\r\n"}, `[1,"o","\u001b[1mhello\r\n"]`},
		{"quotes and backslashes", Event{1, Output, `say "hi" \ bye`}, `[1,"o","say \"hi\" \\ bye"]`},
		{"short escapes", Event{1, Output, "\t\b\f"}, `[1,"o","\t\b\f"]`},
		{"control bytes", Event{1, Output, "\x00\x07\x1f\x7f"}, `[1,"o","\u0000\u0007\u001f` + "\x7f" + `"]`},
		{"html left alone", Event{1, Output, "<a href='x'>&amp;</a>"}, `[1,"o","<a href='x'>&amp;</a>"]`},
		{"utf-8 kept", Event{1, Output, "héllo ─ 日本 🎉"}, `[1,"o","héllo ─ 日本 🎉"]`},
		{"invalid utf-8", Event{1, Output, "a\xffb\xe2\x82c"}, `[1,"o","a\ufffdb\ufffd\ufffdc"]`},
		{"line separators", Event{1, Output, "a\u2028b\u2029c"}, `[1,"o","a\u2028b\u2029c"]`},
		{"code escaped", Event{1, "\"", ""}, `[1,"\"",""]`},
		{"resize", Event{3.5, Resize, "100x30"}, `[3.5,"r","100x30"]`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := string(AppendEvent([]byte("prefix "), tc.ev))
			if got != "prefix "+tc.want {
				t.Errorf("AppendEvent = %s, want %s", got, tc.want)
			}
			// encoding/json reads the same strings (invalid UTF-8 aside).
			var back []any
			if err := json.Unmarshal([]byte(tc.want), &back); err != nil {
				t.Fatalf("not JSON: %v", err)
			}
			if want := strings.ToValidUTF8(tc.ev.Data, "\uFFFD"); !strings.Contains(tc.ev.Data, "\xe2\x82") && back[2] != want {
				t.Errorf("encoding/json reads data %q, want %q", back[2], want)
			}
		})
	}
}

func TestAppendEventAllocs(t *testing.T) {
	buf := make([]byte, 0, 256)
	ev := Event{12.345678, Output, "\x1b[1mhello\r\n héllo"}
	if n := testing.AllocsPerRun(100, func() { buf = AppendEvent(buf[:0], ev) }); n != 0 {
		t.Errorf("AppendEvent allocated %v times, want 0", n)
	}
}

func TestEventJSON(t *testing.T) {
	evs := []Event{{0.5, Output, "\x1b[1mhi\r\n"}, {1, Resize, "80x24"}, {2.25, Marker, "chapter 1"}, {3, Exit, "0"}}
	b, err := json.MarshalIndent(evs, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	var back []Event
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatalf("unmarshal indented %s: %v", b, err)
	}
	if diff := cmp.Diff(evs, back); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
	if _, err := json.Marshal(Event{Time: math.Inf(1)}); err == nil {
		t.Error("Marshal of an infinite time: no error")
	}
}

func TestEventUnmarshal(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want Event
		err  string
	}{
		{name: "plain", in: `[1.5,"o","x"]`, want: Event{1.5, Output, "x"}},
		{name: "spaces", in: ` [ 1 , "i" , "y" ] `, want: Event{1, Input, "y"}},
		{name: "escapes", in: `[0,"o","\u001b[0m\ud83d\ude00\ud800x\/"]`, want: Event{0, Output, "\x1b[0m😀\uFFFDx/"}},
		{name: "invalid utf-8 replaced", in: "[0,\"o\",\"a\xffb\"]", want: Event{0, Output, "a\uFFFDb"}},
		{name: "exponent", in: `[1.5e3,"o",""]`, want: Event{1500, Output, ""}},
		{name: "long code", in: `[0,"custom","d"]`, want: Event{0, "custom", "d"}},
		{name: "too short", in: `[1,"o"]`, err: "asciicast: event is not [time, code, data]: want ',' after code, got ']' at column 7"},
		{name: "object", in: `{}`, err: "asciicast: event is not [time, code, data]: want '[', got '{' at column 1"},
		{name: "out of range", in: `[1e999,"o",""]`, err: "asciicast: event time 1e999 is out of range"},
		{name: "negative allowed", in: `[-1,"o",""]`, want: Event{-1, Output, ""}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got Event
			err := got.UnmarshalJSON([]byte(tc.in))
			if tc.err != "" {
				if err == nil || err.Error() != tc.err {
					t.Fatalf("error %v, want %s", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseResize(t *testing.T) {
	tests := []struct {
		name       string
		data       string
		kube       bool
		cols, rows int
		err        string
	}{
		{name: "asciicast", data: "80x24", cols: 80, rows: 24},
		{name: "kubernetes swaps", data: "24x80", kube: true, cols: 80, rows: 24},
		{name: "largest", data: "65535x65535", cols: 65535, rows: 65535},
		{name: "leading zeros", data: "080x024", cols: 80, rows: 24},
		{name: "zero", data: "0x24", err: `asciicast: resize "0x24": want COLSxROWS: size 0`},
		{name: "too big", data: "65536x1", err: `asciicast: resize "65536x1": want COLSxROWS: size over 65535`},
		{name: "no x", data: "80", err: `asciicast: resize "80": want COLSxROWS: no 'x' after the first number`},
		{name: "kubernetes message", data: "80", kube: true, err: `asciicast: resize "80": want ROWSxCOLS: no 'x' after the first number`},
		{name: "empty", data: "", err: `asciicast: resize "": want COLSxROWS: missing number`},
		{name: "sign", data: "+80x24", err: `asciicast: resize "+80x24": want COLSxROWS: missing number`},
		{name: "trailing", data: "80x24 ", err: `asciicast: resize "80x24 ": want COLSxROWS: unexpected " " after the second number`},
		{name: "capital X", data: "80X24", err: `asciicast: resize "80X24": want COLSxROWS: no 'x' after the first number`},
		{name: "three parts", data: "1x2x3", err: `asciicast: resize "1x2x3": want COLSxROWS: unexpected "x3" after the second number`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cols, rows, err := ParseResize(tc.data, tc.kube)
			gotErr := ""
			if err != nil {
				gotErr = err.Error()
			}
			if cols != tc.cols || rows != tc.rows || gotErr != tc.err {
				t.Errorf("ParseResize(%q, %v) = %d, %d, %q; want %d, %d, %q", tc.data, tc.kube, cols, rows, gotErr, tc.cols, tc.rows, tc.err)
			}
		})
	}
}
