// Package desktop is reel's desktop recording format: what `reel vnc`
// records and `reel export` and the web UI play back. See
// docs/desktop-format.md for the byte-level description.
//
// A recording is a sequence of lines. Line 1 is a JSON header; every other
// line is one record: a changed region of the screen (losslessly
// compressed with DEFLATE), a copy of a region, a keyframe (the whole
// screen), a size change, the pointer, the cursor shape, and, when a rule
// asks for them, keys and clipboard text. Inside a record the bytes 0x0A
// and 0x1B are escaped, so a newline ends a record and nothing else: a
// recording cut at its last newline (what the stores do after a crash) is
// valid up to its last complete record. Every record carries a CRC-32C.
//
// Keyframes come periodically, so a player reaches any moment by starting
// at the keyframe before it; Scan builds the table of keyframes and Stat
// reads the header and duration without reading the whole recording.
//
// The package has no dependency beyond the standard library, so the
// recorder can check uploads with it.
package desktop

import (
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"time"
)

// Format and Version are the header's "format" and "version" values.
const (
	Format  = "reel-desktop"
	Version = 1
)

// ContentType is the media type of a desktop recording: senders announce
// it on the upload so the recorder checks and stores the body as a
// desktop recording.
const ContentType = "application/x-reel-desktop"

// Record types: the first byte of a record.
const (
	TypeKeyframe  = 'F' // the whole screen; replay can start here
	TypeRegion    = 'R' // new pixels of a rectangle
	TypeCopy      = 'C' // a rectangle copied from elsewhere on the screen
	TypeResize    = 'Z' // the screen's size changed; contents are black until drawn
	TypePointer   = 'P' // the pointer's position and buttons
	TypeCursor    = 'A' // the cursor's shape (RGBA) and hotspot
	TypeKey       = 'K' // a key pressed or released (only when a rule asks)
	TypeClipboard = 'T' // clipboard text (only when a rule asks)
)

// Pixel encodings: the first byte of a pixel block.
const (
	// PixDeflateRGB is raw DEFLATE (RFC 1951) of the pixels, row-major,
	// three bytes each: red, green, blue.
	PixDeflateRGB = 0
	// PixDeflateRGBA is raw DEFLATE of four bytes per pixel: red, green,
	// blue, alpha. Used for cursors.
	PixDeflateRGBA = 1
)

// Limits a reader enforces, so that a hostile or corrupt file cannot make
// it allocate without bound.
const (
	MaxSide   = 16384               // widest and tallest screen
	MaxPixels = 7680 * 4320         // largest screen area (8K)
	MaxCursor = 256                 // widest and tallest cursor
	MaxText   = 1 << 20             // longest clipboard text record
	MaxLine   = 3*MaxPixels + 1<<20 // longest record line, escaped
)

// Header is line 1 of a recording.
type Header struct {
	Format  string `json:"format"`  // Format
	Version int    `json:"version"` // Version
	// Width and Height are the screen size when the recording began.
	Width  int `json:"width"`
	Height int `json:"height"`
	// Timestamp is the start in Unix seconds, as in asciicast; Start
	// is the same instant with nanoseconds. Record times count from it.
	Timestamp int64     `json:"timestamp"`
	Start     time.Time `json:"start"`
	// Protocol is the remote-desktop protocol recorded: "rfb".
	Protocol string `json:"protocol,omitempty"`
	// User is the authenticated user; Source the client's address.
	User   string `json:"user,omitempty"`
	Source string `json:"source,omitempty"`
	// Upstream is the desktop's address, Host its name in the policy.
	Upstream string `json:"upstream,omitempty"`
	Host     string `json:"host,omitempty"`
	// DesktopName is the name the server gave its desktop.
	DesktopName string `json:"desktopName,omitempty"`
	// ConnectionID identifies the session in reel's logs.
	ConnectionID string `json:"connectionID,omitempty"`
	// Keys and Clipboard say whether key presses and clipboard text are
	// recorded (a rule opted in).
	Keys      bool `json:"keys,omitempty"`
	Clipboard bool `json:"clipboard,omitempty"`
	// SrcNode, SrcNodeID and SrcNodeTags name the client's tailnet node
	// when reel vnc runs on a tailnet (its name, stable node ID and ACL
	// tags, from WhoIs), as Tailscale's asciicast headers do.
	SrcNode     string   `json:"srcNode,omitempty"`
	SrcNodeID   string   `json:"srcNodeID,omitempty"`
	SrcNodeTags []string `json:"srcNodeTags,omitempty"`
}

