package spdy

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"
	mspdy "github.com/moby/spdystream/spdy"
)

// clientStream writes what kubectl's SPDY client sends: SYN_STREAM frames
// with compressed headers (one compression context for all), data, a
// ping, a reset.
func clientStream(t testing.TB) []byte {
	var buf bytes.Buffer
	f, err := mspdy.NewFramer(&buf, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i, typ := range []string{"error", "stdin", "stdout", "stderr", "resize"} {
		h := http.Header{}
		h.Set("streamtype", typ)
		h.Set("x-extra", fmt.Sprint(i))
		if err := f.WriteFrame(&mspdy.SynStreamFrame{StreamId: mspdy.StreamId(1 + 2*i), Headers: h}); err != nil {
			t.Fatal(err)
		}
	}
	f.WriteFrame(&mspdy.DataFrame{StreamId: 9, Data: []byte(`{"Width":120,"Height":40}`)})
	f.WriteFrame(&mspdy.PingFrame{Id: 1})
	f.WriteFrame(&mspdy.DataFrame{StreamId: 3, Data: []byte("typed secret"), Flags: mspdy.DataFlagFin})
	f.WriteFrame(&mspdy.RstStreamFrame{StreamId: 7, Status: mspdy.Cancel})
	h := http.Header{}
	h.Set("streamtype", "stdout")
	f.WriteFrame(&mspdy.SynStreamFrame{StreamId: 11, Headers: h})
	return buf.Bytes()
}

type event struct {
	Kind string
	ID   uint32
	Data string
}

func parse(t testing.TB, p *Parser, stream []byte, n int) ([]event, error) {
	var out []event
	p.SynStream = func(id uint32, h http.Header) { out = append(out, event{"syn", id, h.Get("streamtype")}) }
	p.Data = func(id uint32, b []byte, fin bool) error {
		switch {
		case len(b) == 0:
		case len(out) > 0 && out[len(out)-1].Kind == "data" && out[len(out)-1].ID == id:
			out[len(out)-1].Data += string(b)
		default:
			out = append(out, event{"data", id, string(b)})
		}
		if fin {
			out = append(out, event{"fin", id, ""})
		}
		return nil
	}
	p.Reset = func(id uint32) { out = append(out, event{"rst", id, ""}) }
	for len(stream) > 0 {
		k := min(n, len(stream))
		if err := p.Write(stream[:k]); err != nil {
			return out, err
		}
		stream = stream[k:]
	}
	if !p.AtFrameBoundary() {
		return out, errors.New("not at a frame boundary at the end")
	}
	return out, nil
}

func TestClientDirection(t *testing.T) {
	s := clientStream(t)
	want := []event{
		{"syn", 1, "error"}, {"syn", 3, "stdin"}, {"syn", 5, "stdout"}, {"syn", 7, "stderr"}, {"syn", 9, "resize"},
		{"data", 9, `{"Width":120,"Height":40}`},
		{"data", 3, "typed secret"}, {"fin", 3, ""},
		{"rst", 7, ""},
		{"syn", 11, "stdout"},
	}
	for _, n := range []int{1, 2, 5, 8, 9, 64, len(s)} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			got, err := parse(t, &Parser{Headers: true}, s, n)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestServerDirection(t *testing.T) {
	var buf bytes.Buffer
	f, _ := mspdy.NewFramer(&buf, nil)
	f.WriteFrame(&mspdy.SynReplyFrame{StreamId: 5, Headers: http.Header{"X": {"y"}}})
	f.WriteFrame(&mspdy.DataFrame{StreamId: 5, Data: bytes.Repeat([]byte("out"), 20000)})
	f.WriteFrame(&mspdy.DataFrame{StreamId: 7, Data: nil, Flags: mspdy.DataFlagFin})
	buf.Write(AppendData(nil, 1, []byte(`{"status":"Success"}`), true))
	want := []event{{"data", 5, string(bytes.Repeat([]byte("out"), 20000))}, {"fin", 7, ""}, {"data", 1, `{"status":"Success"}`}, {"fin", 1, ""}}
	for _, n := range []int{1, 3, 4096, buf.Len()} {
		got, err := parse(t, &Parser{}, buf.Bytes(), n)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("chunk %d (-want +got):\n%s", n, diff)
		}
	}
}

func TestErrors(t *testing.T) {
	for _, tt := range []struct {
		name string
		in   []byte
	}{
		{"version 2", []byte{0x80, 2, 0, 1, 0, 0, 0, 0}},
		{"data on stream 0", []byte{0, 0, 0, 0, 0, 0, 0, 1, 'x'}},
		{"huge control frame", []byte{0x80, 3, 0, 1, 0, 0xff, 0xff, 0xff}},
		{"bad header block", []byte{0x80, 3, 0, 1, 0, 0, 0, 14, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 'n', 'o', 'p', 'e'}},
		{"short reset", []byte{0x80, 3, 0, 3, 0, 0, 0, 4, 0, 0, 0, 1}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := &Parser{Headers: true}
			if err := p.Write(tt.in); !errors.Is(err, ErrProtocol) {
				t.Fatalf("Write: %v, want a protocol error", err)
			}
		})
	}
}

// FuzzParser: no panic on any input, and the same events however the
// input is split.
func FuzzParser(f *testing.F) {
	f.Add(clientStream(f), true, uint8(3))
	f.Add(AppendData(nil, 3, []byte("hi"), true), false, uint8(1))
	f.Add([]byte{0x80, 3, 0, 1, 0, 0, 0, 10, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0}, true, uint8(2))
	f.Fuzz(func(t *testing.T, in []byte, headers bool, chunk uint8) {
		whole, err1 := parse(t, &Parser{Headers: headers}, in, len(in)+1)
		split, err2 := parse(t, &Parser{Headers: headers}, in, int(chunk%16)+1)
		if (err1 == nil) != (err2 == nil) {
			t.Fatalf("error depends on the split: %v vs %v", err1, err2)
		}
		if err1 == nil && !cmp.Equal(whole, split) {
			t.Fatalf("events depend on the split:\n%v\n%v", whole, split)
		}
	})
}

// TestLastBoundary: fed in pieces cut anywhere, the parser reports for
// each piece where the last frame that ended in it ends.
func TestLastBoundary(t *testing.T) {
	var stream []byte
	var ends []int // offsets where frames end
	for _, f := range [][]byte{
		AppendData(nil, 1, []byte("hello"), false),
		AppendData(nil, 3, nil, true), // an empty frame: header only
		AppendData(nil, 1, bytes.Repeat([]byte("x"), 300), false),
	} {
		stream = append(stream, f...)
		ends = append(ends, len(stream))
	}
	for step := 1; step <= len(stream); step++ {
		p := &Parser{}
		for at := 0; at < len(stream); at += step {
			piece := stream[at:min(at+step, len(stream))]
			if err := p.Write(piece); err != nil {
				t.Fatal(err)
			}
			want := -1
			for _, e := range ends {
				if e > at && e <= at+len(piece) {
					want = e - at
				}
			}
			if got := p.LastBoundary(); got != want {
				t.Fatalf("pieces of %d, piece at %d: LastBoundary %d, want %d", step, at, got, want)
			}
		}
	}
}
