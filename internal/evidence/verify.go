package evidence

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/reel-rec/reel/internal/store"
)

// Problem kinds: what Verify found wrong. Each names one thing an auditor
// must look at.
const (
	ProblemAltered       = "altered"        // bytes differ from what was sealed (Detail says where)
	ProblemTruncated     = "truncated"      // bytes missing at the end
	ProblemAppended      = "appended"       // bytes added after the sealed end
	ProblemMissing       = "missing"        // the manifest lists it; the store has no such recording
	ProblemSealAbsent    = "seal-absent"    // a recording that ended, without a seal
	ProblemSealMalformed = "seal-malformed" // a seal file that is not one
	ProblemUnknownKey    = "unknown-key"    // signed by a key not among the trusted ones
	ProblemBadSignature  = "bad-signature"  // signed by a trusted key's id, but the signature is wrong
	ProblemSealsSwapped  = "seals-swapped"  // the seal beside it is another recording's
	ProblemReordered     = "reordered"      // it holds another recording's bytes; or manifest entries out of order
	ProblemStatus        = "status-changed" // the store's status differs from the sealed one
	ProblemNotInManifest = "not-in-manifest"
	ProblemManifest      = "manifest" // a manifest segment or head missing, altered or badly signed
	ProblemUnreadable    = "unreadable"
)

// Problem is one thing wrong.
type Problem struct {
	Kind   string `json:"kind"`
	Detail string `json:"detail"`
	// Offset is where the problem starts in the recording's stream, for
	// altered, truncated and appended; -1 otherwise.
	Offset int64 `json:"offset"`
}

func problem(kind string, off int64, format string, args ...any) Problem {
	return Problem{Kind: kind, Detail: fmt.Sprintf(format, args...), Offset: off}
}

// Result is what Verify found for one recording.
type Result struct {
	Key string `json:"key"`
	// Status is the stored status; for a recording not in the store, the
	// status its manifest entry gave.
	Status store.Status `json:"status"`
	Size   int64        `json:"size"` // bytes stored (recording and tail)
	// Sealed: a seal signed by a trusted key vouches for it.
	Sealed bool   `json:"sealed"`
	KeyID  string `json:"keyid,omitempty"`
	// Deleted: not in the store because retention deleted it (the
	// manifest says so); not a problem.
	Deleted  bool      `json:"deleted,omitempty"`
	Problems []Problem `json:"problems,omitempty"`
	// Notes are facts worth knowing that are not problems (interrupted,
	// live, deleted by policy).
	Notes []string `json:"notes,omitempty"`
}

// OK reports whether nothing is wrong with the recording.
func (r *Result) OK() bool { return len(r.Problems) == 0 }

// ManifestResult is what Verify found for one key's manifest.
type ManifestResult struct {
	KeyID   string `json:"keyid"`
	Trusted bool   `json:"trusted"`
	Entries int64  `json:"entries"`
	// Checkpoint is the time of the newest valid checkpoint.
	Checkpoint time.Time `json:"checkpoint"`
	Problems   []Problem `json:"problems,omitempty"`
	Notes      []string  `json:"notes,omitempty"`
}

// Report is the outcome of Verify.
type Report struct {
	Recordings []*Result         `json:"recordings"`
	Manifests  []*ManifestResult `json:"manifests"`
	Bytes      int64             `json:"bytes"` // hashed
}

// OK reports whether nothing at all is wrong.
func (r *Report) OK() bool { return r.Problems() == 0 }

// Problems counts the problems found.
func (r *Report) Problems() int {
	n := 0
	for _, x := range r.Recordings {
		n += len(x.Problems)
	}
	for _, m := range r.Manifests {
		n += len(m.Problems)
	}
	return n
}

// VerifyOptions say what Verify checks and with which keys.
type VerifyOptions struct {
	// Keys are the trusted public keys. Seals and manifests signed by any
	// other key are reported.
	Keys Keyring
	// Only, if not empty, limits the check to these recordings (and the
	// manifest entries about them); otherwise every recording is checked.
	Only []string
	// Since, if not zero, limits the check to recordings that started at
	// or after it.
	Since time.Time
	// Anchors are checkpoints kept outside the store (a copy of a head
	// file, the recorder's own state): the manifest must reach each and
	// agree with it, so a store rolled back to an earlier state is found.
	Anchors []Anchor
	// Workers hash recordings at once; zero means one per CPU.
	Workers int
	// Progress, if set, is called as bytes are hashed, with the bytes done
	// and the total expected.
	Progress func(done, total int64)
}

