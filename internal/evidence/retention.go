package evidence

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/reel-rec/reel/internal/asciicast"
	"github.com/reel-rec/reel/internal/policy"
	"github.com/reel-rec/reel/internal/store"
)

// Retention applies a policy's retention rules to a store: recordings past
// their time are deleted, unless held; every deletion is written to the
// manifest first (so that it reads as a deletion by policy, not as
// tampering) and to the audit trail.
type Retention struct {
	// Store is the store to apply to. Required.
	Store Backend
	// Sealer is the recorder's evidence store, whose manifest records the
	// deletions. Nil allows only a dry run.
	Sealer *Store
	// Policy holds the retention rules; nil keeps everything.
	Policy *policy.Policy
	// Holds are the legal holds (their Files is Store if nil).
	Holds *Holds
	// Audit, if set, records each deletion.
	Audit Auditor
	// By names who applies the policy, for the audit trail.
	By string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Log, if set, gets one line per deletion.
	Log *slog.Logger
	// Index, if set, forgets each recording deleted (internal/index's
	// Index is one), so that a search no longer finds it. The index is a
	// cache of the store: a failure here is logged, and the next rebuild
	// drops the row.
	Index Forgetter
}

// Forgetter removes a recording from a catalogue of recordings.
type Forgetter interface {
	DeleteRecording(ctx context.Context, key string) error
}

// Actions of a Decision.
const (
	ActionDelete = "delete" // past its time: deleted (or, in a dry run, would be)
	ActionHeld   = "held"   // past its time, but held: kept
	ActionFailed = "failed" // deleting it failed: it stays, and the next run tries again
)

// Decision is what retention does with one recording past its time.
type Decision struct {
	Key    string       `json:"key"`
	Status store.Status `json:"status"`
	Start  time.Time    `json:"start"`
	Due    time.Time    `json:"due"`
	Rule   string       `json:"rule"`
	Action string       `json:"action"`
	Error  string       `json:"error,omitempty"`
}

func (r *Retention) now() time.Time {
	if r.Now == nil {
		return time.Now()
	}
	return r.Now()
}

// Apply decides, for every recording, whether it is past its time, and
// (unless dryRun) deletes those that are and are not held. It returns the
// decisions about recordings past their time, in key order.
func (r *Retention) Apply(ctx context.Context, dryRun bool) ([]Decision, error) {
	if !dryRun && r.Sealer == nil {
		return nil, errors.New("retention: deleting needs the recorder's evidence state (its manifest records every deletion)")
	}
	holds := r.Holds
	if holds == nil {
		holds = &Holds{Files: r.Store}
	}
	now := r.now()
	var out []Decision
	var errs []error
	for info, err := range r.Store.List(ctx, store.Filter{}) {
		if err != nil {
			return out, err
		}
		if info.Status == store.StatusLive {
			continue // never deleted while it is being written
		}
		d, due, err := r.decide(ctx, info, now)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if !due {
			continue
		}
		held, err := holds.Held(ctx, info.Key)
		switch {
		case err != nil:
			d.Action, d.Error = ActionFailed, "cannot tell whether it is held: "+err.Error()
		case held:
			d.Action = ActionHeld
		case dryRun:
			d.Action = ActionDelete
		default:
			d.Action = ActionDelete
			if err := r.delete(ctx, holds, info, d); err != nil {
				d.Action, d.Error = ActionFailed, err.Error()
				errs = append(errs, err)
			}
		}
		out = append(out, d)
	}
	if !dryRun {
		if err := holds.Reconcile(ctx); err != nil {
			errs = append(errs, fmt.Errorf("retention: legal holds: %w", err))
		}
	}
	return out, errors.Join(errs...)
}

