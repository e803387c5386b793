package rfb_test

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/reel-rec/reel/internal/desktop"
	"github.com/reel-rec/reel/internal/policy"
	"github.com/reel-rec/reel/internal/rfb"
	"github.com/reel-rec/reel/internal/store"
	"github.com/reel-rec/reel/internal/testutil"
)

// connect logs in through the proxy with the Go client.
func connect(t *testing.T, p *proxy, user, pass string) (*rfb.Client, error) {
	t.Helper()
	conn, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	c, err := rfb.NewClient(conn, rfb.ClientConfig{User: user, Password: pass, TLS: &tls.Config{RootCAs: p.pki.caPool, ServerName: "127.0.0.1"}})
	if err != nil {
		conn.Close()
		return nil, err
	}
	t.Cleanup(func() { c.Close() })
	return c, nil
}

// firstUpdate asks for the whole screen and reads until an update comes.
func firstUpdate(t *testing.T, c *rfb.Client) {
	t.Helper()
	if err := c.RequestUpdate(false); err != nil {
		t.Fatal(err)
	}
	for {
		typ, err := c.ReadMessage()
		if err != nil {
			t.Fatalf("reading the first update: %v", err)
		}
		if typ == 0 {
			return
		}
	}
}

func wantRefused(t *testing.T, err error, reason string) {
	t.Helper()
	var re *rfb.RefusedError
	if !errors.As(err, &re) || !strings.Contains(re.Reason, reason) {
		t.Fatalf("got %v, want a refusal saying %q", err, reason)
	}
}

// Unauthenticated and unauthorised users are refused with a reason the
// client shows; vncviewer prints it.
func TestRefused(t *testing.T) {
	d := startDesktop(t, 320, 200)
	r := startRecorder(t)
	p := startProxy(t, d, []netip.AddrPort{r.addr}, true, nil)

	_, err := connect(t, p, userName, "wrong")
	wantRefused(t, err, "reel: authentication failed")
	_, err = connect(t, p, "nobody", userPass)
	wantRefused(t, err, "reel: authentication failed")
	_, err = connect(t, p, "bob", bobPass)
	wantRefused(t, err, "reel: access denied")

	v := startViewer(t, p, userName, "wrong")
	select {
	case <-v.done:
	case <-time.After(60 * time.Second):
		t.Fatal("vncviewer did not exit after a failed login")
	}
	if !strings.Contains(v.out.String(), "reel: authentication failed") {
		t.Errorf("vncviewer does not show the reason:\n%s", v.out.String())
	}
	if len(r.desktops(t)) != 0 {
		t.Errorf("refused sessions were recorded: %+v", r.desktops(t))
	}
}

// With enforceRecorder, a session that cannot be recorded is refused with
// a reason; without, it runs unrecorded.
func TestRecorderDownAtStart(t *testing.T) {
	d := startDesktop(t, 320, 200)
	dead := testutil.DeadAddr(t)

	closed := startProxy(t, d, []netip.AddrPort{dead}, true, nil)
	_, err := connect(t, closed, userName, userPass)
	wantRefused(t, err, "must be recorded")

	open := startProxy(t, d, []netip.AddrPort{dead}, false, nil)
	c, err := connect(t, open, userName, userPass)
	if err != nil {
		t.Fatalf("fail open: %v", err)
	}
	firstUpdate(t, c)
	if !open.logs.Contains("session not recorded") {
		t.Errorf("no log line about the unrecorded session:\n%s", open.logs.String())
	}
}

