package desktop

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"testing"
	"time"
)

// scene writes a recording whose screen changes in known ways and returns
// it with the screens expected at each record's time.
func scene(t testing.TB) ([]byte, map[time.Duration]*Image) {
	t.Helper()
	var buf bytes.Buffer
	start := time.Unix(1700000000, 5)
	e, err := NewEncoder(&buf, Header{Width: 64, Height: 48, Start: start, User: "alice", Upstream: "10.0.0.1:5900", ConnectionID: "c1"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	e.KeyframeInterval = 10 * time.Second
	want := map[time.Duration]*Image{}
	img := NewImage(64, 48)
	rng := rand.New(rand.NewPCG(1, 2))
	snap := func(at time.Duration) {
		want[at] = &Image{W: img.W, H: img.H, Pix: append([]uint32(nil), img.Pix...)}
	}
	// Pixels that include the escaped bytes 0x0A and 0x1B.
	for i := range img.Pix {
		img.Pix[i] = uint32(rng.IntN(4)) * 0x0A1B0A
	}
	if err := e.Keyframe(0, img); err != nil {
		t.Fatal(err)
	}
	snap(0)
	for i := 1; i <= 40; i++ {
		at := time.Duration(i) * time.Second
		r := Rect{rng.IntN(32), rng.IntN(24), 1 + rng.IntN(32), 1 + rng.IntN(24)}
		if i%7 == 0 {
			CopyRect(img, 0, 0, Rect{5, 3, 20, 20})
			if err := e.Copy(at, 0, 0, Rect{5, 3, 20, 20}); err != nil {
				t.Fatal(err)
			}
		} else {
			for y := r.Y; y < r.Y+r.H; y++ {
				for x := r.X; x < r.X+r.W; x++ {
					img.Pix[y*img.W+x] = rng.Uint32() & 0xFFFFFF
				}
			}
			if e.NeedKeyframe(at) {
				err = e.Keyframe(at, img)
			} else {
				err = e.Region(at, img, r)
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		if err := e.Pointer(at, i, 2*i, 1); err != nil {
			t.Fatal(err)
		}
		snap(at)
	}
	if err := e.Cursor(41*time.Second, &Cursor{W: 2, H: 2, HotX: 1, Pix: []uint32{0xFF0A1B0A, 0, 0x80FFFFFF, 0xFF000000}}); err != nil {
		t.Fatal(err)
	}
	if err := e.Key(42*time.Second, true, 0xff0d); err != nil {
		t.Fatal(err)
	}
	if err := e.Clipboard(43*time.Second, true, []byte("line1\nline2\x1b")); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), want
}

func TestRoundTrip(t *testing.T) {
	data, want := scene(t)
	d, err := NewDecoder(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if h := d.Header(); h.User != "alice" || h.Width != 64 || h.Timestamp != 1700000000 || h.Format != Format {
		t.Fatalf("header %+v", h)
	}
	p := NewPlayer(64, 48)
	var types []byte
	for {
		rec, err := d.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		types = append(types, rec.Type)
		if err := p.Apply(&rec); err != nil {
			t.Fatal(err)
		}
		if w, ok := want[rec.T]; ok && rec.Type == TypePointer {
			if !equal(p.Screen, w) {
				t.Fatalf("screen at %v differs", rec.T)
			}
		}
		if rec.Type == TypeClipboard && string(rec.Text) != "line1\nline2\x1b" {
			t.Fatalf("clipboard %q", rec.Text)
		}
		if rec.Type == TypeKey && (!rec.Down || rec.Sym != 0xff0d) {
			t.Fatalf("key %+v", rec)
		}
	}
	if p.X != 40 || p.Y != 80 {
		t.Fatalf("pointer at %d,%d", p.X, p.Y)
	}
	if p.Cursor == nil || p.Cursor.Pix[0] != 0xFF0A1B0A || p.Cursor.Pix[2] != 0x80FFFFFF || p.Cursor.HotX != 1 {
		t.Fatalf("cursor %+v", p.Cursor)
	}
	if bytes.Count(types, []byte{TypeKeyframe}) < 2 {
		t.Fatalf("want periodic keyframes, got record types %q", types)
	}
	var c Checker
	c.Write(data)
	if err := c.Finish(); err != nil {
		t.Fatalf("checker: %v", err)
	}
}

func equal(a, b *Image) bool {
	if a.W != b.W || a.H != b.H {
		return false
	}
	for i := range a.Pix {
		if a.Pix[i] != b.Pix[i] {
			return false
		}
	}
	return true
}

func TestSeekMatchesReplay(t *testing.T) {
	data, want := scene(t)
	ix, err := Scan(bytes.NewReader(data))
	if err != nil || ix.Err != nil || ix.Truncated {
		t.Fatalf("scan: %v %+v", err, ix)
	}
	if ix.Duration != 43*time.Second || ix.Size != int64(len(data)) {
		t.Fatalf("duration %v size %d of %d", ix.Duration, ix.Size, len(data))
	}
	for at, w := range want {
		p, err := FrameAt(bytes.NewReader(data), ix, at)
		if err != nil {
			t.Fatal(err)
		}
		if !equal(p.Screen, w) {
			t.Fatalf("frame at %v (keyframe %v) differs from the replay", at, must(ix.Before(at)).T)
		}
	}
	h, d, err := Stat(bytes.NewReader(data), int64(len(data)))
	if err != nil || d != 43*time.Second || h.ConnectionID != "c1" {
		t.Fatalf("stat: %v %v %+v", err, d, h)
	}
}

func must[T any](v T, _ bool) T { return v }

// Cut anywhere, a recording is valid up to its last complete record, and
// cutting at the last newline (what the stores do) leaves only complete
// records.
func TestTruncated(t *testing.T) {
	data, _ := scene(t)
	full, _ := Scan(bytes.NewReader(data))
	for cut := len(data) - 1; cut > len(data)/2; cut -= 97 {
		part := data[:cut]
		ix, err := Scan(bytes.NewReader(part))
		if err != nil || ix.Err != nil {
			t.Fatalf("cut at %d: %v %v", cut, err, ix.Err)
		}
		if !ix.Truncated && part[len(part)-1] != '\n' {
			t.Fatalf("cut at %d: not reported truncated", cut)
		}
		if ix.Records >= full.Records || ix.Records == 0 {
			t.Fatalf("cut at %d: %d records of %d", cut, ix.Records, full.Records)
		}
		_, d, err := Stat(bytes.NewReader(part), int64(len(part)))
		if err != nil || d != ix.Duration {
			t.Fatalf("cut at %d: stat %v %v, scan %v", cut, d, err, ix.Duration)
		}
		nl := bytes.LastIndexByte(part, '\n') + 1
		var c Checker
		c.Write(part[:nl])
		if err := c.Finish(); err != nil {
			t.Fatalf("cut at %d, at the last newline %d: %v", cut, nl, err)
		}
		c = Checker{}
		c.Write(part)
		if nl != len(part) && c.Finish() == nil {
			t.Fatalf("cut at %d: the checker accepts a partial record", cut)
		}
	}
}

func TestCorruptDetected(t *testing.T) {
	data, _ := scene(t)
	nl := bytes.IndexByte(data, '\n')
	for _, off := range []int{nl + 3, nl + 40, len(data) / 2, len(data) - 3} {
		bad := bytes.Clone(data)
		bad[off] ^= 0x40
		if bad[off] == '\n' || data[off] == '\n' {
			continue
		}
		var c Checker
		c.Write(bad)
		if c.Finish() == nil {
			t.Errorf("flipped byte %d: checker found nothing", off)
		}
		ix, err := Scan(bytes.NewReader(bad))
		if err != nil {
			t.Fatal(err)
		}
		if ix.Err == nil {
			t.Errorf("flipped byte %d: scan found nothing", off)
		}
	}
	var c Checker
	c.Write([]byte("{\"version\":2,\"width\":80,\"height\":24}\n[0.1,\"o\",\"hi\"]\n"))
	if c.Finish() == nil {
		t.Error("checker accepts asciicast")
	}
}

func FuzzDecoder(f *testing.F) {
	data, _ := scene(f)
	f.Add(data)
	f.Add(data[:len(data)/3])
	f.Fuzz(func(t *testing.T, b []byte) {
		var c Checker
		c.Write(b)
		checkerOK := c.Finish() == nil
		d, err := NewDecoder(bytes.NewReader(b))
		if err != nil {
			return
		}
		p := NewPlayer(d.Header().Width, d.Header().Height)
		clean := true
		for {
			rec, err := d.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				clean = false
				break
			}
			if p.Screen.W*p.Screen.H > MaxPixels {
				t.Fatalf("screen %dx%d", p.Screen.W, p.Screen.H)
			}
			p.Apply(&rec) // errors are fine; panics are not
		}
		if checkerOK && !clean {
			t.Fatalf("checker accepts what the decoder refuses")
		}
		Stat(bytes.NewReader(b), int64(len(b)))
	})
}
