package recorder

import "github.com/reel-rec/reel/internal/store"

// Change is what happened to a recording or an event, as Server.Notify
// reports it (to the indexer).
type Change struct {
	What ChangeKind
	// Size is how many bytes are durable (Grew, Closed).
	Size int64
	// Status and Reason are the final status (Closed).
	Status store.Status
	Reason string
	// Event is the stored event (EventStored).
	Event *store.Event
}

// ChangeKind says which change a Change is.
type ChangeKind uint8

const (
	Created     ChangeKind = iota + 1 // a recording began; it is live
	Grew                              // a sync round made more of a live recording durable
	Closed                            // a recording ended, with its final status
	EventStored                       // an event was stored; the key is its id
)

// notify calls s.Notify, if set.
func (s *Server) notify(key string, c Change) {
	if s.Notify != nil {
		s.Notify(key, c)
	}
}
