package evidence

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/reel-rec/reel/internal/store"
)

// The files of the evidence format; docs/evidence.md specifies them.
const (
	// ChainSuffix and SealSuffix name a recording's sidecars:
	// "<key>.chain", "<key>.seal".
	ChainSuffix = ".chain"
	SealSuffix  = ".seal"

	chainMagic       = "reel-chain v1"
	sealMagic        = "reel-seal v1"
	manifestMagic    = "reel-manifest v1"
	syncDomain       = "reel-sync v1\n"
	checkpointDomain = "reel-checkpoint v1\n"
)

// maxLine bounds a line of a chain, seal or manifest file.
const maxLine = 64 << 10

var b64 = base64.StdEncoding

func hexHash(h Hash) string { return hex.EncodeToString(h[:]) }

func parseHash(s string) (Hash, error) {
	var h Hash
	if len(s) != 2*len(h) {
		return h, fmt.Errorf("hash %q: want %d hex digits", trunc(s), 2*len(h))
	}
	if _, err := hex.Decode(h[:], []byte(s)); err != nil || strings.ToLower(s) != s {
		return h, fmt.Errorf("hash %q: want lowercase hex", trunc(s))
	}
	return h, nil
}

func parseSig(s string) ([]byte, error) {
	sig, err := b64.Strict().DecodeString(s)
	if err != nil || len(sig) != 64 {
		return nil, fmt.Errorf("signature %q: want 64 bytes in base64", trunc(s))
	}
	return sig, nil
}

func parseUint(s string) (int64, error) {
	if s == "" || (len(s) > 1 && s[0] == '0') {
		return 0, fmt.Errorf("number %q: want a decimal without leading zeros", trunc(s))
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("number %q: want a non-negative decimal", trunc(s))
	}
	return n, nil
}

