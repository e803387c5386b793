package recorder

import (
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Metrics are the recorder's counters, served in Prometheus' text format
// by ServeHTTP.
type Metrics struct {
	sessionsOpen  atomic.Int64
	bytesReceived atomic.Int64
	bytesDurable  atomic.Int64
	events        atomic.Int64
	sessionsTotal labeled // "proto,status"
	errors        labeled // kind

	syncMu      sync.Mutex
	syncBuckets [len(syncBounds) + 1]int64
	syncCount   int64
	syncSum     float64
	syncFiles   int64

	// Extra, when set, writes more metrics (the store's, the disk alarm).
	Extra func(w io.Writer)
}

var syncBounds = [...]float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

func (m *Metrics) observeSync(d time.Duration, files int) {
	m.syncMu.Lock()
	defer m.syncMu.Unlock()
	sec := d.Seconds()
	i, _ := slices.BinarySearch(syncBounds[:], sec)
	m.syncBuckets[i]++
	m.syncCount++
	m.syncSum += sec
	m.syncFiles += int64(files)
}

// SessionsOpen is the number of recordings being received now.
func (m *Metrics) SessionsOpen() int64 { return m.sessionsOpen.Load() }

// BytesReceived is the total of recording bytes received.
func (m *Metrics) BytesReceived() int64 { return m.bytesReceived.Load() }

// Errors returns the count of errors of one kind.
func (m *Metrics) Errors(kind string) int64 { return m.errors.get(kind) }

// ServeHTTP writes the metrics in Prometheus' text exposition format.
func (m *Metrics) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4")
	m.WriteTo(w)
}

// WriteTo writes the metrics in Prometheus' text exposition format.
func (m *Metrics) WriteTo(w io.Writer) (int64, error) {
	cw := &countWriter{w: w}
	p := func(format string, args ...any) { fmt.Fprintf(cw, format, args...) }
	p("# HELP reel_sessions_open Recordings being received now.\n# TYPE reel_sessions_open gauge\nreel_sessions_open %d\n", m.sessionsOpen.Load())
	p("# HELP reel_received_bytes_total Recording bytes received.\n# TYPE reel_received_bytes_total counter\nreel_received_bytes_total %d\n", m.bytesReceived.Load())
	p("# HELP reel_durable_bytes_total Recording bytes synced to stable storage (what acks count).\n# TYPE reel_durable_bytes_total counter\nreel_durable_bytes_total %d\n", m.bytesDurable.Load())
	p("# HELP reel_events_total Events stored.\n# TYPE reel_events_total counter\nreel_events_total %d\n", m.events.Load())
	p("# HELP reel_sessions_total Recordings finished, by protocol and final status.\n# TYPE reel_sessions_total counter\n")
	m.sessionsTotal.each(func(k string, v int64) {
		proto, status, _ := strings.Cut(k, ",")
		p("reel_sessions_total{proto=%q,status=%q} %d\n", proto, status, v)
	})
	p("# HELP reel_errors_total Errors, by kind.\n# TYPE reel_errors_total counter\n")
	m.errors.each(func(k string, v int64) { p("reel_errors_total{kind=%q} %d\n", k, v) })

	m.syncMu.Lock()
	p("# HELP reel_sync_seconds Duration of one group-commit sync round.\n# TYPE reel_sync_seconds histogram\n")
	var cum int64
	for i, b := range syncBounds {
		cum += m.syncBuckets[i]
		p("reel_sync_seconds_bucket{le=\"%g\"} %d\n", b, cum)
	}
	p("reel_sync_seconds_bucket{le=\"+Inf\"} %d\nreel_sync_seconds_sum %g\nreel_sync_seconds_count %d\n", m.syncCount, m.syncSum, m.syncCount)
	p("# HELP reel_synced_files_total Recordings synced, summed over rounds.\n# TYPE reel_synced_files_total counter\nreel_synced_files_total %d\n", m.syncFiles)
	m.syncMu.Unlock()
	if m.Extra != nil {
		m.Extra(cw)
	}
	return cw.n, cw.err
}

type countWriter struct {
	w   io.Writer
	n   int64
	err error
}

func (c *countWriter) Write(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	n, err := c.w.Write(p)
	c.n += int64(n)
	c.err = err
	return n, err
}

// labeled is a set of counters keyed by a label value.
type labeled struct {
	mu sync.Mutex
	m  map[string]int64
}

func (l *labeled) add(k string) {
	l.mu.Lock()
	if l.m == nil {
		l.m = map[string]int64{}
	}
	l.m[k]++
	l.mu.Unlock()
}

func (l *labeled) get(k string) int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.m[k]
}

func (l *labeled) each(f func(string, int64)) {
	l.mu.Lock()
	keys := make([]string, 0, len(l.m))
	for k := range l.m {
		keys = append(keys, k)
	}
	vals := make(map[string]int64, len(l.m))
	for k, v := range l.m {
		vals[k] = v
	}
	l.mu.Unlock()
	slices.Sort(keys)
	for _, k := range keys {
		f(k, vals[k])
	}
}
