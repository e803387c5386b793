package main

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"golang.org/x/term"
)

// meter draws "label [=====>    ] 42% 1.2 GB/s" on one terminal line,
// at most ten times a second, for long exports and verifications. It
// draws only when w is a terminal; otherwise it is silent.
type meter struct {
	w     io.Writer
	label string
	start time.Time

	mu    sync.Mutex
	last  time.Time
	shown bool
}

// newMeter returns a bar on w if w is a terminal, else nil (whose
// methods do nothing).
func newMeter(w io.Writer, label string) *meter {
	f, ok := w.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return nil
	}
	return &meter{w: w, label: label, start: time.Now()}
}

// set shows done of total (bytes, or units when perSecond is "").
func (p *meter) set(done, total int64, unit string) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	if now.Sub(p.last) < 100*time.Millisecond && done < total {
		return
	}
	p.last = now
	const width = 30
	frac := 1.0
	if total > 0 {
		frac = min(1, float64(done)/float64(total))
	}
	n := int(frac * width)
	bar := make([]byte, width)
	for i := range bar {
		switch {
		case i < n:
			bar[i] = '='
		case i == n:
			bar[i] = '>'
		default:
			bar[i] = ' '
		}
	}
	rate := ""
	if s := now.Sub(p.start).Seconds(); s > 0 && unit == "B" {
		rate = " " + humanBytes(float64(done)/s) + "/s"
	}
	fmt.Fprintf(p.w, "\r%s [%s] %3.0f%%%s\x1b[K", p.label, bar, frac*100, rate)
	p.shown = true
}

// done clears the bar's line.
func (p *meter) done() {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.shown {
		fmt.Fprint(p.w, "\r\x1b[K")
	}
}

// humanBytes writes n bytes as "1.2 GB" (powers of 1000, as sha256sum
// users and disk makers count).
func humanBytes(n float64) string {
	units := []string{"B", "kB", "MB", "GB", "TB"}
	i := 0
	for n >= 1000 && i < len(units)-1 {
		n /= 1000
		i++
	}
	if i == 0 {
		return fmt.Sprintf("%.0f B", n)
	}
	return fmt.Sprintf("%.1f %s", n, units[i])
}
