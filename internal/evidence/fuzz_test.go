package evidence

import (
	"testing"

	"github.com/reel-rec/reel/internal/store"
)

// The parsers of chain, seal and manifest files read what anyone with
// write access to a store may have put there: they must not panic, and
// what they accept must be what they would write.

func FuzzParseChain(f *testing.F) {
	k := NewKey(fixedPriv())
	key := store.RecordingKey("node-1", t0)
	ch := NewChain()
	ch.Write(castData(400))
	head, _ := ch.Head()
	sl, _ := syncLine(key, ch.Size(), head, t0, k)
	f.Add(append(appendBlockLine(chainHeader(key), 0, Hash{1}), sl...))
	f.Add(chainHeader(key))
	f.Add([]byte("reel-chain v1 x\nb 0 00\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		cf, err := ParseChain(b)
		if err != nil {
			return
		}
		again, err := ParseChain(encodeChain(cf.Key, cf.Blocks, cf.Syncs))
		if err != nil {
			t.Fatalf("re-encoded chain does not parse: %v", err)
		}
		if len(again.Blocks) != len(cf.Blocks) || len(again.Syncs) != len(cf.Syncs) {
			t.Fatalf("re-encoded chain differs: %d/%d blocks, %d/%d syncs", len(again.Blocks), len(cf.Blocks), len(again.Syncs), len(cf.Syncs))
		}
	})
}

func FuzzParseSeal(f *testing.F) {
	k := NewKey(fixedPriv())
	b, err := EncodeSeal(SealData{Key: store.RecordingKey("node-1", t0), Sender: "n", Size: 10, File: 10, Head: hexHash(Hash{1}), Last: hexHash(Hash{2}), Status: store.StatusComplete, Sealed: t0, Seq: 1}, k)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte("reel-seal v1\n{}\ned25519 0 x\n"))
	kr := ring(k)
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ParseSeal(b)
		if err != nil {
			return
		}
		s.verify(kr) // must not panic
		if s.Size < s.File || s.Acked > s.Size {
			t.Fatalf("accepted sizes out of range: %+v", s.SealData)
		}
	})
}

func FuzzParseSegment(f *testing.F) {
	k := NewKey(fixedPriv())
	line := []byte(`{"seq":1,"op":"seal","key":"node-1/2026-05-01T10-00-00.000000000Z.cast","seal":"` + hexHash(Hash{3}) + `","size":5,"time":"2026-05-01T10:00:00Z","status":"complete"}`)
	m := nextManifest(manifestIV(k.KeyID()), line)
	cp, _ := signCheckpoint(k, 1, m, t0)
	seg := append(append(append(segmentHeader(k.KeyID(), 1), line...), '\n'), cp...)
	f.Add(seg)
	f.Add(cp)
	f.Fuzz(func(t *testing.T, b []byte) {
		seg, err := ParseSegment(b)
		if err == nil && seg.Checkpoint.Seq != seg.First+int64(len(seg.Entries))-1 {
			t.Fatalf("accepted a segment whose checkpoint is at %d for entries %d..", seg.Checkpoint.Seq, seg.First)
		}
		ParseCheckpoint(string(b))
		Anchors(b, "fuzz")
	})
}
