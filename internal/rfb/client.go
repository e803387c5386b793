package rfb

import (
	"bufio"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"

	"github.com/reel-rec/reel/internal/desktop"
)

// A Client is a small RFB 3.8 client with the same decoders as the proxy:
// reel's tests and benchmark use it to drive `reel vnc` and to read a VNC
// server's screen directly.
type Client struct {
	conn net.Conn
	t    *tee
	bw   *bufio.Writer
	scr  *screen
	// Width, Height and Name are from ServerInit.
	Width, Height int
	Name          string
	// Cursor is the last cursor shape received, if any.
	Cursor *desktop.Cursor
}

// ClientConfig says how a Client logs in.
type ClientConfig struct {
	// User and Password log in with VeNCrypt (X509Plain over TLS when
	// TLS is set, else Plain, for a connection that is TLS already).
	User, Password string
	TLS            *tls.Config
	// VNCPassword logs in with VNC authentication instead; empty with no
	// User means security type None.
	VNCPassword string
	// Encodings to ask for; nil means ZRLE, Hextile, Raw, CopyRect and
	// the cursor and desktop-size pseudo-encodings.
	Encodings []int32
}

// A RefusedError is a server's refusal during the handshake, with the
// reason it gave.
type RefusedError struct{ Reason string }

func (e *RefusedError) Error() string { return "rfb: refused: " + e.Reason }

type clientSink struct{ c *Client }

func (clientSink) region(desktop.Rect)             {}
func (clientSink) copyRect(int, int, desktop.Rect) {}
func (clientSink) resize(int, int)                 {}
func (s clientSink) cursor(cur *desktop.Cursor)    { s.c.Cursor = cur }

// NewClient runs the handshake on conn.
func NewClient(conn net.Conn, cfg ClientConfig) (*Client, error) {
	c := &Client{conn: conn}
	if err := c.handshake(cfg); err != nil {
		return nil, err
	}
	encs := cfg.Encodings
	if encs == nil {
		encs = []int32{EncZRLE, EncHextile, EncRaw, EncCopyRect, EncCursor, EncDesktopSize, EncExtendedDesktopSize, EncLastRect}
	}
	msg := []byte{2, 0}
	msg = binary.BigEndian.AppendUint16(msg, uint16(len(encs)))
	for _, e := range encs {
		msg = binary.BigEndian.AppendUint32(msg, uint32(e))
	}
	if _, err := c.bw.Write(msg); err != nil {
		return nil, err
	}
	return c, c.bw.Flush()
}

func (c *Client) handshake(cfg ClientConfig) error {
	conn := c.conn
	var v [12]byte
	if _, err := io.ReadFull(conn, v[:]); err != nil {
		return err
	}
	if _, err := io.WriteString(conn, "RFB 003.008\n"); err != nil {
		return err
	}
	var n [1]byte
	if _, err := io.ReadFull(conn, n[:]); err != nil {
		return err
	}
	if n[0] == 0 {
		return &RefusedError{readReasonRaw(conn)}
	}
	types := make([]byte, n[0])
	if _, err := io.ReadFull(conn, types); err != nil {
		return err
	}
	var want byte = secNone
	switch {
	case cfg.User != "":
		want = secVeNCrypt
	case cfg.VNCPassword != "":
		want = secVNCAuth
	}
	if _, err := conn.Write([]byte{want}); err != nil {
		return err
	}
	switch want {
	case secVeNCrypt:
		var b [4]byte
		if _, err := io.ReadFull(conn, b[:2]); err != nil {
			return err
		}
		if _, err := conn.Write([]byte{0, 2}); err != nil {
			return err
		}
		if _, err := io.ReadFull(conn, b[:2]); err != nil {
			return err
		}
		if b[0] != 0 {
			return errors.New("rfb: VeNCrypt version refused")
		}
		subs := make([]byte, 4*int(b[1]))
		if _, err := io.ReadFull(conn, subs); err != nil {
			return err
		}
		sub := uint32(vencryptPlain)
		if cfg.TLS != nil {
			sub = vencryptX509Plain
		}
		if _, err := conn.Write(binary.BigEndian.AppendUint32(nil, sub)); err != nil {
			return err
		}
		if cfg.TLS != nil {
			if _, err := io.ReadFull(conn, b[:1]); err != nil {
				return err
			}
			if b[0] != 1 {
				return errors.New("rfb: VeNCrypt subtype refused")
			}
			tc := tls.Client(conn, cfg.TLS)
			if err := tc.Handshake(); err != nil {
				return err
			}
			conn = tc
		}
		msg := binary.BigEndian.AppendUint32(nil, uint32(len(cfg.User)))
		msg = binary.BigEndian.AppendUint32(msg, uint32(len(cfg.Password)))
		msg = append(append(msg, cfg.User...), cfg.Password...)
		if _, err := conn.Write(msg); err != nil {
			return err
		}
	case secVNCAuth:
		var ch [16]byte
		if _, err := io.ReadFull(conn, ch[:]); err != nil {
			return err
		}
		resp, err := vncAuthResponse(cfg.VNCPassword, ch[:])
		if err != nil {
			return err
		}
		if _, err := conn.Write(resp); err != nil {
			return err
		}
	}
	var res [4]byte
	if _, err := io.ReadFull(conn, res[:]); err != nil {
		return err
	}
	if binary.BigEndian.Uint32(res[:]) != 0 {
		return &RefusedError{readReasonRaw(conn)}
	}
	if _, err := conn.Write([]byte{1}); err != nil {
		return err
	}
	hdr := make([]byte, 24)
	if _, err := io.ReadFull(conn, hdr); err != nil {
		return err
	}
	nl := binary.BigEndian.Uint32(hdr[20:])
	if nl > maxNameLen {
		return fmt.Errorf("rfb: desktop name of %d bytes", nl)
	}
	name := make([]byte, nl)
	if _, err := io.ReadFull(conn, name); err != nil {
		return err
	}
	c.conn = conn
	c.Width, c.Height, c.Name = int(binary.BigEndian.Uint16(hdr)), int(binary.BigEndian.Uint16(hdr[2:])), string(name)
	scr, err := newScreen(c.Width, c.Height, parsePixelFormat(hdr[4:20]), DefaultMaxPixels, clientSink{c})
	if err != nil {
		return err
	}
	c.scr = scr
	c.t = newTee(conn, nil)
	c.bw = bufio.NewWriter(conn)
	return nil
}

