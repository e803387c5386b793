// Package audit keeps reel's audit log: who listed, searched, viewed,
// watched live or downloaded which recordings, who logged in or failed
// to, and every change to the UI's accounts — with when and from where.
//
// The log is JSON lines under a directory of its own in the recorder's
// state directory, one file per month (UTC), "2026-07.jsonl". It is only
// ever appended to: a line is written whole, in one write, under a lock
// that every reel process takes (the recorder and "reel user" on the same
// machine append to the same log), and Append returns only once the line
// is on stable storage (fsync; concurrent appends share one). Nothing in
// reel rewrites or deletes a line.
//
// Each line carries the SHA-256 of the line before it (Entry.Prev), so
// that an edited, inserted or deleted line breaks the chain: Verify finds
// it. A line cut short by a crash is left as it is; the next append
// starts on a new line, and readers report the damaged line and go on.
//
// The log is per recorder (its --statedir), not in the recordings' store:
// several recorders sharing one bucket each keep their own log.
package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"
	"unicode/utf8"

	"golang.org/x/sys/unix"
)

// Actions.
const (
	ActionList       = "list"        // a list of recordings
	ActionSearch     = "search"      // a screen-text search
	ActionView       = "view"        // a recording's page opened
	ActionPlay       = "play"        // a recording's data fetched for playback
	ActionLive       = "live"        // a live recording watched
	ActionDownload   = "download"    // a recording's file downloaded
	ActionEvents     = "events"      // a list of API-request events
	ActionLogin      = "login"       // a login, or an attempt (Result says)
	ActionLogout     = "logout"      // a logout
	ActionPassword   = "password"    // a user changed their own password
	ActionUserAdd    = "user-add"    // an account was created
	ActionUserPasswd = "user-passwd" // an account's password was reset
	ActionUserRemove = "user-rm"     // an account was removed
	ActionAudit      = "audit"       // an admin read the audit log

	ActionRetentionDelete = "retention-delete" // retention deleted a recording past its time (or failed to)
	ActionHoldAdd         = "hold-add"         // a legal hold was placed on a recording
	ActionHoldRemove      = "hold-rm"          // a legal hold was released
)

// Results.
const (
	ResultOK     = "ok"
	ResultDenied = "denied" // refused: no right, rate limit
	ResultFailed = "failed" // a wrong password, an error
)

// Entry is one line of the log.
type Entry struct {
	// Time is when the entry was appended; Append sets it.
	Time time.Time `json:"time"`
	// User is who acted: the viewer's identity, the account name tried
	// for a failed login, the operating-system user for the CLI.
	User string `json:"user"`
	// Auth is how User was identified: "account", "proxy", "tailnet",
	// "cli".
	Auth string `json:"auth,omitempty"`
	// From is where from: the client's address, or "cli".
	From string `json:"from,omitempty"`
	// Action is one of the Action constants.
	Action string `json:"action"`
	// Target is what was acted on: a recording's key, an account's name,
	// the search text.
	Target string `json:"target,omitempty"`
	// Args holds the rest: a list's filters, an account's role.
	Args map[string]string `json:"args,omitempty"`
	// Result is ResultOK, ResultDenied or ResultFailed.
	Result string `json:"result"`
	// Reason says why a request was denied or failed.
	Reason string `json:"reason,omitempty"`
	// Prev is the SHA-256 (hex) of the previous line of the log, "" for
	// the first; Append sets it.
	Prev string `json:"prev"`
}

// MaxField is the longest Target, Reason or Args value kept, in bytes;
// longer ones are cut (at a character boundary) and marked with "…".
const MaxField = 1024

// maxLine bounds a line readers accept; longer ones are damaged.
const maxLine = 1 << 20

// fileMode and dirMode keep the log to the recorder's user.
const (
	fileMode = 0o600
	dirMode  = 0o700
)

// Log appends to the audit log in one directory. Its methods are safe for
// concurrent use.
type Log struct {
	dir string
	now func() time.Time

	mu              sync.Mutex
	lock            *os.File          // dir/.lock, flocked around every append
	f               *os.File          // the current month's file
	old             []*os.File        // earlier months' files, closed by Close
	month           string            // f's month
	size            int64             // f's size after our last append
	last            [sha256.Size]byte // hash of the last line of the log
	hasLast         bool              // false: the log is empty
	written, synced uint64            // entries written, entries known synced
	syncMu          sync.Mutex        // one fsync at a time
	closed          bool
}

// Open opens (creating it if need be) the audit log in dir.
func Open(dir string) (*Log, error) {
	return open(dir, time.Now)
}

func open(dir string, now func() time.Time) (*Log, error) {
	if err := os.MkdirAll(dir, dirMode); err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	lock, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_RDWR|os.O_CREATE, fileMode)
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	return &Log{dir: dir, now: now, lock: lock}, nil
}

// Dir returns the log's directory.
func (l *Log) Dir() string { return l.dir }

// Append writes e to the log, with Time and Prev set, and returns once it
// is on stable storage. Long fields are cut to MaxField bytes.
func (l *Log) Append(e Entry) error {
	seq, err := l.write(e)
	if err != nil {
		return err
	}
	return l.syncTo(seq)
}

