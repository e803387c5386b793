package storetest

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/reel-rec/reel/internal/store"
)

// testKinds checks recordings of another kind than terminal (desktop):
// they get their kind's extension, list beside terminal ones in key order,
// read back byte for byte (binary bytes included), and are cut at their
// last newline like any recording when they end badly. CreateKind takes
// the raw sender identity as Create does: filed under SafeNode, the
// identity kept, an empty or too long one refused.
func (s *suite) testKinds(t *testing.T) {
	st := s.newStore(t)
	kc, ok := st.(store.KindCreator)
	if !ok {
		t.Fatal("the store does not implement store.KindCreator")
	}
	term := create(t, st, "node-1", base)
	write(t, term, castLines(3, 20), 7)
	closeW(t, term, store.StatusComplete, "")

	desk, err := kc.CreateKind(context.Background(), "node-1", base, store.KindDesktop)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(desk.Key(), ".desk") || store.KindOf(desk.Key()) != store.KindDesktop {
		t.Fatalf("desktop recording key %q", desk.Key())
	}
	body := []byte("{\"format\":\"reel-desktop\"}\nR\x00\x01\x02\xff\x1b\x01\n")
	tail := []byte("R\x00\xfe half a record")
	write(t, desk, append(bytes.Clone(body), tail...), 5)
	closeW(t, desk, store.StatusInterrupted, "connection reset")

	want := store.Info{Key: desk.Key(), Node: "node-1", Sender: "node-1", Start: base, Size: int64(len(body)), Status: store.StatusInterrupted, Reason: "connection reset"}
	if diff := cmp.Diff(want, stat(t, st, desk.Key())); diff != "" {
		t.Errorf("Stat (-want +got):\n%s", diff)
	}
	var keys []string
	for _, info := range list(t, st, store.Filter{}) {
		keys = append(keys, info.Key)
	}
	if diff := cmp.Diff([]string{term.Key(), desk.Key()}, keys); diff != "" && !(len(keys) == 2 && keys[0] == desk.Key()) {
		t.Errorf("List keys (-want +got):\n%s", diff)
	}
	if got := readAll(t, st, desk.Key()); !bytes.Equal(got, body) {
		t.Errorf("stored desktop recording: %s", firstDiff(got, body))
	}
	if got, err := s.h.ReadRaw(t, st, store.TailKey(desk.Key())); err != nil || !bytes.Equal(got, tail) {
		t.Errorf("tail: %q, %v", got, err)
	}

	// A sender identity that is not a node id as it is.
	const sender = "CN=alice desk,O=Example"
	node := store.SafeNode(sender)
	if node == sender {
		t.Fatalf("SafeNode(%q) did not change it; pick another identity", sender)
	}
	desk2, err := kc.CreateKind(ctxT(t), sender, base, store.KindDesktop)
	if err != nil {
		t.Fatalf("CreateKind(%q): %v", sender, err)
	}
	if got, _, err := store.ParseKey(desk2.Key()); err != nil || got != node || store.KindOf(desk2.Key()) != store.KindDesktop {
		t.Errorf("CreateKind(%q): key %q (node %q, %v), want a desktop recording of node %q", sender, desk2.Key(), got, err, node)
	}
	write(t, desk2, body, 100)
	closeW(t, desk2, store.StatusComplete, "")
	want = store.Info{Key: desk2.Key(), Node: node, Sender: sender, Start: base, Size: int64(len(body)), Status: store.StatusComplete}
	if diff := cmp.Diff(want, stat(t, st, desk2.Key())); diff != "" {
		t.Errorf("Stat of %q's desktop recording (-want +got):\n%s", sender, diff)
	}
	for _, bad := range []string{"", strings.Repeat("a", store.MaxSenderLen+1)} {
		if w, err := kc.CreateKind(ctxT(t), bad, base, store.KindDesktop); !errors.Is(err, store.ErrInvalidKey) {
			if err == nil {
				w.Close(store.StatusFailed, "test")
			}
			t.Errorf("CreateKind(sender of %d bytes): err = %v, want ErrInvalidKey", len(bad), err)
		}
	}
}
