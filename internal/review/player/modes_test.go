package player

import (
	"context"
	"regexp"
	"strings"
	"testing"

	"github.com/reel-rec/reel/internal/asciicast"
)

func TestReset(t *testing.T) {
	tests := []struct {
		name string
		out  []string // output events
		want string   // what Reset returns
	}{
		{"nothing", nil, ""},
		{"ends on a fresh line", []string{"$ ls\r\n", "a b\r\n"}, ""},
		{"ends mid-line", []string{"$ ls\r\n", "$ "}, "\r\n"},
		{"ends after a carriage return", []string{"50%\r"}, "\r\n"},
		{"vim, quit in the middle", []string{"$ vim\r\n", "\x1b[?1049h\x1b[?1h\x1b=\x1b[?25l", "~\r\n~ text"},
			"\x1b>\x1b[?1l\x1b[?1049l\x1b[?25h"},
		{"vim, left normally", []string{"$ vim\r\n", "\x1b[?1049h\x1b[?1h\x1b=", "~\r\n~", "\x1b[?1049l\x1b[?1l\x1b>"}, ""},
		{"the alternate screen does not move the prompt", []string{"$ top\r\n\x1b[?1049h", "load 0.5"}, "\x1b[?1049l"},
		{"mouse and paste", []string{"\x1b[?1000;1006h\x1b[?2004h\r\n"}, "\x1b[?1000l\x1b[?1006l\x1b[?2004l"},
		{"sequence split across events", []string{"\x1b", "[?", "10", "49h"}, "\x1b[?1049l"},
		{"text attributes", []string{"\x1b[1;31mred\r\n"}, "\x1b[0m"},
		{"text attributes reset", []string{"\x1b[1;31mred\x1b[m\r\n"}, ""},
		{"text attributes reset by 0", []string{"\x1b[1mbold\x1b[0m\r\n"}, ""},
		{"no autowrap", []string{"\x1b[?7l\r\n"}, "\x1b[?7h"},
		{"autowrap back on", []string{"\x1b[?7l\x1b[?7h\r\n"}, ""},
		{"cursor hidden", []string{"\x1b[?25l\r\n"}, "\x1b[?25h"},
		{"full reset", []string{"\x1b[?1049h\x1b[?1000h\x1b[1m", "\x1bc"}, ""},
		{"title with a mode in it is not a mode", []string{"\x1b]0;\x1b[?1049h\x07\r\n"}, ""},
		{"title ended by ST", []string{"\x1b]0;x\x1b\\", "\x1b[?2004h\r\n"}, "\x1b[?2004l"},
		{"charset designation", []string{"\x1b(B\x1b[?1h\r\n"}, "\x1b[?1l"},
		{"unknown private modes are left alone", []string{"\x1b[?12h\x1b[?5h\r\n"}, ""},
		{"non-private h is not a mode", []string{"\x1b[4h\r\n"}, ""},
		{"overlong parameters are ignored", []string{"\x1b[?" + strings.Repeat("1;", 100) + "1049h\r\n"}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out strings.Builder
			p := &Player{Out: &out, NoWait: true}
			i := 0
			next := func() (asciicast.Event, error) {
				if i == len(tc.out) {
					return asciicast.Event{}, errEnd
				}
				i++
				return asciicast.Event{Time: float64(i), Code: asciicast.Output, Data: tc.out[i-1]}, nil
			}
			if err := p.Play(context.Background(), next); err != errEnd {
				t.Fatal(err)
			}
			if got := string(p.Reset()); got != tc.want {
				t.Errorf("Reset() = %q, want %q", got, tc.want)
			}
			if out.String() != strings.Join(tc.out, "") {
				t.Errorf("output %q changed", out.String())
			}
			if again := string(p.Reset()); again != "" {
				t.Errorf("a second Reset() = %q, want nothing", again)
			}
		})
	}
}

// errEnd ends a replay in TestReset without io.EOF, as a quit would.
var errEnd = errorString("end")

type errorString string

func (e errorString) Error() string { return string(e) }

// FuzzModes: the mode tracker accepts any output; what Reset returns does
// not depend on how the output was cut into events; and it is made only of
// the sequences Reset may write.
func FuzzModes(f *testing.F) {
	f.Add([]byte("$ vim\r\n\x1b[?1049h\x1b[?1h\x1b=\x1b[?25l~"), uint8(3))
	f.Add([]byte("\x1b]0;title\x07\x1b[1;31mred\x1b[m\r\n"), uint8(1))
	f.Add([]byte("\x1b[?1000;1006h\x1bc\x1b[?2004h"), uint8(5))
	f.Add([]byte("\x1bP1$r\x1b\\\x1b(B\x1b[?7l"), uint8(2))
	allowed := regexp.MustCompile(`^(\x1b\[0m)?(\x1b>)?(\x1b\[\?\d+[hl])*(\r\n)?$`)
	f.Fuzz(func(t *testing.T, out []byte, cut uint8) {
		var whole, split modes
		whole.feed(string(out))
		for i := 0; i < len(out); i += int(cut%16) + 1 {
			split.feed(string(out[i:min(i+int(cut%16)+1, len(out))]))
		}
		a, b := string(whole.reset()), string(split.reset())
		if a != b {
			t.Fatalf("Reset whole %q, split every %d bytes %q", a, cut%16+1, b)
		}
		if !allowed.MatchString(a) {
			t.Fatalf("Reset %q", a)
		}
		if again := whole.reset(); len(again) != 0 {
			t.Fatalf("second Reset %q", again)
		}
	})
}
