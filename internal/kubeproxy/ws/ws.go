// Package ws follows the WebSocket frames of a Kubernetes remote command
// stream (kubectl exec / attach over v5.channel.k8s.io, v4 and older
// channel.k8s.io) as the bytes pass through a proxy, without changing or
// holding them back: a Parser is fed each chunk the proxy forwards and
// reports the payload of every data message with its channel.
//
// It copes with what a relay sees: frames split across reads at any byte,
// several frames in one read, messages fragmented into several frames, and
// control frames (ping, pong, close) between the fragments. It does not
// handle WebSocket extensions (the proxy removes Sec-WebSocket-Extensions
// from the request, so none are negotiated) and reports a frame with RSV
// bits as an error.
package ws

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// The channel subprotocols a Parser understands: each binary message
// starts with a channel byte. The base64 variants are not among them.
const (
	ProtocolV5 = "v5.channel.k8s.io"
	ProtocolV4 = "v4.channel.k8s.io"
	ProtocolV1 = "channel.k8s.io"
)

// Supported reports whether a negotiated subprotocol is one Parser reads.
func Supported(protocol string) bool {
	switch protocol {
	case ProtocolV5, ProtocolV4, ProtocolV1, "v2.channel.k8s.io", "v3.channel.k8s.io":
		return true
	}
	return false
}

// Channels of the remote command protocol.
const (
	Stdin  = 0
	Stdout = 1
	Stderr = 2
	Error  = 3
	Resize = 4
	// Close (v5) carries, from the client, the number of a channel it
	// closes (stdin).
	Close = 255
)

// Opcodes.
const (
	opContinuation = 0x0
	opText         = 0x1
	opBinary       = 0x2
	opClose        = 0x8
	opPing         = 0x9
	opPong         = 0xA
)

// A Parser follows one direction of a WebSocket connection.
type Parser struct {
	// Masked is true for frames from the client, which must be masked;
	// false for frames from the server, which must not be.
	Masked bool
	// Data receives the payload of data messages, channel byte removed,
	// unmasked, in pieces as they arrive; last is true for the last piece
	// of a message (which may be empty). p is valid only during the call.
	// A non-nil error stops the parser and is returned by Write.
	Data func(channel byte, p []byte, last bool) error
	// Closed, if set, is called when a close frame has passed.
	Closed func()

	hdr     [14]byte
	hn      int    // header bytes collected
	left    uint64 // payload bytes left in the current frame
	inFrame bool   // the header is complete and payload follows
	mask    [4]byte
	mpos    int
	opcode  byte
	fin     bool

	inMsg   bool // a data message is in progress (fragmented)
	chanSet bool // the message's channel byte has been seen
	channel byte

	ctrl    [125]byte // control frame payload
	ctrlLen int

	scratch []byte
	err     error
	end     int // see LastBoundary
}

// ErrProtocol is wrapped by the errors of frames that break RFC 6455.
var ErrProtocol = errors.New("websocket: protocol error")

// AtMessageBoundary reports whether the bytes fed so far end between
// frames and outside a fragmented message: a whole new message may be
// inserted into the stream here.
func (p *Parser) AtMessageBoundary() bool {
	return p.err == nil && p.hn == 0 && !p.inFrame && !p.inMsg
}

// LastBoundary returns the offset in the bytes of the last Write just
// after the last message boundary (AtMessageBoundary) in them, or -1 when
// there was none: a relay that forwards only up to there can always
// insert a message of its own.
func (p *Parser) LastBoundary() int { return p.end }

// Write feeds the next bytes of the stream. After an error the Parser is
// done and returns the same error.
func (p *Parser) Write(b []byte) error {
	p.end = -1
	total := len(b)
	for len(b) > 0 && p.err == nil {
		if !p.inFrame {
			b = p.readHeader(b)
		} else {
			n := len(b)
			if uint64(n) > p.left {
				n = int(p.left)
			}
			p.payload(b[:n])
			b = b[n:]
			p.left -= uint64(n)
			if p.left == 0 && p.err == nil {
				p.endFrame()
			}
		}
		if p.AtMessageBoundary() {
			p.end = total - len(b)
		}
	}
	return p.err
}

func (p *Parser) fail(format string, args ...any) {
	if p.err == nil {
		p.err = fmt.Errorf("%w: %s", ErrProtocol, fmt.Sprintf(format, args...))
	}
}