// Verify checks the recordings, seals, chains and manifests in st, which
// may be a copy of a store opened read-only, with only the public keys.
func Verify(ctx context.Context, st Backend, opts VerifyOptions) (*Report, error) {
	v := &verifier{st: st, opts: opts, seals: map[string]*Seal{}, sealFor: map[string]*Seal{}, byHead: map[Hash]string{}}
	if err := v.readManifests(ctx); err != nil {
		return nil, err
	}
	if err := v.listRecordings(ctx); err != nil {
		return nil, err
	}
	v.readSeals(ctx)
	v.hashAll(ctx)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	v.crossCheck()
	rep := &Report{Bytes: v.done.Load()}
	for _, r := range v.results {
		rep.Recordings = append(rep.Recordings, r)
	}
	slices.SortFunc(rep.Recordings, func(a, b *Result) int { return cmp.Compare(a.Key, b.Key) })
	for _, m := range v.mans {
		rep.Manifests = append(rep.Manifests, m.res)
	}
	slices.SortFunc(rep.Manifests, func(a, b *ManifestResult) int { return cmp.Compare(a.KeyID, b.KeyID) })
	return rep, nil
}

type verifier struct {
	st   Backend
	opts VerifyOptions

	mans    map[string]*manView // by key id
	infos   []store.Info
	results map[string]*Result
	seals   map[string]*Seal // by key of the file it was read from
	sealFor map[string]*Seal // by the key a trusted seal names
	byHead  map[Hash]string  // trusted seals' heads -> key they name
	total   int64
	done    atomic.Int64
	mu      sync.Mutex // guards results' contents during hashAll
}

// manView is one key's manifest as read.
type manView struct {
	res     *ManifestResult
	entries map[int64]Entry // by seq
	last    int64           // entries read, contiguous from 1
	latest  map[string]Entry
	heads   []Hash // heads[n] = m_n
	cpTime  time.Time
}

func (v *verifier) wanted(key string) bool {
	if len(v.opts.Only) > 0 {
		return slices.Contains(v.opts.Only, key)
	}
	if !v.opts.Since.IsZero() {
		_, start, err := store.ParseKey(key)
		return err == nil && !start.Before(v.opts.Since)
	}
	return true
}

// readManifests reads and checks every manifest in the store.
func (v *verifier) readManifests(ctx context.Context) error {
	v.mans = map[string]*manView{}
	byKey := map[string][]string{}
	for name, err := range v.st.ListFiles(ctx, manifestDir) {
		if err != nil {
			return err
		}
		id, ok := keyIDFromManifestName(name)
		if !ok {
			continue
		}
		byKey[id] = append(byKey[id], name)
	}
	for _, a := range v.opts.Anchors {
		if _, ok := byKey[a.KeyID]; !ok && v.opts.Keys[a.KeyID] != nil {
			byKey[a.KeyID] = nil
		}
	}
	for id, names := range byKey {
		m := &manView{res: &ManifestResult{KeyID: id}, entries: map[int64]Entry{}, latest: map[string]Entry{}, heads: []Hash{manifestIV(id)}}
		v.mans[id] = m
		_, m.res.Trusted = v.opts.Keys[id]
		if !m.res.Trusted {
			m.res.Notes = append(m.res.Notes, "not checked: the manifest of a key that is not trusted (give its public key to check it)")
			continue
		}
		v.readManifest(ctx, m, names)
	}
	return ctx.Err()
}

