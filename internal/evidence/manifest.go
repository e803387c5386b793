package evidence

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/reel-rec/reel/internal/store"
	"github.com/reel-rec/reel/internal/store/durable"
)

// Where manifests and published keys live in a store (store.Files names).
const (
	manifestDir = store.FilesDir + "/manifest/" // + <keyid>/<first seq, 12 digits>.log, <keyid>/head
	keysDir     = store.FilesDir + "/keys/"     // + <keyid>.pub
)

// SegmentName is the store file of keyID's manifest segment that starts at
// entry first.
func SegmentName(keyID string, first int64) string {
	return fmt.Sprintf("%s%s/%012d.log", manifestDir, keyID, first)
}

// HeadName is the store file holding keyID's latest checkpoint.
func HeadName(keyID string) string { return manifestDir + keyID + "/head" }

// manifest appends to this recorder's manifest: entries go to a journal
// in the evidence directory (synced before Append returns), and Flush
// writes the journal's entries to the store as a new segment ending in a
// signed checkpoint, then empties the journal.
type manifest struct {
	dir   string // the evidence directory
	files store.Files
	sg    Signer
	now   func() time.Time

	qmu     sync.Mutex // guards queue and leading
	queue   []*addReq  // adds waiting for the next group
	leading bool       // an adder is committing groups

	mu      sync.Mutex
	seq     int64    // entries so far
	head    Hash     // m_seq
	flushed int64    // entries in the store's segments
	fhead   Hash     // m_flushed
	pending [][]byte // entries flushed+1..seq, without newlines
	journal *os.File
	lastCP  time.Time // when head was last written to the store
}

// manifestState is manifest.json: how far the store's segments go.
type manifestState struct {
	KeyID string `json:"keyid"`
	Seq   int64  `json:"seq"`
	Head  string `json:"head"`
}

func (m *manifest) statePath() string   { return filepath.Join(m.dir, "manifest.json") }
func (m *manifest) journalPath() string { return filepath.Join(m.dir, "manifest.journal") }

// openManifest loads the manifest's state and journal from dir.
func openManifest(dir string, files store.Files, sg Signer, now func() time.Time) (*manifest, error) {
	m := &manifest{dir: dir, files: files, sg: sg, now: now, head: manifestIV(sg.KeyID())}
	m.fhead = m.head
	b, err := os.ReadFile(m.statePath())
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("evidence: %w", err)
	default:
		var st manifestState
		if err := json.Unmarshal(b, &st); err != nil {
			return nil, fmt.Errorf("evidence: %s: %w", m.statePath(), err)
		}
		if st.KeyID != sg.KeyID() {
			return nil, fmt.Errorf("evidence: %s belongs to key %s, but the recorder's key is %s: keep each key's state apart (a new key needs a new --statedir evidence folder)", m.statePath(), st.KeyID, sg.KeyID())
		}
		h, err := parseHash(st.Head)
		if err != nil {
			return nil, fmt.Errorf("evidence: %s: %w", m.statePath(), err)
		}
		m.seq, m.head, m.flushed, m.fhead = st.Seq, h, st.Seq, h
	}
	jb, err := os.ReadFile(m.journalPath())
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("evidence: %w", err)
	}
	torn := false
	for len(jb) > 0 {
		i := bytes.IndexByte(jb, '\n')
		if i < 0 {
			torn = true // a crash while appending: that entry was never reported done
			break
		}
		line := jb[:i]
		jb = jb[i+1:]
		var e Entry
		if err := json.Unmarshal(line, &e); err != nil {
			return nil, fmt.Errorf("evidence: %s: %w", m.journalPath(), err)
		}
		if e.Seq <= m.flushed {
			continue // in a segment already (a crash before the journal was emptied)
		}
		if e.Seq != m.seq+1 {
			return nil, fmt.Errorf("evidence: %s: entry %d follows entry %d", m.journalPath(), e.Seq, m.seq)
		}
		m.seq, m.head = e.Seq, nextManifest(m.head, line)
		m.pending = append(m.pending, bytes.Clone(line))
	}
	if torn || len(m.pending) > 0 {
		if err := m.rewriteJournal(); err != nil {
			return nil, err
		}
	}
	if m.journal == nil {
		f, err := os.OpenFile(m.journalPath(), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
		if err != nil {
			return nil, fmt.Errorf("evidence: %w", err)
		}
		m.journal = f
	}
	return m, nil
}

// rewriteJournal makes the journal hold exactly the pending entries.
func (m *manifest) rewriteJournal() error {
	var b []byte
	for _, line := range m.pending {
		b = append(append(b, line...), '\n')
	}
	if err := durable.WriteFile(m.journalPath(), b); err != nil {
		return fmt.Errorf("evidence: %w", err)
	}
	if m.journal != nil {
		m.journal.Close()
	}
	f, err := os.OpenFile(m.journalPath(), os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		m.journal = nil
		return fmt.Errorf("evidence: %w", err)
	}
	m.journal = f
	return nil
}

// add appends an entry made by mk, which is given the entry's number and
// runs with the manifest locked (so that the seal it writes and the entry
// agree); if mk fails, the number is not used.
//
// Entries are committed in groups: while one group is being committed,
// the adds that arrive queue up, and the next group runs their mk
// functions at the same time (each writing its seal) and appends their
// entries to the journal with one write and one sync. So recordings that
// close together wait for one journal sync, not one each in a row.
func (m *manifest) add(mk func(seq int64) (Entry, error)) (Entry, error) {
	r := &addReq{mk: mk}
	m.qmu.Lock()
	m.queue = append(m.queue, r)
	if m.leading {
		r.done = make(chan struct{})
		m.qmu.Unlock()
		<-r.done
		return r.e, r.err
	}
	m.leading = true
	for len(m.queue) > 0 {
		group := m.queue
		m.queue = nil
		m.qmu.Unlock()
		m.commit(group)
		m.qmu.Lock()
		for _, q := range group {
			if q.done != nil {
				close(q.done)
			}
		}
	}
	m.leading = false
	m.qmu.Unlock()
	return r.e, r.err
}