// write appends e's line under the cross-process lock and returns its
// sequence number in this process.
func (l *Log) write(e Entry) (uint64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return 0, errors.New("audit: log closed")
	}
	if err := flock(l.lock, unix.LOCK_EX); err != nil {
		return 0, fmt.Errorf("audit: lock: %w", err)
	}
	defer flock(l.lock, unix.LOCK_UN)

	e.Time = l.now().UTC()
	if err := l.openMonth(monthOf(e.Time)); err != nil {
		return 0, err
	}
	fi, err := l.f.Stat()
	if err != nil {
		return 0, fmt.Errorf("audit: %w", err)
	}
	var prefix []byte
	if fi.Size() != l.size || l.written == 0 {
		// Another process appended, or this is our first append: find the
		// log's last line again, and start on a new line if a crash left
		// the last one unfinished.
		if err := l.findLast(fi.Size()); err != nil {
			return 0, err
		}
		if fi.Size() > 0 {
			var b [1]byte
			if _, err := l.f.ReadAt(b[:], fi.Size()-1); err != nil {
				return 0, fmt.Errorf("audit: %w", err)
			}
			if b[0] != '\n' {
				prefix = []byte{'\n'}
			}
		}
	}
	e.Prev = ""
	if l.hasLast {
		e.Prev = hex.EncodeToString(l.last[:])
	}
	clip(&e)
	line, err := json.Marshal(e)
	if err != nil {
		return 0, fmt.Errorf("audit: %w", err)
	}
	buf := append(append(prefix, line...), '\n')
	n, err := l.f.Write(buf)
	l.size = fi.Size() + int64(n)
	if err != nil {
		return 0, fmt.Errorf("audit: write %s: %w", l.f.Name(), err)
	}
	l.last, l.hasLast = sha256.Sum256(line), true
	l.written++
	return l.written, nil
}

// openMonth makes month's file the current one. The previous month's
// file is synced first, so that every entry written before the switch is
// durable.
func (l *Log) openMonth(month string) error {
	if l.f != nil && l.month == month {
		return nil
	}
	f, err := os.OpenFile(filepath.Join(l.dir, month+".jsonl"), os.O_RDWR|os.O_APPEND|os.O_CREATE, fileMode)
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	if l.f != nil {
		if err := l.f.Sync(); err != nil {
			f.Close()
			return fmt.Errorf("audit: sync %s: %w", l.f.Name(), err)
		}
		l.synced = l.written
		// Kept open until Close: a concurrent syncTo may hold it.
		l.old = append(l.old, l.f)
	}
	if err := syncDir(l.dir); err != nil {
		f.Close()
		return err
	}
	l.f, l.month, l.size = f, month, -1
	return nil
}

// findLast sets l.last to the hash of the log's last complete line: in
// the current file (size bytes), or else in the newest earlier file.
func (l *Log) findLast(size int64) error {
	l.hasLast = false
	if line, ok, err := lastLine(l.f, size); err != nil {
		return fmt.Errorf("audit: %w", err)
	} else if ok {
		l.last, l.hasLast = sha256.Sum256(line), true
		return nil
	}
	months, err := listMonths(l.dir)
	if err != nil {
		return err
	}
	for i := len(months) - 1; i >= 0; i-- {
		if months[i] >= l.month {
			continue
		}
		f, err := os.Open(filepath.Join(l.dir, months[i]+".jsonl"))
		if err != nil {
			return fmt.Errorf("audit: %w", err)
		}
		fi, err := f.Stat()
		if err == nil {
			var line []byte
			var ok bool
			line, ok, err = lastLine(f, fi.Size())
			if ok {
				l.last, l.hasLast = sha256.Sum256(line), true
			}
		}
		f.Close()
		if err != nil {
			return fmt.Errorf("audit: %w", err)
		}
		if l.hasLast {
			return nil
		}
	}
	return nil
}

// lastLine returns the last complete (newline-terminated) line of the
// first size bytes of f that is an entry. Damaged lines are not part of
// the chain.
func lastLine(f io.ReaderAt, size int64) ([]byte, bool, error) {
	var out []byte
	found := false
	err := scanBackward(f, size, func(line []byte, _ int64, err error) bool {
		if err != nil || !isEntry(line) {
			return true
		}
		out, found = bytes.Clone(line), true
		return false
	})
	return out, found, err
}

// syncTo returns once entry seq (and every one before it) is on stable
// storage. Appenders that arrive while a sync runs share the next one.
func (l *Log) syncTo(seq uint64) error {
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	l.mu.Lock()
	if l.synced >= seq {
		l.mu.Unlock()
		return nil
	}
	f, target := l.f, l.written
	l.mu.Unlock()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("audit: sync %s: %w", f.Name(), err)
	}
	l.mu.Lock()
	l.synced = max(l.synced, target)
	l.mu.Unlock()
	return nil
}

// Close closes the log's files.
func (l *Log) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	var errs []error
	for _, f := range append(l.old, l.f) {
		if f != nil {
			errs = append(errs, f.Close())
		}
	}
	errs = append(errs, l.lock.Close())
	return errors.Join(errs...)
}

// clip cuts e's free-form fields to MaxField bytes.
func clip(e *Entry) {
	e.Target = clipString(e.Target)
	e.Reason = clipString(e.Reason)
	e.User = clipString(e.User)
	e.From = clipString(e.From)
	if len(e.Args) > 0 {
		args := make(map[string]string, len(e.Args))
		for k, v := range e.Args {
			args[clipString(k)] = clipString(v)
		}
		e.Args = args
	}
}

func clipString(s string) string {
	if len(s) <= MaxField {
		return s
	}
	cut := MaxField - len("…")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

func monthOf(t time.Time) string { return t.UTC().Format("2006-01") }

func flock(f *os.File, how int) error {
	for {
		err := unix.Flock(int(f.Fd()), how)
		if err != unix.EINTR {
			return err
		}
	}
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("audit: sync %s: %w", dir, err)
	}
	return nil
}
