package review

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"github.com/reel-rec/reel/internal/asciicast"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const testHeader = `{"version":2,"width":80,"height":24,"timestamp":1700000000}`

// lastTime is what lastEventTime gave, for comparing.
type lastTime struct {
	T   float64
	Err error
}

func TestLastEventTime(t *testing.T) {
	long := strings.Repeat("x", 200<<10)
	tests := []struct {
		name string
		body string // after the header line
		want lastTime
	}{
		{"no events", "", lastTime{Err: ErrNoEvents}},
		{"only blank lines", "\n\n \r\n\n", lastTime{Err: ErrNoEvents}},
		{"one event", `[1.5,"o","a"]` + "\n", lastTime{T: 1.5}},
		{"last of several", `[1,"o","a"]` + "\n" + `[2.25,"o","b"]` + "\n" + `[7.125,"r","90x30"]` + "\n", lastTime{T: 7.125}},
		{"partial line in flight is skipped", `[1,"o","a"]` + "\n" + `[2,"o","b"]` + "\n" + `[3,"o","ab`, lastTime{T: 2}},
		{"partial time is skipped", `[1,"o","a"]` + "\n" + `[12`, lastTime{T: 1}},
		{"only a partial line", `[1,"o","a`, lastTime{Err: ErrNoEvents}},
		{"whole last line without newline", `[1,"o","a"]` + "\n" + `[3.5,"o","ab"]`, lastTime{T: 3.5}},
		{"blank lines at the end", `[4,"o","a"]` + "\n\n\n", lastTime{T: 4}},
		{"crlf", `[4,"o","a"]` + "\r\n", lastTime{T: 4}},
		{"spaces", ` [ 4.5 , "o", "a" ]` + "\n", lastTime{T: 4.5}},
		{"exponent", `[1e2,"o","a"]` + "\n", lastTime{T: 100}},
		{"escaped newline in data", `[1,"o","a\nb"]` + "\n", lastTime{T: 1}},
		{"last line longer than a block", `[1,"o","a"]` + "\n" + `[9.75,"o","` + long + `"]` + "\n", lastTime{T: 9.75}},
		{"last line not an event", `[1,"o","a"]` + "\n" + `{"oops":1}` + "\n", lastTime{Err: ErrNotEvent}},
		{"negative time", `[-1,"o","a"]` + "\n", lastTime{Err: ErrNotEvent}},
		{"leading zero is not JSON", `[01,"o","a"]` + "\n", lastTime{Err: ErrNotEvent}},
		{"number without the rest", `[1]` + "\n", lastTime{Err: ErrNotEvent}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			data := []byte(testHeader + "\n" + tc.body)
			tm, err := lastEventTime(context.Background(), bytes.NewReader(data), int64(len(data)), int64(len(testHeader))+1, 1<<20, 4096)
			got := lastTime{T: tm, Err: err}
			if !errors.Is(got.Err, tc.want.Err) || got.T != tc.want.T {
				t.Errorf("got %v, %v; want %v, %v", got.T, got.Err, tc.want.T, tc.want.Err)
			}
		})
	}
}

// refLastEventTime is lastEventTime done the obvious way, on all the bytes:
// split into lines, then look at them from the last.
func refLastEventTime(data []byte, from int) (float64, error) {
	if from >= len(data) {
		return 0, ErrNoEvents
	}
	lines := bytes.Split(data[from:], []byte("\n"))
	for i := len(lines) - 1; i >= 0; i-- {
		l := lines[i]
		if len(bytes.Trim(l, " \t\r")) == 0 {
			continue
		}
		var ev asciicast.Event
		if err := ev.UnmarshalJSON(l); err == nil && ev.Time >= 0 {
			return ev.Time, nil
		}
		if i == len(lines)-1 {
			continue // a final line without a newline: in flight
		}
		return 0, ErrNotEvent
	}
	return 0, ErrNoEvents
}

