// Package rfbtest runs the real peers reel vnc's tests and benchmark
// need: TigerVNC's Xvnc with an xterm as the desktop, Xvfb for viewers,
// xdotool to type and move windows, and xwd for the server's own
// screenshots.
package rfbtest

import (
	"crypto/des"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/reel-rec/reel/internal/desktop"
	"github.com/reel-rec/reel/internal/testutil"
)

// VNCPassword is the password StartDesktop's Xvnc asks for.
const VNCPassword = "vnc-pass"

// startX starts an X server (Xvnc with args, or Xvfb) on a free display
// and returns the display (":N").
func StartX(t testing.TB, prog string, args ...string) string {
	t.Helper()
	display, log := tryStartX(t, prog, args...)
	if display == "" {
		t.Fatalf("%s did not start:\n%s", prog, log)
	}
	return display
}

// tryStartX is StartX that returns "" and the server's output when it
// does not start.
func tryStartX(t testing.TB, prog string, args ...string) (display, log string) {
	t.Helper()
	testutil.NeedTool(t, prog)
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(prog, append([]string{"-displayfd", "3", "-nolisten", "tcp"}, args...)...)
	cmd.ExtraFiles = []*os.File{pw}
	var logb testutil.Buffer
	cmd.Stdout, cmd.Stderr = &logb, &logb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	got := make(chan string, 1)
	go func() {
		b, _ := io.ReadAll(io.LimitReader(pr, 16))
		pr.Close()
		got <- strings.TrimSpace(string(b))
	}()
	select {
	case n := <-got:
		if n == "" {
			cmd.Wait() // all of its output
			return "", logb.String()
		}
		return ":" + n, ""
	case <-time.After(60 * time.Second):
		t.Fatalf("%s did not report its display in 60 s:\n%s", prog, logb.String())
	}
	return "", ""
}

