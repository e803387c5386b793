package sender

import (
	"context"
	"encoding/base64"
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/reel-rec/reel/internal/asciicast"
)

// TestStartHeld: the header waits for the terminal size, events written
// before it come after it; exit status and binary output have their own
// events.
func TestStartHeld(t *testing.T) {
	for _, tc := range []struct {
		name      string
		disableV2 bool
		release   bool
		wantW     int
		wantH     int
	}{
		{"v2 released", false, true, 132, 43},
		{"v1 released", true, true, 132, 43},
		{"closed while held", false, false, 80, 24},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rr := startRecorder(t, tc.disableV2)
			start := time.Unix(1700000000, 0)
			c := &Client{Now: fixedClock(start, 250*time.Millisecond)}
			h := asciicast.Header{Width: 80, Height: 24, SrcNode: "n", Env: map[string]string{}}
			rec, err := c.StartHeld(context.Background(), []netip.AddrPort{rr.addr}, h)
			if err != nil {
				t.Fatal(err)
			}
			bin := []byte{0x1f, 0x8b, 0xff, 0x00, 'x'}
			rec.Output([]byte("before the size\r\n"))
			if tc.release {
				rec.ReleaseHeader(132, 43)
				rec.ReleaseHeader(10, 10) // only the first counts
			}
			rec.Binary(bin)
			rec.Exit(3)
			if err := rec.Close(context.Background()); err != nil {
				t.Fatalf("Close: %v", err)
			}
			recs := rr.recordings(t)
			if len(recs) != 1 {
				t.Fatalf("%d recordings, want 1", len(recs))
			}
			s := recs[0]
			if s.header.Width != tc.wantW || s.header.Height != tc.wantH {
				t.Errorf("header size %dx%d, want %dx%d", s.header.Width, s.header.Height, tc.wantW, tc.wantH)
			}
			want := []asciicast.Event{
				{Time: 0.25, Code: "o", Data: "before the size\r\n"},
				{Time: 0.5, Code: "b", Data: base64.StdEncoding.EncodeToString(bin)},
				{Time: 0.75, Code: "x", Data: "3"},
			}
			if diff := cmp.Diff(want, s.events); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
		})
	}
}
