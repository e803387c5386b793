package recorder

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"
)

// TestBufConn: reads through bufConn return the stream byte for byte
// whatever the read sizes, report EOF, honour read deadlines while idle,
// and hold no buffer once drained.
func TestBufConn(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	bl := bufListener{ln}
	want := bytes.Repeat([]byte("0123456789abcdefghijklmnopqrstuvwxyz\n"), 20000) // ~740 KB
	go func() {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			return
		}
		defer c.Close()
		for p := want; len(p) > 0; {
			n := min(len(p), 7777)
			c.Write(p[:n])
			p = p[n:]
		}
	}()
	c, err := bl.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	bc, ok := c.(*bufConn)
	if !ok {
		t.Fatalf("Accept returned %T, want *bufConn", c)
	}
	var got bytes.Buffer
	sizes := []int{9, 1, 16384, 3, 40000, 9, 100}
	for i := 0; ; i++ {
		p := make([]byte, sizes[i%len(sizes)])
		n, err := bc.Read(p)
		got.Write(p[:n])
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(got.Bytes(), want) {
		t.Fatalf("read %d bytes, differ from the %d sent", got.Len(), len(want))
	}
	if bc.buf != nil {
		t.Error("a drained connection still holds a read-ahead buffer")
	}
}

func TestBufConnDeadlineWhileIdle(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	c, err := bufListener{ln}.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	_, err = c.Read(make([]byte, 9))
	if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
		t.Fatalf("idle read past its deadline: %v, want a timeout", err)
	}
	if c.(*bufConn).buf != nil {
		t.Error("an idle connection holds a read-ahead buffer")
	}
}
