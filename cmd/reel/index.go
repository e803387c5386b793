package main

// reel index (rebuild, status), and what serve, search and ls share about
// where the index is.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"iter"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/reel-rec/reel/internal/auth"
	"github.com/reel-rec/reel/internal/index"
	"github.com/reel-rec/reel/internal/index/indexer"
	"github.com/reel-rec/reel/internal/review"
	"github.com/reel-rec/reel/internal/review/player"
	"github.com/reel-rec/reel/internal/store"
)

func init() {
	register(&command{name: "index", summary: "rebuild the search index from the store, or show its state", run: runIndex, subs: []string{"rebuild", "status"}})
}

const indexUsage = `
Usage: reel index rebuild [flags]
       reel index status [flags]

The index is what "reel search", "reel ls" and the web UI read: a row per
recording and event, and the screen text of every recording in
time-bucketed chunks. "reel serve" keeps it in step with the store as
recordings arrive. It is a cache of the store: deleting it loses nothing.

By default it is the SQLite file <statedir>/index.db (for a directory
--dst, <dst>/.reel/index.db); --index postgres://user@host/db selects a
PostgreSQL database instead, for several recorders sharing one bucket.

rebuild recreates the index from the store, in place, while a recorder
may go on recording into it: every recording's row is written again and
its screen text extracted again (a live recording's text is left to the
recorder recording it); rows of recordings the store no longer has are
removed. A progress bar shows on standard error when it is a terminal,
else a line every few seconds.

status shows how many recordings, texts and events the index holds and,
comparing with the store, whether it is in step.

Examples:
    reel index rebuild --dst /var/lib/reel
    reel index rebuild --dst s3://s3.example.com/recordings --statedir /var/lib/reel
    reel index status --dst /var/lib/reel
`

// indexFlags say where the index is: --index, and (for commands that do
// not have it already) --statedir.
type indexFlags struct {
	url      string
	stateDir string
}

func addIndexFlags(fs *flag.FlagSet, env *cmdEnv, withStateDir bool) *indexFlags {
	f := &indexFlags{}
	fs.StringVar(&f.url, "index", envOr(env, "", "REEL_INDEX"), "the index: a SQLite file, postgres://..., or off; default <statedir>/index.db (env REEL_INDEX)")
	if withStateDir {
		fs.StringVar(&f.stateDir, "statedir", envOr(env, "", "TS_STATE_DIR"), "the recorder's state directory, where the index is by default; default <dst>/.reel (env TS_STATE_DIR)")
	}
	return f
}

// indexLocation returns where the index is for a store at dst, or "" when
// it is off or cannot be placed (an S3 store without --statedir).
func indexLocation(dst, stateDir, url string) string {
	switch {
	case url == "off":
		return ""
	case url != "":
		return url
	case stateDir == "" && isS3(dst):
		return ""
	case stateDir == "":
		stateDir = filepath.Join(dst, ".reel")
	}
	return filepath.Join(stateDir, "index.db")
}

// isSQLiteLocation reports whether loc is a SQLite file rather than a URL.
func isSQLiteLocation(loc string) bool { return !strings.Contains(loc, "://") }

// openIndexIfPresent opens the index for a reader: nil, nil when there is
// none (off, or no SQLite file yet), so the reader falls back to the store.
func openIndexIfPresent(ctx context.Context, loc string) (index.Index, error) {
	if loc == "" {
		return nil, nil
	}
	if isSQLiteLocation(loc) {
		if _, err := os.Stat(strings.TrimPrefix(loc, "sqlite:")); err != nil {
			return nil, nil
		}
	}
	return index.Open(ctx, loc, nil)
}

func runIndex(ctx context.Context, env *cmdEnv, args []string) error {
	if len(args) == 0 {
		return usagef("name a subcommand: rebuild or status")
	}
	switch args[0] {
	case "rebuild":
		return runIndexRebuild(ctx, env, args[1:])
	case "status":
		return runIndexStatus(ctx, env, args[1:])
	case "-h", "-help", "--help", "help":
		fmt.Fprintln(env.stdout, strings.TrimSpace(indexUsage))
		return flag.ErrHelp
	}
	return usagef("unknown subcommand %q: want rebuild or status", args[0])
}