// decide returns the decision about info and whether it is past its time.
func (r *Retention) decide(ctx context.Context, info store.Info, now time.Time) (Decision, bool, error) {
	d := Decision{Key: info.Key, Status: info.Status, Start: info.Start}
	s := policy.RetentionSubject{Node: info.Node, Status: string(info.Status), Kind: policy.KindTerminal}
	if strings.HasSuffix(info.Key, ".desk") {
		s.Kind = policy.KindDesktop
	} else if r.Policy.NeedsHeader() {
		h, err := readHeader(ctx, r.Store, info.Key)
		if err == nil {
			s.Tags = h.SrcNodeTags
			for _, u := range []string{h.SSHUser, h.LocalUser, h.SrcNodeUser} {
				if u != "" {
					s.Users = append(s.Users, u)
				}
			}
			if h.IsKubernetes() {
				s.Kind = policy.KindKubernetes
			}
		}
		// A header that cannot be read (a malformed recording) matches
		// only rules that do not ask about users, tags or kind.
	}
	keep, _, why := r.Policy.Retention(s)
	d.Rule = why
	due, ok := keep.Until(info.Start)
	if !ok {
		return d, false, nil
	}
	d.Due = due
	return d, !now.Before(due), nil
}

// readHeader reads a recording's asciicast header.
func readHeader(ctx context.Context, st store.Store, key string) (asciicast.Header, error) {
	rd, err := st.Open(ctx, key)
	if err != nil {
		return asciicast.Header{}, err
	}
	defer rd.Close()
	return asciicast.NewDecoder(io.LimitReader(rd, 1<<20)).Header()
}

// delete deletes one recording past its time: a manifest entry first,
// then the recording, then its seal and chain.
func (r *Retention) delete(ctx context.Context, holds *Holds, info store.Info, d Decision) error {
	sealHash := Hash{}
	if b, err := store.ReadFile(ctx, r.Store, info.Key+SealSuffix); err == nil {
		sealHash = sha256.Sum256(b)
	}
	reason := fmt.Sprintf("retention: %s, due %s", d.Rule, d.Due.Format(time.RFC3339))
	// A hold placed a moment ago wins.
	if held, err := holds.Held(ctx, info.Key); err != nil || held {
		return fmt.Errorf("retention: %s was held meanwhile", info.Key)
	}
	if _, err := r.Sealer.man.add(func(int64) (Entry, error) {
		return Entry{Op: OpDelete, Key: info.Key, Seal: hexHash(sealHash), Size: info.Size, Reason: reason}, nil
	}); err != nil {
		return fmt.Errorf("retention: %s: %w", info.Key, err)
	}
	err := r.Store.DeleteFile(ctx, info.Key)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		err = fmt.Errorf("retention: delete %s: %w", info.Key, err)
		if _, merr := r.Sealer.man.add(func(int64) (Entry, error) {
			return Entry{Op: OpDeleteFailed, Key: info.Key, Seal: hexHash(sealHash), Size: info.Size, Reason: err.Error()}, nil
		}); merr != nil {
			err = errors.Join(err, merr)
		}
		r.audit(info.Key, reason, err)
		return err
	}
	for _, side := range []string{info.Key + SealSuffix, info.Key + ChainSuffix} {
		if err := r.Store.DeleteFile(ctx, side); err != nil && !errors.Is(err, store.ErrNotFound) {
			r.logf("retention: the recording is deleted, its %s stays: %v", side, err)
		}
	}
	if r.Index != nil {
		if err := r.Index.DeleteRecording(ctx, info.Key); err != nil {
			r.logf("retention: %s is deleted, but the index still lists it (reel index rebuild drops it): %v", info.Key, err)
		}
	}
	r.audit(info.Key, reason, nil)
	if r.Log != nil {
		r.Log.Info("deleted a recording past its retention", "key", info.Key, "rule", d.Rule, "due", d.Due)
	}
	return nil
}

func (r *Retention) logf(format string, args ...any) {
	if r.Log != nil {
		r.Log.Warn(fmt.Sprintf(format, args...))
	}
}

func (r *Retention) audit(key, reason string, err error) {
	if r.Audit == nil {
		return
	}
	by := r.By
	if by == "" {
		by = "retention"
	}
	e := AuditEntry{User: by, Auth: "policy", From: "retention", Action: AuditRetentionDelete, Target: key, Result: "ok", Reason: reason}
	if err != nil {
		e.Result, e.Reason = "failed", err.Error()
	}
	if aerr := r.Audit.Audit(e); aerr != nil {
		r.logf("retention: audit trail: %v", aerr)
	}
}
