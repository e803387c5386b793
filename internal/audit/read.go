package audit

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"iter"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Query selects entries. Zero fields select everything.
type Query struct {
	Since  time.Time // Time >= Since
	Until  time.Time // Time < Until
	User   string    // this user, ignoring case
	Action string    // this action
	Result string    // this result
}

func (q *Query) match(e *Entry) bool {
	return (q.Since.IsZero() || !e.Time.Before(q.Since)) &&
		(q.Until.IsZero() || e.Time.Before(q.Until)) &&
		(q.User == "" || strings.EqualFold(q.User, e.User)) &&
		(q.Action == "" || q.Action == e.Action) &&
		(q.Result == "" || q.Result == e.Result)
}

// months returns the months whose files may hold entries of q. Files are
// named by the month an entry was appended, which is its Time.
func (q *Query) months(all []string) []string {
	var out []string
	for _, m := range all {
		if !q.Since.IsZero() && m < monthOf(q.Since) {
			continue
		}
		if !q.Until.IsZero() && m > monthOf(q.Until) {
			continue
		}
		out = append(out, m)
	}
	return out
}

// A LineError is a line of the log that is not an entry: cut short by a
// crash, or not written by reel.
type LineError struct {
	File   string // file name, "2026-07.jsonl"
	Line   int    // 1-based; 0 when not known (reading backwards)
	Offset int64  // where the line starts
	Err    error
}

func (e *LineError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("audit: %s:%d: damaged line: %v", e.File, e.Line, e.Err)
	}
	return fmt.Sprintf("audit: %s at byte %d: damaged line: %v", e.File, e.Offset, e.Err)
}

func (e *LineError) Unwrap() error { return e.Err }

var errLineTooLong = errors.New("line too long")

var monthRE = regexp.MustCompile(`^[0-9]{4}-(0[1-9]|1[0-2])$`)

// listMonths returns the months that have a file in dir, oldest first.
func listMonths(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	var out []string
	for _, e := range ents {
		m, ok := strings.CutSuffix(e.Name(), ".jsonl")
		if ok && monthRE.MatchString(m) && e.Type().IsRegular() {
			out = append(out, m)
		}
	}
	slices.Sort(out)
	return out, nil
}

func parseEntry(line []byte) (Entry, error) {
	var e Entry
	d := json.NewDecoder(bytes.NewReader(line))
	d.DisallowUnknownFields()
	if err := d.Decode(&e); err != nil {
		return Entry{}, err
	}
	if d.More() {
		return Entry{}, errors.New("more than one value")
	}
	if e.Action == "" || e.Time.IsZero() {
		return Entry{}, errors.New("no time or action")
	}
	return e, nil
}

func isEntry(line []byte) bool {
	_, err := parseEntry(line)
	return err == nil
}

// Read yields the entries of the log in dir that match q, oldest first. A
// damaged line yields a *LineError, and reading goes on. A last line
// still being written is not read.
func Read(ctx context.Context, dir string, q Query) iter.Seq2[Entry, error] {
	return func(yield func(Entry, error) bool) {
		all, err := listMonths(dir)
		if err != nil {
			yield(Entry{}, err)
			return
		}
		for _, m := range q.months(all) {
			stop := false
			err := forEachLine(dir, m, func(line []byte, n int, off int64, lerr error) bool {
				if err := ctx.Err(); err != nil {
					yield(Entry{}, err)
					stop = true
					return false
				}
				if lerr == nil {
					var e Entry
					if e, lerr = parseEntry(line); lerr == nil {
						if q.match(&e) && !yield(e, nil) {
							stop = true
							return false
						}
						return true
					}
				}
				if !yield(Entry{}, &LineError{File: m + ".jsonl", Line: n, Offset: off, Err: lerr}) {
					stop = true
					return false
				}
				return true
			})
			if stop {
				return
			}
			if err != nil && !yield(Entry{}, err) {
				return
			}
		}
	}
}

// forEachLine calls fn for each complete line of month's file, in order,
// with its 1-based number and offset; a line longer than maxLine comes
// with errLineTooLong. It returns how many bytes follow the last newline.
func forEachLine(dir, month string, fn func(line []byte, n int, off int64, err error) bool) error {
	_, err := forEachLineTail(dir, month, fn)
	return err
}

