package recorder

import (
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// Metrics counts what a Server does, as Prometheus collectors (README.md,
// "Metrics", lists them). Make it with NewMetrics.
type Metrics struct {
	// Counted on every body read or sync: plain atomics, read by the
	// collectors at scrape time.
	sessionsOpen  atomic.Int64
	connsOpen     atomic.Int64
	bytesReceived atomic.Int64
	bytesDurable  atomic.Int64
	events        atomic.Int64

	sessionsTotal labeled // proto, status
	abandoned     labeled // proto
	errors        labeled // kind
	refused       labeled // reason
	syncSeconds   prometheus.Histogram
	syncedFiles   prometheus.Counter

	collectors []prometheus.Collector
}

// NewMetrics makes the recorder's metrics and registers them with reg, if
// not nil.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		sessionsTotal: newLabeled("reel_sessions_total", "Recordings finished, by protocol and final status.", "proto", "status"),
		abandoned:     newLabeled("reel_uploads_abandoned_total", "Uploads that ended before their header line arrived; nothing was stored.", "proto"),
		errors:        newLabeled("reel_errors_total", "Errors, by kind.", "kind"),
		refused:       newLabeled("reel_refused_total", "Connections and recordings refused by --allow-from or a limit, by reason.", "reason"),
		syncSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "reel_sync_seconds",
			Help:    "Duration of one group-commit sync round.",
			Buckets: []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10},
		}),
		syncedFiles: prometheus.NewCounter(prometheus.CounterOpts{Name: "reel_synced_files_total", Help: "Recordings synced, summed over rounds."}),
	}
	gauge := func(name, help string, v *atomic.Int64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 { return float64(v.Load()) })
	}
	counter := func(name, help string, v *atomic.Int64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, func() float64 { return float64(v.Load()) })
	}
	m.collectors = []prometheus.Collector{
		gauge("reel_sessions_open", "Recordings being received now.", &m.sessionsOpen),
		gauge("reel_connections_open", "Connections to the recording API open now.", &m.connsOpen),
		counter("reel_received_bytes_total", "Recording bytes received.", &m.bytesReceived),
		counter("reel_durable_bytes_total", "Recording bytes synced to stable storage (what acks count).", &m.bytesDurable),
		counter("reel_events_total", "Events stored.", &m.events),
		m.sessionsTotal.vec, m.abandoned.vec, m.errors.vec, m.refused.vec,
		m.syncSeconds, m.syncedFiles,
	}
	if reg != nil {
		reg.MustRegister(m.collectors...)
	}
	return m
}

func (m *Metrics) observeSync(d time.Duration, files int) {
	m.syncSeconds.Observe(d.Seconds())
	m.syncedFiles.Add(float64(files))
}

// SessionsOpen is the number of recordings being received now.
func (m *Metrics) SessionsOpen() int64 { return m.sessionsOpen.Load() }

// ConnsOpen is the number of connections open now.
func (m *Metrics) ConnsOpen() int64 { return m.connsOpen.Load() }

// BytesReceived is the total of recording bytes received.
func (m *Metrics) BytesReceived() int64 { return m.bytesReceived.Load() }

// Errors returns the count of errors of one kind.
func (m *Metrics) Errors(kind string) int64 { return m.errors.get(kind) }

// Refused returns how many connections or recordings were refused for
// reason ("allow_from", "conns", "conns_per_sender", "sessions",
// "sessions_per_sender").
func (m *Metrics) Refused(reason string) int64 { return m.refused.get(reason) }

// Abandoned returns how many uploads of proto ("v1", "v2") ended before
// their header line.
func (m *Metrics) Abandoned(proto string) int64 { return m.abandoned.get(proto) }

// labeled is a counter vector counted by label values.
type labeled struct{ vec *prometheus.CounterVec }

func newLabeled(name, help string, labels ...string) labeled {
	return labeled{prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)}
}

// add counts one; k holds the label values joined by commas.
func (l labeled) add(k string) { l.vec.WithLabelValues(strings.Split(k, ",")...).Inc() }

func (l labeled) get(k string) int64 {
	var d dto.Metric
	if err := l.vec.WithLabelValues(strings.Split(k, ",")...).Write(&d); err != nil {
		return 0
	}
	return int64(d.GetCounter().GetValue())
}
