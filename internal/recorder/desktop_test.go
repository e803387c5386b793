package recorder_test

import (
	"bytes"
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/reel-rec/reel/internal/desktop"
	"github.com/reel-rec/reel/internal/recorder"
	"github.com/reel-rec/reel/internal/sender"
	"github.com/reel-rec/reel/internal/store"
)

// A desktop recording announced by its Content-Type is checked as one and
// stored as "<node>/<ts>.desk" beside the .cast files; the same bytes
// without the announcement are asciicast, and malformed.
func TestDesktopUpload(t *testing.T) {
	for _, v1 := range []bool{false, true} {
		name := "v2"
		if v1 {
			name = "v1"
		}
		t.Run(name, func(t *testing.T) {
			h := start(t, func(s *recorder.Server) { s.DisableV2 = v1 })
			var body bytes.Buffer
			enc, err := desktop.NewEncoder(&body, desktop.Header{Width: 4, Height: 2, Start: time.Now()}, 0)
			if err != nil {
				t.Fatal(err)
			}
			img := desktop.NewImage(4, 2)
			img.Pix[3] = 0x0A1B0A
			enc.Keyframe(0, img)
			enc.Pointer(time.Millisecond, 1, 1, 0)
			data := body.Bytes()
			nl := bytes.IndexByte(data, '\n') + 1

			c := &sender.Client{}
			ctx := context.Background()
			rec, err := c.StartStream(ctx, []netip.AddrPort{h.addr}, desktop.ContentType, data[:nl])
			if err != nil {
				t.Fatal(err)
			}
			if err := rec.Write(data[nl:]); err != nil {
				t.Fatal(err)
			}
			if err := rec.Close(ctx); err != nil {
				t.Fatalf("close: %v", err)
			}
			term, err := c.StartStream(ctx, []netip.AddrPort{h.addr}, "", data[:nl])
			if err != nil {
				t.Fatal(err)
			}
			term.Write(data[nl:])
			if err := term.Close(ctx); err == nil || !strings.Contains(err.Error(), "malformed") {
				t.Fatalf("desktop bytes uploaded as asciicast: %v", err)
			}

			var infos []store.Info
			for info, err := range h.st.List(ctx, store.Filter{}) {
				if err != nil {
					t.Fatal(err)
				}
				infos = append(infos, info)
			}
			if len(infos) != 2 {
				t.Fatalf("stored %+v", infos)
			}
			var desk store.Info
			for _, info := range infos {
				if store.KindOf(info.Key) == store.KindDesktop {
					desk = info
				} else if info.Status != store.StatusMalformed {
					t.Errorf("terminal upload: %+v", info)
				}
			}
			if !strings.HasSuffix(desk.Key, ".desk") || desk.Status != store.StatusComplete {
				t.Fatalf("desktop recording: %+v", desk)
			}
			r, err := h.st.Open(ctx, desk.Key)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			hd, d, err := desktop.Stat(r, r.Size())
			if err != nil || hd.Width != 4 || d != time.Millisecond {
				t.Fatalf("stat: %+v %v %v", hd, d, err)
			}
		})
	}
}
