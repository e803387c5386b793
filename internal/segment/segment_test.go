package segment

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/reel-rec/reel/internal/asciicast"
	"github.com/reel-rec/reel/internal/vt"
)

// playerSegment is a segment document as the player reads it.
type playerSegment struct {
	Snapshot struct {
		Cols, Rows int
		Init       string
	}
	Events [][]any
}

// cut cuts a recording, and checks the index and every segment document as
// asciinema-player 3.17 does when it loads them
// (src/driver/recording/segmented.js: validateIndex, normalizeSegment).
func cut(t *testing.T, rec []byte, opt Options) (*Index, []playerSegment) {
	t.Helper()
	var docs []playerSegment
	idx, err := Cut(bytes.NewReader(rec), opt, func(s *Segment) error {
		if s.Index != len(docs) {
			return fmt.Errorf("segment %d emitted as number %d", s.Index, len(docs))
		}
		b, err := s.MarshalJSON()
		if err != nil {
			return err
		}
		var doc playerSegment
		if err := json.Unmarshal(b, &doc); err != nil {
			return fmt.Errorf("segment %d: %v: %s", s.Index, err, b)
		}
		docs = append(docs, doc)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(idx)
	if err != nil {
		t.Fatal(err)
	}
	var index struct {
		Version  int
		Duration float64
		Term     struct{ Cols, Rows int }
		Segments []struct {
			Start float64
			URL   string
		}
		Markers [][]any
	}
	if err := json.Unmarshal(b, &index); err != nil {
		t.Fatal(err)
	}
	if index.Version != 1 || index.Duration < 0 || index.Term.Cols <= 0 || index.Term.Rows <= 0 {
		t.Fatalf("index %s", b)
	}
	if len(index.Segments) == 0 || len(index.Segments) != len(docs) || index.Segments[0].Start != 0 {
		t.Fatalf("index %s for %d segments", b, len(docs))
	}
	for i, s := range index.Segments {
		if s.URL == "" || i > 0 && (s.Start <= index.Segments[i-1].Start || s.Start >= index.Duration) {
			t.Fatalf("segment %d of index %s", i, b)
		}
	}
	prevMarker := -1.0
	for _, m := range index.Markers {
		if len(m) != 2 || m[0].(float64) < prevMarker || m[0].(float64) > index.Duration {
			t.Fatalf("marker %v in index %s", m, b)
		}
		prevMarker = m[0].(float64)
	}
	for i, doc := range docs {
		start := index.Segments[i].Start
		end := index.Duration
		if i+1 < len(docs) {
			end = index.Segments[i+1].Start
		}
		if doc.Snapshot.Cols <= 0 || doc.Snapshot.Rows <= 0 || len(doc.Events) == 0 {
			t.Fatalf("segment %d: %+v", i, doc.Snapshot)
		}
		prev := -1.0
		for j, ev := range doc.Events {
			tm := ev[0].(float64)
			if len(ev) != 3 || tm < prev || tm < start || (i+1 < len(docs) && tm >= end) || tm > end {
				t.Fatalf("segment %d event %d %v out of range %g..%g", i, j, ev, start, end)
			}
			if _, ok := ev[2].(string); !ok {
				t.Fatalf("segment %d event %d %v", i, j, ev)
			}
			prev = tm
		}
		if i > 0 && doc.Events[0][0].(float64) != start {
			t.Fatalf("segment %d starts at %g, its first event at %v", i, start, doc.Events[0][0])
		}
		if i == len(docs)-1 && doc.Events[len(doc.Events)-1][0].(float64) != index.Duration {
			t.Fatalf("last event at %v, duration %g", doc.Events[len(doc.Events)-1][0], index.Duration)
		}
	}
	return idx, docs
}

// play applies a segment's events to a terminal as the player does.
func play(t *testing.T, term *vt.Terminal, events [][]any) {
	for _, ev := range events {
		switch ev[1] {
		case "o":
			term.WriteString(ev[2].(string))
		case "r":
			var cols, rows int
			if _, err := fmt.Sscanf(ev[2].(string), "%dx%d", &cols, &rows); err != nil {
				t.Fatalf("resize %q: %v", ev[2], err)
			}
			term.Resize(cols, rows)
		}
	}
}

// checkReplay plays the recording whole, and from every segment's
// snapshot on: the screens agree at every segment boundary and at the end.
func checkReplay(t *testing.T, docs []playerSegment) {
	t.Helper()
	whole := vt.New(docs[0].Snapshot.Cols, docs[0].Snapshot.Rows)
	var atStart []*vt.Terminal // whole's state at each segment's start, as a dump replayed
	for _, doc := range docs {
		fresh := vt.New(whole.Size())
		fresh.Write(whole.Dump())
		atStart = append(atStart, fresh)
		play(t, whole, doc.Events)
	}
	for i, doc := range docs {
		term := vt.New(doc.Snapshot.Cols, doc.Snapshot.Rows)
		term.WriteString(doc.Snapshot.Init)
		same(t, fmt.Sprintf("segment %d's snapshot", i), atStart[i], term)
		for _, later := range docs[i:] {
			play(t, term, later.Events)
		}
		same(t, fmt.Sprintf("played from segment %d", i), whole, term)
	}
}

func same(t *testing.T, what string, want, got *vt.Terminal) {
	t.Helper()
	if diff := cmp.Diff(want.Lines(), got.Lines()); diff != "" {
		t.Fatalf("%s: screen (-whole +segmented):\n%s", what, diff)
	}
	wx, wy := want.Cursor()
	gx, gy := got.Cursor()
	if wx != gx || wy != gy || want.AltScreen() != got.AltScreen() {
		t.Fatalf("%s: cursor %d,%d alt=%v, want %d,%d alt=%v", what, gx, gy, got.AltScreen(), wx, wy, want.AltScreen())
	}
	if !bytes.Equal(want.Dump(), got.Dump()) {
		t.Fatalf("%s: dumps differ:\nwhole     %q\nsegmented %q", what, want.Dump(), got.Dump())
	}
}

func TestRealRecordings(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("..", "vt", "testdata", "*.cast"))
	if len(files) == 0 {
		t.Fatal("no recordings in internal/vt/testdata")
	}
	for _, file := range files {
		rec, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for _, opt := range []Options{{}, {Span: 2}, {MaxBytes: 2000}, {Span: 0.5, MaxBytes: 300}} {
			t.Run(fmt.Sprintf("%s/span=%g,max=%d", filepath.Base(file), opt.Span, opt.MaxBytes), func(t *testing.T) {
				_, docs := cut(t, rec, opt)
				if opt.MaxBytes == 300 && len(docs) < 5 {
					t.Errorf("%d segments of ~300 bytes for %d bytes", len(docs), len(rec))
				}
				checkReplay(t, docs)
			})
		}
	}
}

func TestWhatThePlayerGets(t *testing.T) {
	rec := `{"version":2,"width":10,"height":3,"kubernetes":{"podName":"p","namespace":"n","container":"c","sessionType":"exec"}}
[0.5,"o","$ "]
[1.0,"i","secret"]
[1.0,"o","a\r\n"]
[0.9,"o","back in time\r\n"]
[2.0,"m","chapter"]
[3.0,"r","5x20"]
[3.5,"o","after resize, a longer line"]
[4.0,"x","0"]
[4.0,"o","."]
`
	idx, docs := cut(t, []byte(rec), Options{Span: 1})
	var events [][]any
	for _, d := range docs {
		events = append(events, d.Events...)
	}
	want := [][]any{
		{0.5, "o", "$ "}, {1.0, "o", "a\r\n"}, {1.0, "o", "back in time\r\n"}, {2.0, "m", "chapter"},
		{3.0, "r", "20x5"}, {3.5, "o", "after resize, a longer line"}, {4.0, "o", "."},
	}
	if diff := cmp.Diff(want, events); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]Marker{{2, "chapter"}}, idx.Markers); diff != "" {
		t.Errorf("markers (-want +got):\n%s", diff)
	}
	if idx.Duration != 4 {
		t.Errorf("duration %g, want 4", idx.Duration)
	}
	checkReplay(t, docs)
}