// FuzzLastEventTime checks the backwards reader against the obvious
// forwards one, with blocks small enough that lines straddle them, and
// with a window that may be too small: then it must say so, having read
// no more than the window.
func FuzzLastEventTime(f *testing.F) {
	f.Add([]byte(testHeader+"\n"+`[1,"o","a"]`+"\n"+`[2.5,"o","b"]`+"\n"), uint8(3), uint8(200))
	f.Add([]byte(testHeader+"\n"+`[1,"o","a"]`+"\n"+`[2.5,"o","b`), uint8(1), uint8(0))
	f.Add([]byte(testHeader+"\n\n\n"+` [ 3 , "o" , "x" ] `+"\n\n"), uint8(7), uint8(5))
	f.Add([]byte(testHeader+"\n"+`[1e-3,"o","a"]`), uint8(64), uint8(9))
	f.Add([]byte("{}\n[1,\"o\",\"\\n\"]\n"), uint8(2), uint8(3))
	f.Fuzz(func(t *testing.T, data []byte, block, window uint8) {
		from := bytes.IndexByte(data, '\n') + 1
		if from == 0 {
			from = len(data)
		}
		maxTail := int64(window)
		if window == 0 {
			maxTail = 1 << 30 // no limit
		}
		r := &countingReaderAt{r: bytes.NewReader(data)}
		got, err := lastEventTime(context.Background(), r, int64(len(data)), int64(from), maxTail, int(block%64)+1)
		want, wantErr := refLastEventTime(data, from)
		if r.bytes > maxTail {
			t.Fatalf("read %d bytes with a window of %d", r.bytes, maxTail)
		}
		if errors.Is(err, ErrTailLimit) && int64(len(data)-from) > maxTail {
			return // the answer lies further back than it may look
		}
		if got != want || !errors.Is(err, wantErr) {
			t.Fatalf("lastEventTime = %v, %v; want %v, %v", got, err, want, wantErr)
		}
	})
}

// countingReaderAt counts the reads and bytes read through it.
type countingReaderAt struct {
	r     io.ReaderAt
	mu    sync.Mutex
	reads int
	bytes int64
}

func (c *countingReaderAt) ReadAt(p []byte, off int64) (int, error) {
	n, err := c.r.ReadAt(p, off)
	c.mu.Lock()
	c.reads++
	c.bytes += int64(n)
	c.mu.Unlock()
	return n, err
}

// trailingNewlines is a recording of size bytes, made up as it is read: a
// header, one event, then newlines to the end. A 200 MB one costs no
// memory.
type trailingNewlines struct {
	head []byte
	size int64
}

func newTrailingNewlines(size int64) *trailingNewlines {
	return &trailingNewlines{head: []byte(testHeader + "\n" + `[1.5,"o","hello"]` + "\n"), size: size}
}