// check reports a header that is not one of ours.
func (h *Header) check() error {
	switch {
	case h.Format != Format:
		return fmt.Errorf("desktop: not a desktop recording (format %q)", h.Format)
	case h.Version != Version:
		return fmt.Errorf("desktop: unsupported version %d", h.Version)
	case h.Width < 0 || h.Height < 0 || h.Width > MaxSide || h.Height > MaxSide:
		return fmt.Errorf("desktop: bad screen size %dx%d", h.Width, h.Height)
	}
	return nil
}

// ParseHeader parses line 1 (without its newline).
func ParseHeader(line []byte) (Header, error) {
	var h Header
	if err := json.Unmarshal(line, &h); err != nil {
		return h, fmt.Errorf("desktop: header: %w", err)
	}
	return h, h.check()
}

// Escaping inside a record line.
const (
	esc     = 0x1B
	escNL   = 0x01 // esc escNL stands for 0x0A
	escEsc  = 0x02 // esc escEsc stands for 0x1B
	newline = 0x0A
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// appendEscaped appends p to dst with 0x0A and 0x1B escaped.
func appendEscaped(dst, p []byte) []byte {
	for len(p) > 0 {
		i := 0
		for i < len(p) && p[i] != newline && p[i] != esc {
			i++
		}
		dst = append(dst, p[:i]...)
		if i == len(p) {
			break
		}
		if p[i] == newline {
			dst = append(dst, esc, escNL)
		} else {
			dst = append(dst, esc, escEsc)
		}
		p = p[i+1:]
	}
	return dst
}

var errBadEscape = errors.New("desktop: bad escape in record")

// unescape decodes an escaped line (without its newline) into dst.
func unescape(dst, line []byte) ([]byte, error) {
	for len(line) > 0 {
		i := 0
		for i < len(line) && line[i] != esc {
			i++
		}
		dst = append(dst, line[:i]...)
		if i == len(line) {
			break
		}
		if i+1 >= len(line) {
			return dst, errBadEscape
		}
		switch line[i+1] {
		case escNL:
			dst = append(dst, newline)
		case escEsc:
			dst = append(dst, esc)
		default:
			return dst, errBadEscape
		}
		line = line[i+2:]
	}
	return dst, nil
}

// Rect is a rectangle of the screen.
type Rect struct{ X, Y, W, H int }

// Empty reports whether r has no pixels.
func (r Rect) Empty() bool { return r.W <= 0 || r.H <= 0 }

// Union returns the smallest rectangle holding r and s.
func (r Rect) Union(s Rect) Rect {
	if r.Empty() {
		return s
	}
	if s.Empty() {
		return r
	}
	x0, y0 := min(r.X, s.X), min(r.Y, s.Y)
	x1, y1 := max(r.X+r.W, s.X+s.W), max(r.Y+r.H, s.Y+s.H)
	return Rect{x0, y0, x1 - x0, y1 - y0}
}

// In reports whether r lies inside a w×h screen.
func (r Rect) In(w, h int) bool {
	return r.X >= 0 && r.Y >= 0 && r.W >= 0 && r.H >= 0 && r.X+r.W <= w && r.Y+r.H <= h
}

// Image is a screen or part of one: W×H pixels 0xRRGGBB, row-major.
type Image struct {
	W, H int
	Pix  []uint32
}

// NewImage returns a black w×h image.
func NewImage(w, h int) *Image { return &Image{W: w, H: h, Pix: make([]uint32, w*h)} }

// Cursor is the pointer's shape: W×H pixels 0xAARRGGBB (alpha 0 is
// transparent), with the hotspot at (HotX, HotY).
type Cursor struct {
	W, H       int
	HotX, HotY int
	Pix        []uint32
}
