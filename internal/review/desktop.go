package review

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/reel-rec/reel/internal/desktop"
	"github.com/reel-rec/reel/internal/store"
)

// desktopLines are a desktop recording's record lines
// (docs/desktop-format.md): binary, so no byte but '\n' is blank, and a
// final line without its newline is never trusted (a record in flight).
var desktopLines = lineFormat{
	blank: func(byte) bool { return false },
	time: func(line []byte, final bool) (float64, bool, error) {
		if final || len(line) == 0 {
			return 0, false, nil
		}
		t, err := desktop.RecordTime(line)
		if err != nil {
			return 0, false, fmt.Errorf("%w: %v", ErrNotEvent, err)
		}
		return t.Seconds(), true, nil
	},
}

// ReadDesktopSummary is ReadSummary for a desktop recording (reel vnc's
// format, internal/desktop): the header from line 1, the duration from
// the last complete record, read backwards from the end within the same
// limits. User is the authenticated user; Command "desktop HOST" (the
// desktop's name in the policy, else its address). Info is left zero.
func ReadDesktopSummary(ctx context.Context, r io.ReaderAt, size int64, lim Limits) Summary {
	s := Summary{Kind: store.KindDesktop}
	head, _, err := readFirstLine(ctx, r, size, lim.maxHeader())
	i := bytes.IndexByte(head, '\n')
	switch {
	case err != nil:
	case i < 0 && int64(len(head)) > lim.maxHeader():
		err = fmt.Errorf("desktop: header longer than %d bytes", lim.maxHeader())
	case i < 0:
		err = errors.New("desktop: no header: the recording is empty or its first line is cut")
	}
	var h desktop.Header
	if err == nil {
		h, err = desktop.ParseHeader(head[:i])
	}
	if err != nil {
		s.HeaderErr = err
		s.DurationErr = fmt.Errorf("no header: %w", err)
		return s
	}
	s.Desktop = &h
	s.User = h.User
	s.Command = "desktop " + cmp.Or(h.Host, h.Upstream)
	t, err := lastLineTime(ctx, r, size, int64(i)+1, lim.maxTail(), tailBlock, desktopLines)
	if err != nil {
		s.DurationErr = err
		return s
	}
	s.Duration = &t
	return s
}

// matchName reports whether user names u: all of it, or the part before
// '@', ignoring case.
func matchName(u, user string) bool {
	if u == "" {
		return false
	}
	if strings.EqualFold(u, user) {
		return true
	}
	local, _, ok := strings.Cut(u, "@")
	return ok && strings.EqualFold(local, user)
}