func (r *trailingNewlines) ReadAt(p []byte, off int64) (int, error) {
	if off >= r.size {
		return 0, io.EOF
	}
	n := int(min(int64(len(p)), r.size-off))
	done := 0
	if off < int64(len(r.head)) {
		done = copy(p[:n], r.head[off:])
	}
	for done < n {
		done += copy(p[done:n], newlineBlock)
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

var newlineBlock = bytes.Repeat([]byte("\n"), 64<<10)

// TestSummaryOfTrailingNewlines: a recording that ends in megabytes of
// empty lines is summarised with a bounded number of reads and bytes: the
// header, then at most Limits.MaxTail from the end. (Before, each empty
// line cost a read of a whole 64 KiB chunk: 8 MiB of newlines took 26 s,
// 200 MB over 11 minutes.)
func TestSummaryOfTrailingNewlines(t *testing.T) {
	for _, size := range []int64{8 << 20, 200_000_000} {
		r := &countingReaderAt{r: newTrailingNewlines(size)}
		s := ReadSummary(context.Background(), r, size, Limits{})
		if s.HeaderErr != nil || s.Header == nil || s.Header.Width != 80 {
			t.Fatalf("%d bytes: header %+v, %v", size, s.Header, s.HeaderErr)
		}
		if s.Duration != nil || !errors.Is(s.DurationErr, ErrTailLimit) {
			t.Errorf("%d bytes: duration %v, %v; want unknown (ErrTailLimit)", size, s.Duration, s.DurationErr)
		}
		// The header: one block. The tail: MaxTail in blocks.
		maxBytes := int64(tailBlock + DefaultMaxTail)
		maxReads := 1 + DefaultMaxTail/tailBlock
		if r.bytes > maxBytes || r.reads > maxReads {
			t.Errorf("%d bytes of newlines: %d reads, %d bytes read; want at most %d reads, %d bytes", size, r.reads, r.bytes, maxReads, maxBytes)
		}
	}
}

// TestSummaryReadsEachByteOnce: with a window larger than the run of
// newlines, the event before them is found, and every byte is read once.
func TestSummaryReadsEachByteOnce(t *testing.T) {
	const size = 8 << 20
	r := &countingReaderAt{r: newTrailingNewlines(size)}
	s := ReadSummary(context.Background(), r, size, Limits{MaxTail: 16 << 20})
	if s.Duration == nil || *s.Duration != 1.5 || s.DurationErr != nil {
		t.Fatalf("duration %v, %v; want 1.5", s.Duration, s.DurationErr)
	}
	if r.bytes > size+tailBlock || r.reads > size/tailBlock+2 {
		t.Errorf("%d reads, %d bytes read of a %d-byte recording; want each byte read once", r.reads, r.bytes, size)
	}
}

// TestSummaryReadsOnlyTheEnds: summarising a 32 MiB recording reads its
// header and last line, not the middle.
func TestSummaryReadsOnlyTheEnds(t *testing.T) {
	line := `[111.5,"o","` + strings.Repeat("y", 1000) + `"]` + "\n"
	data := testHeader + "\n" + strings.Repeat(line, 32<<20/len(line)) + `[99999.25,"o","end"]` + "\n"
	c := &countingReaderAt{r: strings.NewReader(data)}
	s := ReadSummary(context.Background(), c, int64(len(data)), Limits{})
	if s.HeaderErr != nil || s.Header == nil {
		t.Fatalf("header: %+v, %v", s.Header, s.HeaderErr)
	}
	if s.Duration == nil || *s.Duration != 99999.25 {
		t.Errorf("duration %v (%v), want 99999.25", s.Duration, s.DurationErr)
	}
	if c.bytes > 2*tailBlock {
		t.Errorf("read %d bytes of a %d-byte recording; want only its ends", c.bytes, len(data))
	}
}

// cancelOnRead cancels a context on the read at or after offset at.
type cancelOnRead struct {
	countingReaderAt
	at        int64
	cancel    context.CancelFunc
	cancelled int // reads when it cancelled
}

func (c *cancelOnRead) ReadAt(p []byte, off int64) (int, error) {
	if off >= c.at && c.cancelled == 0 {
		c.cancel()
		c.cancelled = c.reads + 1
	}
	return c.countingReaderAt.ReadAt(p, off)
}

// TestSummaryStopsWhenCancelled: a cancelled context stops the backwards
// scan at the next block.
func TestSummaryStopsWhenCancelled(t *testing.T) {
	const size = 8 << 20
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := &cancelOnRead{countingReaderAt: countingReaderAt{r: newTrailingNewlines(size)}, at: 1 << 20, cancel: cancel}
	s := ReadSummary(ctx, r, size, Limits{MaxTail: 1 << 30})
	if !errors.Is(s.DurationErr, context.Canceled) {
		t.Errorf("DurationErr %v, want context.Canceled", s.DurationErr)
	}
	if r.reads != r.cancelled {
		t.Errorf("%d reads after the one that cancelled (read %d)", r.reads-r.cancelled, r.cancelled)
	}
}

func TestReadSummary(t *testing.T) {
	dur := func(f float64) *float64 { return &f }
	tests := []struct {
		name     string
		data     string
		lim      Limits
		version  int
		duration *float64
		hdrErr   string
		durErr   error
	}{
		{"v2", testHeader + "\n" + `[1,"o","a"]` + "\n" + `[2.5,"o","b"]` + "\n", Limits{}, 2, dur(2.5), "", nil},
		{"header only, no newline", testHeader, Limits{}, 2, nil, "", ErrNoEvents},
		{"header only", testHeader + "\n", Limits{}, 2, nil, "", ErrNoEvents},
		{"header duration, then events", `{"version":2,"width":80,"height":24,"duration":9}` + "\n" + `[3,"o","a"]` + "\n", Limits{}, 2, dur(3), "", nil},
		{"header duration, no events", `{"version":2,"width":80,"height":24,"duration":9}` + "\n", Limits{}, 2, dur(9), "", nil},
		{"v1 over several lines", `{"version":1,"width":80,"height":24,"duration":1.5,"command":"sh","title":"","env":{},
  "stdout":[[0.1,"hello "],[1.4,"v1\r\n"]]}` + "\n", Limits{}, 1, dur(1.5), "", nil},
		{"v3", `{"version":3,"term":{"cols":80,"rows":24},"timestamp":1700000000}` + "\n" + `[0.5,"o","a"]` + "\n", Limits{}, 3, nil, "", errAny},
		{"not asciicast", "hello\n", Limits{}, 0, nil, "asciicast: line 1: header: ", errAny},
		{"empty", "", Limits{}, 0, nil, "asciicast", errAny},
		{"header too long", `{"version":2,"width":80,"height":24,"title":"` + strings.Repeat("t", 200) + `"}` + "\n", Limits{MaxHeader: 100}, 0, nil, "asciicast", errAny},
		{"header longer than a block", `{"version":2,"width":80,"height":24,"title":"` + strings.Repeat("t", 100<<10) + `"}` + "\n" + `[4,"o","x"]` + "\n", Limits{}, 2, dur(4), "", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := ReadSummary(context.Background(), strings.NewReader(tc.data), int64(len(tc.data)), tc.lim)
			var version int
			if s.Header != nil {
				version = s.Header.Version
			}
			if version != tc.version {
				t.Errorf("version %d, want %d (header error %v)", version, tc.version, s.HeaderErr)
			}
			if (tc.hdrErr == "") != (s.HeaderErr == nil) || s.HeaderErr != nil && !strings.HasPrefix(s.HeaderErr.Error(), tc.hdrErr) {
				t.Errorf("header error %v, want one starting %q", s.HeaderErr, tc.hdrErr)
			}
			if diff := cmp.Diff(tc.duration, s.Duration); diff != "" {
				t.Errorf("duration (-want +got)\n%s", diff)
			}
			switch {
			case tc.durErr == nil && s.DurationErr != nil,
				tc.durErr == errAny && s.DurationErr == nil,
				tc.durErr != nil && tc.durErr != errAny && !errors.Is(s.DurationErr, tc.durErr):
				t.Errorf("duration error %v, want %v", s.DurationErr, tc.durErr)
			}
		})
	}
}

// errAny in a want column means "some error".
var errAny = errors.New("any error")

// BenchmarkReadSummary summarises a recording whose last event line is
// followed by n bytes of newlines (made up as they are read, so the
// recording costs no memory).
func BenchmarkReadSummary(b *testing.B) {
	for _, n := range []int64{0, 256 << 10, 8 << 20, 200_000_000} {
		b.Run(fmt.Sprintf("newlines=%d", n), func(b *testing.B) {
			r := newTrailingNewlines(int64(len(testHeader)) + 20 + n)
			b.ReportAllocs()
			for b.Loop() {
				ReadSummary(context.Background(), r, r.size, Limits{})
			}
		})
	}
}
