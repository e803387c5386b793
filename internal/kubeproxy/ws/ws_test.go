package ws

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// frame builds one frame; mask, if not nil, masks the payload.
func frame(fin bool, op byte, payload []byte, mask []byte) []byte {
	b0 := op
	if fin {
		b0 |= 0x80
	}
	out := []byte{b0}
	mbit := byte(0)
	if mask != nil {
		mbit = 0x80
	}
	switch n := len(payload); {
	case n < 126:
		out = append(out, mbit|byte(n))
	case n <= 0xffff:
		out = append(out, mbit|126, byte(n>>8), byte(n))
	default:
		out = append(out, mbit|127)
		out = binary.BigEndian.AppendUint64(out, uint64(n))
	}
	if mask == nil {
		return append(out, payload...)
	}
	out = append(out, mask...)
	for i, c := range payload {
		out = append(out, c^mask[i%4])
	}
	return out
}

type msg struct {
	Channel byte
	Data    string
}

// collect parses stream, fed in chunks of size n, and returns the
// messages seen.
func collect(t *testing.T, masked bool, stream []byte, n int) ([]msg, int, error) {
	t.Helper()
	var out []msg
	var cur bytes.Buffer
	closes := 0
	p := &Parser{Masked: masked, Closed: func() { closes++ }, Data: func(ch byte, b []byte, last bool) error {
		cur.Write(b)
		if last {
			out = append(out, msg{ch, cur.String()})
			cur.Reset()
		}
		return nil
	}}
	for len(stream) > 0 {
		k := min(n, len(stream))
		if err := p.Write(stream[:k]); err != nil {
			return out, closes, err
		}
		stream = stream[k:]
	}
	if !p.AtMessageBoundary() {
		return out, closes, errors.New("not at a message boundary at the end")
	}
	return out, closes, nil
}

func TestParserSplits(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789"), 7000) // 70000 bytes: 64-bit length
	mid := bytes.Repeat([]byte("x"), 300)           // 16-bit length
	for _, masked := range []bool{false, true} {
		var mask []byte
		if masked {
			mask = []byte{0x12, 0x34, 0x56, 0x78}
		}
		var s []byte
		s = append(s, frame(true, opBinary, []byte{1}, mask)...) // empty stdout message
		s = append(s, frame(true, opBinary, append([]byte{1}, "hello"...), mask)...)
		// A message in three fragments, a ping and a pong between them,
		// the channel byte alone in the first fragment.
		s = append(s, frame(false, opBinary, []byte{2}, mask)...)
		s = append(s, frame(true, opPing, []byte("p"), mask)...)
		s = append(s, frame(false, opContinuation, []byte("err "), mask)...)
		s = append(s, frame(true, opPong, nil, mask)...)
		s = append(s, frame(true, opContinuation, []byte("text"), mask)...)
		s = append(s, frame(true, opBinary, append([]byte{4}, `{"Width":100,"Height":30}`...), mask)...)
		s = append(s, frame(true, opBinary, append([]byte{1}, mid...), mask)...)
		s = append(s, frame(true, opBinary, append([]byte{1}, big...), mask)...)
		s = append(s, frame(true, opBinary, []byte{255, 0}, mask)...)
		s = append(s, frame(true, opClose, []byte{3, 232}, mask)...)
		want := []msg{{1, ""}, {1, "hello"}, {2, "err text"}, {4, `{"Width":100,"Height":30}`}, {1, string(mid)}, {1, string(big)}, {255, "\x00"}}
		for _, n := range []int{1, 2, 3, 7, 100, 1 << 20} {
			t.Run(fmt.Sprintf("masked=%v/chunk=%d", masked, n), func(t *testing.T) {
				got, closes, err := collect(t, masked, s, n)
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("messages (-want +got):\n%s", diff)
				}
				if closes != 1 {
					t.Errorf("%d close frames seen, want 1", closes)
				}
			})
		}
	}
}