func validKeyID(s string) bool {
	if len(s) != 16 {
		return false
	}
	for _, c := range []byte(s) {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// trunc shortens s for an error message.
func trunc(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}

// ---- Chain files ----

// SyncRecord is one line "s ..." of a chain file: at Time the recorder
// made the first Size bytes durable, and their head was Head.
type SyncRecord struct {
	Size  int64
	Head  Hash
	Time  time.Time
	KeyID string
	Sig   []byte
}

func syncMsg(key string, size int64, head Hash, t time.Time) []byte {
	return fmt.Appendf(nil, "%s%s\n%d\n%s\n%d\n", syncDomain, key, size, hexHash(head), t.UnixNano())
}

// chainHeader is a chain file's first line, with its newline.
func chainHeader(key string) []byte { return []byte(chainMagic + " " + key + "\n") }

// appendBlockLine appends "b <i> <d>\n".
func appendBlockLine(dst []byte, i int64, d Hash) []byte {
	dst = append(dst, "b "...)
	dst = strconv.AppendInt(dst, i, 10)
	dst = append(dst, ' ')
	dst = hex.AppendEncode(dst, d[:])
	return append(dst, '\n')
}

// syncLine returns "s <size> <head> <unix ns> <keyid> <sig>\n", signed.
func syncLine(key string, size int64, head Hash, t time.Time, sg Signer) ([]byte, error) {
	sig, err := sg.Sign(syncMsg(key, size, head, t))
	if err != nil {
		return nil, fmt.Errorf("evidence: sign sync record of %s: %w", key, err)
	}
	return fmt.Appendf(nil, "s %d %s %d %s %s\n", size, hexHash(head), t.UnixNano(), sg.KeyID(), b64.EncodeToString(sig)), nil
}

// ChainFile is a parsed chain file.
type ChainFile struct {
	Key    string
	Blocks []Hash // d_0, d_1, ... in order
	Syncs  []SyncRecord
	// Torn is set when the file ends in a partial line (a crash while
	// it was appended to); the partial line is ignored.
	Torn bool
}

// ParseChain parses a chain file. Every line must be well formed, except
// that a last line without its newline is ignored (Torn).
func ParseChain(b []byte) (*ChainFile, error) {
	cf := &ChainFile{}
	lineNo := 0
	for len(b) > 0 {
		lineNo++
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			cf.Torn = true
			break
		}
		line := string(b[:i])
		b = b[i+1:]
		if len(line) > maxLine {
			return nil, fmt.Errorf("chain line %d: longer than %d bytes", lineNo, maxLine)
		}
		if lineNo == 1 {
			key, ok := strings.CutPrefix(line, chainMagic+" ")
			if !ok {
				return nil, fmt.Errorf("chain line 1: want %q and the key, got %q", chainMagic, trunc(line))
			}
			if _, _, err := store.ParseKey(key); err != nil {
				return nil, fmt.Errorf("chain line 1: %w", err)
			}
			cf.Key = key
			continue
		}
		f := strings.Split(line, " ")
		switch {
		case f[0] == "b" && len(f) == 3:
			i, err := parseUint(f[1])
			if err != nil {
				return nil, fmt.Errorf("chain line %d: %w", lineNo, err)
			}
			if i != int64(len(cf.Blocks)) {
				return nil, fmt.Errorf("chain line %d: block %d where block %d comes next", lineNo, i, len(cf.Blocks))
			}
			d, err := parseHash(f[2])
			if err != nil {
				return nil, fmt.Errorf("chain line %d: %w", lineNo, err)
			}
			cf.Blocks = append(cf.Blocks, d)
		case f[0] == "s" && len(f) == 6:
			var sr SyncRecord
			var err error
			var ns int64
			if sr.Size, err = parseUint(f[1]); err == nil {
				if sr.Head, err = parseHash(f[2]); err == nil {
					if ns, err = parseUint(f[3]); err == nil {
						if !validKeyID(f[4]) {
							err = fmt.Errorf("key id %q: want 16 hex digits", trunc(f[4]))
						} else {
							sr.KeyID = f[4]
							sr.Sig, err = parseSig(f[5])
						}
					}
				}
			}
			if err != nil {
				return nil, fmt.Errorf("chain line %d: %w", lineNo, err)
			}
			sr.Time = time.Unix(0, ns).UTC()
			if n := len(cf.Syncs); n > 0 && sr.Size < cf.Syncs[n-1].Size {
				return nil, fmt.Errorf("chain line %d: sync record of %d bytes after one of %d", lineNo, sr.Size, cf.Syncs[n-1].Size)
			}
			if max := (int64(len(cf.Blocks)) + 1) * BlockSize; sr.Size >= max {
				return nil, fmt.Errorf("chain line %d: sync record of %d bytes, but only %d full blocks precede it", lineNo, sr.Size, len(cf.Blocks))
			}
			cf.Syncs = append(cf.Syncs, sr)
		default:
			return nil, fmt.Errorf("chain line %d: not a block or sync record: %q", lineNo, trunc(line))
		}
	}
	if lineNo == 0 || cf.Key == "" {
		return nil, errors.New("chain: no header line")
	}
	return cf, nil
}

// verifySync checks a sync record's signature.
func (sr SyncRecord) verify(kr Keyring, key string) (known, ok bool) {
	return kr.verify(sr.KeyID, syncMsg(key, sr.Size, sr.Head, sr.Time), sr.Sig)
}

// ---- Seals ----

// SealData is what a seal says about a recording. Its JSON is the seal's
// second line.
type SealData struct {
	Key    string `json:"key"`
	Sender string `json:"sender"`
	// Size is how many bytes the seal covers: the recording's stream as
	// received, which is the recording file followed by its ".tail" when
	// the store cut it at its last complete line.
	Size int64 `json:"size"`
	// File is how many of them are in the recording file; the other
	// Size-File are in "<key>.tail".
	File int64 `json:"file"`
	// Head is head(Size) of the stream (Chain); Last is the SHA-256 of its
	// last, partial block.
	Head string `json:"head"`
	Last string `json:"last"`
	// Status and Reason are how the recording ended.
	Status store.Status `json:"status"`
	Reason string       `json:"reason,omitempty"`
	// Acked is how many bytes the recorder had acknowledged to the sender
	// in sync rounds (the last sync record) before the recording ended;
	// AckedHead is their head. The final acknowledgement covers Size.
	Acked     int64  `json:"acked"`
	AckedHead string `json:"ackedHead,omitempty"`
	// Recovered is set when the seal was made at a restart, for a
	// recording that a crash left open (or closed but not sealed).
	Recovered bool `json:"recovered,omitempty"`
	// Sealed is when the seal was made.
	Sealed time.Time `json:"sealed"`
	// KeyID names the key that signs the seal; Seq is the seal's entry in
	// that key's manifest.
	KeyID string `json:"keyid"`
	Seq   int64  `json:"seq"`
}

// Seal is a parsed seal file.
type Seal struct {
	SealData
	Raw []byte // the whole file
	msg []byte // its signed part
	sig []byte
}

// Hash is the SHA-256 of the seal file, as manifest entries name it.
func (s *Seal) Hash() Hash { return sha256.Sum256(s.Raw) }

// EncodeSeal signs d with sg and returns the seal file.
func EncodeSeal(d SealData, sg Signer) ([]byte, error) {
	d.KeyID = sg.KeyID()
	j, err := json.Marshal(d)
	if err != nil {
		return nil, err
	}
	msg := append(append([]byte(sealMagic+"\n"), j...), '\n')
	sig, err := sg.Sign(msg)
	if err != nil {
		return nil, fmt.Errorf("evidence: sign seal of %s: %w", d.Key, err)
	}
	return fmt.Appendf(msg, "ed25519 %s %s\n", d.KeyID, b64.EncodeToString(sig)), nil
}

// ParseSeal parses a seal file; it does not check the signature (Verify
// does).
func ParseSeal(b []byte) (*Seal, error) {
	lines := bytes.SplitAfter(b, []byte("\n"))
	if len(lines) != 4 || len(lines[3]) != 0 {
		return nil, errors.New("seal: want exactly three lines")
	}
	if string(lines[0]) != sealMagic+"\n" {
		return nil, fmt.Errorf("seal: first line %q, want %q", trunc(string(lines[0])), sealMagic)
	}
	s := &Seal{Raw: b, msg: b[:len(lines[0])+len(lines[1])]}
	dec := json.NewDecoder(bytes.NewReader(lines[1]))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s.SealData); err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	if _, _, err := store.ParseKey(s.Key); err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	if _, err := parseHash(s.Head); err != nil {
		return nil, fmt.Errorf("seal: head: %w", err)
	}
	if _, err := parseHash(s.Last); err != nil {
		return nil, fmt.Errorf("seal: last: %w", err)
	}
	if s.AckedHead != "" {
		if _, err := parseHash(s.AckedHead); err != nil {
			return nil, fmt.Errorf("seal: ackedHead: %w", err)
		}
	}
	if s.Size < 0 || s.File < 0 || s.File > s.Size || s.Acked < 0 || s.Acked > s.Size || s.Seq < 1 {
		return nil, fmt.Errorf("seal: sizes out of range (size %d, file %d, acked %d, seq %d)", s.Size, s.File, s.Acked, s.Seq)
	}
	sigLine := strings.TrimSuffix(string(lines[2]), "\n")
	f := strings.Split(sigLine, " ")
	if len(f) != 3 || f[0] != "ed25519" || f[1] != s.KeyID || !validKeyID(f[1]) {
		return nil, fmt.Errorf("seal: signature line %q: want \"ed25519 %s <base64>\"", trunc(sigLine), s.KeyID)
	}
	sig, err := parseSig(f[2])
	if err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	s.sig = sig
	return s, nil
}