// vncPasswordFile writes a password file as vncpasswd does: the password
// DES-encrypted with VNC's fixed key.
func VNCPasswordFile(t testing.TB, dir, password string) string {
	t.Helper()
	// VNC's d3des takes key bits in the opposite order to crypto/des.
	key := []byte{23, 82, 107, 6, 35, 78, 88, 7}
	for i, b := range key {
		key[i] = bits.Reverse8(b)
	}
	c, err := des.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	var pw [8]byte
	copy(pw[:], password)
	out := make([]byte, 8)
	c.Encrypt(out, pw[:])
	p := filepath.Join(dir, "passwd")
	if err := os.WriteFile(p, out, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// Desktop is a running desktop: Xvnc serving RFB on addr, with an xterm.
type Desktop struct {
	Display string // ":N"
	Addr    string // RFB, host:port
	W, H    int
}

func StartDesktop(t testing.TB, w, h int) *Desktop {
	t.Helper()
	dir := t.TempDir()
	pw := VNCPasswordFile(t, dir, VNCPassword)
	// The port is free when picked, but another process (a test running
	// beside this one) may take it before Xvnc binds it: then try another.
	var addr, display string
	for attempt := 1; ; attempt++ {
		addr = testutil.FreeAddr(t)
		_, port, _ := net.SplitHostPort(addr)
		var log string
		display, log = tryStartX(t, "Xvnc", "-geometry", fmt.Sprintf("%dx%d", w, h), "-depth", "24",
			"-rfbport", port, "-interface", "127.0.0.1", "-SecurityTypes", "VncAuth", "-PasswordFile", pw,
			"-BlacklistThreshold", "1000000", "-nocursor", "-AlwaysShared", "-AcceptSetDesktopSize=0")
		if display != "" {
			break
		}
		if attempt == 5 || !strings.Contains(log, "Address already in use") {
			t.Fatalf("Xvnc did not start:\n%s", log)
		}
	}
	d := &Desktop{Display: display, Addr: addr, W: w, H: h}
	testutil.NeedTool(t, "xterm")
	xt := exec.Command("xterm", "-display", display, "-geometry", "60x12+20+20", "-fa", "", "-fn", "fixed", "+sb", "-bg", "white", "-fg", "black", "-e", "sh", "-c", "PS1='$ ' exec sh")
	xt.Env = append(os.Environ(), "DISPLAY="+display)
	if err := xt.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { xt.Process.Kill(); xt.Wait() })
	testutil.WaitFor(t, "the xterm window", func() bool {
		out, _ := d.Xdotool("search", "--class", "xterm")
		return strings.TrimSpace(out) != ""
	})
	return d
}

func (d *Desktop) Xdotool(args ...string) (string, error) {
	cmd := exec.Command("xdotool", args...)
	cmd.Env = append(os.Environ(), "DISPLAY="+d.Display)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (d *Desktop) Must(t testing.TB, args ...string) {
	t.Helper()
	if out, err := d.Xdotool(args...); err != nil {
		t.Fatalf("xdotool %v: %v\n%s", args, err, out)
	}
}

// screenshot takes the server side's picture of the screen with xwd.
func (d *Desktop) Screenshot(t testing.TB) *desktop.Image {
	t.Helper()
	cmd := exec.Command("xwd", "-root", "-silent", "-display", d.Display)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("xwd: %v", err)
	}
	img, err := ParseXWD(out)
	if err != nil {
		t.Fatalf("xwd: %v", err)
	}
	return img
}

// stableScreenshot takes screenshots until two in a row are equal.
func (d *Desktop) StableScreenshot(t testing.TB) *desktop.Image {
	t.Helper()
	prev := d.Screenshot(t)
	var shot *desktop.Image
	testutil.WaitFor(t, "the screen to settle", func() bool {
		shot = d.Screenshot(t)
		same := DiffPixels(prev, shot) == 0
		prev = shot
		return same
	})
	return shot
}

// parseXWD decodes a ZPixmap XWD dump (xwd -root) of a TrueColor screen.
func ParseXWD(b []byte) (*desktop.Image, error) {
	if len(b) < 100 {
		return nil, errors.New("short XWD")
	}
	f := func(i int) uint32 { return binary.BigEndian.Uint32(b[4*i:]) }
	hsize, format, w, h := f(0), f(2), int(f(4)), int(f(5))
	order, bpp, bpl := f(7), f(11), int(f(12))
	rmask, gmask, bmask, ncolors := f(14), f(15), f(16), f(19)
	if format != 2 || bpp != 32 {
		return nil, fmt.Errorf("XWD format %d, %d bpp: want ZPixmap, 32", format, bpp)
	}
	off := int(hsize) + 12*int(ncolors)
	if len(b) < off+bpl*h {
		return nil, errors.New("truncated XWD")
	}
	shift := func(m uint32) uint32 {
		var s uint32
		for m != 0 && m&1 == 0 {
			m >>= 1
			s++
		}
		return s
	}
	rs, gs, bs := shift(rmask), shift(gmask), shift(bmask)
	img := desktop.NewImage(w, h)
	for y := 0; y < h; y++ {
		row := b[off+y*bpl:]
		for x := 0; x < w; x++ {
			var v uint32
			if order == 0 {
				v = binary.LittleEndian.Uint32(row[4*x:])
			} else {
				v = binary.BigEndian.Uint32(row[4*x:])
			}
			img.Pix[y*w+x] = (v&rmask)>>rs<<16 | (v&gmask)>>gs<<8 | (v&bmask)>>bs
		}
	}
	return img, nil
}

// diffPixels counts the pixels that differ.
func DiffPixels(a, b *desktop.Image) int {
	if a.W != b.W || a.H != b.H {
		return a.W * a.H
	}
	n := 0
	for i := range a.Pix {
		if a.Pix[i] != b.Pix[i] {
			n++
		}
	}
	return n
}

// maxChannelDiff returns the largest difference of one colour channel
// between a and b, and the mean absolute difference.
func MaxChannelDiff(a, b *desktop.Image) (int, float64) {
	worst, sum := 0, 0
	for i := range a.Pix {
		for s := 0; s < 24; s += 8 {
			d := int(a.Pix[i]>>s&255) - int(b.Pix[i]>>s&255)
			if d < 0 {
				d = -d
			}
			worst = max(worst, d)
			sum += d
		}
	}
	return worst, float64(sum) / float64(3*len(a.Pix))
}