// readHeader collects header bytes and returns what is left of b.
func (p *Parser) readHeader(b []byte) []byte {
	need := 2
	if p.hn >= 2 {
		need = headerLen(p.hdr[0:2])
	}
	for p.hn < need && len(b) > 0 {
		p.hdr[p.hn] = b[0]
		p.hn++
		b = b[1:]
		if p.hn == 2 {
			need = headerLen(p.hdr[0:2])
		}
	}
	if p.hn < need {
		return b
	}
	h := p.hdr[:need]
	p.hn = 0
	p.fin = h[0]&0x80 != 0
	if h[0]&0x70 != 0 {
		p.fail("frame with RSV bits %#x (no extension was negotiated)", h[0]&0x70)
		return b
	}
	p.opcode = h[0] & 0x0f
	masked := h[1]&0x80 != 0
	if masked != p.Masked {
		if p.Masked {
			p.fail("unmasked frame from the client")
		} else {
			p.fail("masked frame from the server")
		}
		return b
	}
	var length uint64
	off := 2
	switch l := h[1] & 0x7f; l {
	case 126:
		length = uint64(binary.BigEndian.Uint16(h[2:4]))
		off = 4
	case 127:
		length = binary.BigEndian.Uint64(h[2:10])
		off = 10
		if length>>63 != 0 {
			p.fail("frame length %d has its top bit set", length)
			return b
		}
	default:
		length = uint64(l)
	}
	if masked {
		copy(p.mask[:], h[off:off+4])
	}
	p.mpos = 0
	switch p.opcode {
	case opClose, opPing, opPong:
		if !p.fin || length > 125 {
			p.fail("control frame %#x: fragmented or longer than 125 bytes", p.opcode)
			return b
		}
		p.ctrlLen = 0
	case opText, opBinary:
		if p.inMsg {
			p.fail("new data message inside a fragmented one")
			return b
		}
		p.inMsg, p.chanSet = true, false
	case opContinuation:
		if !p.inMsg {
			p.fail("continuation frame outside a message")
			return b
		}
	default:
		p.fail("unknown opcode %#x", p.opcode)
		return b
	}
	p.left = length
	p.inFrame = true
	if length == 0 {
		p.endFrame()
	}
	return b
}

// headerLen returns the length of the frame header that starts with b0b1.
func headerLen(b []byte) int {
	n := 2
	switch b[1] & 0x7f {
	case 126:
		n += 2
	case 127:
		n += 8
	}
	if b[1]&0x80 != 0 {
		n += 4
	}
	return n
}

// payload handles the next bytes of the current frame's payload.
func (p *Parser) payload(b []byte) {
	if p.Masked {
		if cap(p.scratch) < len(b) {
			p.scratch = make([]byte, len(b), max(len(b), 4096))
		}
		u := p.scratch[:len(b)]
		for i, c := range b {
			u[i] = c ^ p.mask[p.mpos&3]
			p.mpos++
		}
		b = u
	}
	switch p.opcode {
	case opClose, opPing, opPong:
		p.ctrlLen += copy(p.ctrl[p.ctrlLen:], b)
		return
	}
	if !p.chanSet && len(b) > 0 {
		p.channel, p.chanSet = b[0], true
		b = b[1:]
	}
	if len(b) > 0 && p.Data != nil {
		if err := p.Data(p.channel, b, false); err != nil {
			p.err = err
		}
	}
}

// endFrame finishes the current frame.
func (p *Parser) endFrame() {
	p.inFrame = false
	switch p.opcode {
	case opClose:
		if p.Closed != nil {
			p.Closed()
		}
		return
	case opPing, opPong:
		return
	}
	if !p.fin {
		return
	}
	p.inMsg = false
	if p.chanSet && p.Data != nil {
		if err := p.Data(p.channel, nil, true); err != nil {
			p.err = err
		}
	}
}

// AppendMessage appends to dst one unmasked binary frame (a server's)
// carrying payload on channel.
func AppendMessage(dst []byte, channel byte, payload []byte) []byte {
	n := len(payload) + 1
	dst = append(dst, 0x80|opBinary)
	switch {
	case n < 126:
		dst = append(dst, byte(n))
	case n <= 0xffff:
		dst = append(dst, 126, byte(n>>8), byte(n))
	default:
		dst = append(dst, 127)
		dst = binary.BigEndian.AppendUint64(dst, uint64(n))
	}
	dst = append(dst, channel)
	return append(dst, payload...)
}

// AppendClose appends an unmasked close frame with status code 1000
// (normal closure) and no reason.
func AppendClose(dst []byte) []byte {
	return append(dst, 0x80|opClose, 2, 0x03, 0xe8)
}