// verify checks the seal's signature.
func (s *Seal) verify(kr Keyring) (known, ok bool) { return kr.verify(s.KeyID, s.msg, s.sig) }

// heads returns the seal's head and last block hashes.
func (s *Seal) heads() (head, last Hash) {
	head, _ = parseHash(s.Head)
	last, _ = parseHash(s.Last)
	return head, last
}

// ---- Manifests ----

// Manifest operations.
const (
	OpSeal         = "seal"          // a recording was sealed
	OpDelete       = "delete"        // a recording is deleted by policy (retention)
	OpDeleteFailed = "delete-failed" // ... and that failed: it stays
)

// Entry is one line of a manifest.
type Entry struct {
	Seq  int64     `json:"seq"`
	Op   string    `json:"op"`
	Key  string    `json:"key"`
	Seal string    `json:"seal"` // SHA-256 (hex) of the recording's seal file
	Size int64     `json:"size"`
	Time time.Time `json:"time"`
	// Status is the sealed status (OpSeal); Reason says why a recording
	// is deleted (the retention rule) or why that failed.
	Status store.Status `json:"status,omitempty"`
	Reason string       `json:"reason,omitempty"`
}

// manifestIV returns m_0 of keyID's manifest.
func manifestIV(keyID string) Hash {
	return sha256.Sum256([]byte(manifestMagic + "\n" + keyID))
}

