package review

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/reel-rec/reel/internal/desktop"
	"github.com/reel-rec/reel/internal/store"
	"github.com/reel-rec/reel/internal/store/memstore"
)

// deskRec builds a desktop recording: a keyframe at 0, then the records
// add writes.
func deskRec(t testing.TB, h desktop.Header, w, ht int, add func(e *desktop.Encoder)) []byte {
	t.Helper()
	var buf bytes.Buffer
	h.Width, h.Height = w, ht
	if h.Start.IsZero() {
		h.Start = time.Date(2026, 12, 3, 14, 0, 0, 0, time.UTC)
	}
	enc, err := desktop.NewEncoder(&buf, h, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := enc.Keyframe(0, desktop.NewImage(w, ht)); err != nil {
		t.Fatal(err)
	}
	if add != nil {
		add(enc)
	}
	return buf.Bytes()
}

// blankEnded returns a pointer record's line (with its newline) that ends,
// before its newline, in a byte an asciicast reader would trim as blank
// (' ', '\t', '\r'), and its time.
func blankEnded(t testing.TB) ([]byte, time.Duration) {
	t.Helper()
	for i := range 100000 {
		var buf bytes.Buffer
		enc, err := desktop.NewEncoder(&buf, desktop.Header{Width: 8, Height: 8, Start: time.Unix(0, 0)}, 0)
		if err != nil {
			t.Fatal(err)
		}
		at := time.Duration(i+1) * time.Second
		enc.Pointer(at, i%7, i/7, 0)
		b := buf.Bytes()
		line := b[bytes.IndexByte(b, '\n')+1:]
		if c := line[len(line)-2]; c == ' ' || c == '\t' || c == '\r' {
			return line, at
		}
	}
	t.Fatal("no pointer record ends in a blank byte")
	return nil, 0
}

func TestReadDesktopSummary(t *testing.T) {
	sec := func(f float64) *float64 { return &f }
	hdr := desktop.Header{User: "alice@example.com", Host: "lab", Upstream: "10.0.0.5:5900", Protocol: "rfb"}
	normal := deskRec(t, hdr, 16, 8, func(e *desktop.Encoder) {
		e.Pointer(time.Second, 1, 1, 0)
		img := desktop.NewImage(16, 8)
		img.Pix[5] = 0x0A0A0A // newline bytes in the pixels: escaped
		e.Region(2500*time.Millisecond, img, desktop.Rect{X: 0, Y: 0, W: 16, H: 8})
		e.Pointer(83*time.Second, 3, 2, 1)
	})
	last := bytes.LastIndexByte(normal[:len(normal)-1], '\n') + 1
	blank, blankAt := blankEnded(t)
	noUpstreamName := deskRec(t, desktop.Header{User: "bob", Upstream: "10.0.0.9:5901"}, 4, 4, nil)
	corrupt := bytes.Clone(normal)
	corrupt[len(corrupt)-3] ^= 0x40 // in the last record's checksum
	noise := deskRec(t, hdr, 320, 240, func(e *desktop.Encoder) {
		img := desktop.NewImage(320, 240)
		rng := rand.New(rand.NewPCG(1, 2))
		for i := range img.Pix {
			img.Pix[i] = rng.Uint32() & 0xFFFFFF
		}
		e.Keyframe(7*time.Second, img) // ~230 KB that do not compress: many blocks
	})
	asciicastRec := testHeader + "\n" + `[1,"o","a"]` + "\n"

	tests := []struct {
		name      string
		data      []byte
		lim       Limits
		user, cmd string
		duration  *float64
		hdrErr    string
		durErr    error
	}{
		{"records", normal, Limits{}, "alice@example.com", "desktop lab", sec(83), "", nil},
		{"last record in flight", normal[:len(normal)-5], Limits{}, "alice@example.com", "desktop lab", sec(2.5), "", nil},
		{"last record whole but without its newline", normal[:len(normal)-1], Limits{}, "alice@example.com", "desktop lab", sec(2.5), "", nil},
		{"cut at the last newline", normal[:last], Limits{}, "alice@example.com", "desktop lab", sec(2.5), "", nil},
		{"last record ends in a blank byte", append(deskRec(t, hdr, 8, 8, nil), blank...), Limits{}, "alice@example.com", "desktop lab", sec(blankAt.Seconds()), "", nil},
		{"no host name: the upstream", noUpstreamName, Limits{}, "bob", "desktop 10.0.0.9:5901", sec(0), "", nil},
		{"last record corrupt", corrupt, Limits{}, "alice@example.com", "desktop lab", nil, "", ErrNotEvent},
		{"header only", normal[:bytes.IndexByte(normal, '\n')+1], Limits{}, "alice@example.com", "desktop lab", nil, "", ErrNoEvents},
		{"last record longer than a block", noise, Limits{}, "alice@example.com", "desktop lab", sec(7), "", nil},
		{"last record longer than the window", noise, Limits{MaxTail: 64 << 10}, "alice@example.com", "desktop lab", nil, "", ErrTailLimit},
		{"header cut", normal[:20], Limits{}, "", "", nil, "desktop: no header", errAny},
		{"empty", nil, Limits{}, "", "", nil, "desktop: no header", errAny},
		{"header too long", normal, Limits{MaxHeader: 50}, "", "", nil, "desktop: header longer than 50 bytes", errAny},
		{"asciicast", []byte(asciicastRec), Limits{}, "", "", nil, "desktop: not a desktop recording", errAny},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := &countingReaderAt{r: bytes.NewReader(tc.data)}
			s := ReadDesktopSummary(context.Background(), r, int64(len(tc.data)), tc.lim)
			if s.Kind != store.KindDesktop || s.Header != nil {
				t.Errorf("kind %q, terminal header %+v", s.Kind, s.Header)
			}
			if (tc.hdrErr == "") != (s.HeaderErr == nil) || s.HeaderErr != nil && !strings.HasPrefix(s.HeaderErr.Error(), tc.hdrErr) {
				t.Errorf("header error %v, want one starting %q", s.HeaderErr, tc.hdrErr)
			}
			if (s.Desktop == nil) != (s.HeaderErr != nil) {
				t.Errorf("desktop header %+v with header error %v", s.Desktop, s.HeaderErr)
			}
			if s.User != tc.user || s.Command != tc.cmd {
				t.Errorf("user %q, command %q; want %q, %q", s.User, s.Command, tc.user, tc.cmd)
			}
			if diff := cmp.Diff(tc.duration, s.Duration); diff != "" {
				t.Errorf("duration (-want +got)\n%s (error %v)", diff, s.DurationErr)
			}
			switch {
			case tc.durErr == nil && s.DurationErr != nil,
				tc.durErr == errAny && s.DurationErr == nil,
				tc.durErr != nil && tc.durErr != errAny && !errors.Is(s.DurationErr, tc.durErr):
				t.Errorf("duration error %v, want %v", s.DurationErr, tc.durErr)
			}
			if lim := tc.lim.maxHeader() + 1 + tc.lim.maxTail(); r.bytes > lim+tailBlock {
				t.Errorf("read %d bytes, want at most the header and the tail window", r.bytes)
			}
		})
	}
}

// TestListDesktopRecordings: a Lister lists desktop recordings beside
// terminal ones, with their kind, user and desktop; --user matches the
// desktop's user; the JSON carries the kind and the desktop header.
func TestListDesktopRecordings(t *testing.T) {
	st := memstore.New(memstore.Options{})
	defer st.Close()
	day := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	term := putRecording(t, st, "n1", day, bobHeader+"\n"+`[2,"o","b"]`+"\n", store.StatusComplete)
	data := deskRec(t, desktop.Header{User: "alice@example.com", Host: "lab", Start: day}, 4, 2, func(e *desktop.Encoder) {
		e.Pointer(90*time.Second, 1, 1, 0)
	})
	w, err := st.CreateKind(context.Background(), "n1", day.Add(time.Minute), store.KindDesktop)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(data)
	if err := w.Close(store.StatusComplete, ""); err != nil {
		t.Fatal(err)
	}
	desk := w.Key()

	type row struct {
		Key, User, Command string
		Kind               store.Kind
		Duration           *float64
		Host               string
	}
	list := func(f Filter) []row {
		var got []row
		for s, err := range (&Lister{Store: st}).List(context.Background(), f) {
			if err != nil {
				t.Fatal(err)
			}
			r := row{s.Key, s.User, s.Command, s.Kind, s.Duration, ""}
			if s.Desktop != nil {
				r.Host = s.Desktop.Host
			}
			got = append(got, r)
		}
		return got
	}
	two, ninety := 2.0, 90.0
	want := []row{
		{term, "bob", "top", store.KindTerminal, &two, ""},
		{desk, "alice@example.com", "desktop lab", store.KindDesktop, &ninety, "lab"},
	}
	if diff := cmp.Diff(want, list(Filter{})); diff != "" {
		t.Errorf("all (-want +got)\n%s", diff)
	}
	if diff := cmp.Diff(want[1:], list(Filter{User: "ALICE"})); diff != "" {
		t.Errorf("--user alice (-want +got)\n%s", diff)
	}

	info, err := st.Stat(context.Background(), desk)
	if err != nil {
		t.Fatal(err)
	}
	s, err := Summarize(context.Background(), st, info, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	for _, part := range []string{`"kind":"desktop"`, `"duration":90,`, `"desktop":{"format":"reel-desktop","version":1,"width":4,"height":2,`, `"host":"lab"`} {
		if !strings.Contains(string(b), part) {
			t.Errorf("JSON %s\nlacks %s", b, part)
		}
	}
	if strings.Contains(string(b), `"header"`) {
		t.Errorf("JSON of a desktop recording has a terminal header: %s", b)
	}
}

// refLastDesktopTime is lastLineTime for desktop records done the obvious
// way: split all the bytes into lines, look at them from the last.
func refLastDesktopTime(data []byte, from int) (float64, error) {
	lines := bytes.Split(data[from:], []byte("\n"))
	for i := len(lines) - 2; i >= 0; i-- { // the last "line" has no newline
		if len(lines[i]) == 0 {
			continue
		}
		t, err := desktop.RecordTime(lines[i])
		if err != nil {
			return 0, ErrNotEvent
		}
		return t.Seconds(), nil
	}
	return 0, ErrNoEvents
}

// FuzzLastDesktopTime checks the backwards reader on desktop records
// against the obvious forwards one, with small blocks and windows.
func FuzzLastDesktopTime(f *testing.F) {
	rec := deskRec(f, desktop.Header{}, 4, 2, func(e *desktop.Encoder) {
		e.Pointer(time.Second, 1, 1, 0)
		e.Pointer(2*time.Second, 0x0A, 0x1B, 0x0A)
	})
	blank, _ := blankEnded(f)
	f.Add(rec, uint8(3), uint8(0))
	f.Add(rec[:len(rec)-3], uint8(1), uint8(200))
	f.Add(append(bytes.Clone(rec), blank...), uint8(7), uint8(0))
	f.Add(append(bytes.Clone(rec), "\n\n"...), uint8(64), uint8(9))
	f.Fuzz(func(t *testing.T, data []byte, block, window uint8) {
		from := bytes.IndexByte(data, '\n') + 1
		if from == 0 {
			from = len(data)
		}
		maxTail := int64(window)
		if window == 0 {
			maxTail = 1 << 30
		}
		r := &countingReaderAt{r: bytes.NewReader(data)}
		got, err := lastLineTime(context.Background(), r, int64(len(data)), int64(from), maxTail, int(block%64)+1, desktopLines)
		want, wantErr := refLastDesktopTime(data, from)
		if r.bytes > maxTail {
			t.Fatalf("read %d bytes with a window of %d", r.bytes, maxTail)
		}
		if errors.Is(err, ErrTailLimit) && int64(len(data)-from) > maxTail {
			return
		}
		if got != want || !errors.Is(err, wantErr) {
			t.Fatalf("lastLineTime = %v, %v; want %v, %v", got, err, want, wantErr)
		}
	})
}
