package export

import (
	"fmt"
	"image"
	"image/color"
	"image/gif"
	"io"
	"math"
	"sync"

	"golang.org/x/image/font"
	"golang.org/x/image/font/gofont/gomono"
	"golang.org/x/image/font/opentype"
	"golang.org/x/image/math/fixed"
	"golang.org/x/text/width"

	"github.com/reel-rec/reel/internal/vt"
)

// The GIF's look: light grey text on a near-black background, Go Mono at
// FontSize points at 72 dpi; a cell is CellW x CellH pixels.
const FontSize = 14

// palette has 16 levels from the background to the foreground, for
// anti-aliased glyphs.
var palette = func() color.Palette {
	bg := color.RGBA{0x12, 0x12, 0x12, 0xff}
	fg := color.RGBA{0xe0, 0xe0, 0xe0, 0xff}
	p := make(color.Palette, 16)
	for i := range p {
		mix := func(a, b uint8) uint8 { return uint8((int(a)*(15-i) + int(b)*i) / 15) }
		p[i] = color.RGBA{mix(bg.R, fg.R), mix(bg.G, fg.G), mix(bg.B, fg.B), 0xff}
	}
	return p
}()

// glyphs renders runes into cell-sized levels (palette indexes), once each.
type glyphs struct {
	face         font.Face
	cellW, cellH int
	ascent       int

	mu    sync.Mutex
	cache map[rune][]uint8 // cellW*cellH levels (twice as wide for wide runes)
}

var fontOnce = sync.OnceValues(func() (*glyphs, error) {
	f, err := opentype.Parse(gomono.TTF)
	if err != nil {
		return nil, err
	}
	face, err := opentype.NewFace(f, &opentype.FaceOptions{Size: FontSize, DPI: 72, Hinting: font.HintingFull})
	if err != nil {
		return nil, err
	}
	m := face.Metrics()
	adv, _ := face.GlyphAdvance('M')
	return &glyphs{
		face:   face,
		cellW:  adv.Ceil(),
		cellH:  (m.Ascent + m.Descent).Ceil(),
		ascent: m.Ascent.Ceil(),
		cache:  map[rune][]uint8{},
	}, nil
})

// CellSize returns the size in pixels of one character cell.
func CellSize() (w, h int, err error) {
	g, err := fontOnce()
	if err != nil {
		return 0, 0, err
	}
	return g.cellW, g.cellH, nil
}

// runeWidth is how many cells r takes.
func runeWidth(r rune) int {
	switch width.LookupRune(r).Kind() {
	case width.EastAsianWide, width.EastAsianFullwidth:
		return 2
	}
	return 1
}

// glyph returns r's levels, w cells wide.
func (g *glyphs) glyph(r rune, w int) []uint8 {
	g.mu.Lock()
	defer g.mu.Unlock()
	if lv, ok := g.cache[r]; ok {
		return lv
	}
	pw := g.cellW * w
	mask := image.NewAlpha(image.Rect(0, 0, pw, g.cellH))
	d := &font.Drawer{Dst: mask, Src: image.Opaque, Face: g.face, Dot: fixed.P(0, g.ascent)}
	if _, ok := g.face.GlyphAdvance(r); !ok {
		r = '?' // not in Go Mono
	}
	d.DrawString(string(r))
	lv := make([]uint8, pw*g.cellH)
	for i, a := range mask.Pix {
		lv[i] = uint8((int(a)*15 + 127) / 255)
	}
	g.cache[r] = lv
	return lv
}

// drawRow draws text into row y of img (cols cells wide), blanking the
// rest of the row.
func (g *glyphs) drawRow(img *image.Paletted, y, cols int, text string) {
	top := y * g.cellH
	for py := top; py < top+g.cellH; py++ {
		row := img.Pix[py*img.Stride : py*img.Stride+cols*g.cellW]
		clear(row)
	}
	x := 0
	for _, r := range text {
		if x >= cols {
			break
		}
		w := runeWidth(r)
		if r != ' ' {
			lv := g.glyph(r, w)
			pw := g.cellW * w
			n := min(pw, (cols-x)*g.cellW)
			for gy := range g.cellH {
				dst := img.Pix[(top+gy)*img.Stride+x*g.cellW:]
				copy(dst[:n], lv[gy*pw:gy*pw+n])
			}
		}
		x += w
	}
}

// RenderScreen draws lines (one per row, as vt.Terminal.Lines gives them)
// on a screen of cols x rows cells, as the GIF shows a screen.
func RenderScreen(lines []string, cols, rows int) (*image.Paletted, error) {
	g, err := fontOnce()
	if err != nil {
		return nil, err
	}
	img := image.NewPaletted(image.Rect(0, 0, cols*g.cellW, rows*g.cellH), palette)
	for y := range rows {
		text := ""
		if y < len(lines) {
			text = lines[y]
		}
		g.drawRow(img, y, cols, text)
	}
	return img, nil
}