// nextManifest is m_n = SHA-256(m_(n-1) || line_n), line without its
// newline.
func nextManifest(m Hash, line []byte) Hash {
	h := sha256.New()
	h.Write(m[:])
	h.Write(line)
	var out Hash
	h.Sum(out[:0])
	return out
}

// Checkpoint is a signed statement: keyID's manifest had Seq entries, with
// head Head, at Time.
type Checkpoint struct {
	KeyID string
	Seq   int64
	Head  Hash
	Time  time.Time
	Sig   []byte
}

func checkpointMsg(keyID string, seq int64, head Hash, t time.Time) []byte {
	return fmt.Appendf(nil, "%s%s\n%d\n%s\n%d\n", checkpointDomain, keyID, seq, hexHash(head), t.UnixNano())
}

// signCheckpoint returns the checkpoint line, with its newline:
// "checkpoint <keyid> <seq> <head> <unix ns> <sig>".
func signCheckpoint(sg Signer, seq int64, head Hash, t time.Time) ([]byte, error) {
	sig, err := sg.Sign(checkpointMsg(sg.KeyID(), seq, head, t))
	if err != nil {
		return nil, fmt.Errorf("evidence: sign checkpoint: %w", err)
	}
	return fmt.Appendf(nil, "checkpoint %s %d %s %d %s\n", sg.KeyID(), seq, hexHash(head), t.UnixNano(), b64.EncodeToString(sig)), nil
}

// ParseCheckpoint parses a checkpoint line (without its newline).
func ParseCheckpoint(line string) (Checkpoint, error) {
	var c Checkpoint
	f := strings.Split(line, " ")
	if len(f) != 6 || f[0] != "checkpoint" {
		return c, fmt.Errorf("checkpoint: want \"checkpoint <keyid> <seq> <head> <time> <signature>\", got %q", trunc(line))
	}
	if !validKeyID(f[1]) {
		return c, fmt.Errorf("checkpoint: key id %q", trunc(f[1]))
	}
	c.KeyID = f[1]
	var err error
	var ns int64
	if c.Seq, err = parseUint(f[2]); err == nil {
		if c.Head, err = parseHash(f[3]); err == nil {
			if ns, err = parseUint(f[4]); err == nil {
				c.Sig, err = parseSig(f[5])
			}
		}
	}
	if err != nil {
		return c, fmt.Errorf("checkpoint: %w", err)
	}
	c.Time = time.Unix(0, ns).UTC()
	return c, nil
}

func (c Checkpoint) verify(kr Keyring) (known, ok bool) {
	return kr.verify(c.KeyID, checkpointMsg(c.KeyID, c.Seq, c.Head, c.Time), c.Sig)
}

// EntryLine is a manifest entry with the bytes it was read from.
type EntryLine struct {
	Entry
	Raw []byte // the line, without its newline
}

