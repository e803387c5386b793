package main

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sys/unix"
)

// spaceReporter is implemented by stores that sit on a disk with a
// free-space reserve (fsstore; s3store for its spool).
type spaceReporter interface {
	Space() (free, total, reserve int64, err error)
}

// spaceAlarm watches the store's free space: it warns well before the
// reserve is reached (at twice the reserve), says loudly when new recordings
// are being refused, and says when space has come back.
type spaceAlarm struct {
	sr  spaceReporter // nil: the store has no disk to watch
	log *slog.Logger

	mu                   sync.Mutex
	free, total, reserve int64
	state                string // "ok", "low", "full", "unknown"
}

func newSpaceAlarm(st any, log *slog.Logger) *spaceAlarm {
	a := &spaceAlarm{log: log, state: "unknown"}
	if sr, ok := st.(spaceReporter); ok {
		a.sr = sr
		a.check()
	}
	return a
}

func (a *spaceAlarm) watch(ctx context.Context, every time.Duration) {
	if a.sr == nil {
		return
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			a.check()
		}
	}
}

func (a *spaceAlarm) check() {
	free, total, reserve, err := a.sr.Space()
	a.mu.Lock()
	defer a.mu.Unlock()
	if err != nil {
		if a.state != "unknown" {
			a.log.Error("cannot read free disk space", "err", err)
		}
		a.state = "unknown"
		return
	}
	a.free, a.total, a.reserve = free, total, reserve
	state := "ok"
	switch {
	case reserve > 0 && free < reserve:
		state = "full"
	case reserve > 0 && free < 2*reserve:
		state = "low"
	}
	if state == a.state {
		return
	}
	attrs := []any{"free_mib", free >> 20, "reserve_mib", reserve >> 20}
	switch state {
	case "full":
		a.log.Error("disk below the free-space reserve: refusing new recordings until space is freed (running ones go on)", attrs...)
	case "low":
		a.log.Warn("disk space low: new recordings will be refused below the reserve", attrs...)
	case "ok":
		if a.state == "full" || a.state == "low" {
			a.log.Info("disk space is back above the alarm level; accepting recordings", attrs...)
		}
	}
	a.state = state
}

// unhealthy says why /healthz should fail, or "".
func (a *spaceAlarm) unhealthy() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.state == "full" {
		return fmt.Sprintf("disk below free-space reserve (%d MiB free, reserve %d MiB): new recordings refused\n", a.free>>20, a.reserve>>20)
	}
	return ""
}

// register adds the alarm's gauges to reg, when there is a disk to watch.
func (a *spaceAlarm) register(reg prometheus.Registerer) {
	if a.sr == nil {
		return
	}
	gauge := func(name, help string, v func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 {
			a.mu.Lock()
			defer a.mu.Unlock()
			return v()
		})
	}
	reg.MustRegister(
		gauge("reel_disk_free_bytes", "Free bytes on the recordings disk.", func() float64 { return float64(a.free) }),
		gauge("reel_disk_reserve_bytes", "Free-space reserve below which new recordings are refused.", func() float64 { return float64(a.reserve) }),
		gauge("reel_disk_alarm", "0 ok, 1 low (under twice the reserve), 2 full (refusing new recordings), 3 unknown.", func() float64 {
			return float64(map[string]int{"ok": 0, "low": 1, "full": 2, "unknown": 3}[a.state])
		}),
	)
}

// diskSize is the size of the file system holding dir (or its nearest
// existing parent).
func diskSize(dir string) (int64, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return 0, err
	}
	for {
		var st unix.Statfs_t
		err := unix.Statfs(dir, &st)
		if err == nil {
			return int64(st.Blocks) * st.Bsize, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return 0, fmt.Errorf("statfs %s: %w", dir, err)
		}
		dir = parent
	}
}
