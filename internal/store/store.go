// Package store defines where recordings and events are kept.
//
// A Store is the only thing the recorder and the CLI (and the planned web
// UI) know about storage. Backends (fsstore for local disk, s3store for S3-compatible
// buckets, memstore for tests) implement it, and every backend passes the
// shared conformance suite in package storetest.
//
// Keys are slash-separated, relative and made only of [A-Za-z0-9._-] and "/":
// a recording's key is "<node>/<name>.cast", where <node> is the sender's
// identity made path-safe (SafeNode: one node per identity) and <name> a
// sortable, unique timestamp. Keys sort by node, then by start time. The
// identity itself, as the sender was known, is kept beside its recordings
// (Info.Sender).
//
// Every backend also implements Files: small named files beside the
// recordings (a recording's seal and hash chain) and under FilesDir
// (evidence manifests, legal holds), and deletion of recordings.
package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"time"
)

// Status is the state of a recording.
type Status string

const (
	// StatusLive means the recording is still being written.
	StatusLive Status = "live"
	// StatusComplete means the sender finished the upload normally.
	StatusComplete Status = "complete"
	// StatusInterrupted means the upload ended without the sender closing
	// it: the recorder crashed or shut down, or the connection dropped. The
	// file was cut at its last complete line.
	StatusInterrupted Status = "interrupted"
	// StatusMalformed means the sender finished, but what it sent is not
	// valid asciicast v2. It is kept byte for byte as evidence.
	StatusMalformed Status = "malformed"
	// StatusFailed means storing failed (for example the disk filled up).
	// What was stored is cut at its last complete line.
	StatusFailed Status = "failed"
)

// Errors a backend returns; test with errors.Is.
var (
	// ErrNotFound: no recording or event with that key.
	ErrNotFound = errors.New("not found")
	// ErrInsufficientSpace: the store is below its free-space reserve and
	// accepts no new recordings; running ones may go on.
	ErrInsufficientSpace = errors.New("insufficient storage space")
	// ErrInvalidKey: a key or node id that is not well formed.
	ErrInvalidKey = errors.New("invalid key")
	// ErrInUse: another process is using the store (its directory, or an
	// S3 store's spool). The error is an *InUseError.
	ErrInUse = errors.New("in use by another reel process")
)

// InUseError is the error opening a store that another reel process is
// using returns. errors.Is(err, ErrInUse) reports it.
type InUseError struct {
	Dir string // the directory it holds
	PID int    // its process id; 0 when not known
}

func (e *InUseError) Error() string {
	if e.PID > 0 {
		return fmt.Sprintf("another reel process (pid %d) is using %s", e.PID, e.Dir)
	}
	return fmt.Sprintf("another reel process is using %s", e.Dir)
}

// Is makes errors.Is(err, ErrInUse) true.
func (e *InUseError) Is(target error) bool { return target == ErrInUse }

// Info describes one stored recording.
type Info struct {
	Key  string `json:"key"`  // "<node>/<name>.cast"
	Node string `json:"node"` // SafeNode(Sender)
	// Sender is the sender's identity as given to Create. For recordings
	// made before it was kept, it is Node.
	Sender string    `json:"sender"`
	Start  time.Time `json:"start"`  // when the recorder began receiving it
	Size   int64     `json:"size"`   // bytes stored so far
	Status Status    `json:"status"` // see Status
	// Reason says why a recording is malformed, failed or interrupted.
	Reason string `json:"reason,omitempty"`
}

// Filter selects recordings in List. The zero Filter selects all.
type Filter struct {
	Node  string    // only this node (a ValidNode node id); "" for all
	Since time.Time // only recordings that started at or after Since
	Until time.Time // only recordings that started before Until; zero for no limit
}

// Store keeps recordings and events.
//
// All methods are safe for concurrent use.
type Store interface {
	// Create begins a new recording sent by sender (the sender's identity,
	// any string of 1 to MaxSenderLen bytes) that starts now. It files it
	// under node SafeNode(sender) and keeps sender beside it. It fails
	// with ErrInsufficientSpace when the store is below its free-space
	// reserve, and with ErrInvalidKey for an empty or too long sender. The
	// new recording lists as StatusLive until it is closed.
	Create(ctx context.Context, sender string, start time.Time) (Writer, error)

	// Open opens a recording for reading. A live recording can be opened;
	// reads see what has been written so far.
	Open(ctx context.Context, key string) (Reader, error)

	// Stat describes one recording.
	Stat(ctx context.Context, key string) (Info, error)

	// List yields the recordings that match f, in key order (by node, then
	// start time). It must not read whole recordings.
	List(ctx context.Context, f Filter) iter.Seq2[Info, error]

	// PutEvent durably stores one event sent by sender (as in Create: it
	// is filed under SafeNode(sender)) and returns the id under which
	// GetEvent finds it. data is one JSON object with no newline. On
	// return without error the event survives a crash.
	PutEvent(ctx context.Context, sender string, at time.Time, data []byte) (id string, err error)

	// GetEvent returns the event stored under id.
	GetEvent(ctx context.Context, id string) ([]byte, error)

	// ListEvents yields node's events received in [since, until) (zero
	// until: no upper limit), oldest first. node is a node id (ValidNode),
	// not a sender identity.
	ListEvents(ctx context.Context, node string, since, until time.Time) iter.Seq2[Event, error]

	// Recover closes out recordings that were left live by a crash: each is
	// cut at its last complete line and marked StatusInterrupted. It is
	// called once at start-up, before any Create, and returns what it
	// repaired. Nothing is deleted.
	Recover(ctx context.Context) ([]Info, error)

	// Close releases the store's resources. Writers must be closed first.
	Close() error
}

// Event is one stored event.
type Event struct {
	ID   string    `json:"id"`
	Node string    `json:"node"`
	At   time.Time `json:"at"` // when the recorder received it
	Data []byte    `json:"data"`
}

// Writer receives one recording's bytes.
//
// Write and Sync may be called from different goroutines at the same time
// (one writer goroutine, one syncing goroutine). Nothing else is safe to call
// concurrently.
type Writer interface {
	// Key is the recording's key.
	Key() string

	// Write appends p. Bytes are not durable until Sync returns.
	Write(p []byte) (int, error)

	// Sync makes every byte whose Write returned before Sync was called
	// durable: after Sync returns nil, those bytes survive a crash of the
	// process or the machine.
	Sync() error

	// Close finishes the recording with the given final status (complete,
	// malformed, failed or interrupted) and reason. For any status but
	// StatusComplete and StatusMalformed the stored bytes are cut at the
	// last complete line, so the file stays valid asciicast. Close syncs.
	Close(status Status, reason string) error
}

// Reader reads a stored recording.
type Reader interface {
	io.ReadSeekCloser
	io.ReaderAt
	// Size is the recording's size when it was opened.
	Size() int64
}
