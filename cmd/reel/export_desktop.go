package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	"image/png"
	"io"
	"os"
	"strings"
	"time"

	"github.com/reel-rec/reel/internal/desktop"
)

// exportDesktop exports a desktop recording to a video or a PNG.
func exportDesktop(ctx context.Context, r io.ReadSeeker, o exportOptions, env *cmdEnv) error {
	ix, err := desktop.Scan(r)
	if err != nil {
		return err
	}
	if ix.Err != nil {
		fmt.Fprintf(env.stderr, "reel export: the recording is damaged after %v (%v); exporting what comes before\n", ix.Duration, ix.Err)
	}
	if ix.Truncated {
		fmt.Fprintf(env.stderr, "reel export: the recording ends inside a record (live or interrupted); exporting up to %v\n", ix.Duration)
	}
	if o.png != "" {
		at, err := parseAt(o.frame, 0)
		if err != nil {
			return usagef("--frame: %v", err)
		}
		p, err := desktop.FrameAt(r, ix, at)
		if err != nil {
			return err
		}
		return writeOutput(o.png, func(w io.Writer) error { return png.Encode(w, toRGBA(p.Composite(), nil)) })
	}
	to := o.to
	if to < 0 || to > ix.Duration {
		to = ix.Duration
	}
	if o.from > to {
		return fmt.Errorf("--from %v is after the end of the recording (%v)", o.from, ix.Duration)
	}
	return writeOutput(o.video, func(w io.Writer) error {
		ws, ok := w.(io.WriteSeeker)
		if !ok {
			return errors.New("the video must go to a file")
		}
		return exportVideo(ctx, r, ix, o.from, to, o, ws, o.progress)
	})
}

// writeOutput writes a file through fn, removing it when fn fails.
func writeOutput(path string, fn func(io.Writer) error) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := fn(f); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	return f.Close()
}

// toRGBA converts a screen to an image.RGBA (reusing dst when it fits).
func toRGBA(img *desktop.Image, dst *image.RGBA) *image.RGBA {
	if dst == nil || dst.Rect.Dx() != img.W || dst.Rect.Dy() != img.H {
		dst = image.NewRGBA(image.Rect(0, 0, img.W, img.H))
	}
	for i, v := range img.Pix {
		p := dst.Pix[4*i:]
		p[0], p[1], p[2], p[3] = byte(v>>16), byte(v>>8), byte(v), 255
	}
	return dst
}

// exportVideo writes frames from..to at o.fps as Motion-JPEG in AVI.
func exportVideo(ctx context.Context, r io.ReadSeeker, ix *desktop.Index, from, to time.Duration, o exportOptions, w io.WriteSeeker, progress io.Writer) error {
	k, ok := ix.Before(from)
	if !ok {
		return errors.New("the recording has no frame")
	}
	if _, err := r.Seek(k.Off, io.SeekStart); err != nil {
		return err
	}
	dec, err := desktop.NewDecoderAt(r, ix.Header, k.Off)
	if err != nil {
		return err
	}
	step := time.Second / time.Duration(o.fps)
	frames := int((to-from)/step) + 1
	p := desktop.NewPlayer(ix.Header.Width, ix.Header.Height)
	aw, err := newAVIWriter(w, ix.Header.Width, ix.Header.Height, o.fps)
	if err != nil {
		return err
	}
	bar := newProgress(progress, frames)
	var next *desktop.Record
	var rgba *image.RGBA
	var jpg bytes.Buffer
	changed := true
	for i := 0; i < frames; i++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		at := from + time.Duration(i)*step
		for {
			if next == nil {
				rec, err := dec.Next()
				if err != nil {
					break // the end (damage was reported by Scan)
				}
				next = &rec
			}
			if next.T > at {
				break
			}
			if err := p.Apply(next); err != nil {
				return err
			}
			if next.Type != desktop.TypeKey && next.Type != desktop.TypeClipboard {
				changed = true
			}
			next = nil
		}
		if changed {
			img := p.Composite()
			if img.W != ix.Header.Width || img.H != ix.Header.Height {
				img = fit(img, ix.Header.Width, ix.Header.Height)
			}
			rgba = toRGBA(img, rgba)
			jpg.Reset()
			if err := jpeg.Encode(&jpg, rgba, &jpeg.Options{Quality: o.quality}); err != nil {
				return err
			}
			changed = false
		}
		if err := aw.frame(jpg.Bytes()); err != nil {
			return err
		}
		bar.set(i + 1)
	}
	bar.done()
	return aw.close()
}

// fit draws img at the top left of a w×h black image (the video's size is
// the recording's first size).
func fit(img *desktop.Image, w, h int) *desktop.Image {
	out := desktop.NewImage(w, h)
	for y := 0; y < min(h, img.H); y++ {
		copy(out.Pix[y*w:y*w+min(w, img.W)], img.Pix[y*img.W:])
	}
	return out
}

// progress draws a progress bar on a terminal line.
type progress struct {
	w     io.Writer
	total int
	last  time.Time
}

func newProgress(w io.Writer, total int) *progress { return &progress{w: w, total: total} }

func (p *progress) set(n int) {
	if p.w == nil || (time.Since(p.last) < 100*time.Millisecond && n < p.total) {
		return
	}
	p.last = time.Now()
	const width = 40
	fill := width * n / max(p.total, 1)
	fmt.Fprintf(p.w, "\rexport [%s%s] %3d%% frame %d/%d", strings.Repeat("#", fill), strings.Repeat(".", width-fill), 100*n/max(p.total, 1), n, p.total)
}

func (p *progress) done() {
	if p.w != nil {
		fmt.Fprintln(p.w)
	}
}

