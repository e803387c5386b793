// Package review is what reel's reviewer tools share — the CLI (reel ls,
// reel play, reel cat) and the web UI: summarising stored recordings,
// listing them with filters, and reading a recording's events for replay.
// The terminal player is in the subpackage player.
//
// Everything reads through a store.Store, so it works the same on disk, in
// S3 and in memory, and read-only: it never changes a recording, and works
// while the recorder writes.
//
// # Summaries
//
// A Summary is one row of a list: the store's Info (key, node, start,
// size, status and reason) and what the recording's two ends say: the
// header (who, what, terminal size), User and Command for display, and the
// Duration, the time of the last event line. ReadSummary reads only the
// header at the start and, backwards from the end in blocks, the last event
// line; Limits caps both (1 MiB each by default), so one recording that
// ends in a gigabyte of blank lines or one enormous line costs at most that
// and reports its duration as unknown (DurationErr wraps ErrTailLimit)
// instead of holding up a whole list. Every read is made under a context:
// cancelling it stops a summary between two blocks.
//
// Desktop recordings (reel vnc's ".desk" keys, internal/desktop) are
// summarised the same way and within the same limits by
// ReadDesktopSummary: Kind is store.KindDesktop, Desktop holds their
// header (Header is nil), User the authenticated user, Command "desktop
// HOST", and Duration the time of the last complete record. Summarize
// picks by the key.
//
// # Lists
//
// A Lister lists a store's recordings in key order (node, then start
// time) with their summaries, under a Filter: node and start time (applied
// by the store), statuses and user (see MatchUser). A recording that cannot
// be read is listed with its HeaderErr and harms nothing else. Listed
// counts what the store had before statuses and user were applied, to tell
// an empty store from a filter that matches nothing.
//
//	l := &review.Lister{Store: st}
//	for s, err := range l.List(ctx, review.Filter{User: "alice"}) {
//		if err != nil {
//			return err // ctx's error ends the list; others are per recording
//		}
//		fmt.Println(s.Key, s.User, s.Command, s.Status, s.Duration)
//	}
//
// # Events
//
// Open opens one recording by key with its Info; NewEvents reads its
// events from the start, converting asciicast v1 and v3 to v2 times,
// skipping (and counting, see Events.Skipped) lines that are not events so
// that a malformed recording shows what it can. Explain turns a status that
// is not "complete" into a sentence for the reviewer; Sanitize makes header
// text safe to print on a terminal (a web page escapes it instead).
package review