func TestParserErrors(t *testing.T) {
	mask := []byte{1, 2, 3, 4}
	for _, tt := range []struct {
		name   string
		masked bool
		in     []byte
	}{
		{"unmasked from client", true, frame(true, opBinary, []byte{1, 'a'}, nil)},
		{"masked from server", false, frame(true, opBinary, []byte{1, 'a'}, mask)},
		{"rsv bits", false, append([]byte{0xc2, 1}, 1)},
		{"unknown opcode", false, frame(true, 0x3, []byte{1}, nil)},
		{"continuation first", false, frame(true, opContinuation, []byte{1}, nil)},
		{"new message inside one", false, append(frame(false, opBinary, []byte{1}, nil), frame(true, opBinary, []byte{1}, nil)...)},
		{"fragmented ping", false, frame(false, opPing, nil, nil)},
		{"long ping", false, frame(true, opPing, make([]byte, 126), nil)},
		{"length top bit", false, []byte{0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 1}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := &Parser{Masked: tt.masked}
			err := p.Write(tt.in)
			if !errors.Is(err, ErrProtocol) {
				t.Fatalf("Write: %v, want a protocol error", err)
			}
			if err2 := p.Write([]byte{0x82, 0}); err2 != err {
				t.Errorf("after an error, Write returned %v", err2)
			}
		})
	}
}

func TestAppendMessage(t *testing.T) {
	for _, n := range []int{0, 10, 124, 125, 126, 300, 70000} {
		payload := bytes.Repeat([]byte{'z'}, n)
		var got []msg
		p := &Parser{Data: func(ch byte, b []byte, last bool) error {
			if last {
				got = append(got, msg{Channel: ch})
			} else if len(got) == 0 || true {
				_ = b
			}
			return nil
		}}
		stream := AppendMessage(nil, Error, payload)
		stream = AppendClose(stream)
		if err := p.Write(stream); err != nil {
			t.Fatalf("n=%d: %v", n, err)
		}
		if len(got) != 1 || got[0].Channel != Error || !p.AtMessageBoundary() {
			t.Errorf("n=%d: got %v", n, got)
		}
	}
}

// FuzzParser feeds arbitrary bytes in arbitrary chunks: the parser must
// not panic, must give the same messages however the input is split, and
// never report more payload than it was given.
func FuzzParser(f *testing.F) {
	mask := []byte{9, 8, 7, 6}
	f.Add(frame(true, opBinary, []byte{1, 'h', 'i'}, nil), false, uint8(1))
	f.Add(append(frame(false, opBinary, []byte{2}, mask), frame(true, opContinuation, []byte("x"), mask)...), true, uint8(3))
	f.Add(frame(true, opClose, []byte{3, 232}, nil), false, uint8(2))
	f.Add([]byte{0x82, 126, 0, 200}, false, uint8(1))
	f.Fuzz(func(t *testing.T, in []byte, masked bool, chunk uint8) {
		run := func(n int) ([]msg, error) {
			var out []msg
			total := 0
			p := &Parser{Masked: masked, Data: func(ch byte, b []byte, last bool) error {
				total += len(b)
				out = append(out, msg{ch, string(b)})
				return nil
			}}
			var err error
			for s := in; len(s) > 0 && err == nil; {
				k := min(n, len(s))
				err = p.Write(s[:k])
				s = s[k:]
			}
			if total > len(in) {
				t.Fatalf("reported %d payload bytes from %d input bytes", total, len(in))
			}
			return join(out), err
		}
		whole, err1 := run(len(in) + 1)
		split, err2 := run(int(chunk%16) + 1)
		if (err1 == nil) != (err2 == nil) {
			t.Fatalf("error depends on the split: %v vs %v", err1, err2)
		}
		if err1 == nil && !cmp.Equal(whole, split) {
			t.Fatalf("messages depend on the split:\n%v\n%v", whole, split)
		}
	})
}

// join merges consecutive pieces of the same channel, so that results
// from different splits compare.
func join(in []msg) []msg {
	var out []msg
	for _, m := range in {
		if len(out) > 0 && out[len(out)-1].Channel == m.Channel {
			out[len(out)-1].Data += m.Data
			continue
		}
		out = append(out, m)
	}
	return out
}

// TestLastBoundary: fed in pieces cut anywhere, the parser reports for
// each piece where the last message that ended in it ends; the frames of
// a fragmented message and a ping inside it are no boundary.
func TestLastBoundary(t *testing.T) {
	var stream []byte
	var ends []int // offsets where messages end
	add := func(f []byte, end bool) {
		stream = append(stream, f...)
		if end {
			ends = append(ends, len(stream))
		}
	}
	add(AppendMessage(nil, 1, []byte("hello")), true)
	add(frame(false, opBinary, []byte{1, 'a', 'b'}, nil), false) // first fragment
	add(frame(true, opPing, nil, nil), false)                    // inside the message
	add(frame(true, 0, []byte("cd"), nil), true)                 // continuation, fin
	add(AppendMessage(nil, 2, bytes.Repeat([]byte("x"), 300)), true)
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
