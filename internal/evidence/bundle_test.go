package evidence

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"

	"github.com/reel-rec/reel/internal/store"
	"github.com/reel-rec/reel/internal/store/fsstore"
	"github.com/reel-rec/reel/internal/store/s3store/s3test"
)

// bundleTo bundles keys from e's store into a fresh folder and returns a
// copy of that folder made elsewhere (as a receiver would have it).
func bundleTo(t *testing.T, e env, keys ...string) (string, *BundleResult) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "bundle")
	dst, err := fsstore.Open(dir, fsstore.Options{MinFree: -1})
	if err != nil {
		t.Fatal(err)
	}
	var last, total int64
	res, err := Bundle(t.Context(), e.reader(t), dst, keys, func(done, all int64) { last, total = done, all })
	if err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
	if last == 0 || last != total {
		t.Errorf("progress ended at %d of %d", last, total)
	}
	fresh := filepath.Join(t.TempDir(), "received")
	if err := os.CopyFS(fresh, os.DirFS(dir)); err != nil {
		t.Fatal(err)
	}
	return fresh, res
}

func openBundle(t *testing.T, dir string) Backend {
	t.Helper()
	s, err := fsstore.OpenReadOnly(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func runBundle(t *testing.T, e env) {
	fx := setup(t, e)
	dir, res := bundleTo(t, e, fx.a, fx.b)
	if len(res.Items) != 2 || len(res.KeyIDs) != 1 || res.KeyIDs[0] != fx.key.KeyID() {
		t.Fatalf("bundled %+v", res)
	}
	if res.PublicKeys[fx.key.KeyID()] == nil {
		t.Error("the published public key was not copied")
	}
	for _, it := range res.Items {
		if it.KeyID != fx.key.KeyID() || !it.Chain {
			t.Errorf("%s: sealed by %q, chain %v", it.Info.Key, it.KeyID, it.Chain)
		}
	}
	sum := sha256.Sum256(fx.aData)
	if res.Items[0].Info.Key != fx.a || res.Items[0].SHA256 != hex.EncodeToString(sum[:]) {
		t.Errorf("%s: SHA-256 %s, want %x", res.Items[0].Info.Key, res.Items[0].SHA256, sum)
	}

	// The fresh copy verifies with only the public key.
	rep := verify(t, openBundle(t, dir), VerifyOptions{Keys: ring(fx.key), Only: []string{fx.a, fx.b}})
	if !rep.OK() || len(rep.Recordings) != 2 || len(rep.Manifests) != 1 {
		t.Fatalf("the bundle does not verify clean:\n%s", describe(rep))
	}
	for _, r := range rep.Recordings {
		if !r.Sealed {
			t.Errorf("%s not sealed in the bundle", r.Key)
		}
		if r.Key == fx.b && r.Status != store.StatusInterrupted {
			t.Errorf("%s: status %s in the bundle, want interrupted", r.Key, r.Status)
		}
	}
	// Only what is in it: the recording left out is missing from a check
	// of everything (the manifest lists it), which the README says.
	rep = verify(t, openBundle(t, dir), VerifyOptions{Keys: ring(fx.key)})
	if !hasProblem(rep, want{fx.c, ProblemMissing, "the manifest lists it"}) {
		t.Errorf("a check of everything does not miss %s:\n%s", fx.c, describe(rep))
	}
	// A byte changed in the received copy is found.
	p := filepath.Join(dir, fx.a)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	b[20000] ^= 1
	if err := os.WriteFile(p, b, 0o640); err != nil {
		t.Fatal(err)
	}
	rep = verify(t, openBundle(t, dir), VerifyOptions{Keys: ring(fx.key), Only: []string{fx.a, fx.b}})
	if !hasProblem(rep, want{fx.a, ProblemAltered, "altered at offset 16384"}) {
		t.Errorf("a flipped byte in the bundle is not found:\n%s", describe(rep))
	}
	// Another key proves nothing.
	rep = verify(t, openBundle(t, dir), VerifyOptions{Keys: ring(mustKey(t)), Only: []string{fx.b}})
	if !hasProblem(rep, want{fx.b, ProblemUnknownKey, "not among the trusted keys"}) {
		t.Errorf("the bundle verifies with another key:\n%s", describe(rep))
	}
}

func TestBundleFS(t *testing.T) { runBundle(t, newFSEnv(t)) }

func TestBundleS3(t *testing.T) {
	for _, server := range s3test.Names {
		t.Run(server, func(t *testing.T) {
			runBundle(t, newS3Env(t, s3test.Start(t, server)))
		})
	}
}

func TestBundleRefusesLive(t *testing.T) {
	e := newFSEnv(t)
	b := e.recorder(t)
	s := openSealer(t, b, filepath.Join(t.TempDir(), "evidence"), mustKey(t))
	w, err := s.Create(t.Context(), "node-a", t0)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(castData(3))
	w.Sync()
	dst, err := fsstore.Open(filepath.Join(t.TempDir(), "bundle"), fsstore.Options{MinFree: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	if _, err := Bundle(t.Context(), s, dst, []string{w.Key()}, nil); err == nil {
		t.Error("a live recording was bundled")
	}
	w.Close(store.StatusComplete, "")
	s.Close()
}
