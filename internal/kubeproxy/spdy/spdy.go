// Package spdy follows the SPDY/3.1 frames of a Kubernetes remote command
// stream (kubectl exec / attach over SPDY) as the bytes pass through a
// proxy, without changing or holding them back: a Parser is fed each
// chunk the proxy forwards and reports new streams with their headers
// (the stream type: stdin, stdout, stderr, error, resize) and the payload
// of data frames.
//
// Frames may be split across reads at any byte and several may arrive in
// one read. Header blocks are zlib-compressed with one compression context
// per direction, so every header block of a direction must be decoded in
// order; the decoding is moby/spdystream's, the library kubectl and the
// kubelet speak SPDY with, under its limits on header sizes.
package spdy

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/http"

	mspdy "github.com/moby/spdystream/spdy"
)

// Control frame types (SPDY/3.1).
const (
	typeSynStream    = 1
	typeSynReply     = 2
	typeRstStream    = 3
	typeSettings     = 4
	typePing         = 6
	typeGoAway       = 7
	typeHeaders      = 8
	typeWindowUpdate = 9
)

const flagFin = 0x01

// MaxControlFrame bounds a control frame the Parser buffers whole (header
// blocks are a few hundred bytes).
const MaxControlFrame = 1 << 20

// ErrProtocol is wrapped by the errors of malformed frames.
var ErrProtocol = errors.New("spdy: protocol error")

// A Parser follows one direction of a SPDY connection.
type Parser struct {
	// Headers is set for the direction whose header blocks are decoded:
	// the client's, whose SYN_STREAM frames open the streams. The other
	// direction's header blocks are skipped (they are not needed and use
	// their own compression context).
	Headers bool
	// SynStream receives each new stream (with Headers set).
	SynStream func(id uint32, h http.Header)
	// Data receives the payload of data frames in pieces as they arrive;
	// fin is true with the last piece of a frame that ends its stream. p
	// is valid only during the call. A non-nil error stops the parser.
	Data func(id uint32, p []byte, fin bool) error
	// Reset, if set, receives the stream of each RST_STREAM frame.
	Reset func(id uint32)

	hdr     [8]byte
	hn      int
	inFrame bool
	ctrl    bool
	typ     uint16
	flags   byte
	id      uint32
	length  uint32
	left    uint32
	buf     []byte // a control frame being collected (header included)

	framer *mspdy.Framer
	feed   bytes.Reader
	err    error
	end    int // see LastBoundary
}

// AtFrameBoundary reports whether the bytes fed so far end between
// frames: a whole new frame may be inserted into the stream here.
func (p *Parser) AtFrameBoundary() bool { return p.err == nil && p.hn == 0 && !p.inFrame }

// LastBoundary returns the offset in the bytes of the last Write just
// after the last frame that ended in them, or -1 when none did: a relay
// that forwards only up to there never leaves its peer inside a frame.
func (p *Parser) LastBoundary() int { return p.end }

// Write feeds the next bytes of the stream. After an error the Parser is
// done and returns the same error.
func (p *Parser) Write(b []byte) error {
	p.end = -1
	off := 0
	for len(b) > 0 && p.err == nil {
		if !p.inFrame {
			n := copy(p.hdr[p.hn:], b)
			p.hn += n
			b = b[n:]
			off += n
			if p.hn == len(p.hdr) {
				p.startFrame()
			}
		} else {
			n := len(b)
			if uint64(n) > uint64(p.left) {
				n = int(p.left)
			}
			p.body(b[:n], p.left == uint32(n))
			b = b[n:]
			off += n
			p.left -= uint32(n)
			if p.left == 0 && p.err == nil {
				p.endFrame()
			}
		}
		if p.AtFrameBoundary() {
			p.end = off
		}
	}
	return p.err
}

func (p *Parser) fail(format string, args ...any) {
	if p.err == nil {
		p.err = fmt.Errorf("%w: %s", ErrProtocol, fmt.Sprintf(format, args...))
	}
}

func (p *Parser) startFrame() {
	h := p.hdr
	p.hn = 0
	p.ctrl = h[0]&0x80 != 0
	p.flags = h[4]
	p.length = uint32(h[5])<<16 | uint32(h[6])<<8 | uint32(h[7])
	p.left = p.length
	if p.ctrl {
		if v := binary.BigEndian.Uint16(h[0:2]) & 0x7fff; v != 3 {
			p.fail("control frame of SPDY version %d, want 3", v)
			return
		}
		p.typ = binary.BigEndian.Uint16(h[2:4])
		if p.length > MaxControlFrame {
			p.fail("control frame of %d bytes (limit %d)", p.length, MaxControlFrame)
			return
		}
		p.buf = append(p.buf[:0], h[:]...)
	} else {
		p.id = binary.BigEndian.Uint32(h[0:4]) & 0x7fffffff
		if p.id == 0 {
			p.fail("data frame on stream 0")
			return
		}
	}
	p.inFrame = true
	if p.length == 0 {
		if !p.ctrl {
			p.body(nil, true)
		}
		if p.err == nil {
			p.endFrame()
		}
	}
}

func (p *Parser) body(b []byte, last bool) {
	if p.ctrl {
		p.buf = append(p.buf, b...)
		return
	}
	if p.Data != nil && (len(b) > 0 || last && p.flags&flagFin != 0) {
		if err := p.Data(p.id, b, last && p.flags&flagFin != 0); err != nil {
			p.err = err
		}
	}
}

func (p *Parser) endFrame() {
	p.inFrame = false
	if !p.ctrl {
		return
	}
	body := p.buf[8:]
	switch p.typ {
	case typeSynStream, typeSynReply, typeHeaders:
		if p.Headers {
			p.decodeHeaders()
		}
	case typeRstStream:
		if len(body) != 8 {
			p.fail("RST_STREAM of %d bytes", len(body))
			return
		}
		if p.Reset != nil {
			p.Reset(binary.BigEndian.Uint32(body[0:4]) & 0x7fffffff)
		}
	case typeSettings, typePing, typeGoAway, typeWindowUpdate:
	default:
		// SPDY says to ignore unknown control frames.
	}
}

// decodeHeaders decodes the control frame in p.buf with the direction's
// header decompressor.
func (p *Parser) decodeHeaders() {
	if p.framer == nil {
		f, err := mspdy.NewFramerWithOptions(io.Discard, &p.feed,
			mspdy.WithMaxControlFramePayloadSize(MaxControlFrame))
		if err != nil {
			p.err = err
			return
		}
		p.framer = f
	}
	p.feed.Reset(p.buf)
	frame, err := p.framer.ReadFrame()
	if err != nil {
		p.fail("header block: %v", err)
		return
	}
	if p.feed.Len() != 0 {
		p.fail("header block: %d bytes left over", p.feed.Len())
		return
	}
	if f, ok := frame.(*mspdy.SynStreamFrame); ok && p.SynStream != nil {
		p.SynStream(uint32(f.StreamId), f.Headers)
	}
}

// AppendData appends a data frame on stream id carrying payload (at most
// 2²⁴-1 bytes), with the FIN flag if fin.
func AppendData(dst []byte, id uint32, payload []byte, fin bool) []byte {
	dst = binary.BigEndian.AppendUint32(dst, id&0x7fffffff)
	var flags byte
	if fin {
		flags = flagFin
	}
	n := len(payload)
	dst = append(dst, flags, byte(n>>16), byte(n>>8), byte(n))
	return append(dst, payload...)
}
