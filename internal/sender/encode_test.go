package sender

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"

	"github.com/reel-rec/reel/internal/asciicast"
)

func TestIncompleteSuffix(t *testing.T) {
	for _, tc := range []struct {
		name string
		s    string
		want int
	}{
		{"empty", "", 0},
		{"ascii", "abc", 0},
		{"whole 2-byte", "é", 0},
		{"half of 2-byte", "a\xc3", 1},
		{"1 of 3", "a\xe2", 1},
		{"2 of 3", "a\xe2\x82", 2},
		{"whole 3-byte", "€", 0},
		{"3 of 4", "\xf0\x9f\x98", 3},
		{"whole 4-byte", "😀", 0},
		{"lone continuation", "a\x80", 0},
		{"overlong start C0", "a\xc0", 0},
		{"surrogate ED A0", "a\xed\xa0", 0},
		{"ED 9F ok", "a\xed\x9f", 2},
		{"above U+10FFFF", "a\xf4\x90", 0},
		{"F5 never valid", "a\xf5", 0},
		{"overlong E0 80", "a\xe0\x80", 0},
		{"bad second byte", "a\xe2\x41", 0},
		{"four continuations", "\x80\x80\x80\x80", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := incompleteSuffix(tc.s); got != tc.want {
				t.Errorf("incompleteSuffix(%q) = %d, want %d", tc.s, got, tc.want)
			}
		})
	}
}

func TestParseFrame(t *testing.T) {
	for _, tc := range []struct {
		name    string
		line    string
		want    frame
		wantErr bool
	}{
		{"ack", `{"ack":42}`, frame{Ack: 42}, false},
		{"zero ack", `{"ack":0}`, frame{}, false},
		{"empty object", `{}`, frame{}, false},
		{"error", `{"error":"disk full"}`, frame{Error: "disk full"}, false},
		{"ack and error", `{"ack":7,"error":"x"}`, frame{Ack: 7, Error: "x"}, false},
		{"empty error is none", `{"ack":7,"error":""}`, frame{Ack: 7}, false},
		{"unknown field", `{"ack":1,"later":true}`, frame{Ack: 1}, false},
		{"blank line", "  \r", frame{}, false},
		{"negative", `{"ack":-1}`, frame{}, true},
		{"fraction", `{"ack":1.5}`, frame{}, true},
		{"huge", `{"ack":99999999999999999999}`, frame{}, true},
		{"string ack", `{"ack":"1"}`, frame{}, true},
		{"not json", `ack 1`, frame{}, true},
		{"array", `[1]`, frame{}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseFrame([]byte(tc.line))
			if (err != nil) != tc.wantErr {
				t.Fatalf("parseFrame(%q) error = %v, want error %v", tc.line, err, tc.wantErr)
			}
			if err == nil {
				if diff := cmp.Diff(tc.want, got); diff != "" {
					t.Errorf("(-want +got):\n%s", diff)
				}
			}
		})
	}
}

func FuzzParseFrame(f *testing.F) {
	for _, s := range []string{`{"ack":1}`, `{"error":"x"}`, `{}`, ``, `{"ack":-1}`, `{"ack":1e3}`, `null`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		fr, err := parseFrame(line)
		if err == nil && fr.Ack < 0 {
			t.Fatalf("negative ack %d accepted", fr.Ack)
		}
	})
}

// encodeChunks runs chunks of output through the encoder, as the upload
// does, and returns the recording's event lines decoded.
func encodeChunks(t *testing.T, chunks []string) []asciicast.Event {
	t.Helper()
	r := newRecording(&Client{Now: func() time.Time { return time.Unix(0, 0) }}, time.Unix(0, 0), nil)
	for _, c := range chunks {
		r.encode(event{code: 'o', data: []byte(c)})
	}
	r.flushCarry()
	var evs []asciicast.Event
	for _, line := range strings.Split(strings.TrimSuffix(string(r.pend), "\n"), "\n") {
		if line == "" {
			continue
		}
		if !utf8.ValidString(line) {
			t.Fatalf("line is not valid UTF-8: %q", line)
		}
		var e asciicast.Event
		if err := e.UnmarshalJSON([]byte(line)); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		evs = append(evs, e)
	}
	return evs
}

// FuzzEncodeSplit: however output is split into writes, the recorded text
// is the text of the whole output, with each invalid byte as U+FFFD, the
// same as if it had been written at once.
func FuzzEncodeSplit(f *testing.F) {
	f.Add("hello é € 😀", uint16(7), uint16(3))
	f.Add("\xe2\x82\xac\xe2\x82", uint16(1), uint16(1))
	f.Add("a\xff\xc3b\xc3\xa9", uint16(2), uint16(5))
	f.Fuzz(func(t *testing.T, s string, step, offset uint16) {
		n := int(step)%17 + 1
		var chunks []string
		first := int(offset) % (len(s) + 1)
		chunks = append(chunks, s[:first])
		for i := first; i < len(s); i += n {
			chunks = append(chunks, s[i:min(i+n, len(s))])
		}
		var got strings.Builder
		for _, e := range encodeChunks(t, chunks) {
			got.WriteString(e.Data)
		}
		var want strings.Builder
		for _, e := range encodeChunks(t, []string{s}) {
			want.WriteString(e.Data)
		}
		if got.String() != want.String() {
			t.Fatalf("split %q into %q: recorded %q, want %q", s, chunks, got.String(), want.String())
		}
		if utf8.ValidString(s) && got.String() != s {
			t.Fatalf("valid input %q recorded as %q", s, got.String())
		}
	})
}
