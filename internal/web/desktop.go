package web

// Desktop recordings (reel vnc, docs/desktop-format.md) in the player.
// The page's own script (assets/desktop.js) draws them on a canvas. The
// server hands it the recording's keyframe table (desk/index.json), then
// one segment per keyframe (desk/seg/{i}): the stored bytes from keyframe
// i to keyframe i+1, which decode with nothing from before them. A seek
// fetches the segment of the keyframe before the moment, and only that.

import (
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/reel-rec/reel/internal/desktop"
	"github.com/reel-rec/reel/internal/index"
	"github.com/reel-rec/reel/internal/store"
)

// deskCacheSize is how many recordings' keyframe tables are kept.
const deskCacheSize = 64

// deskIndexes keeps the keyframe tables of desktop recordings, extended
// as a live recording grows (desktop.Index.Continue), so a recording is
// scanned once.
type deskIndexes struct {
	mu sync.Mutex
	m  map[string]*deskEntry
}

type deskEntry struct {
	mu   sync.Mutex // held while scanning
	ix   *desktop.Index
	used time.Time
}

// get returns key's index covering at least its first size bytes (the
// complete records of rd).
func (c *deskIndexes) get(key string, rd store.Reader, size int64) (*desktop.Index, error) {
	c.mu.Lock()
	if c.m == nil {
		c.m = map[string]*deskEntry{}
	}
	e := c.m[key]
	if e == nil {
		if len(c.m) >= deskCacheSize {
			var oldest string
			for k, v := range c.m {
				if oldest == "" || v.used.Before(c.m[oldest].used) {
					oldest = k
				}
			}
			delete(c.m, oldest)
		}
		e = &deskEntry{}
		c.m[key] = e
	}
	e.used = time.Now()
	c.mu.Unlock()

	e.mu.Lock()
	defer e.mu.Unlock()
	switch {
	case e.ix == nil:
		ix, err := desktop.Scan(io.NewSectionReader(rd, 0, size))
		if err != nil {
			return nil, err
		}
		e.ix = ix
	case e.ix.Size < size:
		e.ix.Continue(io.NewSectionReader(rd, e.ix.Size, size-e.ix.Size))
	}
	// A copy: the entry's keyframes grow under the lock only.
	ix := *e.ix
	ix.Keyframes = ix.Keyframes[:len(ix.Keyframes):len(ix.Keyframes)]
	return &ix, nil
}

// deskIndexDoc is what desk/index.json holds.
type deskIndexDoc struct {
	Width     int          `json:"width"`
	Height    int          `json:"height"`
	Duration  float64      `json:"duration"` // seconds: the last complete record's time
	Live      bool         `json:"live"`
	Keyframes [][2]float64 `json:"keyframes"` // [time in seconds, segment size in bytes]
	Problem   string       `json:"problem,omitempty"`
}

// deskOpen opens a recording for desktop playback and returns its
// index and the reader, which the caller closes.
func (s *Server) deskOpen(w http.ResponseWriter, r *http.Request, rec index.Recording) (*desktop.Index, store.Reader, bool) {
	if store.KindOf(rec.Key) != store.KindDesktop {
		http.Error(w, "not a desktop recording", http.StatusNotFound)
		return nil, nil, false
	}
	rd, err := s.Store.Open(r.Context(), rec.Key)
	if err != nil {
		s.storeError(w, rec.Key, err)
		return nil, nil, false
	}
	size, err := completeSize(rd)
	if err == nil {
		var ix *desktop.Index
		if ix, err = s.desks.get(rec.Key, rd, size); err == nil {
			return ix, rd, true
		}
	}
	rd.Close()
	s.Log.Warn("ui: desktop recording unreadable", "key", rec.Key, "err", err)
	http.Error(w, "cannot read this desktop recording: "+err.Error(), http.StatusUnprocessableEntity)
	return nil, nil, false
}

// deskIndexJSON serves the keyframe table: the player's first request
// (audited as playing the recording).
func (s *Server) deskIndexJSON(w http.ResponseWriter, r *http.Request, rec index.Recording) {
	ix, rd, ok := s.deskOpen(w, r, rec)
	if !ok {
		return
	}
	rd.Close()
	if !s.auditFirst(w, r, "play", rec.Key, "") {
		return
	}
	doc := deskIndexDoc{Width: ix.Header.Width, Height: ix.Header.Height, Duration: ix.Duration.Seconds(),
		Live: rec.Status == string(store.StatusLive), Keyframes: [][2]float64{}}
	for i, k := range ix.Keyframes {
		end := ix.Size
		if i+1 < len(ix.Keyframes) {
			end = ix.Keyframes[i+1].Off
		}
		doc.Keyframes = append(doc.Keyframes, [2]float64{k.T.Seconds(), float64(end - k.Off)})
	}
	if ix.Err != nil {
		doc.Problem = "the recording is damaged after " + moment(ix.Duration.Seconds()) + ": " + ix.Err.Error()
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "private, no-cache")
	json.NewEncoder(w).Encode(doc)
}

// deskSegment serves segment i: the recording's bytes from keyframe i to
// keyframe i+1 (to the last complete record, for the last one).
func (s *Server) deskSegment(w http.ResponseWriter, r *http.Request, rec index.Recording) {
	i, err := strconv.Atoi(r.PathValue("i"))
	if err != nil || i < 0 {
		http.Error(w, "no such segment", http.StatusNotFound)
		return
	}
	ix, rd, ok := s.deskOpen(w, r, rec)
	if !ok {
		return
	}
	defer rd.Close()
	if i >= len(ix.Keyframes) {
		http.Error(w, "no such segment", http.StatusNotFound)
		return
	}
	from, to := ix.Keyframes[i].Off, ix.Size
	last := i+1 == len(ix.Keyframes)
	if !last {
		to = ix.Keyframes[i+1].Off
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	if last && rec.Status == string(store.StatusLive) {
		w.Header().Set("Cache-Control", "private, no-cache")
	} else {
		// Stored bytes before the last complete record never change.
		w.Header().Set("Cache-Control", "private, max-age=86400")
	}
	http.ServeContent(w, r, "", time.Time{}, io.NewSectionReader(rd, from, to-from))
}
