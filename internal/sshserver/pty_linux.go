package sshserver

import (
	"fmt"
	"os"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"
)

// openPTY opens a pseudo-terminal pair. The master is returned in
// non-blocking mode, registered with Go's poller, so that reads can be
// interrupted by Close and SetReadDeadline. (creack/pty's Open leaves its
// master in blocking mode, having called Fd on it; we keep a dup of it.)
func openPTY() (master, tty *os.File, err error) {
	m, t, err := pty.Open()
	if err != nil {
		return nil, nil, fmt.Errorf("pty: %w", err)
	}
	defer m.Close()
	fd, err := unix.FcntlInt(m.Fd(), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		t.Close()
		return nil, nil, fmt.Errorf("pty: dup: %w", err)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		t.Close()
		return nil, nil, fmt.Errorf("pty: %w", err)
	}
	return os.NewFile(uintptr(fd), "/dev/ptmx"), t, nil
}

// control runs fn on f's descriptor without changing its mode.
func control(f *os.File, fn func(fd int) error) error {
	sc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	if err := sc.Control(func(fd uintptr) { ferr = fn(int(fd)) }); err != nil {
		return err
	}
	return ferr
}

// setWinsize sets the terminal size of the pty whose master is f.
func setWinsize(f *os.File, cols, rows uint32) error {
	ws := &unix.Winsize{Col: clampDim(cols), Row: clampDim(rows)}
	return control(f, func(fd int) error { return unix.IoctlSetWinsize(fd, unix.TIOCSWINSZ, ws) })
}

func clampDim(v uint32) uint16 {
	if v > 0xFFFF {
		return 0xFFFF
	}
	return uint16(v)
}

// echoOn reports whether the terminal of the pty whose master is f echoes
// what is typed. On Linux the master's termios is the terminal's. When it
// cannot tell, it answers false: input is then not recorded.
func echoOn(f *os.File) bool {
	on := false
	control(f, func(fd int) error {
		t, err := unix.IoctlGetTermios(fd, unix.TCGETS)
		if err == nil {
			on = t.Lflag&unix.ECHO != 0
		}
		return err
	})
	return on
}
