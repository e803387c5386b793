// Package index is reel's catalogue of recordings and events: one row per
// recording and per event (who, where, when, kind, status) and the screen
// text of every recording in time-bucketed chunks, so that a search hit is
// a moment in a recording, not just a file.
//
// The store is the truth; the index is a cache of it that can always be
// rebuilt from the store (reel index rebuild). Losing, corrupting or
// deleting the index loses no recording.
//
// Two implementations pass one shared conformance suite (indextest):
// embedded SQLite (the default, a file under --statedir) and PostgreSQL
// (several recorders sharing one bucket). Both are selected by URL with
// Open.
//
// STATUS: this file is the contract agreed between the index, the indexer
// and the web UI. Implementations fill it in; change it only together.
package index

import (
	"context"
	"errors"
	"time"
)

// Kind is what sort of session a recording is.
type Kind string

const (
	KindSSH        Kind = "ssh"        // a terminal session with no kubernetes header
	KindKubernetes Kind = "kubernetes" // header has a kubernetes object
	KindDesktop    Kind = "desktop"    // a desktop (VNC) recording
)

// Recording is one recording's row. Fields come from the store (Key, Node,
// Sender, Start, Size, Status, Reason) and from the recording's header and
// last event (the rest).
type Recording struct {
	Key    string    // store key "<node>/<name>.cast"; primary key
	Node   string    // path-safe node id (store.Info.Node)
	Sender string    // the sender's original identity, if the store kept it
	Start  time.Time // when the recorder began receiving it
	End    time.Time // start + time of the last event; zero while unknown
	Size   int64     // bytes stored
	Status string    // store.Status: live, complete, interrupted, malformed, failed
	Reason string    // why malformed, failed or interrupted

	Kind      Kind
	User      string   // the person: srcNodeUser, the Kubernetes user, reel ssh's login identity
	Login     string   // the login name asked for (sshUser)
	LocalUser string   // the local account the session ran as
	Tags      []string // srcNodeTags
	Command   string
	Title     string
	Width     int
	Height    int
	Pod       string // kubernetes
	Namespace string // kubernetes
	Container string // kubernetes

	// Indexed is how many bytes of the recording the screen-text indexer
	// has consumed; indexing resumes from here. Equal to Size when the
	// text is complete.
	Indexed int64
	Updated time.Time // when this row last changed
}

// Chunk is the screen text shown during [TStart, TEnd) of a recording,
// seconds from its start, as a terminal displayed it (no escape sequences,
// no input).
type Chunk struct {
	Key    string
	Seq    int // 0, 1, 2, ... in time order within the recording
	TStart float64
	TEnd   float64
	Text   string // lines separated by "\n"
	// Times, when not nil, holds the time (seconds from the start) at
	// which each line of Text appeared, line by line; hits then point at
	// their line's moment rather than the chunk's start.
	Times []float64
}

// Event is one API-request event received on /v2/event.
type Event struct {
	ID   string    // store event id; primary key
	Node string    // sender node
	At   time.Time // when the recorder received it
	// Fields extracted from the event JSON for filtering.
	User        string
	Verb        string
	Resource    string
	Subresource string
	Namespace   string
	Name        string
	Path        string
	Code        int
	Data        []byte // the event as stored
}

// Sort orders List.
type Sort string

const (
	SortStartDesc Sort = "-start" // newest first (default)
	SortStartAsc  Sort = "start"
	SortSizeDesc  Sort = "-size"
	SortDurDesc   Sort = "-duration"
)

// Filter selects recordings (and, for events, the Node/User/time fields).
// Zero fields select everything. Node and User match exactly, or as a
// prefix when they end in "*". User matches, ignoring case, the
// recording's User, Login or LocalUser, or the part of one before '@'
// ("alice" finds alice@example.com), as reel ls --user does.
type Filter struct {
	Node   string
	User   string
	Kind   Kind
	Status string    // one status, or several separated by commas
	Since  time.Time // start >= Since
	Until  time.Time // start < Until
	// Text keeps only recordings whose screen text contains it.
	Text string
	// Nodes, when not nil, restricts to these nodes (what a viewer may see).
	Nodes []string
}

// Page asks for one page of a keyset-paginated list.
type Page struct {
	Limit int    // rows; 0 means 50, at most 1000
	After string // opaque cursor from the previous page's Next; "" for the first
	Sort  Sort
}

// Hit is one search result: a moment in a recording and the matching line.
type Hit struct {
	Recording Recording
	TStart    float64 // the chunk's start, seconds into the recording
	TEnd      float64
	Line      string // the line of the chunk that contains the match
	Match     [2]int // byte offsets of the match in Line
	// At is the moment the line appeared (seconds from the start): its
	// time when the chunk has Times, else TStart. Link here.
	At float64
}

// Errors.
var (
	ErrNotFound   = errors.New("index: not found")
	ErrQueryShort = errors.New("index: search text must be at least 3 characters")
)

// Index is the catalogue. All methods are safe for concurrent use and take
// a context that bounds them.
type Index interface {
	// PutRecording inserts or replaces a recording's row (not its chunks).
	// It never changes Indexed, which only AddChunks and ResetText set (a
	// new row starts at 0), so the row's metadata and its text can be
	// kept up to date by different goroutines.
	PutRecording(ctx context.Context, r Recording) error
	// GetRecording returns one row.
	GetRecording(ctx context.Context, key string) (Recording, error)
	// DeleteRecording removes a row and its chunks (retention, rebuild).
	DeleteRecording(ctx context.Context, key string) error
	// AddChunks appends screen-text chunks and sets the recording's
	// Indexed offset, atomically: after a crash either both or neither.
	AddChunks(ctx context.Context, key string, indexed int64, chunks []Chunk) error
	// ResetText drops a recording's chunks and sets Indexed to 0.
	ResetText(ctx context.Context, key string) error
	// List returns one page of recordings matching f, and the cursor of
	// the next page ("" when this was the last).
	List(ctx context.Context, f Filter, p Page) (rows []Recording, next string, err error)
	// Search finds text (substring, case-insensitive, >= 3 characters) in
	// screen text of recordings matching f; hits newest recording first,
	// then in time order within a recording.
	Search(ctx context.Context, text string, f Filter, p Page) (hits []Hit, next string, err error)
	// PutEvent inserts or replaces an event.
	PutEvent(ctx context.Context, e Event) error
	// ListEvents returns events matching f (Node, User, Since, Until, Text
	// over the JSON) plus verb/resource/namespace filters in ef, newest first.
	ListEvents(ctx context.Context, f Filter, ef EventFilter, p Page) (rows []Event, next string, err error)
	// Close releases the index.
	Close() error
}

// Batcher is implemented by indexes that can put many rows in one
// transaction, much faster than one by one (a rebuild, a bulk load).
type Batcher interface {
	PutRecordings(ctx context.Context, rs []Recording) error
}

// EventFilter narrows ListEvents.
type EventFilter struct {
	Verb      string
	Resource  string
	Namespace string
}
