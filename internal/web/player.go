package web

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/reel-rec/reel/internal/asciicast"
	"github.com/reel-rec/reel/internal/index"
	"github.com/reel-rec/reel/internal/segment"
	"github.com/reel-rec/reel/internal/store"
)

// Player formats the recording page hands to app.js.
const (
	formatWhole     = "asciicast" // small: the whole recording, as asciicast v2
	formatSegmented = "segmented" // large: snapshot segments
	formatLive      = "live"      // in progress: the ALiS WebSocket
)

type recordingData struct {
	pageData
	Row     row
	Format  string
	Src     string
	Prepare string
	Idle    bool
	Hits    []recHit
}

type recHit struct {
	At, T                string
	Before, Match, After string
}

func (s *Server) format(rec index.Recording) string {
	switch {
	case rec.Status == string(store.StatusLive):
		return formatLive
	case rec.Size > s.SegmentThreshold:
		return formatSegmented
	}
	return formatWhole
}

func (s *Server) recordingPage(w http.ResponseWriter, r *http.Request, rec index.Recording) {
	q := r.URL.Query().Get("q")
	if !s.auditFirst(w, r, "view", rec.Key, q) {
		return
	}
	d := recordingData{pageData: s.pageData(w, r, "Recording"), Row: rowOf(rec, s.Now()), Format: s.format(rec)}
	d.Title = d.Row.Start + " " + d.Row.Node
	base := d.Row.URL
	hits := s.recordingHits(r, rec, q)
	for _, h := range hits {
		d.Hits = append(d.Hits, recHit{At: moment(h.At), T: strconv.FormatFloat(h.At, 'f', -1, 64), Before: h.before, Match: h.match, After: h.after})
	}
	switch d.Format {
	case formatLive:
		d.Src = base + "/live"
	case formatSegmented:
		d.Src = base + "/seg/index.json"
		if q != "" {
			d.Src += "?q=" + url.QueryEscape(q)
		}
		d.Prepare = base + "/prepare"
		if ct, err := s.segs.get(r.Context(), rec.Key); err == nil {
			if ok, _ := ct.ready(); ok {
				d.Prepare = ""
			}
		}
	default:
		d.Src = base + "/cast"
		if q != "" {
			d.Src += "?q=" + url.QueryEscape(q)
		}
	}
	s.render(w, "recording", d)
}

type lineHit struct {
	At                   float64 // the moment the line appeared
	before, match, after string
}

// recordingHits finds q in rec's screen text, for markers: at most 200.
func (s *Server) recordingHits(r *http.Request, rec index.Recording, q string) []lineHit {
	if len([]rune(q)) < 3 {
		return nil
	}
	// The recording's node and its exact start select it alone.
	f := index.Filter{Node: rec.Node, Since: rec.Start, Until: rec.Start.Add(time.Microsecond)}
	s.scope(viewerOf(r), &f)
	var out []lineHit
	p := index.Page{Limit: 200}
	for len(out) < 200 {
		hits, next, err := s.Index.Search(r.Context(), q, f, p)
		if err != nil {
			s.Log.Warn("ui: search in a recording", "key", rec.Key, "err", err)
			break
		}
		for _, h := range hits {
			if h.Recording.Key != rec.Key {
				continue
			}
			x := hitOf(h, q)
			out = append(out, lineHit{At: h.At, before: x.Before, match: x.Match, after: x.After})
		}
		if next == "" {
			break
		}
		p.After = next
	}
	return out
}

func hitMarkers(hits []lineHit) []segment.Marker {
	ms := make([]segment.Marker, 0, len(hits))
	for _, h := range hits {
		ms = append(ms, segment.Marker{Time: h.At, Label: "found: " + strings.TrimSpace(h.before+h.match+h.after)})
	}
	sortMarkers(ms)
	return ms
}

func sortMarkers(ms []segment.Marker) {
	slices.SortStableFunc(ms, func(a, b segment.Marker) int {
		switch {
		case a.Time < b.Time:
			return -1
		case a.Time > b.Time:
			return 1
		}
		return 0
	})
}