func (v *verifier) readManifest(ctx context.Context, m *manView, names []string) {
	id := m.res.KeyID
	bad := func(format string, args ...any) {
		m.res.Problems = append(m.res.Problems, problem(ProblemManifest, -1, format, args...))
	}
	var head *Checkpoint
	var segs []string
	for _, n := range names {
		if n == HeadName(id) {
			b, err := store.ReadFile(ctx, v.st, n)
			if err != nil {
				bad("head %s unreadable: %v", n, err)
				continue
			}
			cp, err := ParseCheckpoint(strings.TrimSuffix(string(b), "\n"))
			if err != nil {
				bad("head %s: %v", n, err)
				continue
			}
			head = &cp
		} else if strings.HasSuffix(n, ".log") {
			segs = append(segs, n)
		}
	}
	slices.Sort(segs)
	broken := false // the chain broke: later heads cannot be checked
	for _, n := range segs {
		b, err := store.ReadFile(ctx, v.st, n)
		if err != nil {
			bad("segment %s unreadable: %v", n, err)
			broken = true
			continue
		}
		seg, err := ParseSegment(b)
		if err != nil {
			var re *ReorderError
			if errors.As(err, &re) {
				m.res.Problems = append(m.res.Problems, problem(ProblemReordered, -1, "manifest segment %s: %v", n, err))
			} else {
				bad("segment %s: %v", n, err)
			}
			broken = true
			continue
		}
		if seg.KeyID != id || n != SegmentName(id, seg.First) {
			bad("segment %s claims to be %s", n, SegmentName(seg.KeyID, seg.First))
			broken = true
			continue
		}
		if seg.First != m.last+1 {
			if seg.First > m.last+1 {
				bad("entries %d to %d missing: a segment was deleted", m.last+1, seg.First-1)
			} else {
				bad("segment %s overlaps entries already read", n)
			}
			broken = true
		}
		if known, ok := seg.Checkpoint.verify(v.opts.Keys); !known || !ok {
			m.res.Problems = append(m.res.Problems, problem(ProblemBadSignature, -1, "manifest segment %s: checkpoint signature is not valid", n))
		}
		for _, e := range seg.Entries {
			m.entries[e.Seq] = e.Entry
			if !broken {
				m.heads = append(m.heads, nextManifest(m.heads[len(m.heads)-1], e.Raw))
				m.last = e.Seq
			}
			if l, ok := m.latest[e.Key]; !ok || e.Seq > l.Seq {
				m.latest[e.Key] = e.Entry
			}
		}
		if !broken {
			if m.heads[seg.Checkpoint.Seq] != seg.Checkpoint.Head {
				bad("segment %s: entries altered (its checkpoint does not match them)", n)
				broken = true
			} else if seg.Checkpoint.Time.After(m.cpTime) {
				m.cpTime = seg.Checkpoint.Time
			}
		}
		if broken {
			// Keep counting entries so that later checks know them.
			m.last = max(m.last, seg.Checkpoint.Seq)
		}
	}
	m.res.Entries = m.last
	switch {
	case head == nil && len(segs) > 0:
		bad("head %s is missing", HeadName(id))
	case head != nil:
		if known, ok := head.verify(v.opts.Keys); !known || !ok || head.KeyID != id {
			m.res.Problems = append(m.res.Problems, problem(ProblemBadSignature, -1, "manifest head %s: signature is not valid", HeadName(id)))
		} else {
			v.checkAnchor(m, *head, "the head "+HeadName(id), broken)
			if head.Time.After(m.cpTime) {
				m.cpTime = head.Time
			}
		}
	}
	for _, a := range v.opts.Anchors {
		if a.KeyID != id {
			continue
		}
		if !a.Local {
			if known, ok := a.verify(v.opts.Keys); !known || !ok {
				m.res.Problems = append(m.res.Problems, problem(ProblemBadSignature, -1, "anchor from %s: signature is not valid", a.From))
				continue
			}
		}
		what := "the anchor from " + a.From
		if !a.Time.IsZero() {
			what += " (" + a.Time.Format(time.RFC3339) + ")"
		}
		v.checkAnchor(m, a.Checkpoint, what, broken)
	}
	m.res.Checkpoint = m.cpTime
}

// checkAnchor checks that the manifest reaches cp and agrees with it.
func (v *verifier) checkAnchor(m *manView, cp Checkpoint, what string, broken bool) {
	switch {
	case cp.Seq > m.last:
		m.res.Problems = append(m.res.Problems, problem(ProblemManifest, -1,
			"truncated: %s says %d entries, the store holds %d: newer segments were deleted or the store rolled back",
			what, cp.Seq, m.last))
	case !broken && m.heads[cp.Seq] != cp.Head:
		m.res.Problems = append(m.res.Problems, problem(ProblemManifest, -1, "altered: entries up to %d differ from %s", cp.Seq, what))
	}
}

// listRecordings lists the recordings to check.
func (v *verifier) listRecordings(ctx context.Context) error {
	v.results = map[string]*Result{}
	if len(v.opts.Only) > 0 {
		for _, key := range v.opts.Only {
			info, err := v.st.Stat(ctx, key)
			if errors.Is(err, store.ErrNotFound) {
				continue // missing: crossCheck says whether it should be there
			}
			if err != nil {
				return err
			}
			v.infos = append(v.infos, info)
		}
	} else {
		for info, err := range v.st.List(ctx, store.Filter{Since: v.opts.Since}) {
			if err != nil {
				return err
			}
			v.infos = append(v.infos, info)
		}
	}
	for _, info := range v.infos {
		v.results[info.Key] = &Result{Key: info.Key, Status: info.Status, Size: info.Size}
		v.total += info.Size
	}
	return nil
}

