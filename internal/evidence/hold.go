package evidence

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/reel-rec/reel/internal/store"
)

// holdsDir holds one file per held recording: "<holdsDir><key>".
const holdsDir = store.FilesDir + "/holds/"

// Hold is a legal hold on one recording: it is kept past its retention
// until the hold is removed.
type Hold struct {
	Key    string    `json:"key"`
	By     string    `json:"by"`
	Reason string    `json:"reason,omitempty"`
	Time   time.Time `json:"time"`
	// Locked is set when the bucket's object lock holds the recording's
	// objects too (S3 legal hold), so not even the bucket's credentials
	// can delete them.
	Locked bool `json:"locked,omitempty"`
}

// ObjectLocker is a store that can lock objects itself: an S3 bucket with
// object lock (s3store).
type ObjectLocker interface {
	ObjectLock(ctx context.Context) (bool, error)
	SetLegalHold(ctx context.Context, name string, on bool) error
}

// Holds manages legal holds in a store.
type Holds struct {
	Files store.Files
	Audit Auditor // nil: not audited
	Now   func() time.Time
}

func (h *Holds) now() time.Time {
	if h.Now == nil {
		return time.Now().UTC()
	}
	return h.Now().UTC()
}

// holdName is the store file of key's hold.
func holdName(key string) string { return holdsDir + key }

// lockNames are the objects of a recording the bucket's legal hold covers.
func lockNames(key string) []string {
	return []string{key, key + SealSuffix, key + ChainSuffix, key + ".status", store.TailKey(key)}
}

// Add holds key: the hold file, then (on a bucket with object lock) the
// legal hold of every object of the recording. A recording that has not
// landed yet is held by reel now and by the bucket once Reconcile runs
// after it landed.
func (h *Holds) Add(ctx context.Context, key, by, reason string) (Hold, error) {
	if _, _, err := store.ParseKey(key); err != nil {
		return Hold{}, err
	}
	hd := Hold{Key: key, By: by, Reason: reason, Time: h.now()}
	err := h.put(ctx, hd)
	if err == nil {
		hd.Locked, err = h.lock(ctx, key, true)
		if hd.Locked {
			err = errors.Join(err, h.put(ctx, hd))
		}
	}
	h.audit(AuditHoldAdd, by, key, reason, err)
	return hd, err
}

func (h *Holds) put(ctx context.Context, hd Hold) error {
	b, _ := json.Marshal(hd)
	return h.Files.PutFile(ctx, holdName(hd.Key), append(b, '\n'))
}

// lock sets or clears the bucket's legal hold on key's objects; locked
// reports whether the bucket holds the recording itself.
func (h *Holds) lock(ctx context.Context, key string, on bool) (locked bool, err error) {
	ol, ok := h.Files.(ObjectLocker)
	if !ok {
		return false, nil
	}
	enabled, err := ol.ObjectLock(ctx)
	if err != nil || !enabled {
		return false, err
	}
	var errs []error
	for _, name := range lockNames(key) {
		err := ol.SetLegalHold(ctx, name, on)
		switch {
		case err == nil:
			if name == key {
				locked = on
			}
		case errors.Is(err, store.ErrNotFound):
		case errors.Is(err, store.ErrLive):
			// Not landed yet: Reconcile locks it later.
		default:
			errs = append(errs, err)
		}
	}
	return locked, errors.Join(errs...)
}

// Remove releases key's hold: the bucket's legal holds, then the hold file.
func (h *Holds) Remove(ctx context.Context, key, by, reason string) error {
	if _, err := h.Get(ctx, key); err != nil {
		return err
	}
	_, err := h.lock(ctx, key, false)
	if err == nil {
		err = h.Files.DeleteFile(ctx, holdName(key))
	}
	h.audit(AuditHoldRemove, by, key, reason, err)
	return err
}

// Get returns key's hold; an error wrapping store.ErrNotFound if it has
// none.
func (h *Holds) Get(ctx context.Context, key string) (Hold, error) {
	b, err := store.ReadFile(ctx, h.Files, holdName(key))
	if err != nil {
		return Hold{}, err
	}
	var hd Hold
	if err := json.Unmarshal(b, &hd); err != nil || hd.Key != key {
		// A damaged hold still holds.
		return Hold{Key: key, Reason: fmt.Sprintf("unreadable hold file: %v", err)}, nil
	}
	return hd, nil
}

// Held reports whether key is held; when that cannot be told it says
// held (never delete on doubt).
func (h *Holds) Held(ctx context.Context, key string) (bool, error) {
	_, err := h.Get(ctx, key)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	return true, err
}

// List returns every hold, in key order.
func (h *Holds) List(ctx context.Context) ([]Hold, error) {
	var out []Hold
	for name, err := range h.Files.ListFiles(ctx, holdsDir) {
		if err != nil {
			return out, err
		}
		key := strings.TrimPrefix(name, holdsDir)
		hd, err := h.Get(ctx, key)
		if err != nil {
			return out, err
		}
		out = append(out, hd)
	}
	return out, nil
}

// Reconcile sets the bucket's legal hold on held recordings that landed
// since they were held.
func (h *Holds) Reconcile(ctx context.Context) error {
	if _, ok := h.Files.(ObjectLocker); !ok {
		return nil
	}
	holds, err := h.List(ctx)
	var errs []error
	errs = append(errs, err)
	for _, hd := range holds {
		if hd.Locked {
			continue
		}
		locked, err := h.lock(ctx, hd.Key, true)
		errs = append(errs, err)
		if locked {
			hd.Locked = true
			errs = append(errs, h.put(ctx, hd))
		}
	}
	return errors.Join(errs...)
}

func (h *Holds) audit(action, by, key, reason string, err error) {
	if h.Audit == nil {
		return
	}
	e := AuditEntry{User: by, Auth: "cli", From: "cli", Action: action, Target: key, Result: "ok", Reason: reason}
	if err != nil {
		e.Result, e.Reason = "failed", err.Error()
	}
	h.Audit.Audit(e)
}