// openIndexCmd parses the flags of reel index SUB and opens the store
// (read-only: a recorder may be running) and the index.
func openIndexCmd(ctx context.Context, env *cmdEnv, name string, args []string, extra func(*flag.FlagSet)) (store.Store, index.Index, string, error) {
	fs := newFlagSet(env, "index "+name, indexUsage)
	sf := addStoreFlags(fs, env)
	xf := addIndexFlags(fs, env, true)
	if extra != nil {
		extra(fs)
	}
	if err := parseFlags(fs, args); err != nil {
		return nil, nil, "", err
	}
	if fs.NArg() > 0 {
		return nil, nil, "", usagef("unexpected argument %q", fs.Arg(0))
	}
	loc := indexLocation(sf.dst, xf.stateDir, xf.url)
	if loc == "" {
		return nil, nil, "", usagef("no index: --index is off, or --dst is a bucket and neither --statedir nor --index says where the index is")
	}
	st, err := sf.open(ctx)
	if err != nil {
		return nil, nil, "", err
	}
	ix, err := index.Open(ctx, loc, slog.New(slog.NewTextHandler(env.stderr, nil)))
	if err != nil {
		st.Close()
		return nil, nil, "", err
	}
	return st, ix, loc, nil
}

func runIndexRebuild(ctx context.Context, env *cmdEnv, args []string) error {
	workers := runtime.GOMAXPROCS(0)
	st, ix, loc, err := openIndexCmd(ctx, env, "rebuild", args, func(fs *flag.FlagSet) {
		fs.IntVar(&workers, "workers", workers, "recordings indexed at once (one core each)")
	})
	if err != nil {
		return err
	}
	defer st.Close()
	defer ix.Close()
	log := slog.New(slog.NewTextHandler(env.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	in := &indexer.Indexer{Store: st, Index: ix, Log: log, Workers: max(workers, 1)}
	in.Start(ctx, false)
	defer in.Close()
	bar := newProgressBar(env.stderr)
	fmt.Fprintf(env.stderr, "reel index: rebuilding %s from %s\n", index.Describe(loc), storeName(st, args))
	started := time.Now()
	var last indexer.Progress
	err = in.Rebuild(ctx, func(p indexer.Progress) {
		last = p
		bar.update(p)
	})
	bar.finish(last)
	if err != nil {
		if ctx.Err() != nil {
			return errors.New("interrupted; run it again to finish (nothing is lost: the index is a cache)")
		}
		return err
	}
	fmt.Fprintf(env.stderr, "reel index: %d recordings (%s) indexed in %s\n", last.Done, formatSize(last.DoneBytes), time.Since(started).Round(time.Millisecond))
	return nil
}

// storeName names the store for messages.
func storeName(_ store.Store, args []string) string {
	for i, a := range args {
		if v, ok := strings.CutPrefix(a, "--dst="); ok {
			return v
		}
		if (a == "--dst" || a == "-dst") && i+1 < len(args) {
			return args[i+1]
		}
	}
	return "the store"
}

// progressBar shows a Rebuild's progress: a bar redrawn in place on a
// terminal, else a line every 5 s.
type progressBar struct {
	w       io.Writer
	tty     bool
	started time.Time
	lastLog time.Time
	drawn   bool
}

func newProgressBar(w io.Writer) *progressBar {
	_, _, tty := player.IsTerminal(w)
	return &progressBar{w: w, tty: tty, started: time.Now()}
}

func (b *progressBar) line(p indexer.Progress) string {
	frac := 1.0
	if p.TotalBytes > 0 {
		frac = float64(p.DoneBytes) / float64(p.TotalBytes)
	} else if p.Total > 0 {
		frac = float64(p.Done) / float64(p.Total)
	}
	el := time.Since(b.started)
	rate := float64(p.DoneBytes) / max(el.Seconds(), 0.001)
	eta := "-"
	if rate > 0 && p.DoneBytes < p.TotalBytes {
		eta = (time.Duration(float64(p.TotalBytes-p.DoneBytes)/rate) * time.Second / time.Second).Round(time.Second).String()
	}
	return fmt.Sprintf("%3.0f%%  %d/%d recordings  %s/%s  %s/s  eta %s",
		100*frac, p.Done, p.Total, formatSize(p.DoneBytes), formatSize(p.TotalBytes), formatSize(int64(rate)), eta)
}

func (b *progressBar) update(p indexer.Progress) {
	if b.tty {
		const width = 30
		frac := 0.0
		if p.TotalBytes > 0 {
			frac = float64(p.DoneBytes) / float64(p.TotalBytes)
		}
		n := int(frac * width)
		fmt.Fprintf(b.w, "\r\x1b[K[%s%s] %s", strings.Repeat("=", n), strings.Repeat(" ", width-n), b.line(p))
		b.drawn = true
		return
	}
	if time.Since(b.lastLog) >= 5*time.Second {
		b.lastLog = time.Now()
		fmt.Fprintf(b.w, "reel index: %s\n", b.line(p))
	}
}

func (b *progressBar) finish(p indexer.Progress) {
	if b.tty && b.drawn {
		fmt.Fprint(b.w, "\r\x1b[K")
	}
}

func runIndexStatus(ctx context.Context, env *cmdEnv, args []string) error {
	st, ix, loc, err := openIndexCmd(ctx, env, "status", args, nil)
	if err != nil {
		return err
	}
	defer st.Close()
	defer ix.Close()
	type rowState struct {
		size, indexed int64
		status        string
	}
	rows := map[string]rowState{}
	live, textPending := 0, 0
	after := ""
	for {
		page, next, err := ix.List(ctx, index.Filter{}, index.Page{Limit: index.MaxLimit, After: after, Sort: index.SortStartAsc})
		if err != nil {
			return err
		}
		for _, r := range page {
			rows[r.Key] = rowState{r.Size, r.Indexed, r.Status}
			switch {
			case r.Status == string(store.StatusLive):
				live++
			case r.Indexed != r.Size:
				textPending++
			}
		}
		if next == "" {
			break
		}
		after = next
	}
	events := 0
	after = ""
	for {
		page, next, err := ix.ListEvents(ctx, index.Filter{}, index.EventFilter{}, index.Page{Limit: index.MaxLimit, After: after})
		if err != nil {
			return err
		}
		events += len(page)
		if next == "" {
			break
		}
		after = next
	}
	inStore, missing, stale := 0, 0, 0
	var samples []string
	for info, err := range st.List(ctx, store.Filter{}) {
		if err != nil {
			return err
		}
		inStore++
		r, ok := rows[info.Key]
		switch {
		case !ok:
			missing++
			samples = append(samples, "missing: "+info.Key)
		case r.status != string(info.Status) || r.size != info.Size || info.Status != store.StatusLive && r.indexed != info.Size:
			stale++
			samples = append(samples, fmt.Sprintf("behind: %s (index: %s, %d bytes, text %d; store: %s, %d bytes)", info.Key, r.status, r.size, r.indexed, info.Status, info.Size))
		}
	}
	tw := tabwriter.NewWriter(env.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "index:\t%s\n", index.Describe(loc))
	fmt.Fprintf(tw, "recordings:\t%d (%d live)\n", len(rows), live)
	fmt.Fprintf(tw, "screen text:\t%d complete, %d pending\n", len(rows)-live-textPending, textPending)
	fmt.Fprintf(tw, "events:\t%d\n", events)
	fmt.Fprintf(tw, "store:\t%d recordings; %d not in the index, %d behind\n", inStore, missing, stale)
	tw.Flush()
	slices.Sort(samples)
	for i, s := range samples {
		if i == 10 {
			fmt.Fprintf(env.stdout, "  ... and %d more\n", len(samples)-10)
			break
		}
		fmt.Fprintln(env.stdout, "  "+s)
	}
	if missing == 0 && stale == 0 {
		fmt.Fprintln(env.stdout, "in step with the store")
	} else {
		fmt.Fprintln(env.stdout, "not in step with the store: a running reel serve catches up by itself; reel index rebuild repairs it")
	}
	return nil
}

// startIndexer opens the index at loc and starts keeping it in step with
// st, catching up in the background. The recorder records whatever
// happens here: an index that cannot be opened is logged and left out.
// It returns nil when there is no index; close stops the indexer and
// closes the index. With tags (the web UI's), the indexer tells it the
// tags of every recording row it writes (tagLearner).
func startIndexer(ctx context.Context, st store.Store, loc string, tags *auth.TagMap, busy func() bool, log *slog.Logger) (in *indexer.Indexer, close func()) {
	if loc == "" {
		log.Info("search index off")
		return nil, func() {}
	}
	ix, err := index.Open(ctx, loc, log)
	if err != nil {
		log.Error("search index unavailable; recording goes on without it (reel index rebuild recreates it)", "index", index.Describe(loc), "err", err)
		return nil, func() {}
	}
	var target index.Index = ix
	if tags != nil {
		target = tagLearner{Index: ix, tags: tags}
	}
	in = &indexer.Indexer{Store: st, Index: target, Log: log, Busy: busy}
	in.Start(context.WithoutCancel(ctx), true)
	log.Info("search index", "index", index.Describe(loc))
	return in, func() {
		// Let the last changes (recordings closed at shutdown) reach the
		// index, briefly; what is left is caught up at the next start.
		wctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		in.Wait(wctx)
		cancel()
		in.Close()
		ix.Close()
	}
}

// lsRecent is how far back reel ls checks the store for recordings the
// index may not have yet (the indexer follows the recorder within moments).
const lsRecent = 2 * time.Minute

// indexLister is reel ls from the index: rows oldest first, each summed up
// from its row; a live row, a Kubernetes one (whose session type the row
// lacks) and, with --json, every row is summarised from the store as
// without the index. Recordings of the last lsRecent that the index does
// not have yet are added from the store when it is a directory.
type indexLister struct {
	st      store.Store
	ix      index.Index
	full    bool // --json: the header too
	fsStore bool
	now     time.Time
	listed  int // rows in the index (counted only when nothing matched)
	recent  int // recordings of the last lsRecent the index does not have yet (counted only when nothing matched)
}

func (l *indexLister) list(ctx context.Context, f review.Filter) iter.Seq2[review.Summary, error] {
	return func(yield func(review.Summary, error) bool) {
		var ss []string
		for _, s := range f.Statuses {
			ss = append(ss, string(s))
		}
		xf := index.Filter{Node: f.Node, User: f.User, Since: f.Since, Until: f.Until, Status: strings.Join(ss, ",")}
		recent := l.now.Add(-lsRecent)
		seen := map[string]bool{}
		var tail []review.Summary
		var recentKeys []string // recordings the store has and the index may not
		keep := func(s review.Summary) bool {
			return (len(f.Statuses) == 0 || slices.Contains(f.Statuses, s.Status)) && (f.User == "" || review.MatchUser(s.Header, f.User))
		}
		shown := 0
		after := ""
		for {
			rows, next, err := l.ix.List(ctx, xf, index.Page{Limit: index.MaxLimit, After: after, Sort: index.SortStartAsc})
			if err != nil {
				yield(review.Summary{}, err)
				return
			}
			for _, r := range rows {
				seen[r.Key] = true
				s, ok, err := l.summary(ctx, r)
				if err != nil {
					yield(review.Summary{}, err)
					return
				}
				if !ok || s.Header != nil && !keep(s) {
					continue
				}
				if r.Start.After(recent) {
					tail = append(tail, s)
					continue
				}
				shown++
				if !yield(s, nil) {
					return
				}
			}
			if next == "" {
				break
			}
			after = next
		}
		if l.fsStore {
			sf := f.Filter
			if sf.Since.Before(recent) {
				sf.Since = recent
			}
			for info, err := range l.st.List(ctx, sf) {
				if err != nil || seen[info.Key] {
					continue
				}
				recentKeys = append(recentKeys, info.Key) // for the message
				s, err := review.Summarize(ctx, l.st, info, review.Limits{})
				if err != nil {
					yield(review.Summary{}, err)
					return
				}
				if keep(s) {
					tail = append(tail, s)
				}
			}
		}
		slices.SortStableFunc(tail, func(a, b review.Summary) int { return a.Start.Compare(b.Start) })
		for _, s := range tail {
			shown++
			if !yield(s, nil) {
				return
			}
		}
		if shown == 0 {
			// For the message: how many there are in the node and time range.
			inIndex := map[string]bool{}
			defer func() {
				for _, k := range recentKeys {
					if !inIndex[k] {
						l.recent++
					}
				}
			}()
			after = ""
			for {
				rows, next, err := l.ix.List(ctx, index.Filter{Node: f.Node, Since: f.Since, Until: f.Until}, index.Page{Limit: index.MaxLimit, After: after})
				if err != nil {
					yield(review.Summary{}, err)
					return
				}
				l.listed += len(rows)
				for _, r := range rows {
					inIndex[r.Key] = true
				}
				if next == "" {
					break
				}
				after = next
			}
		}
	}
}

// summary is reel ls's summary of an index row. A live row is checked
// against the store (it may have closed since); ok is false when the
// store no longer has it.
func (l *indexLister) summary(ctx context.Context, r index.Recording) (review.Summary, bool, error) {
	info := store.Info{Key: r.Key, Node: r.Node, Sender: r.Sender, Start: r.Start, Size: r.Size, Status: store.Status(r.Status), Reason: r.Reason}
	if r.Status == string(store.StatusLive) {
		i, err := l.st.Stat(ctx, r.Key)
		if errors.Is(err, store.ErrNotFound) {
			return review.Summary{}, false, nil
		}
		if err == nil {
			info = i
		}
	}
	if r.Status == string(store.StatusLive) || l.full || r.Kind == index.KindKubernetes {
		s, err := review.Summarize(ctx, l.st, info, review.Limits{})
		return s, true, err
	}
	s := review.Summary{Info: info}
	if !r.End.IsZero() {
		d := r.End.Sub(r.Start).Seconds()
		s.Duration = &d
	}
	switch {
	case r.Login != "" && r.LocalUser != "" && r.Login != r.LocalUser:
		s.User = r.Login + "→" + r.LocalUser
	case r.Login != "":
		s.User = r.Login
	case r.LocalUser != "":
		s.User = r.LocalUser
	default:
		s.User = r.User
	}
	s.Command = r.Command
	if s.Command == "" {
		s.Command = r.Title
	}
	return s, true, nil
}