// readSeals reads and checks the signature of every listed recording's
// seal, and indexes the trusted ones.
func (v *verifier) readSeals(ctx context.Context) {
	type got struct {
		key string
		b   []byte
		err error
	}
	out := make([]got, len(v.infos))
	parallel(len(v.infos), func(i int) {
		key := v.infos[i].Key
		b, err := store.ReadFile(ctx, v.st, key+SealSuffix)
		out[i] = got{key, b, err}
	})
	for _, g := range out {
		r := v.results[g.key]
		if errors.Is(g.err, store.ErrNotFound) {
			continue
		}
		if g.err != nil {
			r.Problems = append(r.Problems, problem(ProblemUnreadable, -1, "seal: %v", g.err))
			continue
		}
		s, err := ParseSeal(g.b)
		if err != nil {
			r.Problems = append(r.Problems, problem(ProblemSealMalformed, -1, "%v", err))
			continue
		}
		v.seals[g.key] = s
		known, ok := s.verify(v.opts.Keys)
		switch {
		case !known:
			r.Problems = append(r.Problems, problem(ProblemUnknownKey, -1, "sealed by key %s, which is not among the trusted keys", s.KeyID))
		case !ok:
			r.Problems = append(r.Problems, problem(ProblemBadSignature, -1, "the seal's signature by key %s is not valid: the seal was altered or forged", s.KeyID))
		default:
			if prev, dup := v.sealFor[s.Key]; !dup || s.Seq > prev.Seq {
				v.sealFor[s.Key] = s
			}
			head, _ := s.heads()
			v.byHead[head] = s.Key
		}
	}
}

// hashAll hashes every recording and compares it with its seal.
func (v *verifier) hashAll(ctx context.Context) {
	workers := v.opts.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	next := make(chan store.Info)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for info := range next {
				v.checkOne(ctx, info)
			}
		})
	}
	for _, info := range v.infos {
		if ctx.Err() != nil {
			break
		}
		next <- info
	}
	close(next)
	wg.Wait()
}

func (v *verifier) progress(n int64) {
	d := v.done.Add(n)
	if v.opts.Progress != nil {
		v.opts.Progress(d, v.total)
	}
}

// progressReader reports bytes read.
type progressReader struct {
	r interface{ Read([]byte) (int, error) }
	v *verifier
}

func (p progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	if n > 0 {
		p.v.progress(int64(n))
	}
	return n, err
}

