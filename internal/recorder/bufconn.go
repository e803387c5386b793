package recorder

import (
	"errors"
	"io"
	"net"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// The standard library's HTTP/2 framer reads from the connection without a
// buffer: a 9-byte frame header, then the payload, two read(2) calls per
// frame. Tailscale's client sends one DATA frame per event line, so a busy
// upload costs two syscalls per line. bufConn reads ahead into a pooled
// buffer when data is waiting, and holds no buffer while the connection is
// idle: a thousand idle senders cost nothing extra.

const readAhead = 32 << 10

var readAheadBufs = sync.Pool{New: func() any { b := make([]byte, readAhead); return &b }}

// bufListener wraps accepted TCP connections in bufConn.
type bufListener struct{ net.Listener }

func (l bufListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return c, nil
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return c, nil
	}
	return &bufConn{TCPConn: tc, rc: rc}, nil
}

type bufConn struct {
	*net.TCPConn
	rc   syscall.RawConn
	buf  *[]byte // nil when empty
	r, w int     // unread bytes are (*buf)[r:w]
}

func (c *bufConn) Read(p []byte) (int, error) {
	if c.buf != nil {
		n := copy(p, (*c.buf)[c.r:c.w])
		c.r += n
		if c.r == c.w {
			c.release()
		}
		return n, nil
	}
	if len(p) >= readAhead/2 {
		return c.TCPConn.Read(p)
	}
	// Read ahead only what is already there: one non-blocking read.
	buf := readAheadBufs.Get().(*[]byte)
	var n int
	var rerr error
	err := c.rc.Read(func(fd uintptr) bool {
		n, rerr = unix.Read(int(fd), *buf)
		return true // never wait here
	})
	switch {
	case err == nil && rerr == nil && n > 0:
		c.buf, c.r, c.w = buf, 0, n
		return c.Read(p)
	case err == nil && rerr == nil && n == 0:
		readAheadBufs.Put(buf)
		return 0, io.EOF
	}
	readAheadBufs.Put(buf)
	if err == nil && (errors.Is(rerr, unix.EAGAIN) || errors.Is(rerr, unix.EINTR)) {
		// Nothing waiting: block on the caller's buffer, holding none.
		return c.TCPConn.Read(p)
	}
	if err == nil {
		err = &net.OpError{Op: "read", Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: rerr}
	}
	return 0, err
}

func (c *bufConn) release() {
	readAheadBufs.Put(c.buf)
	c.buf, c.r, c.w = nil, 0, 0
}