// A last segment would start at the end of the recording, which the player
// refuses; its events go to the segment before.
func TestNoSegmentStartsAtTheEnd(t *testing.T) {
	rec := `{"version":2,"width":10,"height":3}
[0,"o","a"]
[1,"o","b"]
[5,"o","c"]
[5,"o","d"]
`
	idx, docs := cut(t, []byte(rec), Options{Span: 1})
	if got := len(idx.Segments); got != 2 {
		t.Errorf("%d segments, want 2 (0-1, 1-5)", got)
	}
	checkReplay(t, docs)
}

func TestEmpty(t *testing.T) {
	_, err := Cut(strings.NewReader(`{"version":2,"width":10,"height":3}`+"\n"+`[1,"i","x"]`+"\n"), Options{}, func(*Segment) error { return nil })
	if !errors.Is(err, ErrEmpty) {
		t.Errorf("err = %v, want ErrEmpty", err)
	}
}

func TestEmitError(t *testing.T) {
	boom := errors.New("boom")
	rec := `{"version":2,"width":10,"height":3}` + "\n" + `[0,"o","a"]` + "\n" + `[9,"o","b"]` + "\n" + `[19,"o","c"]` + "\n"
	_, err := Cut(strings.NewReader(rec), Options{Span: 1}, func(*Segment) error { return boom })
	if !errors.Is(err, boom) {
		t.Errorf("err = %v, want %v", err, boom)
	}
}

