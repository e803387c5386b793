package policy

import (
	"context"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// A Holder keeps the current Policy of one file and swaps in a new one
// when the file is reloaded. Get is safe to call from any goroutine at any
// time; a session keeps the decision it got when it started, so a reload
// never drops running sessions. A new policy that does not parse is
// rejected and the old one stays.
type Holder struct {
	path string
	cur  atomic.Pointer[Policy]

	mu      sync.Mutex // serializes reloads; guards the fields below
	sum     [sha256.Size]byte
	modTime time.Time
	size    int64
	lastErr string // last read error logged by watch, to log it once
}

// Load reads and parses the policy file at path.
func Load(path string) (*Holder, error) {
	h := &Holder{path: path}
	if _, err := h.reload(false); err != nil {
		return nil, err
	}
	return h, nil
}

// Path returns the file the Holder reads.
func (h *Holder) Path() string { return h.path }

// Get returns the current policy.
func (h *Holder) Get() *Policy { return h.cur.Load() }

// Reload re-reads and re-parses the file. On any error the current policy
// stays in place and the error says why.
func (h *Holder) Reload() error {
	_, err := h.reload(false)
	return err
}

// reload reads the file and, if it parses, makes it the current policy.
// With ifChanged it does nothing when the file's size and modification
// time, or else its content, are the same as at the last attempt
// (accepted or rejected), and reports changed=false.
func (h *Holder) reload(ifChanged bool) (changed bool, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	fi, err := os.Stat(h.path)
	if err != nil {
		return true, fmt.Errorf("policy: %w", err)
	}
	if ifChanged && fi.ModTime().Equal(h.modTime) && fi.Size() == h.size {
		return false, nil
	}
	src, err := os.ReadFile(h.path)
	if err != nil {
		return true, fmt.Errorf("policy: %w", err)
	}
	sum := sha256.Sum256(src)
	if ifChanged && sum == h.sum {
		h.modTime, h.size = fi.ModTime(), fi.Size()
		return false, nil
	}
	h.sum, h.modTime, h.size = sum, fi.ModTime(), fi.Size()
	p, err := Parse(h.path, src)
	if err != nil {
		return true, err
	}
	h.cur.Store(p)
	return true, nil
}

// Watch reloads the policy on SIGHUP and when the file changes (checked
// every interval, 2 s if interval <= 0: size and modification time, then
// a hash of the content), until ctx is done. It logs every accepted and
// rejected reload; a rejected policy leaves the current one in place. It
// blocks: run it in its own goroutine.
func (h *Holder) Watch(ctx context.Context, log *slog.Logger, interval time.Duration) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	if interval <= 0 {
		interval = 2 * time.Second
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	h.watch(ctx, log, t.C, hup)
}

// watch is Watch with the poll ticks and the signal channel passed in, so
// that tests decide when it polls.
func (h *Holder) watch(ctx context.Context, log *slog.Logger, tick <-chan time.Time, hup <-chan os.Signal) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			h.reloadAndLog(log, "SIGHUP", false)
		case <-tick:
			h.reloadAndLog(log, "file changed", true)
		}
	}
}

// reloadAndLog reloads and logs the outcome. trigger says what caused the
// reload.
func (h *Holder) reloadAndLog(log *slog.Logger, trigger string, ifChanged bool) {
	changed, err := h.reload(ifChanged)
	if err == nil {
		h.mu.Lock()
		h.lastErr = ""
		h.mu.Unlock()
	}
	if !changed {
		return
	}
	if err != nil {
		h.mu.Lock()
		repeat := ifChanged && err.Error() == h.lastErr
		h.lastErr = err.Error()
		h.mu.Unlock()
		if !repeat {
			log.Error("policy: new policy rejected, keeping the current one", "path", h.path, "trigger", trigger, "err", err)
		}
		return
	}
	p := h.Get()
	log.Info("policy: reloaded", "path", h.path, "trigger", trigger,
		"ssh_rules", len(p.SSHRules), "kubernetes_rules", len(p.KubeRules), "viewers_rules", len(p.ViewerRules))
}
