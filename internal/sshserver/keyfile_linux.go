package sshserver

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"

	"golang.org/x/sys/unix"
)

// Limits on the authorized keys files reel reads. A user's file is read
// at every login attempt; the central file when it changes.
const (
	maxUserKeysSize    = 1 << 20
	maxCentralKeysSize = 16 << 20
)

// errUnsafe marks a keys file refused for its type, size, owner or mode;
// wrapped with the reason.
var errUnsafe = errors.New("refused")

func unsafeFile(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errUnsafe, fmt.Sprintf(format, args...))
}

// checkOwnerMode refuses st (of path) unless it is owned by uid or root
// and nobody else may write it: sshd's StrictModes.
func checkOwnerMode(path string, st *unix.Stat_t, uid uint32) error {
	if st.Uid != uid && st.Uid != 0 {
		return unsafeFile("%s is owned by uid %d, not by uid %d or root", path, st.Uid, uid)
	}
	if st.Mode&0o022 != 0 {
		return unsafeFile("%s is writable by group or others (mode %04o)", path, st.Mode&0o7777)
	}
	return nil
}

// checkOpened checks the keys file open as fd: it must be a regular
// file, pass checkOwnerMode for uid, and hold at most max bytes.
func checkOpened(fd int, path string, uid uint32, max int64) (unix.Stat_t, error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return st, fmt.Errorf("%s: %w", path, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return st, unsafeFile("%s is not a regular file", path)
	}
	if err := checkOwnerMode(path, &st, uid); err != nil {
		return st, err
	}
	if st.Size > max {
		return st, unsafeFile("%s is larger than %d bytes", path, max)
	}
	return st, nil
}

// readOpened reads the keys file open as fd, of size bytes when checked,
// and at most max.
func readOpened(fd int, path string, size, max int64) ([]byte, error) {
	// The file may grow while it is read: read up to one byte past the
	// limit, to see it.
	buf := make([]byte, 0, min(size, max)+1)
	for {
		if len(buf) == cap(buf) {
			buf = slices.Grow(buf, int(min(int64(len(buf)), max+1-int64(len(buf)))))
		}
		n, err := unix.Read(fd, buf[len(buf):cap(buf)])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if n == 0 {
			return buf, nil
		}
		buf = buf[:len(buf)+n]
		if int64(len(buf)) > max {
			return nil, unsafeFile("%s is larger than %d bytes", path, max)
		}
	}
}

// openErr describes a failed open of a keys file or a directory above it.
func openErr(path string, err error) error {
	if errors.Is(err, unix.ELOOP) {
		return unsafeFile("%s is a symbolic link", path)
	}
	return fmt.Errorf("%s: %w", path, err) // errors.Is(ENOENT, fs.ErrNotExist)
}

// flags for opening a keys file: never block (a FIFO), never follow a
// symbolic link, never become a controlling terminal.
const keyFileFlags = unix.O_RDONLY | unix.O_NONBLOCK | unix.O_NOFOLLOW | unix.O_NOCTTY | unix.O_CLOEXEC

// readUserKeys reads u's ~/.ssh/authorized_keys with u's rights, as sshd
// does: the home directory and ~/.ssh (which may be reached through
// symbolic links) and the file (which may not be one) must each be owned
// by u or root and not writable by group or others; the file must be a
// regular file of at most maxUserKeysSize bytes.
func readUserKeys(u *localUser) (data []byte, path string, err error) {
	path = filepath.Join(u.Home, ".ssh", "authorized_keys")
	err = asUser(u, func() error {
		home, err := unix.Open(u.Home, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return openErr(u.Home, err)
		}
		defer unix.Close(home)
		if err := checkDir(home, u.Home, u.UID); err != nil {
			return err
		}
		dir := filepath.Join(u.Home, ".ssh")
		sshDir, err := unix.Openat(home, ".ssh", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return openErr(dir, err)
		}
		defer unix.Close(sshDir)
		if err := checkDir(sshDir, dir, u.UID); err != nil {
			return err
		}
		fd, err := unix.Openat(sshDir, "authorized_keys", keyFileFlags, 0)
		if err != nil {
			return openErr(path, err)
		}
		defer unix.Close(fd)
		st, err := checkOpened(fd, path, u.UID, maxUserKeysSize)
		if err != nil {
			return err
		}
		data, err = readOpened(fd, path, st.Size, maxUserKeysSize)
		return err
	})
	return data, path, err
}

func checkDir(fd int, path string, uid uint32) error {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return checkOwnerMode(path, &st, uid)
}

// asUser runs fn with u's file-system identity when reel runs as root
// and u is not root; otherwise it just runs fn. The identity (fsuid,
// fsgid and supplementary groups, which Linux keeps per thread) is set on
// a thread of its own that is never given back: the runtime ends it when
// fn's goroutine ends, so no other goroutine ever runs with it.
func asUser(u *localUser, fn func() error) error {
	if os.Geteuid() != 0 || u.UID == 0 {
		return fn()
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: see above
		if err := setFSIdentity(u); err != nil {
			errc <- err
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// setFSIdentity gives the calling thread u's identity for file access.
func setFSIdentity(u *localUser) error {
	groups := make([]int, 0, len(u.Groups)+1)
	groups = append(groups, int(u.GID))
	for _, g := range u.Groups {
		groups = append(groups, int(g))
	}
	if err := unix.Setgroups(groups); err != nil {
		return fmt.Errorf("reading as %s: setgroups: %w", u.Name, err)
	}
	// setfsuid and setfsgid always return the previous id; asking again
	// with an invalid id reads back what is in force.
	unix.Setfsgid(int(u.GID))
	if g, _ := unix.SetfsgidRetGid(-1); g != int(u.GID) {
		return fmt.Errorf("reading as %s: setfsgid(%d) did not take", u.Name, u.GID)
	}
	unix.Setfsuid(int(u.UID))
	if id, _ := unix.SetfsuidRetUid(-1); id != int(u.UID) {
		return fmt.Errorf("reading as %s: setfsuid(%d) did not take", u.Name, u.UID)
	}
	return nil
}

// openCentralKeys opens the central authorized keys file and checks it:
// it must be a regular file of at most maxCentralKeysSize bytes, owned by
// root or by the user reel runs as, not writable by group or others, in a
// directory with the same rules. The path may be a symbolic link (a
// Kubernetes ConfigMap is mounted as one): the file and directory it
// leads to are checked. It returns the open file, its status (to tell
// whether it changed) and the path it was opened by.
func openCentralKeys(path string) (fd int, st unix.Stat_t, real string, err error) {
	uid := uint32(os.Geteuid())
	real, err = filepath.EvalSymlinks(path)
	if err != nil {
		return -1, st, "", openErr(path, unwrapPathErr(err))
	}
	var dst unix.Stat_t
	dir := filepath.Dir(real)
	if err := unix.Stat(dir, &dst); err != nil {
		return -1, st, "", openErr(dir, err)
	}
	if err := checkOwnerMode(dir, &dst, uid); err != nil {
		return -1, st, "", err
	}
	fd, err = unix.Open(real, keyFileFlags, 0)
	if err != nil {
		return -1, st, "", openErr(real, err)
	}
	if st, err = checkOpened(fd, real, uid, maxCentralKeysSize); err != nil {
		unix.Close(fd)
		return -1, st, "", err
	}
	return fd, st, real, nil
}

func unwrapPathErr(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