func (v *verifier) checkOne(ctx context.Context, info store.Info) {
	v.mu.Lock()
	r := v.results[info.Key]
	v.mu.Unlock()
	var probs []Problem
	var notes []string
	add := func(p Problem) { probs = append(probs, p) }
	defer func() {
		v.mu.Lock()
		r.Problems = append(r.Problems, probs...)
		r.Notes = append(r.Notes, notes...)
		v.mu.Unlock()
	}()

	own := v.seals[info.Key]
	seal := v.sealFor[info.Key] // the trusted seal that names this key, wherever it was
	if own != nil && own.Key != info.Key {
		add(problem(ProblemSealsSwapped, -1, "%s%s is the seal of %s", info.Key, SealSuffix, own.Key))
	}
	if seal == nil {
		if own == nil {
			if info.Status == store.StatusLive {
				notes = append(notes, "live: sealed when it ends")
			} else if len(r.Problems) == 0 {
				add(problem(ProblemSealAbsent, -1, "no seal: the recording ended (%s) but %s%s is missing", info.Status, info.Key, SealSuffix))
			}
		}
		v.progress(info.Size)
		return
	}
	r.Sealed, r.KeyID = own == seal, seal.KeyID

	st, err := openStream(ctx, v.st, info.Key)
	if err != nil {
		add(problem(ProblemUnreadable, -1, "%v", err))
		return
	}
	defer st.Close()
	r.Size = st.file + st.tail
	var cf *ChainFile
	if b, err := store.ReadFile(ctx, v.st, info.Key+ChainSuffix); err == nil {
		cf, _ = ParseChain(b) // only used to tell where; checked against the seal below
	}
	var syncs []SyncRecord
	if cf != nil && cf.Key == info.Key {
		syncs = cf.Syncs
	}
	want := seal.Size
	res, err := hashStream(progressReader{st, v}, syncs, &want)
	if err != nil {
		add(problem(ProblemUnreadable, -1, "%v", err))
		return
	}
	head, last := seal.heads()
	n, s := seal.Size, res.size
	switch {
	case s == n && res.head == head:
		// Intact.
	case s > n && res.reachedWant && res.atWant == head:
		add(problem(ProblemAppended, n, "%d bytes appended after the sealed end (sealed %d bytes, stored %d)", s-n, n, s))
	default:
		if s < n {
			add(problem(ProblemTruncated, s, "%d bytes cut from the end (sealed %d bytes, stored %d)", n-s, n, s))
		} else if s > n {
			add(problem(ProblemAppended, n, "%d bytes more than sealed (sealed %d bytes, stored %d)", s-n, n, s))
		}
		if p, ok := v.locate(cf, seal, res, head, last); ok {
			add(p)
		}
		if other, ok := v.byHead[res.head]; ok && other != info.Key {
			add(problem(ProblemReordered, -1, "it holds the bytes sealed for %s", other))
		}
	}
	if seal.Status != info.Status {
		add(problem(ProblemStatus, -1, "sealed as %s, but the store says %s", seal.Status, info.Status))
	}
	switch seal.Status {
	case store.StatusInterrupted, store.StatusFailed:
		note := fmt.Sprintf("%s: %s", seal.Status, seal.Reason)
		if seal.Recovered {
			note += fmt.Sprintf("; sealed at the next start; %d bytes acknowledged in sync rounds, all intact", seal.Acked)
		}
		notes = append(notes, note)
	case store.StatusMalformed:
		notes = append(notes, "malformed (kept as sent): "+seal.Reason)
	}
	if seal.AckedHead != "" && s >= seal.Acked {
		// Covered by the head check when the whole stream is intact;
		// said separately for a recording that changed later.
		if h, _ := parseHash(seal.AckedHead); len(probs) > 0 && !v.ackedOK(cf, res, seal.Acked, h) {
			add(problem(ProblemAltered, -1, "the %d bytes acknowledged before the recording ended are not those acknowledged", seal.Acked))
		}
	}
}

// ackedOK checks the head at the acknowledged size from the sync records
// hashStream checked.
func (v *verifier) ackedOK(cf *ChainFile, res hashed, acked int64, h Hash) bool {
	if cf == nil {
		return true // cannot tell; the head check has spoken
	}
	for i, sr := range cf.Syncs {
		if sr.Size == acked && sr.Head == h && i < len(res.syncOK) {
			return res.syncOK[i]
		}
	}
	return true
}

// locate says where a stream differs from what was sealed, using the
// chain's block hashes once they are shown to be those the seal signed.
func (v *verifier) locate(cf *ChainFile, seal *Seal, res hashed, head, last Hash) (Problem, bool) {
	n := seal.Size
	full := n / BlockSize
	if cf == nil || cf.Key != seal.Key || int64(len(cf.Blocks)) < full || HeadFromBlocks(cf.Blocks[:full], n, last) != head {
		if res.size == n {
			return problem(ProblemAltered, -1, "bytes differ from the sealed ones (where cannot be told: the chain file %s is missing or altered)", seal.Key+ChainSuffix), true
		}
		return Problem{}, false
	}
	for i := int64(0); i < full; i++ {
		if i >= int64(len(res.blocks)) {
			return Problem{}, false // truncated before: said already
		}
		if res.blocks[i] != cf.Blocks[i] {
			return problem(ProblemAltered, i*BlockSize, "altered at offset %d: bytes %d to %d differ from the sealed ones", i*BlockSize, i*BlockSize, (i+1)*BlockSize-1), true
		}
	}
	if res.size >= n {
		// All full blocks agree: the change is in the last, partial one.
		return problem(ProblemAltered, full*BlockSize, "altered at offset %d: bytes %d to %d differ from the sealed ones", full*BlockSize, full*BlockSize, n-1), true
	}
	return Problem{}, false
}

