package player

import (
	"fmt"
	"os"
	"sync"
	"time"

	"golang.org/x/term"
)

// Interactive puts the terminal on in into raw mode, so single key presses
// arrive at once and unechoed, and reads them into keys. restore stops the
// reading and puts the terminal back as it was; it is safe to call more
// than once, and the caller must call it on every path (a deferred call
// runs on return and on panic).
func Interactive(in *os.File) (restore func(), keys <-chan byte, err error) {
	fd, _ := FileFd(in)
	old, err := term.MakeRaw(fd)
	if err != nil {
		return nil, nil, fmt.Errorf("terminal raw mode: %w", err)
	}
	k := startKeys(in)
	var once sync.Once
	restore = func() {
		once.Do(func() {
			k.stop()
			term.Restore(fd, old)
		})
	}
	return restore, k.keys, nil
}

// keyReader reads key presses from a terminal.
type keyReader struct {
	f     *os.File
	keys  chan byte
	quit  chan struct{}
	done  chan struct{}
	timed bool // f supports read deadlines, so a blocked Read can be ended
}

func startKeys(f *os.File) *keyReader {
	k := &keyReader{f: f, keys: make(chan byte), quit: make(chan struct{}), done: make(chan struct{})}
	k.timed = f.SetReadDeadline(time.Time{}) == nil
	go k.loop()
	return k
}

func (k *keyReader) loop() {
	defer close(k.done)
	defer close(k.keys)
	buf := make([]byte, 32)
	for {
		n, err := k.f.Read(buf)
		for _, b := range buf[:n] {
			select {
			case k.keys <- b:
			case <-k.quit:
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// stop ends the reading. Where the terminal supports read deadlines it
// waits for the reader to finish; elsewhere (a blocking stdin) the reader
// stays blocked until the next key or the end of the process, and takes
// nothing more from the channel.
func (k *keyReader) stop() {
	close(k.quit)
	if k.timed {
		k.f.SetReadDeadline(time.Now())
		<-k.done
		k.f.SetReadDeadline(time.Time{})
	}
}

// FileFd returns f's descriptor without what f.Fd does besides: Fd puts f
// into blocking mode, after which read deadlines no longer interrupt a
// Read.
func FileFd(f *os.File) (int, bool) {
	rc, err := f.SyscallConn()
	if err != nil {
		return -1, false
	}
	fd := -1
	if rc.Control(func(u uintptr) { fd = int(u) }) != nil {
		return -1, false
	}
	return fd, true
}

// IsTerminal reports whether w (a reader or writer) is a terminal, and
// returns it as a file with its descriptor.
func IsTerminal(w any) (*os.File, int, bool) {
	f, ok := w.(*os.File)
	if !ok {
		return nil, -1, false
	}
	fd, ok := FileFd(f)
	return f, fd, ok && term.IsTerminal(fd)
}

// Size returns the size of the terminal w; ok is false when w is not a
// terminal.
func Size(w any) (cols, rows int, ok bool) {
	_, fd, isTerm := IsTerminal(w)
	if !isTerm {
		return 0, 0, false
	}
	cols, rows, err := term.GetSize(fd)
	return cols, rows, err == nil
}
