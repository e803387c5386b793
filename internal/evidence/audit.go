package evidence

import (
	"path/filepath"

	"github.com/reel-rec/reel/internal/audit"
)

// Audit actions this package writes to reel's audit log (internal/audit).
const (
	AuditRetentionDelete = audit.ActionRetentionDelete
	AuditHoldAdd         = audit.ActionHoldAdd
	AuditHoldRemove      = audit.ActionHoldRemove
)

// AuditEntry is what retention and holds tell the audit trail: the fields
// of internal/audit's Entry that they set (the log sets Time and Prev).
type AuditEntry struct {
	User   string
	Auth   string
	From   string
	Action string
	Target string
	Args   map[string]string
	Result string // "ok", "failed", "denied"
	Reason string
}

// Auditor records what retention and holds do.
type Auditor interface {
	Audit(AuditEntry) error
}

// AuditLog is an Auditor that appends to reel's audit log: the one the web
// UI and reel user write, read with reel audit.
type AuditLog struct{ *audit.Log }

// Audit implements Auditor.
func (l AuditLog) Audit(e AuditEntry) error {
	return l.Append(audit.Entry{User: e.User, Auth: e.Auth, From: e.From, Action: e.Action, Target: e.Target, Args: e.Args, Result: e.Result, Reason: e.Reason})
}

// AuditDir is where reel's audit log is kept in the state directory
// stateDir, as reel serve and reel user keep it.
func AuditDir(stateDir string) string { return filepath.Join(stateDir, "audit") }