// crossCheck compares seals with manifests, and finds recordings the
// manifests list that the store lacks.
func (v *verifier) crossCheck() {
	for key, r := range v.results {
		seal := v.sealFor[key]
		if seal == nil {
			continue
		}
		m := v.mans[seal.KeyID]
		if m == nil {
			r.Problems = append(r.Problems, problem(ProblemNotInManifest, -1, "sealed as entry %d of key %s's manifest, and the store has no manifest of that key", seal.Seq, seal.KeyID))
			continue
		}
		if !m.res.Trusted {
			continue
		}
		e, ok := m.entries[seal.Seq]
		switch {
		case !ok && seal.Sealed.After(m.cpTime):
			r.Notes = append(r.Notes, fmt.Sprintf("sealed at %s, after the manifest's last checkpoint (%s): its entry %d is not written yet", seal.Sealed.Format(time.RFC3339), m.cpTime.Format(time.RFC3339), seal.Seq))
		case !ok:
			r.Problems = append(r.Problems, problem(ProblemNotInManifest, -1, "sealed as entry %d of key %s's manifest at %s, before its last checkpoint, but the manifest has no such entry", seal.Seq, seal.KeyID, seal.Sealed.Format(time.RFC3339)))
		case e.Op != OpSeal || e.Key != key || e.Seal != hexHash(seal.Hash()):
			r.Problems = append(r.Problems, problem(ProblemNotInManifest, -1, "entry %d of key %s's manifest is %s %s, not this seal", seal.Seq, seal.KeyID, e.Op, e.Key))
		}
	}
	for _, m := range v.mans {
		if !m.res.Trusted {
			continue
		}
		var newest int64
		for _, e := range m.latest {
			if e.Op == OpSeal {
				newest = max(newest, e.Seq)
			}
		}
		for key, e := range m.latest {
			if !v.wanted(key) {
				continue
			}
			r, present := v.results[key]
			switch {
			case e.Op == OpDelete && !present:
				v.results[key] = &Result{Key: key, Deleted: true, Notes: []string{fmt.Sprintf("deleted by policy at %s: %s (manifest entry %d)", e.Time.Format(time.RFC3339), e.Reason, e.Seq)}}
			case e.Op == OpDelete && present:
				r.Notes = append(r.Notes, fmt.Sprintf("retention deleted it at %s (manifest entry %d) but it is still there: the deletion did not finish", e.Time.Format(time.RFC3339), e.Seq))
			case present && e.Op == OpSeal && v.sealFor[key] == nil && v.seals[key] != nil:
				// A seal is there, but not one a trusted key made.
				r.Problems = append(r.Problems, problem(ProblemSealAbsent, -1, "the manifest lists its seal (entry %d of key %s, sealed at %s), which is not there", e.Seq, m.res.KeyID, e.Time.Format(time.RFC3339)))
			case !present:
				what := "the manifest lists it"
				if e.Seq == newest {
					what = "the manifest lists it as the newest recording of key " + m.res.KeyID
				}
				v.results[key] = &Result{Key: key, Status: e.Status, Problems: []Problem{
					problem(ProblemMissing, -1, "deleted or never stored: %s (entry %d, sealed at %s, %d bytes), the store does not have it", what, e.Seq, e.Time.Format(time.RFC3339), e.Size),
				}}
			}
		}
	}
}

// Anchor is a checkpoint kept outside the store.
type Anchor struct {
	Checkpoint
	// From says where it came from, for messages.
	From string
	// Local marks the recorder's own state, read on this machine: it has
	// no signature to check.
	Local bool
}

// Anchors returns the checkpoints in a file: lines "checkpoint ..." (a
// copy of a manifest's head file, or several), from says which file.
func Anchors(b []byte, from string) ([]Anchor, error) {
	var out []Anchor
	for line := range strings.Lines(string(b)) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		cp, err := ParseCheckpoint(line)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", from, err)
		}
		out = append(out, Anchor{Checkpoint: cp, From: from})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no checkpoint line", from)
	}
	return out, nil
}

// LocalAnchor returns what the evidence directory dir records of its
// manifest (the entries written to the store, and their head), as an
// anchor; ok is false when there is none.
func LocalAnchor(dir string) (Anchor, bool) {
	b, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		return Anchor{}, false
	}
	var st manifestState
	if json.Unmarshal(b, &st) != nil || !validKeyID(st.KeyID) || st.Seq < 1 {
		return Anchor{}, false
	}
	h, err := parseHash(st.Head)
	if err != nil {
		return Anchor{}, false
	}
	return Anchor{Checkpoint: Checkpoint{KeyID: st.KeyID, Seq: st.Seq, Head: h}, From: "this recorder's state in " + dir, Local: true}, true
}