func readReasonRaw(r io.Reader) string {
	var l [4]byte
	if _, err := io.ReadFull(r, l[:]); err != nil {
		return "(no reason)"
	}
	b := make([]byte, min(binary.BigEndian.Uint32(l[:]), 4096))
	io.ReadFull(r, b)
	return string(b)
}

// Screen returns the client's copy of the framebuffer.
func (c *Client) Screen() *desktop.Image { return c.scr.fb }

// BytesRead returns the bytes read from the server after the handshake.
func (c *Client) BytesRead() int64 { return c.t.n }

// RequestUpdate asks for the whole screen.
func (c *Client) RequestUpdate(incremental bool) error {
	msg := []byte{3, 0, 0, 0, 0, 0}
	if incremental {
		msg[1] = 1
	}
	msg = binary.BigEndian.AppendUint16(msg, uint16(c.Width))
	msg = binary.BigEndian.AppendUint16(msg, uint16(c.Height))
	c.bw.Write(msg)
	return c.bw.Flush()
}

// Pointer sends a pointer event.
func (c *Client) Pointer(x, y int, buttons uint8) error {
	msg := []byte{5, buttons}
	msg = binary.BigEndian.AppendUint16(msg, uint16(x))
	msg = binary.BigEndian.AppendUint16(msg, uint16(y))
	c.bw.Write(msg)
	return c.bw.Flush()
}

// Key sends a key event (an X keysym).
func (c *Client) Key(down bool, sym uint32) error {
	msg := []byte{4, 0, 0, 0}
	if down {
		msg[1] = 1
	}
	c.bw.Write(binary.BigEndian.AppendUint32(msg, sym))
	return c.bw.Flush()
}

// ReadMessage reads one server message, applying updates to the screen,
// and returns its type (0 for a framebuffer update).
func (c *Client) ReadMessage() (byte, error) {
	typ, err := c.t.u8()
	if err != nil {
		return 0, err
	}
	switch typ {
	case 0:
		if err := c.scr.update(c.t); err != nil {
			return typ, err
		}
		c.Width, c.Height = c.scr.fb.W, c.scr.fb.H
	case 1:
		b, err := c.t.next(5)
		if err != nil {
			return typ, err
		}
		if _, err := c.t.next(6 * int(binary.BigEndian.Uint16(b[3:]))); err != nil {
			return typ, err
		}
	case 2, 150:
	case 3:
		return typ, cutText(c.t, func([]byte) {})
	case 248:
		return typ, fence(c.t)
	default:
		return typ, fmt.Errorf("rfb: unknown server message type %d", typ)
	}
	return typ, nil
}

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }
