package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/reel-rec/reel/internal/index"
	"github.com/reel-rec/reel/internal/review"
	"github.com/reel-rec/reel/internal/review/player"
)

func init() {
	register(&command{name: "search", summary: "find text that was on the screen: recording, moment, line", run: searchCmd{now: time.Now}.run})
}

const searchUsage = `
Usage: reel search [flags] TEXT

Finds TEXT in what the recorded terminals displayed (the screen text, as
the index holds it: no escape sequences, no typed input) and prints, for
each line that has it:

    KEY  +MOMENT  LINE

KEY is the recording's key, MOMENT how far into the recording the line
appeared (+1:23), LINE the line with the match highlighted when standard
output is a terminal. Newest recordings first; within one, in time order.
"reel play --at MOMENT KEY" replays from there.

TEXT is a substring, matched like grep -F -i: at least 3 characters,
spaces and any punctuation taken literally, case ignored.

It reads the index that "reel serve" keeps (the same --dst, --statedir and
--index); see "reel index". --since and --until take what "reel ls" takes
and apply to the recording's start; --user matches the SSH user, the local
user or the tailnet user; --node and --user end in "*" to match a prefix.

--json prints one JSON object per hit instead: key, node, user, start,
at (seconds into the recording), moment, chunk (its start and end), line
and match (the byte offsets of the match in line).

Examples:
    reel search 'systemctl restart'
    reel search --user alice --since 7d 'DROP TABLE'
    reel search --json --node 'web-*' 'permission denied' | jq -r .key
`

// searchCmd is "reel search"; now is its clock, for --since 24h.
type searchCmd struct{ now func() time.Time }

func (c searchCmd) run(ctx context.Context, env *cmdEnv, args []string) error {
	fs := newFlagSet(env, "search", searchUsage)
	sf := addStoreFlags(fs, env)
	xf := addIndexFlags(fs, env, true)
	node := fs.String("node", "", "only recordings sent by this node (a trailing * matches a prefix)")
	user := fs.String("user", "", "only recordings of this user (SSH, local or tailnet user)")
	kind := fs.String("kind", "", "only recordings of this kind: ssh or kubernetes")
	since := fs.String("since", "", "only recordings started at or after this time (24h, 2026-11-01, ...)")
	until := fs.String("until", "", "only recordings started before this time")
	asJSON := fs.Bool("json", false, "print one JSON object per hit per line")
	limit := fs.Int("limit", 100, "print at most this many hits; 0 for all")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	switch {
	case fs.NArg() == 0:
		return usagef("name the text to find")
	case fs.NArg() > 1:
		return usagef("one search text (quote it to search for spaces: 'a b'), got %d arguments", fs.NArg())
	case *limit < 0:
		return usagef("--limit must not be negative")
	}
	text := fs.Arg(0)
	loc := envLocation(env)
	now := c.now()
	f := index.Filter{Node: *node, User: *user, Kind: index.Kind(*kind)}
	switch f.Kind {
	case "", index.KindSSH, index.KindKubernetes, index.KindDesktop:
	default:
		return usagef("--kind %q: want ssh, kubernetes or desktop", *kind)
	}
	var err error
	if f.Since, err = parseWhen(*since, now, loc); err != nil {
		return usagef("--since: %v", err)
	}
	if f.Until, err = parseWhen(*until, now, loc); err != nil {
		return usagef("--until: %v", err)
	}
	where := indexLocation(sf.dst, xf.stateDir, xf.url)
	ix, err := openIndexIfPresent(ctx, where)
	if err != nil {
		return err
	}
	if ix == nil {
		if where == "" {
			return errors.New("no index to search: --index is off, or --dst is a bucket and neither --statedir nor --index says where the index is")
		}
		return fmt.Errorf("no index at %s: reel serve builds it as recordings arrive, and reel index rebuild builds it from the store", where)
	}
	defer ix.Close()

	_, _, color := player.IsTerminal(env.stdout)
	enc := json.NewEncoder(env.stdout)
	enc.SetEscapeHTML(false)
	shown := 0
	var first *index.Hit
	after := ""
	for {
		page := index.Page{After: after, Limit: index.MaxLimit}
		if *limit > 0 {
			page.Limit = min(index.MaxLimit, *limit-shown)
		}
		hits, next, err := ix.Search(ctx, text, f, page)
		if errors.Is(err, index.ErrQueryShort) {
			return usagef("%q is too short: search for at least %d characters", text, index.MinQuery)
		}
		if err != nil {
			return err
		}
		for i := range hits {
			h := hits[i]
			if first == nil {
				first = &h
			}
			shown++
			if *asJSON {
				if err := enc.Encode(searchHit{
					Key: h.Recording.Key, Node: h.Recording.Node, User: h.Recording.User, Start: h.Recording.Start,
					At: h.At, Moment: formatMoment(h.At), Chunk: [2]float64{h.TStart, h.TEnd}, Line: h.Line, Match: h.Match,
				}); err != nil {
					return err
				}
				continue
			}
			fmt.Fprintf(env.stdout, "%s  +%s  %s\n", h.Recording.Key, formatMoment(h.At), highlight(h.Line, h.Match, color))
		}
		if next == "" || *limit > 0 && shown >= *limit {
			if next != "" && !*asJSON {
				fmt.Fprintf(env.stderr, "reel search: more hits than --limit %d; narrow the search or raise --limit\n", *limit)
			}
			break
		}
		after = next
	}
	switch {
	case shown == 0:
		fmt.Fprintf(env.stderr, "reel search: no screen text has %q\n", text)
		return errSilent // like grep: exit 1 when nothing is found
	case !*asJSON:
		fmt.Fprintf(env.stderr, "replay a hit: reel play --at %s %s\n", formatMoment(first.At), first.Recording.Key)
	}
	return nil
}

// searchHit is one line of "reel search --json".
type searchHit struct {
	Key    string     `json:"key"`
	Node   string     `json:"node"`
	User   string     `json:"user"`
	Start  time.Time  `json:"start"`
	At     float64    `json:"at"`
	Moment string     `json:"moment"`
	Chunk  [2]float64 `json:"chunk"`
	Line   string     `json:"line"`
	Match  [2]int     `json:"match"`
}

// formatMoment shows seconds into a recording as M:SS or H:MM:SS.
func formatMoment(sec float64) string {
	s := int64(max(sec, 0))
	if s >= 3600 {
		return fmt.Sprintf("%d:%02d:%02d", s/3600, s/60%60, s%60)
	}
	return fmt.Sprintf("%d:%02d", s/60, s%60)
}

// highlight makes a line safe for a terminal and, when color, shows the
// match in bold red as grep does.
func highlight(line string, m [2]int, color bool) string {
	if m[0] < 0 || m[1] > len(line) || m[0] > m[1] {
		return review.Sanitize(line, len(line)+1)
	}
	pre, match, post := review.Sanitize(line[:m[0]], len(line)+1), review.Sanitize(line[m[0]:m[1]], len(line)+1), review.Sanitize(line[m[1]:], len(line)+1)
	if !color {
		return pre + match + post
	}
	var b strings.Builder
	b.WriteString(pre)
	b.WriteString("\x1b[1;31m")
	b.WriteString(match)
	b.WriteString("\x1b[0m")
	b.WriteString(post)
	return b.String()
}

// parseMoment reads a moment in a recording (reel play --at): "" (the
// start), M:SS, H:MM:SS, or seconds with an optional unit (83, 83.5s, 2m).
func parseMoment(s string) (float64, error) {
	s = strings.TrimPrefix(strings.TrimSpace(s), "+")
	if s == "" {
		return 0, nil
	}
	if strings.Contains(s, ":") {
		parts := strings.Split(s, ":")
		if len(parts) > 3 {
			return 0, fmt.Errorf("%q: want M:SS or H:MM:SS", s)
		}
		var total float64
		for _, p := range parts {
			v, err := strconv.ParseFloat(p, 64)
			if err != nil || v < 0 || math.IsInf(v, 0) {
				return 0, fmt.Errorf("%q: want M:SS or H:MM:SS", s)
			}
			total = total*60 + v
		}
		return total, nil
	}
	if v, err := strconv.ParseFloat(s, 64); err == nil && v >= 0 && !math.IsInf(v, 0) {
		return v, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return d.Seconds(), nil
	}
	return 0, fmt.Errorf("%q is not a moment (1:23, 1:02:03, 83s)", s)
}
