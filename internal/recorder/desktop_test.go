package recorder_test

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/reel-rec/reel/internal/desktop"
	"github.com/reel-rec/reel/internal/recorder"
	"github.com/reel-rec/reel/internal/sender"
	"github.com/reel-rec/reel/internal/store"
	"github.com/reel-rec/reel/internal/testutil"
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

// TestDesktopUploadEndsBeforeHeader: the "nothing before the header line"
// rule holds for desktop uploads too: an empty one is answered 400 in
// desktop words, one that breaks off inside its header line leaves no
// file; both are counted as abandoned.
func TestDesktopUploadEndsBeforeHeader(t *testing.T) {
	h := start(t, nil)
	resp, err := http.Post("http://"+h.addr.String()+"/record", desktop.ContentType, strings.NewReader(""))
	if err != nil {
		t.Fatal(err)
	}
	msg, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(msg), "no desktop recording header line") {
		t.Errorf("empty desktop upload: %s %q, want 400 saying why", resp.Status, msg)
	}

	c, err := net.Dial("tcp", h.addr.String())
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(c, "POST /record HTTP/1.1\r\nHost: r\r\nContent-Type: "+desktop.ContentType+"\r\nContent-Length: 1000\r\n\r\n{\"format\":")
	testutil.WaitFor(t, "the half header to arrive", func() bool { return h.srv.Metrics.BytesReceived() >= 10 })
	c.Close()
	idleSettle(t, h)
	if files := castFiles(t, h.dir); len(files) != 0 {
		t.Errorf("desktop uploads that ended before their header line left %v", files)
	}
	if got := h.srv.Metrics.Abandoned("v1"); got != 2 {
		t.Errorf("abandoned v1 uploads = %d, want 2", got)
	}
}

// terminalOnly hides a store's CreateKind: a store that keeps only
// terminal recordings.
type terminalOnly struct{ store.Store }

// TestDesktopUploadToTerminalOnlyStore: a store that cannot keep desktop
// recordings refuses them with 415 before the body is read (no "100
// Continue", so a sender fails over), and stores nothing; terminal
// uploads still work.
func TestDesktopUploadToTerminalOnlyStore(t *testing.T) {
	h := start(t, func(s *recorder.Server) { s.Store = terminalOnly{s.Store} })
	req, err := http.NewRequest("POST", "http://"+h.addr.String()+"/record", strings.NewReader("{\"format\":\"reel-desktop\"}\n"))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", desktop.ContentType)
	req.Header.Set("Expect", "100-continue")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	msg, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnsupportedMediaType || !strings.Contains(string(msg), "only terminal recordings") {
		t.Errorf("desktop upload to a terminal-only store: %s %q, want 415 saying why", resp.Status, msg)
	}
	if got := h.srv.Metrics.BytesReceived(); got != 0 {
		t.Errorf("%d bytes of the refused upload were read", got)
	}
	if files := castFiles(t, h.dir); len(files) != 0 {
		t.Errorf("a refused desktop upload left %v", files)
	}
	resp, err = http.Post("http://"+h.addr.String()+"/record", "application/x-asciicast", strings.NewReader("{\"version\":2,\"width\":80,\"height\":24}\n"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("terminal upload to the same store: %s", resp.Status)
	}
	http.DefaultClient.CloseIdleConnections()
}
