package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/reel-rec/reel/internal/asciicast"
)

const testHeader = `{"version":2,"width":80,"height":24,"timestamp":1700000000}`

// lastTime runs lastEventTime on a recording's bytes.
type lastTime struct {
	T  float64
	OK bool
}

func TestLastEventTime(t *testing.T) {
	long := strings.Repeat("x", 200<<10)
	tests := []struct {
		name string
		body string // after the header line
		want lastTime
	}{
		{"no events", "", lastTime{}},
		{"one event", `[1.5,"o","a"]` + "\n", lastTime{1.5, true}},
		{"last of several", `[1,"o","a"]` + "\n" + `[2.25,"o","b"]` + "\n" + `[7.125,"r","90x30"]` + "\n", lastTime{7.125, true}},
		{"partial line in flight is skipped", `[1,"o","a"]` + "\n" + `[2,"o","b"]` + "\n" + `[3,"o","ab`, lastTime{2, true}},
		{"partial time is skipped", `[1,"o","a"]` + "\n" + `[12`, lastTime{1, true}},
		{"whole last line without newline", `[1,"o","a"]` + "\n" + `[3.5,"o","ab"]`, lastTime{3.5, true}},
		{"blank lines at the end", `[4,"o","a"]` + "\n\n\n", lastTime{4, true}},
		{"crlf", `[4,"o","a"]` + "\r\n", lastTime{4, true}},
		{"spaces", ` [ 4.5 , "o", "a" ]` + "\n", lastTime{4.5, true}},
		{"exponent", `[1e2,"o","a"]` + "\n", lastTime{100, true}},
		{"last line longer than a chunk", `[1,"o","a"]` + "\n" + `[9.75,"o","` + long + `"]` + "\n", lastTime{9.75, true}},
		{"last line not an event", `[1,"o","a"]` + "\n" + `{"oops":1}` + "\n", lastTime{}},
		{"negative time", `[-1,"o","a"]` + "\n", lastTime{}},
		{"leading zero is not JSON", `[01,"o","a"]` + "\n", lastTime{}},
		{"number without comma", `[1]` + "\n", lastTime{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			data := []byte(testHeader + "\n" + tc.body)
			tm, ok, err := lastEventTime(bytes.NewReader(data), int64(len(data)), int64(len(testHeader))+1)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, lastTime{tm, ok}); diff != "" {
				t.Errorf("(-want +got)\n%s", diff)
			}
		})
	}
}

func TestLastEventTimeGivesUpOnHugeLine(t *testing.T) {
	data := []byte(testHeader + "\n" + `[1,"o","a"]` + "\n" + `[2,"o","` + strings.Repeat("x", 300) + `"]` + "\n")
	tr := tailReader{r: bytes.NewReader(data), buf: make([]byte, 16), limit: 100}
	_, err := tr.lastNewline(int64(len(data))-1, int64(len(testHeader))+1)
	if err != errLongLine {
		t.Fatalf("lastNewline past the limit: err %v, want errLongLine", err)
	}
}

// refLastEventTime is lastEventTime done the obvious way, on all the bytes.
func refLastEventTime(data []byte, from int) (float64, bool) {
	if from > len(data) {
		return 0, false
	}
	body := data[from:]
	lines := bytes.Split(body, []byte("\n"))
	if frag := lines[len(lines)-1]; len(frag) > 0 && len(frag) <= tailChunk {
		var ev asciicast.Event
		if json.Unmarshal(frag, &ev) == nil && ev.Time >= 0 {
			return ev.Time, true
		}
	}
	for i := len(lines) - 2; i >= 0; i-- {
		l := lines[i]
		if len(l) == 0 {
			continue
		}
		pre := l[:min(len(l), timePrefix)]
		if t, ok := parseEventTime(pre); ok {
			return t, true
		}
		if len(bytes.TrimSpace(pre)) > 0 {
			return 0, false
		}
	}
	return 0, false
}

// FuzzLastEventTime checks the backwards reader against the obvious
// forwards one, with chunks small enough that lines straddle them.
func FuzzLastEventTime(f *testing.F) {
	f.Add([]byte(testHeader+"\n"+`[1,"o","a"]`+"\n"+`[2.5,"o","b"]`+"\n"), uint8(3))
	f.Add([]byte(testHeader+"\n"+`[1,"o","a"]`+"\n"+`[2.5,"o","b`), uint8(1))
	f.Add([]byte(testHeader+"\n\n\n"+` [ 3 , "o" , "x" ] `+"\n\n"), uint8(7))
	f.Add([]byte(testHeader+"\n"+`[1e-3,"o","a"]`), uint8(64))
	f.Add([]byte("{}\n[1,\"o\",\"\\n\"]\n"), uint8(2))
	f.Fuzz(func(t *testing.T, data []byte, chunk uint8) {
		from := bytes.IndexByte(data, '\n') + 1
		if from == 0 {
			from = len(data) + 1
		}
		got, ok, err := lastEventTimeChunk(bytes.NewReader(data), int64(len(data)), int64(from), int(chunk%64)+1)
		if err != nil {
			t.Fatal(err)
		}
		want, wantOK := refLastEventTime(data, from)
		if ok != wantOK || got != want {
			t.Fatalf("lastEventTime = %v, %v; want %v, %v", got, ok, want, wantOK)
		}
	})
}