// castData serves a small recording whole, as the player reads it:
// asciicast v2 made by the segment cutter from the bytes up to the last
// complete line (so times, Kubernetes resizes and input are what the
// segmented form would carry).
func (s *Server) castData(w http.ResponseWriter, r *http.Request, rec index.Recording) {
	if !s.auditFirst(w, r, "play", rec.Key, "") {
		return
	}
	rd, err := s.Store.Open(r.Context(), rec.Key)
	if err != nil {
		s.storeError(w, rec.Key, err)
		return
	}
	defer rd.Close()
	size, err := completeSize(rd)
	if err != nil {
		s.storeError(w, rec.Key, err)
		return
	}
	if size > 4*s.SegmentThreshold {
		http.Error(w, "recording too large to send whole: play it in segments", http.StatusRequestEntityTooLarge)
		return
	}
	var one *segment.Segment
	idx, err := segment.Cut(io.NewSectionReader(rd, 0, size), segment.Options{Span: math.MaxFloat64, MaxBytes: math.MaxInt}, func(sg *segment.Segment) error {
		one = sg
		return nil
	})
	out := asciicast.Header{Version: 2, Width: 80, Height: 24}
	if idx != nil {
		out.Width, out.Height = idx.Term.Cols, idx.Term.Rows
		out.Theme = idx.Term.Theme
	}
	var b bytes.Buffer
	enc := asciicast.NewEncoder(&b)
	if err := enc.WriteHeader(out); err != nil {
		s.storeError(w, rec.Key, err)
		return
	}
	switch {
	case errors.Is(err, segment.ErrEmpty):
		// Nothing to show: a header alone plays as an empty terminal.
		enc.WriteEvent(asciicast.Event{Time: 0, Code: asciicast.Output, Data: ""})
	case err != nil:
		s.Log.Warn("ui: recording unreadable", "key", rec.Key, "err", err)
		http.Error(w, "cannot read this recording: "+err.Error(), http.StatusUnprocessableEntity)
		return
	default:
		// Search hits become markers beside the recording's own.
		ms := hitMarkers(s.recordingHits(r, rec, r.URL.Query().Get("q")))
		for _, ev := range one.Events {
			for len(ms) > 0 && ms[0].Time <= ev.Time {
				enc.WriteEvent(asciicast.Event{Time: ms[0].Time, Code: asciicast.Marker, Data: ms[0].Label})
				ms = ms[1:]
			}
			enc.WriteEvent(ev)
		}
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "private, no-cache")
	w.Write(b.Bytes())
}

// download sends the stored bytes as they are (evidence), cut at the last
// complete line while the recording is live.
func (s *Server) download(w http.ResponseWriter, r *http.Request, rec index.Recording) {
	if da, ok := s.Access.(DownloadAccess); ok && !da.CanDownload(viewerOf(r), rec) {
		s.audit(r, "refused", rec.Key, "download: viewers policy")
		http.Error(w, "you may view this recording but not download it", http.StatusForbidden)
		return
	}
	if !s.auditFirst(w, r, "download", rec.Key, "") {
		return
	}
	rd, err := s.Store.Open(r.Context(), rec.Key)
	if err != nil {
		s.storeError(w, rec.Key, err)
		return
	}
	defer rd.Close()
	size := rd.Size()
	if rec.Status == string(store.StatusLive) {
		if size, err = completeSize(rd); err != nil {
			s.storeError(w, rec.Key, err)
			return
		}
	}
	name := strings.ReplaceAll(rec.Key, "/", "_")
	w.Header().Set("Content-Type", "application/x-asciicast")
	w.Header().Set("Content-Disposition", `attachment; filename="`+name+`"`)
	w.Header().Set("Cache-Control", "private, no-cache")
	http.ServeContent(w, r, "", time.Time{}, io.NewSectionReader(rd, 0, size))
}

func (s *Server) storeError(w http.ResponseWriter, key string, err error) {
	if errors.Is(err, store.ErrNotFound) {
		http.Error(w, "no such recording", http.StatusNotFound)
		return
	}
	s.Log.Error("ui: reading recording", "key", key, "err", err)
	http.Error(w, "cannot read the recording", http.StatusInternalServerError)
}

