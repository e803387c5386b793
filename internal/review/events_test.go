package review

import (
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/reel-rec/reel/internal/asciicast"
)

func TestEvents(t *testing.T) {
	tests := []struct {
		name      string
		rec       string
		want      []asciicast.Event
		skipped   string // start of Skipped's message; "" for nil
		truncated bool
	}{
		{"v2", testHeader + "\n" + `[0.5,"o","a"]` + "\n" + `[1,"r","90x30"]` + "\n",
			[]asciicast.Event{{Time: 0.5, Code: "o", Data: "a"}, {Time: 1, Code: "r", Data: "90x30"}}, "", false},
		{"a bad line is skipped", testHeader + "\n" + `[0.5,"o","a"]` + "\n" + `[0.6,"o",` + "\n" + `[1,"o","b"]` + "\n",
			[]asciicast.Event{{Time: 0.5, Code: "o", Data: "a"}, {Time: 1, Code: "o", Data: "b"}}, "a line is not an asciicast event, skipped: asciicast: line 3: ", false},
		{"two bad lines", testHeader + "\n" + `x` + "\n" + `y` + "\n" + `[1,"o","b"]` + "\n",
			[]asciicast.Event{{Time: 1, Code: "o", Data: "b"}}, "2 lines are not asciicast events, skipped; the first: asciicast: line 2: ", false},
		{"cut off", testHeader + "\n" + `[0.5,"o","a"]` + "\n" + `[1,"o","b`,
			[]asciicast.Event{{Time: 0.5, Code: "o", Data: "a"}}, "", true},
		{"v3 intervals", `{"version":3,"term":{"cols":80,"rows":24}}` + "\n" + `[0.5,"o","a"]` + "\n" + `[1,"o","b"]` + "\n",
			[]asciicast.Event{{Time: 0.5, Code: "o", Data: "a"}, {Time: 1.5, Code: "o", Data: "b"}}, "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := NewEvents(strings.NewReader(tc.rec))
			if _, err := e.Header(); err != nil {
				t.Fatal(err)
			}
			var got []asciicast.Event
			for {
				ev, err := e.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, ev)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("events (-want +got)\n%s", diff)
			}
			err := e.Skipped()
			if (tc.skipped == "") != (err == nil) || err != nil && !strings.HasPrefix(err.Error(), tc.skipped) {
				t.Errorf("Skipped() = %v, want %q", err, tc.skipped)
			}
			if e.Truncated() != tc.truncated {
				t.Errorf("Truncated() = %v", e.Truncated())
			}
		})
	}
}

// failingReader returns its data, then an error.
type failingReader struct {
	data string
	err  error
}

func (r *failingReader) Read(p []byte) (int, error) {
	if r.data == "" {
		return 0, r.err
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

// TestEventsReadError: a read error ends the events with that error; it
// is not counted as a skipped line.
func TestEventsReadError(t *testing.T) {
	boom := errors.New("disk on fire")
	e := NewEvents(&failingReader{data: testHeader + "\n" + `[0.5,"o","a"]` + "\n" + `[1,"o`, err: boom})
	if _, err := e.Header(); err != nil {
		t.Fatal(err)
	}
	if ev, err := e.Next(); err != nil || ev.Data != "a" {
		t.Fatalf("first event %v, %v", ev, err)
	}
	if _, err := e.Next(); !errors.Is(err, boom) {
		t.Fatalf("after the read error: %v, want %v", err, boom)
	}
	if err := e.Skipped(); err != nil {
		t.Errorf("Skipped() = %v after a read error", err)
	}
}
