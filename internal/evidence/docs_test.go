package evidence

import (
	"bytes"
	"crypto/sha256"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/reel-rec/reel/internal/store"
)

// docVectors returns the fenced blocks of docs/evidence.md that follow
// "<!-- vector:NAME -->" lines.
func docVectors(t *testing.T) map[string]string {
	b, err := os.ReadFile("../../docs/evidence.md")
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile("(?s)<!-- vector:(\\w+) -->\n```\n(.*?)```\n")
	out := map[string]string{}
	for _, m := range re.FindAllStringSubmatch(string(b), -1) {
		out[m[1]] = m[2]
	}
	return out
}

// TestDocVectors checks that the test vectors docs/evidence.md gives are
// what this package makes and accepts, so that an auditor's verifier
// built from the document agrees with reel's.
func TestDocVectors(t *testing.T) {
	v := docVectors(t)
	for _, name := range []string{"pubkey", "heads", "chain", "seal", "segment"} {
		if v[name] == "" {
			t.Fatalf("docs/evidence.md has no vector %q", name)
		}
	}
	k := NewKey(fixedPriv())
	if got := string(PublicKeyPEM(k.Public(), "")); got != v["pubkey"] {
		t.Errorf("public key:\n%s\ndocs say:\n%s", got, v["pubkey"])
	}
	kr := ring(k)
	for line := range strings.Lines(v["heads"]) {
		head, _, _ := strings.Cut(line, " ")
		found := false
		for _, vec := range vectors() {
			found = found || vec.head == head
		}
		if !found {
			t.Errorf("docs give head %s, which is not a tested vector", head)
		}
	}
	data := []byte("{\"version\":2,\"width\":80,\"height\":24}\n")
	key := store.RecordingKey("node-1", t0)
	cf, err := ParseChain([]byte(v["chain"]))
	if err != nil || cf.Key != key || len(cf.Syncs) != 1 {
		t.Fatalf("chain vector: %+v, %v", cf, err)
	}
	if known, ok := cf.Syncs[0].verify(kr, key); !known || !ok {
		t.Error("chain vector: the sync record's signature does not verify")
	}
	seal, err := ParseSeal([]byte(v["seal"]))
	if err != nil {
		t.Fatal(err)
	}
	if known, ok := seal.verify(kr); !known || !ok {
		t.Error("seal vector: signature does not verify")
	}
	ch := NewChain()
	ch.Write(data)
	head, last := ch.Head()
	if seal.Head != hexHash(head) || seal.Last != hexHash(last) || seal.Size != int64(len(data)) || cf.Syncs[0].Head != head {
		t.Errorf("seal vector does not seal the data: %+v", seal.SealData)
	}
	seg, err := ParseSegment([]byte(v["segment"]))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(v["seal"]))
	if seg.Entries[0].Seal != hexHash(sum) {
		t.Errorf("segment vector: entry names seal %s, the seal hashes to %x", seg.Entries[0].Seal, sum)
	}
	if m := nextManifest(manifestIV(k.KeyID()), seg.Entries[0].Raw); m != seg.Checkpoint.Head {
		t.Errorf("segment vector: m_1 = %x, checkpoint says %x", m, seg.Checkpoint.Head)
	}
	if known, ok := seg.Checkpoint.verify(kr); !known || !ok {
		t.Error("segment vector: checkpoint signature does not verify")
	}
	// Re-made from scratch, byte for byte.
	sl, _ := syncLine(key, 37, head, t0.Add(1e9), k)
	if got := string(append(chainHeader(key), sl...)); got != v["chain"] {
		t.Errorf("chain vector differs from what reel writes:\n%s", got)
	}
	again, _ := EncodeSeal(seal.SealData, k)
	if !bytes.Equal(again, []byte(v["seal"])) {
		t.Errorf("seal vector differs from what reel writes:\n%s", again)
	}
}