// aviWriter writes Motion-JPEG frames into an AVI (RIFF) file, then
// patches the sizes and writes the index at close.
type aviWriter struct {
	w             io.WriteSeeker
	width, height int
	fps           int
	moviStart     int64 // offset of the "movi" fourcc
	pos           int64
	index         []byte
	frames        int
	maxFrame      int
	err           error
}

func newAVIWriter(w io.WriteSeeker, width, height, fps int) (*aviWriter, error) {
	a := &aviWriter{w: w, width: width, height: height, fps: fps}
	a.writeHeaders()
	return a, a.err
}

func le32(b []byte, v uint32) []byte { return binary.LittleEndian.AppendUint32(b, v) }
func le16(b []byte, v uint16) []byte { return binary.LittleEndian.AppendUint16(b, v) }

// Offsets of the fields patched at close.
const (
	aviRIFFSize   = 4
	aviTotalFrame = 48  // avih dwTotalFrames
	aviMaxBuf     = 60  // avih dwSuggestedBufferSize
	aviStrhLength = 140 // strh dwLength
	aviMoviSize   = 216 // LIST movi size
)

func (a *aviWriter) writeHeaders() {
	var b []byte
	b = append(b, "RIFF"...)
	b = le32(b, 0) // patched
	b = append(b, "AVI LIST"...)
	b = le32(b, 192) // hdrl size: "hdrl" + avih(8+56) + strl list(8+116)
	b = append(b, "hdrlavih"...)
	b = le32(b, 56)
	b = le32(b, uint32(1000000/a.fps)) // microseconds per frame
	b = le32(b, 0)                     // max bytes per second
	b = le32(b, 0)                     // padding granularity
	b = le32(b, 0x10)                  // AVIF_HASINDEX
	b = le32(b, 0)                     // total frames, patched
	b = le32(b, 0)                     // initial frames
	b = le32(b, 1)                     // streams
	b = le32(b, 0)                     // suggested buffer size, patched
	b = le32(b, uint32(a.width))
	b = le32(b, uint32(a.height))
	b = append(b, make([]byte, 16)...)
	b = append(b, "LIST"...)
	b = le32(b, 116) // "strl" + strh(8+56) + strf(8+40)
	b = append(b, "strlstrh"...)
	b = le32(b, 56)
	b = append(b, "vidsMJPG"...)
	b = le32(b, 0)             // flags
	b = le16(b, 0)             // priority
	b = le16(b, 0)             // language
	b = le32(b, 0)             // initial frames
	b = le32(b, 1)             // scale
	b = le32(b, uint32(a.fps)) // rate: fps frames per scale seconds
	b = le32(b, 0)             // start
	b = le32(b, 0)             // length, patched
	b = le32(b, 0)             // suggested buffer size
	b = le32(b, 0xFFFFFFFF)    // quality: default
	b = le32(b, 0)             // sample size
	b = le16(b, 0)
	b = le16(b, 0)
	b = le16(b, uint16(a.width))
	b = le16(b, uint16(a.height))
	b = append(b, "strf"...)
	b = le32(b, 40)
	b = le32(b, 40) // BITMAPINFOHEADER size
	b = le32(b, uint32(a.width))
	b = le32(b, uint32(a.height))
	b = le16(b, 1)  // planes
	b = le16(b, 24) // bits per pixel
	b = append(b, "MJPG"...)
	b = le32(b, uint32(a.width*a.height*3))
	b = append(b, make([]byte, 16)...)
	b = append(b, "LIST"...)
	b = le32(b, 0) // movi size, patched
	a.moviStart = int64(len(b))
	b = append(b, "movi"...)
	a.write(b)
}

func (a *aviWriter) write(b []byte) {
	if a.err != nil {
		return
	}
	n, err := a.w.Write(b)
	a.pos += int64(n)
	a.err = err
}

// frame writes one JPEG as a video frame.
func (a *aviWriter) frame(jpg []byte) error {
	if int64(a.pos)+int64(len(jpg)) > 1<<32-(1<<20) {
		return errors.New("the video would exceed 4 GiB, the limit of an AVI file: export a part with --from and --to, or lower --fps or --quality")
	}
	off := a.pos - a.moviStart
	var hdr []byte
	hdr = append(hdr, "00dc"...)
	hdr = le32(hdr, uint32(len(jpg)))
	a.write(hdr)
	a.write(jpg)
	if len(jpg)%2 == 1 {
		a.write([]byte{0})
	}
	a.index = append(a.index, "00dc"...)
	a.index = le32(a.index, 0x10) // key frame
	a.index = le32(a.index, uint32(off))
	a.index = le32(a.index, uint32(len(jpg)))
	a.frames++
	a.maxFrame = max(a.maxFrame, len(jpg))
	return a.err
}

func (a *aviWriter) close() error {
	moviEnd := a.pos
	var idx []byte
	idx = append(idx, "idx1"...)
	idx = le32(idx, uint32(len(a.index)))
	a.write(append(idx, a.index...))
	end := a.pos
	patch := func(off int64, v uint32) {
		if a.err != nil {
			return
		}
		if _, err := a.w.Seek(off, io.SeekStart); err != nil {
			a.err = err
			return
		}
		a.write(le32(nil, v))
	}
	patch(aviRIFFSize, uint32(end-8))
	patch(aviTotalFrame, uint32(a.frames))
	patch(aviMaxBuf, uint32(a.maxFrame+8))
	patch(aviStrhLength, uint32(a.frames))
	patch(aviMoviSize, uint32(moviEnd-a.moviStart))
	return a.err
}