// FuzzCut: any recording gives segments the player accepts, and playing
// from any segment ends where playing the whole does.
func FuzzCut(f *testing.F) {
	f.Add([]byte(`{"version":2,"width":10,"height":3}`+"\n"+`[0,"o","a\r\nb"]`+"\n"+`[0,"r","4x2"]`+"\n"+`[2,"o","\u001b[?1049hc"]`+"\n"), 1.0, 10)
	if b, err := os.ReadFile(filepath.Join("..", "vt", "testdata", "vim.cast")); err == nil {
		f.Add(b[:min(len(b), 3000)], 0.5, 200)
	}
	f.Fuzz(func(t *testing.T, rec []byte, span float64, maxBytes int) {
		if span != span || span > 1e6 {
			span = 1
		}
		dec := asciicast.NewDecoder(bytes.NewReader(rec))
		if _, err := dec.Header(); err != nil {
			return
		}
		var docs []playerSegment
		_, err := Cut(bytes.NewReader(rec), Options{Span: span, MaxBytes: maxBytes % 4096}, func(s *Segment) error {
			b, err := s.MarshalJSON()
			if err != nil {
				return err
			}
			var doc playerSegment
			if err := json.Unmarshal(b, &doc); err != nil {
				return err
			}
			docs = append(docs, doc)
			return nil
		})
		if errors.Is(err, ErrEmpty) || err != nil && errors.Is(err, io.ErrUnexpectedEOF) {
			return
		}
		if err != nil {
			return // a read error of the decoder's own
		}
		cut(t, rec, Options{Span: span, MaxBytes: maxBytes % 4096})
		checkReplay(t, docs)
	})
}

// Times with more than six decimals (Go's json.Marshal of a time.Duration
// in seconds writes them) are given to the microsecond everywhere, so a
// segment's start equals its first event's time as the player reads both.
func TestTimesToTheMicrosecond(t *testing.T) {
	rec := `{"version":2,"width":10,"height":3}
[0.123456789,"o","a"]
[1.000000499,"m","mark"]
[2.718281828,"o","b"]
[3.141592653,"o","c"]
`
	idx, docs := cut(t, []byte(rec), Options{Span: 1})
	if len(docs) != 3 {
		t.Fatalf("%d segments, want 3", len(docs))
	}
	if idx.Segments[2].Start != 2.718282 || idx.Duration != 3.141593 || idx.Markers[0].Time != 1 {
		t.Errorf("index %+v", idx)
	}
}
