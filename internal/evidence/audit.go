package evidence

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Audit actions this package writes.
const (
	AuditRetentionDelete = "retention-delete"
	AuditHoldAdd         = "hold-add"
	AuditHoldRemove      = "hold-rm"
)

// AuditEntry is one line of the audit trail. Its fields are those of
// internal/audit's Entry, so that the lines can go to that log.
type AuditEntry struct {
	Time   time.Time         `json:"time"`
	User   string            `json:"user"`
	Auth   string            `json:"auth,omitempty"`
	From   string            `json:"from,omitempty"`
	Action string            `json:"action"`
	Target string            `json:"target,omitempty"`
	Args   map[string]string `json:"args,omitempty"`
	Result string            `json:"result"` // "ok", "failed", "denied"
	Reason string            `json:"reason,omitempty"`
	Prev   string            `json:"prev"` // SHA-256 (hex) of the previous line
}

// Auditor records what retention and holds do. AuditLog is one; the
// recorder's audit log can be another.
type Auditor interface {
	Audit(AuditEntry) error
}

// AuditLog is a JSON-lines audit trail in one file, appended to by every
// reel process on the machine (an exclusive flock around each append), each
// line synced before Audit returns and chained to the one before it by
// Prev. It stands in for the recorder's audit log until retention and
// holds are routed there.
type AuditLog struct {
	path string
	now  func() time.Time
	mu   sync.Mutex
}

// OpenAuditLog returns the audit log at path (created on first write).
func OpenAuditLog(path string, now func() time.Time) *AuditLog {
	if now == nil {
		now = time.Now
	}
	return &AuditLog{path: path, now: now}
}

// AuditPath is where the audit trail is kept in the evidence directory.
func AuditPath(dir string) string { return filepath.Join(dir, "audit.jsonl") }

// Audit implements Auditor.
func (l *AuditLog) Audit(e AuditEntry) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := os.MkdirAll(filepath.Dir(l.path), 0o700); err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	f, err := os.OpenFile(l.path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		return fmt.Errorf("audit: lock %s: %w", l.path, err)
	}
	defer unix.Flock(int(f.Fd()), unix.LOCK_UN)
	prev, partial, err := lastLine(f)
	if err != nil {
		return fmt.Errorf("audit: %s: %w", l.path, err)
	}
	if e.Time.IsZero() {
		e.Time = l.now().UTC()
	}
	if prev != nil {
		sum := sha256.Sum256(prev)
		e.Prev = hex.EncodeToString(sum[:])
	}
	b, err := json.Marshal(e)
	if err != nil {
		return err
	}
	if partial {
		b = append([]byte{'\n'}, b...) // a line a crash cut short stays as it is
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	return nil
}

// lastLine returns f's last complete line (without its newline) and
// whether f ends in a partial one.
func lastLine(f *os.File) ([]byte, bool, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, false, err
	}
	size := fi.Size()
	if size == 0 {
		return nil, false, nil
	}
	n := min(size, 1<<20)
	buf := make([]byte, n)
	if _, err := f.ReadAt(buf, size-n); err != nil && err != io.EOF {
		return nil, false, err
	}
	partial := buf[len(buf)-1] != '\n'
	if !partial {
		buf = buf[:len(buf)-1]
	}
	i := bytes.LastIndexByte(buf, '\n')
	if partial {
		// The partial line is not chained; the complete one before it is.
		if i < 0 {
			return nil, true, nil
		}
		buf = buf[:i]
		i = bytes.LastIndexByte(buf, '\n')
	}
	return buf[i+1:], partial, nil
}

// ReadAudit reads an audit log's entries (for tests and reel hold ls).
func ReadAudit(path string) ([]AuditEntry, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []AuditEntry
	for line := range bytes.SplitSeq(bytes.TrimSuffix(b, []byte("\n")), []byte("\n")) {
		var e AuditEntry
		if err := json.Unmarshal(line, &e); err != nil {
			continue // a line a crash cut short
		}
		out = append(out, e)
	}
	return out, nil
}