// FuzzParseEventTime: wherever the asciicast decoder accepts a line,
// parseEventTime reads the same time from the line's first bytes.
func FuzzParseEventTime(f *testing.F) {
	for _, s := range []string{`[1.5,"o","a"]`, ` [ 0 , "i" , "" ] `, `[1e3,"o","x"]`, `[12345678.123456,"o","x"]`, `[-0,"o","x"]`, `[1.,"o","x"]`, `["1","o","x"]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		got, ok := parseEventTime(line[:min(len(line), timePrefix)])
		var ev asciicast.Event
		if err := ev.UnmarshalJSON(line); err != nil || ev.Time < 0 {
			return
		}
		// The number must lie within the prefix for parseEventTime to see it.
		if i := bytes.IndexByte(line, ','); i < 0 || i >= timePrefix {
			return
		}
		if !ok || got != ev.Time {
			t.Fatalf("parseEventTime(%q) = %v, %v; decoder says %v", line, got, ok, ev.Time)
		}
	})
}

func TestSanitize(t *testing.T) {
	tests := []struct {
		name, in string
		n        int
		want     string
	}{
		{"plain", "bash -l", 10, "bash -l"},
		{"escape sequences", "ls\x1b[2J\x1b]0;pwned\x07", 40, "ls?[2J?]0;pwned?"},
		{"newline", "a\nb", 10, "a?b"},
		{"cut", "abcdefgh", 5, "abcd…"},
		{"cut trims spaces", "abc   defg", 5, "abc…"},
		{"runes not bytes", "ääääää", 4, "äää…"},
		{"exactly n", "abcde", 5, "abcde"},
		{"bad utf8", "a\xffb", 5, "a?b"},
		{"line separator", "a\u2028b", 5, "a?b"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := sanitize(tc.in, tc.n); got != tc.want {
				t.Errorf("sanitize(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
			}
		})
	}
}

func TestFormat(t *testing.T) {
	tests := []struct{ name, got, want string }{
		{"zero", formatDuration(0), "0.0s"},
		{"seconds", formatDuration(4.25), "4.2s"},
		{"minutes", formatDuration(187), "3m07s"},
		{"hours", formatDuration(3723.4), "1h02m03s"},
		{"bytes", formatSize(512), "512B"},
		{"KiB", formatSize(1536), "1.5KiB"},
		{"MiB", formatSize(12 << 20), "12MiB"},
		{"GiB", formatSize(3<<30 + 1<<29), "3.5GiB"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.got != tc.want {
				t.Errorf("got %q, want %q", tc.got, tc.want)
			}
		})
	}
}

func TestParseWhen(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Skip("no time zone data:", err)
	}
	now := time.Date(2026, 11, 10, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in      string
		want    time.Time
		wantErr bool
	}{
		{"", time.Time{}, false},
		{"24h", now.Add(-24 * time.Hour), false},
		{"90m", now.Add(-90 * time.Minute), false},
		{"7d", now.AddDate(0, 0, -7), false},
		{"2026-11-01", time.Date(2026, 11, 1, 0, 0, 0, 0, berlin), false},
		{"2026-11-01T14:30", time.Date(2026, 11, 1, 14, 30, 0, 0, berlin), false},
		{"2026-11-01 14:30:15", time.Date(2026, 11, 1, 14, 30, 15, 0, berlin), false},
		{"2026-11-01T14:30:00Z", time.Date(2026, 11, 1, 14, 30, 0, 0, time.UTC), false},
		{"2026-11-01T14:30:00+05:00", time.Date(2026, 11, 1, 9, 30, 0, 0, time.UTC), false},
		{"-5h", time.Time{}, true},
		{"yesterday", time.Time{}, true},
		{"7.5d", time.Time{}, true},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := parseWhen(tc.in, now, berlin)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if !got.Equal(tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestHeaderUserAndCommand(t *testing.T) {
	tests := []struct {
		name          string
		h             *asciicast.Header
		user, command string
	}{
		{"no header", nil, "", ""},
		{"ssh same user", &asciicast.Header{SSHUser: "root", LocalUser: "root", SrcNodeUser: "alice@example.com", Command: "bash -l"}, "root", "bash -l"},
		{"ssh mapped user", &asciicast.Header{SSHUser: "alice", LocalUser: "ubuntu", Command: "top"}, "alice→ubuntu", "top"},
		{"local only", &asciicast.Header{LocalUser: "bob"}, "bob", ""},
		{"tailnet user only", &asciicast.Header{SrcNodeUser: "carol@example.com", Title: "demo"}, "carol@example.com", "demo"},
		{"kubernetes", &asciicast.Header{SrcNodeUser: "dave@example.com", Kubernetes: &asciicast.Kubernetes{PodName: "web-0", Namespace: "prod", Container: "app", SessionType: "exec"}}, "dave@example.com", "exec prod/web-0 app"},
		{"kubernetes attach with command", &asciicast.Header{Command: "sh", Kubernetes: &asciicast.Kubernetes{PodName: "p", SessionType: "attach"}}, "", "attach p: sh"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := []string{headerUser(tc.h), headerCommand(tc.h)}
			if diff := cmp.Diff([]string{tc.user, tc.command}, got); diff != "" {
				t.Errorf("(-want +got)\n%s", diff)
			}
		})
	}
}

func TestMatchUser(t *testing.T) {
	h := &asciicast.Header{SSHUser: "alice", LocalUser: "ubuntu", SrcNodeUser: "Alice.Smith@example.com"}
	tests := []struct {
		user string
		want bool
	}{
		{"alice", true},
		{"ubuntu", true},
		{"alice.smith@example.com", true},
		{"alice.smith", true},
		{"ALICE", true},
		{"example.com", false},
		{"bob", false},
		{"alic", false},
	}
	for _, tc := range tests {
		t.Run(tc.user, func(t *testing.T) {
			if got := matchUser(h, tc.user); got != tc.want {
				t.Errorf("matchUser(%q) = %v, want %v", tc.user, got, tc.want)
			}
		})
	}
	if matchUser(nil, "alice") {
		t.Error("a recording without a header matched a user")
	}
}