func forEachLineTail(dir, month string, fn func(line []byte, n int, off int64, err error) bool) (tail int64, err error) {
	f, err := os.Open(filepath.Join(dir, month+".jsonl"))
	if err != nil {
		return 0, fmt.Errorf("audit: %w", err)
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 64<<10)
	var (
		pos, start int64 // bytes read; where the current line starts
		n          int
		long       bool // the current line is longer than maxLine
		buf        []byte
	)
	for {
		chunk, err := r.ReadSlice('\n')
		pos += int64(len(chunk))
		switch {
		case err == bufio.ErrBufferFull:
			if !long {
				buf = append(buf, chunk...)
				if len(buf) > maxLine {
					long, buf = true, nil
				}
			}
			continue
		case err == io.EOF:
			return pos - start, nil
		case err != nil:
			return 0, fmt.Errorf("audit: %w", err)
		}
		n++
		var line []byte
		var lerr error
		if !long {
			line = append(buf, chunk[:len(chunk)-1]...)
		}
		if long || len(line) > maxLine {
			line, lerr = nil, errLineTooLong
		}
		if !fn(line, n, start, lerr) {
			return 0, nil
		}
		buf, long, start = buf[:0], false, pos
	}
}

// scanBackward calls fn for each complete (newline-terminated) line of
// the first size bytes of f, last first, with the line's offset, until fn
// returns false. Bytes after the last newline are not a line. A line
// longer than maxLine comes with errLineTooLong and no bytes.
func scanBackward(f io.ReaderAt, size int64, fn func(line []byte, off int64, err error) bool) error {
	const block = 64 << 10
	var (
		pos     = size
		lineEnd = int64(-1) // offset of the newline ending the line being gathered
		cur     []byte      // the part of that line read so far (its end)
		long    bool
		chunk   = make([]byte, block)
	)
	for pos > 0 {
		n := min(int64(block), pos)
		c := chunk[:n]
		if _, err := f.ReadAt(c, pos-n); err != nil {
			return err
		}
		base := pos - n
		end := n // end of the unconsumed part of c
		for i := n - 1; i >= 0; i-- {
			if c[i] != '\n' {
				continue
			}
			if lineEnd >= 0 {
				var line []byte
				var err error
				if long || int64(len(cur))+end-(i+1) > maxLine {
					err = errLineTooLong
				} else {
					line = append(slices.Clone(c[i+1:end]), cur...)
				}
				if !fn(line, base+i+1, err) {
					return nil
				}
			}
			lineEnd, cur, long, end = base+i, nil, false, i
		}
		if lineEnd >= 0 && !long {
			if int64(len(cur))+end > maxLine {
				long, cur = true, nil
			} else {
				cur = append(slices.Clone(c[:end]), cur...)
			}
		}
		pos = base
	}
	if lineEnd >= 0 {
		var err error
		if long {
			err = errLineTooLong
			cur = nil
		}
		fn(cur, 0, err)
	}
	return nil
}

// Page returns up to limit (1 to 1000; 0 means 100) entries of the log in
// dir that match q, newest first, starting before cursor ("" for the
// newest), and the cursor of the next page, "" after the oldest. Damaged
// lines are skipped (Verify reports them).
func Page(ctx context.Context, dir string, q Query, cursor string, limit int) ([]Entry, string, error) {
	switch {
	case limit == 0:
		limit = 100
	case limit < 0 || limit > 1000:
		return nil, "", fmt.Errorf("audit: page size %d: want 1 to 1000", limit)
	}
	startMonth, startOff, err := parseCursor(cursor)
	if err != nil {
		return nil, "", err
	}
	all, err := listMonths(dir)
	if err != nil {
		return nil, "", err
	}
	months := q.months(all)
	var out []Entry
	next := ""
	for i := len(months) - 1; i >= 0 && next == ""; i-- {
		m := months[i]
		if startMonth != "" && m > startMonth {
			continue
		}
		f, err := os.Open(filepath.Join(dir, m+".jsonl"))
		if err != nil {
			return nil, "", fmt.Errorf("audit: %w", err)
		}
		end := int64(-1)
		if m == startMonth {
			end = startOff
		}
		if end < 0 {
			fi, err := f.Stat()
			if err != nil {
				f.Close()
				return nil, "", fmt.Errorf("audit: %w", err)
			}
			end = fi.Size()
		}
		err = scanBackward(f, end, func(line []byte, off int64, lerr error) bool {
			if ctx.Err() != nil {
				return false
			}
			if lerr != nil {
				return true
			}
			e, perr := parseEntry(line)
			if perr != nil || !q.match(&e) {
				return true
			}
			if len(out) == limit {
				next = formatCursor(m, off+int64(len(line))+1)
				return false
			}
			out = append(out, e)
			return true
		})
		f.Close()
		if err != nil {
			return nil, "", fmt.Errorf("audit: %w", err)
		}
		if err := ctx.Err(); err != nil {
			return nil, "", err
		}
	}
	return out, next, nil
}

