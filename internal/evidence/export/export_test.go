package export

import (
	"bytes"
	"image"
	"image/draw"
	"image/gif"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/reel-rec/reel/internal/asciicast"
)

// golden returns a vt test recording and the screen tmux showed at its
// end (the last section of its .golden file): the known answer, from
// another emulator.
func golden(t *testing.T, name string) ([]byte, []string) {
	t.Helper()
	cast, err := os.ReadFile("../../vt/testdata/" + name + ".cast")
	if err != nil {
		t.Fatal(err)
	}
	g, err := os.ReadFile("../../vt/testdata/" + name + ".golden")
	if err != nil {
		t.Fatal(err)
	}
	sections := strings.Split(string(g), "== after ")
	last := sections[len(sections)-1]
	_, body, _ := strings.Cut(last, "\n")
	lines := strings.Split(strings.TrimSuffix(body, "\n"), "\n")
	for len(lines) > 0 && strings.TrimRight(lines[len(lines)-1], " ") == "" {
		lines = lines[:len(lines)-1]
	}
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, " ")
	}
	return cast, lines
}

func TestTextIsTheScreenAtTheEnd(t *testing.T) {
	for _, name := range []string{"bash", "top", "vim"} {
		t.Run(name, func(t *testing.T) {
			cast, want := golden(t, name)
			var calls int
			s, err := Text(bytes.NewReader(cast), int64(len(cast)), All, func(done, total int64) {
				calls++
				if total != int64(len(cast)) || done > total {
					t.Errorf("progress %d of %d", done, total)
				}
			})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, s.Lines); diff != "" {
				t.Errorf("screen at the end (-tmux +export):\n%s", diff)
			}
			if calls == 0 {
				t.Error("no progress reported")
			}
			var out bytes.Buffer
			WriteText(&out, s)
			if len(want) > 0 && !strings.HasSuffix(out.String(), strings.Join(want, "\n")+"\n") {
				t.Errorf("text does not end with the screen")
			}
			if strings.Contains(out.String(), "\x1b") {
				t.Error("text holds escape sequences")
			}
		})
	}
}

func TestTextScrollback(t *testing.T) {
	rec := `{"version":2,"width":20,"height":3}
[0.1,"o","one\r\ntwo\r\n"]
[1.0,"o","three\r\nfour\r\n"]
[2.0,"o","a line that wraps around\r\n"]
[3.0,"o","\u001b[H\u001b[2Jlast"]
[9.0,"o","after the end"]
`
	s, err := Text(strings.NewReader(rec), 0, Range{From: 0.5, To: 5}, nil)
	if err != nil {
		t.Fatal(err)
	}
	// "one" and "two" left the screen after From, but were written at
	// 0.1, before it.
	if diff := cmp.Diff([]string{"three", "four", "a line that wraps around", ""}, s.Scrolled); diff != "" {
		t.Errorf("scrolled (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"last"}, s.Lines); diff != "" {
		t.Errorf("screen at 5s (-want +got):\n%s", diff)
	}
}

// composite plays the GIF's frames onto a canvas, as a viewer shows it
// (every frame is drawn over the last: DisposalNone), and returns the
// canvas after the last frame.
func composite(t *testing.T, g *gif.GIF) *image.Paletted {
	t.Helper()
	canvas := image.NewPaletted(image.Rect(0, 0, g.Config.Width, g.Config.Height), g.Image[0].Palette)
	for i, fr := range g.Image {
		if g.Disposal[i] != gif.DisposalNone {
			t.Fatalf("frame %d: disposal %d", i, g.Disposal[i])
		}
		draw.Draw(canvas, fr.Bounds(), fr, fr.Bounds().Min, draw.Src)
	}
	return canvas
}

func TestGIFLastFrameShowsTheScreen(t *testing.T) {
	for _, name := range []string{"bash", "top", "vim"} {
		t.Run(name, func(t *testing.T) {
			cast, want := golden(t, name)
			dec := asciicast.NewDecoder(bytes.NewReader(cast))
			h, _ := dec.Header()
			var buf bytes.Buffer
			if err := GIF(&buf, bytes.NewReader(cast), GIFOptions{Range: All}); err != nil {
				t.Fatal(err)
			}
			g, err := gif.DecodeAll(&buf)
			if err != nil {
				t.Fatalf("image/gif cannot decode it: %v", err)
			}
			if len(g.Image) < 2 {
				t.Fatalf("%d frames", len(g.Image))
			}
			got := composite(t, g)
			exp, err := RenderScreen(want, h.Width, h.Height)
			if err != nil {
				t.Fatal(err)
			}
			if got.Bounds() != exp.Bounds() {
				t.Fatalf("last frame %v, the screen rendered %v", got.Bounds(), exp.Bounds())
			}
			cw, ch, _ := CellSize()
			bad := 0
			for y := range h.Height {
				for x := range h.Width {
					cell := image.Rect(x*cw, y*ch, (x+1)*cw, (y+1)*ch)
					if !samePixels(got, exp, cell) {
						if bad < 5 {
							row := ""
							if y < len(want) {
								row = want[y]
							}
							t.Errorf("cell (%d,%d) differs from the rendering of the expected text (row %q)", x, y, row)
						}
						bad++
					}
				}
			}
			if bad > 0 {
				t.Errorf("%d cells differ", bad)
			}
			// And it shows text at all: some foreground pixels.
			if len(want) > 0 && !hasInk(got) {
				t.Error("the last frame is blank")
			}
		})
	}
}

func samePixels(a, b *image.Paletted, r image.Rectangle) bool {
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			if a.ColorIndexAt(x, y) != b.ColorIndexAt(x, y) {
				return false
			}
		}
	}
	return true
}

func hasInk(img *image.Paletted) bool {
	for _, p := range img.Pix {
		if p > 8 {
			return true
		}
	}
	return false
}

// TestRenderScreenDiffers makes sure the comparison above can fail: a
// different text renders differently.
func TestRenderScreenDiffers(t *testing.T) {
	a, _ := RenderScreen([]string{"hello, world"}, 20, 2)
	b, _ := RenderScreen([]string{"hello, w0rld"}, 20, 2)
	if samePixels(a, b, a.Bounds()) {
		t.Fatal("two texts render the same")
	}
}

func TestCastPart(t *testing.T) {
	rec := `{"version":2,"width":80,"height":24,"timestamp":1000,"duration":9,"sshUser":"alice"}
[0.5,"o","a"]
[1.0,"r","100x30"]
[2.5,"o","b"]
[3.0,"o","c"]
[4.5,"o","d"]
`
	var out bytes.Buffer
	if err := Cast(&out, strings.NewReader(rec), Range{From: 2, To: 4}); err != nil {
		t.Fatal(err)
	}
	want := `{"version":2,"width":100,"height":30,"timestamp":1002,"srcNode":"","srcNodeID":"","env":null,"sshUser":"alice","localUser":"","connectionID":""}
[0.5,"o","b"]
[1,"o","c"]
`
	if diff := cmp.Diff(want, out.String()); diff != "" {
		t.Errorf("part (-want +got):\n%s", diff)
	}
}