// segmentIndex serves the segmented index document, with the hits of ?q
// as markers. While the cut runs it answers 503 with Retry-After; the page
// waits for /prepare first.
func (s *Server) segmentIndex(w http.ResponseWriter, r *http.Request, rec index.Recording) {
	ct, ok := s.readyCut(w, r, rec)
	if !ok {
		return
	}
	q := r.URL.Query().Get("q")
	if !s.auditFirst(w, r, "play", rec.Key, q) {
		return
	}
	doc, err := indexWithMarkers(ct.index, hitMarkers(s.recordingHits(r, rec, q)))
	if err != nil {
		s.Log.Error("ui: segment index", "key", rec.Key, "err", err)
		http.Error(w, "cannot read the segment index", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "private, no-cache")
	w.Write(doc)
}

// segmentDoc serves segment {i}: gzipped as stored when the browser takes
// gzip (every browser does), else inflated.
func (s *Server) segmentDoc(w http.ResponseWriter, r *http.Request, rec index.Recording) {
	name, ok := strings.CutSuffix(r.PathValue("i"), ".json")
	i, err := strconv.Atoi(name)
	if !ok || err != nil || i < 0 {
		http.Error(w, "no such segment", http.StatusNotFound)
		return
	}
	ct, ok := s.readyCut(w, r, rec)
	if !ok {
		return
	}
	f, err := ct.segmentFile(i)
	if err != nil {
		http.Error(w, "no such segment", http.StatusNotFound)
		return
	}
	defer f.Close()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "private, max-age=86400")
	w.Header().Set("Vary", "Accept-Encoding")
	if acceptsGzip(r) {
		w.Header().Set("Content-Encoding", "gzip")
		if fi, err := f.Stat(); err == nil {
			w.Header().Set("Content-Length", strconv.FormatInt(fi.Size(), 10))
		}
		io.Copy(w, f)
		return
	}
	zr, err := gzip.NewReader(f)
	if err != nil {
		http.Error(w, "cannot read the segment", http.StatusInternalServerError)
		return
	}
	io.Copy(w, zr)
}

func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		enc, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.TrimSpace(enc) == "gzip" && strings.ReplaceAll(params, " ", "") != "q=0" {
			return true
		}
	}
	return false
}

// readyCut returns rec's finished cut, or answers why there is none.
func (s *Server) readyCut(w http.ResponseWriter, r *http.Request, rec index.Recording) (*cut, bool) {
	ct, err := s.segs.get(r.Context(), rec.Key)
	if err != nil {
		s.storeError(w, rec.Key, err)
		return nil, false
	}
	done, err := ct.ready()
	switch {
	case !done:
		w.Header().Set("Retry-After", "1")
		http.Error(w, "still preparing this recording: "+strconv.Itoa(ct.progress())+"%", http.StatusServiceUnavailable)
		return nil, false
	case errors.Is(err, segment.ErrEmpty):
		http.Error(w, "this recording has no output to play", http.StatusUnprocessableEntity)
		return nil, false
	case err != nil:
		http.Error(w, "cannot read this recording: "+err.Error(), http.StatusUnprocessableEntity)
		return nil, false
	}
	return ct, true
}

// prepareStatus starts the cut and reports its progress:
// {"done":bool,"progress":0-100,"error":"..."}.
func (s *Server) prepareStatus(w http.ResponseWriter, r *http.Request, rec index.Recording) {
	st := struct {
		Done     bool   `json:"done"`
		Progress int    `json:"progress"`
		Error    string `json:"error,omitempty"`
	}{}
	ct, err := s.segs.get(r.Context(), rec.Key)
	if err != nil {
		st.Error = "cannot read the recording"
	} else {
		var cerr error
		st.Done, cerr = ct.ready()
		st.Progress = ct.progress()
		if cerr != nil {
			st.Error = cerr.Error()
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	json.NewEncoder(w).Encode(st)
}
