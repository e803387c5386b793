package rfb

import (
	"bytes"
	"context"
	"image"
	"image/color"
	"image/jpeg"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

func TestUserFile(t *testing.T) {
	dir := t.TempDir()
	bc, _ := bcrypt.GenerateFromPassword([]byte("b-pass"), bcrypt.MinCost)
	p := filepath.Join(dir, "users")
	content := "# comment\n\nbob:" + string(bc) + "\nann:" + HashArgon2id("a-pass", []byte("0123456789abcdef")) + "\n"
	os.WriteFile(p, []byte(content), 0o600)
	f := &UserFile{Path: p}
	ctx := context.Background()
	for _, tc := range []struct {
		user, pass string
		ok         bool
	}{
		{"bob", "b-pass", true}, {"bob", "a-pass", false}, {"ann", "a-pass", true}, {"ann", "A-pass", false}, {"eve", "b-pass", false}, {"", "", false},
	} {
		if err := f.Authenticate(ctx, tc.user, tc.pass); (err == nil) != tc.ok {
			t.Errorf("%s/%s: %v", tc.user, tc.pass, err)
		}
	}
	// The file is read again when it changes.
	os.WriteFile(p, []byte("ann:"+HashArgon2id("new", []byte("saltsaltsaltsalt"))+"\n"), 0o600)
	fi, _ := os.Stat(p)
	os.Chtimes(p, fi.ModTime().Add(time.Second), fi.ModTime().Add(time.Second))
	if f.Authenticate(ctx, "ann", "new") != nil || f.Authenticate(ctx, "bob", "b-pass") == nil {
		t.Error("changed users file not picked up")
	}
	for _, bad := range []string{"nocolon\n", "x:plain\n", "x:$argon2id$v=19$m=0,t=1,p=1$c2FsdA$aGFzaA\n", "a:" + string(bc) + "\na:" + string(bc) + "\n"} {
		os.WriteFile(p, []byte(bad), 0o600)
		if _, err := ReadUserFile(p); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// Only 8 password characters count in VNC authentication. (That the
// response is right is shown by logging in to the real Xvnc in the
// end-to-end tests.)
func TestVNCAuthResponse(t *testing.T) {
	ch := []byte("0123456789abcdef")
	a, _ := vncAuthResponse("password", ch)
	b, _ := vncAuthResponse("password-longer-than-8", ch)
	c, _ := vncAuthResponse("passwore", ch)
	if !bytes.Equal(a, b) {
		t.Error("characters after the 8th change the response")
	}
	if bytes.Equal(a, c) {
		t.Error("the 8th character does not change the response")
	}
}

// A Tight JPEG rectangle decodes to the picture within JPEG's loss; one
// whose JPEG claims another size is refused before decoding.
func TestTightJPEG(t *testing.T) {
	img := image.NewRGBA(image.Rect(0, 0, 24, 16))
	for y := 0; y < 16; y++ {
		for x := 0; x < 24; x++ {
			img.Set(x, y, color.RGBA{uint8(x * 10), uint8(y * 15), 128, 255})
		}
	}
	var jb bytes.Buffer
	jpeg.Encode(&jb, img, &jpeg.Options{Quality: 95})
	msg := func(w, h int) []byte {
		b := append(rect(4, 2, w, h, EncTight), tightJPEG<<4)
		n := jb.Len()
		b = append(b, byte(n&127|128), byte(n>>7&127|128), byte(n>>14))
		return update(append(b, jb.Bytes()...))
	}
	s, _ := newScreen(32, 32, pfRGB888, 64*64, &countSink{})
	tr := newTee(bytes.NewReader(msg(24, 16)), nil)
	tr.u8()
	if err := s.update(tr); err != nil {
		t.Fatal(err)
	}
	for y := 0; y < 16; y++ {
		for x := 0; x < 24; x++ {
			got := s.fb.Pix[(y+2)*32+x+4]
			want := []int{x * 10, y * 15, 128}
			for i, sh := range []int{16, 8, 0} {
				if d := int(got>>sh&255) - want[i]; d > 12 || d < -12 {
					t.Fatalf("pixel %d,%d = %06x, want about %v", x, y, got, want)
				}
			}
		}
	}
	tr = newTee(bytes.NewReader(msg(8, 8)), nil)
	tr.u8()
	if err := s.update(tr); err == nil || !strings.Contains(err.Error(), "JPEG of 24x16") {
		t.Errorf("mismatched JPEG: %v", err)
	}
}