// GIFOptions tune GIF.
type GIFOptions struct {
	Range
	// FPS bounds the frames per second: changes closer together are shown
	// in one frame. Zero means 10.
	FPS int
	// IdleLimit shortens pauses longer than it, in seconds; zero means 2,
	// negative keeps them.
	IdleLimit float64
	// MaxFrames bounds the frames; zero means 10000. A part that needs more
	// is an error that says to export a shorter part or fewer frames a
	// second.
	MaxFrames int
	// Size is the recording's size in bytes, for Progress.
	Size     int64
	Progress Progress
}

// GIF renders r (within opt.Range) as an animated GIF: a frame whenever the
// screen changed (at most FPS a second), each holding the rows that changed,
// and a last frame that is the screen at the end of the range.
func GIF(w io.Writer, r io.Reader, opt GIFOptions) error {
	if opt.FPS <= 0 {
		opt.FPS = 10
	}
	if opt.IdleLimit == 0 {
		opt.IdleLimit = 2
	}
	if opt.MaxFrames <= 0 {
		opt.MaxFrames = 10000
	}
	g, err := fontOnce()
	if err != nil {
		return err
	}
	step := 1 / float64(opt.FPS)
	var (
		out      gif.GIF
		shown    []string // rows on the last frame
		cols     int
		rows     int
		lastT    = math.Inf(-1) // time of the last frame
		pending  bool
		canvasW  int
		canvasH  int
		frameErr error
	)
	// snapshot adds a frame showing term's screen at time at.
	snapshot := func(term *vt.Terminal, at float64) {
		c, rw := term.Size()
		if len(out.Image) == 0 || c*g.cellW > canvasW || rw*g.cellH > canvasH {
			canvasW, canvasH = max(canvasW, c*g.cellW), max(canvasH, rw*g.cellH)
		}
		now := make([]string, rw)
		var buf []byte
		for y := range rw {
			buf = term.AppendRow(buf[:0], y)
			now[y] = string(buf)
		}
		lo, hi := -1, -1
		for y := range rw {
			if c != cols || rw != rows || y >= len(shown) || shown[y] != now[y] {
				if lo < 0 {
					lo = y
				}
				hi = y
			}
		}
		if lo < 0 && len(out.Image) > 0 {
			return
		}
		if lo < 0 {
			lo, hi = 0, rw-1
		}
		if c != cols || rw != rows {
			lo, hi = 0, rw-1 // a resize redraws everything
		}
		img := image.NewPaletted(image.Rect(0, lo*g.cellH, c*g.cellW, (hi+1)*g.cellH), palette)
		for y := lo; y <= hi; y++ {
			// drawRow works on whole-image coordinates.
			sub := &image.Paletted{Pix: img.Pix[(y-lo)*g.cellH*img.Stride:], Stride: img.Stride, Rect: image.Rect(0, 0, c*g.cellW, g.cellH), Palette: palette}
			g.drawRow(sub, 0, c, now[y])
		}
		if n := len(out.Image); n > 0 {
			gap := at - lastT
			if opt.IdleLimit > 0 {
				gap = math.Min(gap, opt.IdleLimit)
			}
			out.Delay[n-1] = max(2, int(math.Round(gap*100)))
		}
		out.Image = append(out.Image, img)
		out.Delay = append(out.Delay, 100)
		out.Disposal = append(out.Disposal, gif.DisposalNone)
		shown, cols, rows, lastT = now, c, rw, at
		if len(out.Image) >= opt.MaxFrames && frameErr == nil {
			frameErr = fmt.Errorf("export: more than %d frames: export a shorter part (--from, --to) or fewer frames per second", opt.MaxFrames)
		}
	}
	var cur *vt.Terminal
	frame := func(term *vt.Terminal, at float64) {
		cur = term
		if at-lastT >= step {
			snapshot(term, at)
			pending = false
		} else {
			pending = true
		}
	}
	rg := opt.Range
	_, s, err := replay(counting(r, opt.Size, opt.Progress), rg, func(term *vt.Terminal, at float64) {
		if rg.before(at) || frameErr != nil {
			return
		}
		frame(term, at)
	})
	if err != nil {
		return err
	}
	if frameErr != nil {
		return frameErr
	}
	if cur != nil && pending {
		snapshot(cur, s.Time)
	}
	if len(out.Image) == 0 {
		// Nothing happened in the range: one frame of the screen as it is.
		img, err := RenderScreen(s.Lines, s.Cols, s.Rows)
		if err != nil {
			return err
		}
		out.Image, out.Delay, out.Disposal = []*image.Paletted{img}, []int{100}, []byte{gif.DisposalNone}
		canvasW, canvasH = img.Bounds().Dx(), img.Bounds().Dy()
	}
	out.Config = image.Config{ColorModel: palette, Width: canvasW, Height: canvasH}
	out.Delay[len(out.Delay)-1] = 300 // the end stays a moment before the loop
	return gif.EncodeAll(w, &out)
}
