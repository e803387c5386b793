package asciicast

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// writeRecorder keeps each Write call separately.
type writeRecorder struct {
	writes []string
	err    error
}

func (w *writeRecorder) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	w.writes = append(w.writes, string(p))
	return len(p), nil
}

func TestEncoder(t *testing.T) {
	var w writeRecorder
	enc := NewEncoder(&w)
	h := Header{Width: 80, Height: 24, Timestamp: 1700000000, Env: map[string]string{"TERM": "xterm"}}
	if err := enc.WriteHeader(h); err != nil {
		t.Fatal(err)
	}
	evs := []Event{{0.25, Output, "\x1b[1mhello\r\n"}, {0.25, Resize, "100x30"}, {1.0000004, Output, "é"}, {2, Marker, ""}}
	for _, ev := range evs {
		if err := enc.WriteEvent(ev); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{
		`{"version":2,"width":80,"height":24,"timestamp":1700000000,"env":{"TERM":"xterm"}}` + "\n",
		`[0.25,"o","\u001b[1mhello\r\n"]` + "\n",
		`[0.25,"r","100x30"]` + "\n",
		`[1,"o","é"]` + "\n",
		`[2,"m",""]` + "\n",
	}
	if diff := cmp.Diff(want, w.writes); diff != "" {
		t.Errorf("writes (-want +got):\n%s", diff)
	}

	// What it wrote passes the Checker and decodes back.
	all := strings.Join(w.writes, "")
	if v := check(0, all); v.Err != "" {
		t.Errorf("Checker: %s", v.Err)
	}
	dec := NewDecoder(strings.NewReader(all))
	gotH, err := dec.Header()
	if err != nil {
		t.Fatal(err)
	}
	h.Version = 2
	if diff := cmp.Diff(h, gotH); diff != "" {
		t.Errorf("header read back (-want +got):\n%s", diff)
	}
	evs[2].Time = 1 // as written
	for i, want := range evs {
		got, err := dec.Next()
		if err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("event %d read back (-want +got):\n%s", i, diff)
		}
	}
	if _, err := dec.Next(); err != io.EOF {
		t.Errorf("after the last event: %v, want io.EOF", err)
	}
}

func TestEncoderErrors(t *testing.T) {
	tests := []struct {
		name string
		run  func(*Encoder) error
		err  string
	}{
		{"event before header", func(e *Encoder) error { return e.WriteEvent(Event{1, Output, ""}) },
			"asciicast: event before the header"},
		{"version 3", func(e *Encoder) error { return e.WriteHeader(Header{Version: 3}) },
			"asciicast: header version 3: the encoder writes version 2"},
		{"two headers", func(e *Encoder) error { e.WriteHeader(Header{}); return e.WriteHeader(Header{}) },
			"asciicast: header already written"},
		{"bad extra", func(e *Encoder) error {
			return e.WriteHeader(Header{Extra: map[string]json.RawMessage{"title": json.RawMessage(`"x"`)}})
		}, `asciicast: header: extra field "title" is a known field`},
		{"negative time", func(e *Encoder) error { e.WriteHeader(Header{}); return e.WriteEvent(Event{-1, Output, ""}) },
			"asciicast: event time -1: want a finite number ≥ 0"},
		{"NaN time", func(e *Encoder) error { e.WriteHeader(Header{}); return e.WriteEvent(Event{math.NaN(), Output, ""}) },
			"asciicast: event time NaN: want a finite number ≥ 0"},
		{"time goes back", func(e *Encoder) error {
			e.WriteHeader(Header{})
			e.WriteEvent(Event{2.5, Output, ""})
			return e.WriteEvent(Event{1.4999999, Output, ""})
		}, "asciicast: event time 1.4999999 is before the previous event's time 2.5"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.run(NewEncoder(io.Discard))
			if err == nil || err.Error() != tc.err {
				t.Errorf("error %v, want %s", err, tc.err)
			}
		})
	}

	t.Run("header over 1 MiB", func(t *testing.T) {
		err := NewEncoder(io.Discard).WriteHeader(Header{Title: strings.Repeat("x", 1<<20)})
		if err == nil || !strings.Contains(err.Error(), "the limit is 1048576") {
			t.Errorf("error %v, want the header limit", err)
		}
	})

	t.Run("write error", func(t *testing.T) {
		boom := errors.New("disk full")
		w := &writeRecorder{}
		enc := NewEncoder(w)
		enc.WriteHeader(Header{})
		w.err = boom
		if err := enc.WriteEvent(Event{1, Output, "x"}); !errors.Is(err, boom) {
			t.Errorf("WriteEvent error %v, want %v wrapped", err, boom)
		}
		if err := NewEncoder(w).WriteHeader(Header{}); !errors.Is(err, boom) {
			t.Errorf("WriteHeader error %v, want %v wrapped", err, boom)
		}
	})
}

// TestEncoderInvalidUTF8Header: a header read from a file that is not
// UTF-8 is written as valid UTF-8, which the Checker accepts.
func TestEncoderInvalidUTF8Header(t *testing.T) {
	var h Header
	if err := h.UnmarshalJSON([]byte("{\"version\":2,\"title\":\"t\xff\",\"x-note\":{\"a\":\"b\xfe\",\"n\":12345678901234567890}}")); err != nil {
		t.Fatal(err)
	}
	var buf strings.Builder
	if err := NewEncoder(&buf).WriteHeader(h); err != nil {
		t.Fatal(err)
	}
	// U+FFFD written as itself, as encoding/json writes it.
	want := strings.ReplaceAll(`{"version":2,"width":0,"height":0,"timestamp":0,"title":"t?","x-note":{"a":"b?","n":12345678901234567890}}`+"\n", "?", "\uFFFD")
	if buf.String() != want {
		t.Errorf("header line\n%s\nwant\n%s", buf.String(), want)
	}
	if v := check(0, buf.String()); v.Err != "" {
		t.Errorf("Checker: %s", v.Err)
	}
}

func TestEncoderAllocs(t *testing.T) {
	var buf bytes.Buffer
	buf.Grow(1 << 20)
	enc := NewEncoder(&buf)
	enc.WriteHeader(Header{})
	tm := 0.0
	ev := Event{Code: Output, Data: "\x1b[1mhello\r\n"}
	enc.WriteEvent(ev) // sizes the line buffer
	if n := testing.AllocsPerRun(100, func() { tm += 0.01; ev.Time = tm; enc.WriteEvent(ev) }); n != 0 {
		t.Errorf("WriteEvent allocated %v times, want 0", n)
	}
}
