package rfb

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// PixelFormat is RFB's PIXEL_FORMAT (RFC 6143, 7.4).
type PixelFormat struct {
	BPP, Depth                      uint8
	BigEndian, TrueColour           bool
	RedMax, GreenMax, BlueMax       uint16
	RedShift, GreenShift, BlueShift uint8
}

// parsePixelFormat parses the 16 bytes of a PIXEL_FORMAT.
func parsePixelFormat(b []byte) PixelFormat {
	return PixelFormat{
		BPP: b[0], Depth: b[1], BigEndian: b[2] != 0, TrueColour: b[3] != 0,
		RedMax: binary.BigEndian.Uint16(b[4:]), GreenMax: binary.BigEndian.Uint16(b[6:]), BlueMax: binary.BigEndian.Uint16(b[8:]),
		RedShift: b[10], GreenShift: b[11], BlueShift: b[12],
	}
}

// check refuses pixel formats no decoder can handle.
func (pf PixelFormat) check() error {
	switch pf.BPP {
	case 8, 16, 32:
	default:
		return fmt.Errorf("rfb: unsupported bits per pixel %d", pf.BPP)
	}
	if pf.TrueColour {
		if pf.RedMax == 0 || pf.GreenMax == 0 || pf.BlueMax == 0 {
			return errors.New("rfb: pixel format with a zero colour maximum")
		}
		if pf.RedShift >= 32 || pf.GreenShift >= 32 || pf.BlueShift >= 32 {
			return errors.New("rfb: pixel format with a shift of 32 or more")
		}
	}
	return nil
}

// bytesPP returns the bytes per pixel.
func (pf PixelFormat) bytesPP() int { return int(pf.BPP) / 8 }

// tight reports whether Tight's TPIXEL is 3 bytes (R, G, B) for pf.
func (pf PixelFormat) tight() bool {
	return pf.TrueColour && pf.BPP == 32 && pf.Depth == 24 && pf.RedMax == 255 && pf.GreenMax == 255 && pf.BlueMax == 255
}

// cpixel says how ZRLE's CPIXEL is stored for pf: 0 when it is a whole
// PIXEL, else 3 and whether the three bytes are the most significant.
func (pf PixelFormat) cpixel() (n int, high bool) {
	if !pf.TrueColour || pf.BPP != 32 || pf.Depth > 24 {
		return 0, false
	}
	bits := uint32(pf.RedMax)<<pf.RedShift | uint32(pf.GreenMax)<<pf.GreenShift | uint32(pf.BlueMax)<<pf.BlueShift
	switch {
	case bits&0xFF000000 == 0:
		return 3, false
	case bits&0x000000FF == 0:
		return 3, true
	}
	return 0, false
}

// converter turns pixel values of one format into 0xRRGGBB.
type converter struct {
	pf       PixelFormat
	colormap []uint32 // colour-map mode
	fast     bool     // 32 bpp, 8 bits per channel
	r, g, b  []uint8  // per-channel tables when the maxima are small
}

func newConverter(pf PixelFormat, colormap []uint32) *converter {
	c := &converter{pf: pf, colormap: colormap}
	if !pf.TrueColour {
		return c
	}
	c.fast = pf.RedMax == 255 && pf.GreenMax == 255 && pf.BlueMax == 255
	table := func(m uint16) []uint8 {
		if m > 4095 {
			return nil
		}
		t := make([]uint8, int(m)+1)
		for i := range t {
			t[i] = uint8((i*255 + int(m)/2) / int(m))
		}
		return t
	}
	if !c.fast {
		c.r, c.g, c.b = table(pf.RedMax), table(pf.GreenMax), table(pf.BlueMax)
	}
	return c
}

// rgb converts one pixel value.
func (c *converter) rgb(v uint32) uint32 {
	pf := &c.pf
	if !pf.TrueColour {
		if int(v) < len(c.colormap) {
			return c.colormap[v]
		}
		return 0
	}
	r := v >> pf.RedShift & uint32(pf.RedMax)
	g := v >> pf.GreenShift & uint32(pf.GreenMax)
	b := v >> pf.BlueShift & uint32(pf.BlueMax)
	if c.fast {
		return r<<16 | g<<8 | b
	}
	return uint32(scale(c.r, r, pf.RedMax))<<16 | uint32(scale(c.g, g, pf.GreenMax))<<8 | uint32(scale(c.b, b, pf.BlueMax))
}

func scale(t []uint8, v uint32, m uint16) uint8 {
	if t != nil {
		return t[v]
	}
	return uint8((uint64(v)*255 + uint64(m)/2) / uint64(m))
}

// pixel reads one PIXEL value from b (at least bytesPP long).
func (pf PixelFormat) pixel(b []byte) uint32 {
	switch pf.BPP {
	case 8:
		return uint32(b[0])
	case 16:
		if pf.BigEndian {
			return uint32(binary.BigEndian.Uint16(b))
		}
		return uint32(binary.LittleEndian.Uint16(b))
	}
	if pf.BigEndian {
		return binary.BigEndian.Uint32(b)
	}
	return binary.LittleEndian.Uint32(b)
}

// putPixel writes v as a PIXEL of pf into b (used by tests and the
// benchmark to encode frames).
func (pf PixelFormat) putPixel(b []byte, v uint32) {
	switch pf.BPP {
	case 8:
		b[0] = byte(v)
	case 16:
		if pf.BigEndian {
			binary.BigEndian.PutUint16(b, uint16(v))
		} else {
			binary.LittleEndian.PutUint16(b, uint16(v))
		}
	default:
		if pf.BigEndian {
			binary.BigEndian.PutUint32(b, v)
		} else {
			binary.LittleEndian.PutUint32(b, v)
		}
	}
}

// fromRGB returns the pixel value of pf closest to 0xRRGGBB (true colour).
func (pf PixelFormat) fromRGB(c uint32) uint32 {
	ch := func(v uint32, m uint16, s uint8) uint32 { return (v*uint32(m) + 127) / 255 << s }
	return ch(c>>16&255, pf.RedMax, pf.RedShift) | ch(c>>8&255, pf.GreenMax, pf.GreenShift) | ch(c&255, pf.BlueMax, pf.BlueShift)
}

func (pf PixelFormat) bytes() []byte {
	b := make([]byte, 16)
	b[0], b[1] = pf.BPP, pf.Depth
	if pf.BigEndian {
		b[2] = 1
	}
	if pf.TrueColour {
		b[3] = 1
	}
	binary.BigEndian.PutUint16(b[4:], pf.RedMax)
	binary.BigEndian.PutUint16(b[6:], pf.GreenMax)
	binary.BigEndian.PutUint16(b[8:], pf.BlueMax)
	b[10], b[11], b[12] = pf.RedShift, pf.GreenShift, pf.BlueShift
	return b
}