// addReq is an add waiting for its group's commit.
type addReq struct {
	mk   func(seq int64) (Entry, error)
	e    Entry
	err  error
	done chan struct{} // closed when e and err are set; nil for the adder that commits
}

// commit numbers the group's entries in order, runs their mk functions
// (again, with its new number, for one that follows an entry whose mk
// failed), and appends the entries made to the journal, synced.
func (m *manifest) commit(group []*addReq) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.journal == nil {
		for _, r := range group {
			r.err = errors.New("evidence: manifest closed")
		}
		return
	}
	made := make([]int64, len(group)) // the number each r.e was made with; 0: none
	for {
		var todo []int // entries whose number changed
		seq := m.seq
		for i, r := range group {
			if r.err != nil {
				continue
			}
			seq++
			if made[i] != seq {
				made[i] = seq
				todo = append(todo, i)
			}
		}
		if len(todo) == 0 {
			break
		}
		parallel(len(todo), func(k int) {
			r := group[todo[k]]
			r.e, r.err = r.mk(made[todo[k]])
		})
	}
	var b []byte
	var lines [][]byte
	var ok []*addReq
	for i, r := range group {
		if r.err != nil {
			continue
		}
		r.e.Seq = made[i]
		if r.e.Time.IsZero() {
			r.e.Time = m.now().UTC()
		}
		line, err := json.Marshal(r.e)
		if err != nil {
			r.err = err
			// The entries after it have numbers one too high: fail them
			// too rather than leave a gap (json.Marshal of an Entry does
			// not fail).
			for _, q := range group[i+1:] {
				if q.err == nil {
					q.err = err
				}
			}
			break
		}
		b = append(append(b, line...), '\n')
		lines = append(lines, line)
		ok = append(ok, r)
	}
	if len(ok) == 0 {
		return
	}
	_, err := m.journal.Write(b)
	if err == nil {
		err = m.journal.Sync()
	}
	if err != nil {
		err = fmt.Errorf("evidence: manifest journal: %w", err)
		for _, r := range ok {
			r.e, r.err = Entry{}, err
		}
		// Leave the journal holding exactly the entries before the group.
		if rerr := m.rewriteJournal(); rerr != nil {
			m.journal = nil
		}
		return
	}
	for k, r := range ok {
		m.seq, m.head = r.e.Seq, nextManifest(m.head, lines[k])
		m.pending = append(m.pending, lines[k])
	}
}

// flush writes the pending entries to the store as a segment ending in a
// checkpoint, and the checkpoint to the head file; with no pending
// entries, it rewrites the head file when heartbeat has passed since it
// was last written (so that its time says the recorder was alive).
func (m *manifest) flush(ctx context.Context, heartbeat time.Duration) error {
	m.mu.Lock()
	lines := m.pending
	seq, head, first := m.seq, m.head, m.flushed+1
	now := m.now().UTC()
	if len(lines) == 0 && !m.lastCP.IsZero() && now.Sub(m.lastCP) < heartbeat {
		m.mu.Unlock()
		return nil
	}
	m.mu.Unlock()

	cp, err := signCheckpoint(m.sg, seq, head, now)
	if err != nil {
		return err
	}
	if len(lines) > 0 {
		seg := segmentHeader(m.sg.KeyID(), first)
		for _, l := range lines {
			seg = append(append(seg, l...), '\n')
		}
		seg = append(seg, cp...)
		if err := m.files.PutFile(ctx, SegmentName(m.sg.KeyID(), first), seg); err != nil {
			return fmt.Errorf("evidence: write manifest segment: %w", err)
		}
	}
	if err := m.files.PutFile(ctx, HeadName(m.sg.KeyID()), cp); err != nil {
		return fmt.Errorf("evidence: write manifest head: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.lastCP = now
	if len(lines) == 0 {
		return nil
	}
	st, _ := json.Marshal(manifestState{KeyID: m.sg.KeyID(), Seq: seq, Head: hexHash(head)})
	if err := durable.WriteFile(m.statePath(), append(st, '\n')); err != nil {
		return fmt.Errorf("evidence: %w", err)
	}
	m.flushed, m.fhead = seq, head
	m.pending = m.pending[len(lines):]
	return m.rewriteJournal()
}

// position returns the number of entries and their head.
func (m *manifest) position() (int64, Hash) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.seq, m.head
}

func (m *manifest) close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.journal == nil {
		return nil
	}
	err := m.journal.Close()
	m.journal = nil
	return err
}

// publishKey puts the public key in the store, for auditors to find (it
// is trusted only when they give it to reel verify themselves).
func publishKey(ctx context.Context, files store.Files, sg Signer) error {
	name := keysDir + sg.KeyID() + ".pub"
	if r, err := files.OpenFile(ctx, name); err == nil {
		r.Close()
		return nil
	}
	return files.PutFile(ctx, name, PublicKeyPEM(sg.Public(), "published by the recorder"))
}

// keyIDFromManifestName returns the key id of a name under manifestDir.
func keyIDFromManifestName(name string) (string, bool) {
	rest, ok := strings.CutPrefix(name, manifestDir)
	if !ok {
		return "", false
	}
	id, _, ok := strings.Cut(rest, "/")
	return id, ok && validKeyID(id)
}
