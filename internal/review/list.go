package review

import (
	"context"
	"iter"
	"slices"

	"github.com/reel-rec/reel/internal/store"
)

// Statuses are the statuses a recording can have, in the order lists
// explain them.
var Statuses = []store.Status{store.StatusLive, store.StatusComplete, store.StatusInterrupted, store.StatusMalformed, store.StatusFailed}

// Filter selects recordings in a Lister. The zero Filter selects all.
type Filter struct {
	store.Filter                // node and start time, applied by the store
	Statuses     []store.Status // only these statuses; none: all
	User         string         // only recordings Summary.HasUser says are this user's
}

// Lister lists the recordings in a store with their summaries.
type Lister struct {
	Store  store.Store
	Limits Limits // for each summary
	// Listed counts the recordings the store listed in the filter's node
	// and time range, before Statuses and User were applied: after an
	// empty list, it tells "nothing here" from "nothing matches".
	Listed int
}

// List yields a summary of each recording that matches f, in key order (by
// node, then start time). Only the two ends of each recording are read
// (see ReadSummary), so one odd recording costs no more than Limits
// allows and cannot hold up the rest. A recording the store cannot list is
// yielded as an error, and the listing goes on; when ctx is done, List
// yields ctx's error and stops.
func (l *Lister) List(ctx context.Context, f Filter) iter.Seq2[Summary, error] {
	return func(yield func(Summary, error) bool) {
		l.Listed = 0
		for info, err := range l.Store.List(ctx, f.Filter) {
			if ctx.Err() != nil {
				yield(Summary{}, ctx.Err())
				return
			}
			if err != nil {
				if !yield(Summary{}, err) {
					return
				}
				continue
			}
			l.Listed++
			if len(f.Statuses) > 0 && !slices.Contains(f.Statuses, info.Status) {
				continue
			}
			s, err := Summarize(ctx, l.Store, info, l.Limits)
			if err != nil {
				yield(Summary{}, err)
				return
			}
			if f.User != "" && !s.HasUser(f.User) {
				continue
			}
			if !yield(s, nil) {
				return
			}
		}
		if ctx.Err() != nil { // the store may end its list quietly
			yield(Summary{}, ctx.Err())
		}
	}
}