// Segment is a parsed manifest segment: entries First.. and the signed
// checkpoint that ends it.
type Segment struct {
	KeyID      string
	First      int64
	Entries    []EntryLine
	Checkpoint Checkpoint
}

// segmentHeader is a segment's first line, with its newline.
func segmentHeader(keyID string, first int64) []byte {
	return fmt.Appendf(nil, "%s %s %d\n", manifestMagic, keyID, first)
}

// ParseSegment parses a manifest segment. It checks the form of every line
// and that entries are numbered First, First+1, ... (so a reordered or
// removed line is reported here); chains and signatures are checked by
// Verify.
func ParseSegment(b []byte) (*Segment, error) {
	if len(b) == 0 || b[len(b)-1] != '\n' {
		return nil, errors.New("manifest segment: does not end in a newline")
	}
	lines := strings.Split(string(b[:len(b)-1]), "\n")
	if len(lines) < 2 {
		return nil, errors.New("manifest segment: want a header, entries and a checkpoint")
	}
	f := strings.Split(lines[0], " ")
	if len(f) != 4 || f[0]+" "+f[1] != manifestMagic || !validKeyID(f[2]) {
		return nil, fmt.Errorf("manifest segment: header %q, want %q, a key id and the first entry's number", trunc(lines[0]), manifestMagic)
	}
	first, err := parseUint(f[3])
	if err != nil || first < 1 {
		return nil, fmt.Errorf("manifest segment: header: first entry %q", trunc(f[3]))
	}
	seg := &Segment{KeyID: f[2], First: first}
	for i, line := range lines[1 : len(lines)-1] {
		if len(line) > maxLine {
			return nil, fmt.Errorf("manifest segment: line %d: longer than %d bytes", i+2, maxLine)
		}
		var e Entry
		dec := json.NewDecoder(strings.NewReader(line))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&e); err != nil {
			return nil, fmt.Errorf("manifest segment: line %d: %w", i+2, err)
		}
		if err := e.check(); err != nil {
			return nil, fmt.Errorf("manifest segment: line %d: %w", i+2, err)
		}
		if want := first + int64(i); e.Seq != want {
			return nil, &ReorderError{Line: i + 2, Seq: e.Seq, Want: want}
		}
		seg.Entries = append(seg.Entries, EntryLine{Entry: e, Raw: []byte(line)})
	}
	cp, err := ParseCheckpoint(lines[len(lines)-1])
	if err != nil {
		return nil, fmt.Errorf("manifest segment: last line: %w", err)
	}
	if cp.KeyID != seg.KeyID || cp.Seq != first+int64(len(seg.Entries))-1 {
		return nil, fmt.Errorf("manifest segment: checkpoint of key %s at entry %d ends a segment of key %s with entries %d to %d",
			cp.KeyID, cp.Seq, seg.KeyID, first, first+int64(len(seg.Entries))-1)
	}
	seg.Checkpoint = cp
	return seg, nil
}

// ReorderError is a manifest entry out of its place.
type ReorderError struct {
	Line      int
	Seq, Want int64
}

func (e *ReorderError) Error() string {
	return fmt.Sprintf("manifest segment: line %d holds entry %d where entry %d belongs: entries reordered or removed", e.Line, e.Seq, e.Want)
}

func (e *Entry) check() error {
	switch e.Op {
	case OpSeal, OpDelete, OpDeleteFailed:
	default:
		return fmt.Errorf("entry %d: unknown op %q", e.Seq, trunc(e.Op))
	}
	if _, _, err := store.ParseKey(e.Key); err != nil {
		return fmt.Errorf("entry %d: %w", e.Seq, err)
	}
	if _, err := parseHash(e.Seal); err != nil {
		return fmt.Errorf("entry %d: seal: %w", e.Seq, err)
	}
	if e.Seq < 1 || e.Size < 0 {
		return fmt.Errorf("entry %d: numbers out of range", e.Seq)
	}
	return nil
}