// A recorder lost mid-session ends the session under enforceRecorder, and
// not otherwise; what was recorded until then is stored.
func TestRecorderLostMidSession(t *testing.T) {
	for _, enforce := range []bool{true, false} {
		name := "fail open"
		if enforce {
			name = "fail closed"
		}
		t.Run(name, func(t *testing.T) {
			d := startDesktop(t, 320, 200)
			r := startRecorder(t)
			cut := testutil.StartProxy(t, r.addr.String())
			p := startProxy(t, d, []netip.AddrPort{cut.Addr}, enforce, nil)
			c, err := connect(t, p, userName, userPass)
			if err != nil {
				t.Fatal(err)
			}
			firstUpdate(t, c)
			testutil.WaitFor(t, "a stored keyframe", func() bool {
				ds := r.desktops(t)
				if len(ds) != 1 {
					return false
				}
				ix, err := desktop.Scan(bytes.NewReader(r.read(t, ds[0].Key)))
				return err == nil && len(ix.Keyframes) > 0
			})

			cut.Cut() // the recorder is gone, as if killed
			msgs := make(chan error, 1)
			go func() {
				for {
					if err := c.RequestUpdate(true); err != nil {
						msgs <- err
						return
					}
					if _, err := c.ReadMessage(); err != nil {
						msgs <- err
						return
					}
				}
			}()
			if enforce {
				select {
				case err := <-msgs:
					t.Logf("session ended: %v", err)
				case <-time.After(60 * time.Second):
					t.Fatal("the session went on without its recorder (enforceRecorder)")
				}
				if !p.logs.Contains("ending the session") {
					t.Errorf("no log line about ending the session:\n%s", p.logs.String())
				}
			} else {
				testutil.WaitForSeen(t, 60*time.Second, "the loss to be logged", func() bool {
					return p.logs.Contains("session goes on unrecorded")
				}, p.logs.String)
				// The session still works: typing shows up on the client.
				d.Must(t, "type", "still-here")
				select {
				case err := <-msgs:
					t.Fatalf("the session ended: %v", err)
				default:
				}
			}
			c.Close()
			testutil.WaitFor(t, "the recording to be closed", func() bool {
				ds := r.desktops(t)
				return len(ds) == 1 && ds[0].Status != store.StatusLive
			})
			ds := r.desktops(t)
			_, ix := lastFrame(t, r.read(t, ds[0].Key))
			if ix.Records == 0 || ix.Truncated || ix.Err != nil {
				t.Errorf("stored recording %+v: %+v", ds[0], ix)
			}
		})
	}
}

// The pointer is recorded; keys only when a rule asks (keyRecording).
func TestPointerAndKeys(t *testing.T) {
	for _, keys := range []bool{false, true} {
		t.Run(fmt.Sprintf("keyRecording=%v", keys), func(t *testing.T) {
			d := startDesktop(t, 320, 200)
			r := startRecorder(t)
			pol, err := policy.Parse("p", []byte(fmt.Sprintf(`{"recorders": {"tag:r": [%q]}, "desktop": [{"action": "accept", "src": ["*"], "dst": ["*"], "recorder": ["tag:r"], "keyRecording": %t}]}`, r.addr, keys)))
			if err != nil {
				t.Fatal(err)
			}
			p := startProxy(t, d, []netip.AddrPort{r.addr}, true, func(s *rfb.Server) {
				s.Policy = func() *policy.Policy { return pol }
			})
			c, err := connect(t, p, userName, userPass)
			if err != nil {
				t.Fatal(err)
			}
			firstUpdate(t, c)
			c.Pointer(17, 42, 1)
			c.Key(true, 'x')
			c.Key(false, 'x')
			c.Pointer(18, 43, 0)
			c.Close()
			testutil.WaitFor(t, "the recording to be complete", func() bool {
				ds := r.desktops(t)
				return len(ds) == 1 && ds[0].Status == store.StatusComplete
			})
			data := r.read(t, r.desktops(t)[0].Key)
			dec, err := desktop.NewDecoder(bytes.NewReader(data))
			if err != nil {
				t.Fatal(err)
			}
			if dec.Header().Keys != keys {
				t.Errorf("header says keys %v", dec.Header().Keys)
			}
			var pointers []string
			nkeys := 0
			for {
				rec, err := dec.Next()
				if err != nil {
					break
				}
				switch rec.Type {
				case desktop.TypePointer:
					pointers = append(pointers, fmt.Sprintf("%d,%d/%d", rec.X, rec.Y, rec.Buttons))
				case desktop.TypeKey:
					nkeys++
					if rec.Sym != 'x' {
						t.Errorf("key %+v", rec)
					}
				}
			}
			if got := strings.Join(pointers, " "); !strings.HasSuffix(got, "17,42/1 18,43/0") {
				t.Errorf("pointer records %q", got)
			}
			if want := map[bool]int{false: 0, true: 2}[keys]; nkeys != want {
				t.Errorf("%d key records, want %d", nkeys, want)
			}
		})
	}
}