// A cursor is "MONTH:OFFSET": the page goes on with the lines of MONTH's
// file that end before OFFSET, then older months.
func formatCursor(month string, off int64) string {
	return month + ":" + strconv.FormatInt(off, 10)
}

// ErrBadCursor is Page's answer to a cursor it did not make.
var ErrBadCursor = errors.New("audit: bad page cursor")

func parseCursor(c string) (string, int64, error) {
	if c == "" {
		return "", -1, nil
	}
	m, o, ok := strings.Cut(c, ":")
	if !ok || !monthRE.MatchString(m) || o == "" || len(o) > 18 || strings.Trim(o, "0123456789") != "" {
		return "", 0, ErrBadCursor
	}
	off, err := strconv.ParseInt(o, 10, 64)
	if err != nil || off < 0 {
		return "", 0, ErrBadCursor
	}
	return m, off, nil
}

// A Problem is something Verify found wrong with the log.
type Problem struct {
	File string
	Line int
	Msg  string
}

func (p Problem) String() string { return fmt.Sprintf("%s:%d: %s", p.File, p.Line, p.Msg) }

// Verify reads the whole log in dir and checks that every line is an
// entry and that each entry's Prev is the hash of the entry before it. It
// returns how many entries it read and what it found wrong; err is for a
// log it could not read. An edited, inserted or removed line shows as a
// broken chain at the line after it; lines cut off the end of the log do
// not show (the log's newest entries are also kept by the recorder's
// log output).
func Verify(ctx context.Context, dir string) (entries int, problems []Problem, err error) {
	months, err := listMonths(dir)
	if err != nil {
		return 0, nil, err
	}
	prev := ""
	for i, m := range months {
		name := m + ".jsonl"
		tail, err := forEachLineTail(dir, m, func(line []byte, n int, _ int64, lerr error) bool {
			if ctx.Err() != nil {
				return false
			}
			var e Entry
			if lerr == nil {
				e, lerr = parseEntry(line)
			}
			if lerr != nil {
				problems = append(problems, Problem{name, n, "damaged line: " + lerr.Error()})
				return true
			}
			entries++
			if e.Prev != prev {
				msg := "chain broken: the line before this one was changed, removed or inserted"
				if prev == "" {
					msg = "chain broken: the first entry of the log has a predecessor (the log's beginning was removed?)"
				}
				problems = append(problems, Problem{name, n, msg})
			}
			sum := sha256.Sum256(line)
			prev = hex.EncodeToString(sum[:])
			return true
		})
		if err != nil {
			return entries, problems, err
		}
		if err := ctx.Err(); err != nil {
			return entries, problems, err
		}
		if tail > 0 && i < len(months)-1 {
			problems = append(problems, Problem{name, 0, fmt.Sprintf("damaged: the file ends with %d bytes of an unfinished line (cut by a crash?)", tail)})
		}
	}
	return entries, problems, nil
}

// Read yields the log's entries that match q, oldest first; see Read.
func (l *Log) Read(ctx context.Context, q Query) iter.Seq2[Entry, error] { return Read(ctx, l.dir, q) }

// Page returns one page of the log's entries, newest first; see Page.
func (l *Log) Page(ctx context.Context, q Query, cursor string, limit int) ([]Entry, string, error) {
	return Page(ctx, l.dir, q, cursor, limit)
}
