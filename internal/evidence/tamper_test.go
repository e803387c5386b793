package evidence

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reel-rec/reel/internal/store"
	"github.com/reel-rec/reel/internal/store/fsstore"
	"github.com/reel-rec/reel/internal/store/s3store"
	"github.com/reel-rec/reel/internal/store/s3store/s3test"
)

// env is a backend the tamper tests run on: a store the recorder writes,
// a read-only view of it, and raw access to its files for the attacker.
type env interface {
	recorder(t *testing.T) Backend
	reader(t *testing.T) Backend
	settle(t *testing.T, b Backend) // wait until background uploads landed
	get(t *testing.T, name string) []byte
	put(t *testing.T, name string, data []byte)
	remove(t *testing.T, name string)
}

type fsEnv struct{ dir string }

func newFSEnv(t *testing.T) *fsEnv { return &fsEnv{dir: filepath.Join(t.TempDir(), "store")} }

func (e *fsEnv) recorder(t *testing.T) Backend {
	s, err := fsstore.Open(e.dir, fsstore.Options{MinFree: -1})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (e *fsEnv) reader(t *testing.T) Backend {
	s, err := fsstore.OpenReadOnly(e.dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func (e *fsEnv) settle(*testing.T, Backend) {}
func (e *fsEnv) get(t *testing.T, name string) []byte {
	b, err := os.ReadFile(filepath.Join(e.dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}
func (e *fsEnv) put(t *testing.T, name string, data []byte) {
	if err := os.WriteFile(filepath.Join(e.dir, name), data, 0o640); err != nil {
		t.Fatal(err)
	}
}
func (e *fsEnv) remove(t *testing.T, name string) {
	if err := os.Remove(filepath.Join(e.dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
}

var bucketSeq atomic.Int64

type s3Env struct {
	srv *s3test.Server
	cfg s3store.Config
	raw *s3test.Client
}

// newS3Env returns an env on a fresh bucket of srv.
func newS3Env(t *testing.T, srv *s3test.Server) *s3Env {
	n := bucketSeq.Add(1)
	cfg := s3store.Config{
		Endpoint: srv.Addr, Insecure: true, Bucket: fmt.Sprintf("evidence-%d", n),
		Prefix: "rec/", AccessKey: srv.AccessKey, SecretKey: srv.SecretKey, CreateBucket: true,
		SpoolDir: filepath.Join(t.TempDir(), "spool"), RetryMin: 20 * time.Millisecond, RetryMax: 200 * time.Millisecond,
	}
	return &s3Env{srv: srv, cfg: cfg, raw: s3test.NewClient(t, srv, cfg.Bucket, cfg.Prefix)}
}

func (e *s3Env) open(t *testing.T, cfg s3store.Config) *s3store.Store {
	s, err := s3store.Open(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
func (e *s3Env) recorder(t *testing.T) Backend { return e.open(t, e.cfg) }
func (e *s3Env) reader(t *testing.T) Backend {
	cfg := e.cfg
	cfg.SpoolDir = ""
	s := e.open(t, cfg)
	t.Cleanup(func() { s.Close() })
	return s
}
func (e *s3Env) settle(t *testing.T, b Backend) {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	if err := b.(*s3store.Store).Flush(ctx); err != nil {
		t.Fatal(err)
	}
}
func (e *s3Env) get(t *testing.T, name string) []byte {
	b, err := e.raw.Get(t.Context(), name)
	if err != nil {
		t.Fatalf("get %s: %v", name, err)
	}
	return b
}
func (e *s3Env) put(t *testing.T, name string, data []byte) {
	if err := e.raw.Put(t.Context(), name, data); err != nil {
		t.Fatal(err)
	}
}
func (e *s3Env) remove(t *testing.T, name string) {
	if err := e.raw.Remove(t.Context(), name); err != nil && !strings.Contains(err.Error(), "no such object") {
		t.Fatal(err)
	}
}

// fixture is a store with three sealed recordings: a (complete, several
// blocks), b (interrupted, with a tail) and c (complete, the newest), in
// two manifest segments.
type fixture struct {
	a, b, c   string
	aData     []byte
	key       *Key
	dir       string // evidence directory
	firstHead []byte // the manifest head after the first segment
}

func setup(t *testing.T, e env) *fixture {
	fx := &fixture{key: mustKey(t), dir: filepath.Join(t.TempDir(), "evidence")}
	b := e.recorder(t)
	s := openSealer(t, b, fx.dir, fx.key)
	fx.aData = castData(1500)
	fx.a = record(t, s, "node-a", t0, fx.aData, 30000, store.StatusComplete)
	w, err := s.Create(t.Context(), "node-b", t0.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	w.Write(castData(200))
	w.Write([]byte(`[30.5,"o","a line cut sh`))
	if err := w.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(store.StatusInterrupted, "the sender's upload broke off"); err != nil {
		t.Fatal(err)
	}
	fx.b = w.Key()
	if err := s.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	e.settle(t, b)
	fx.firstHead = e.get(t, HeadName(fx.key.KeyID()))
	fx.c = record(t, s, "node-a", t0.Add(2*time.Minute), castData(300)[100:], 0, store.StatusComplete)
	if err := s.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	e.settle(t, b)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return fx
}

// want is a problem a test expects: on recording key ("" for a
// manifest), of kind, with detail containing text.
type want struct {
	key, kind, text string
}

func (fx *fixture) removeRecording(t *testing.T, e env, key string, fs bool) {
	for _, suffix := range []string{"", ".status", ".tail", SealSuffix, ChainSuffix} {
		e.remove(t, key+suffix)
	}
}

func tamperCases() []struct {
	name   string
	mutate func(t *testing.T, e env, fx *fixture)
	anchor bool
	want   func(fx *fixture) []want
} {
	return []struct {
		name   string
		mutate func(t *testing.T, e env, fx *fixture)
		anchor bool
		want   func(fx *fixture) []want
	}{
		{"untouched", func(*testing.T, env, *fixture) {}, true, func(*fixture) []want { return nil }},
		{"flip one byte", func(t *testing.T, e env, fx *fixture) {
			b := e.get(t, fx.a)
			b[40000] ^= 0x20
			e.put(t, fx.a, b)
		}, false, func(fx *fixture) []want {
			return []want{{fx.a, ProblemAltered, "altered at offset 32768"}}
		}},
		{"truncate", func(t *testing.T, e env, fx *fixture) {
			b := e.get(t, fx.a)
			e.put(t, fx.a, b[:len(b)-100])
		}, false, func(fx *fixture) []want {
			return []want{{fx.a, ProblemTruncated, "100 bytes cut from the end"}}
		}},
		{"append", func(t *testing.T, e env, fx *fixture) {
			e.put(t, fx.a, append(e.get(t, fx.a), "[99,\"o\",\"rm -rf /\"]\n"...))
		}, false, func(fx *fixture) []want {
			return []want{{fx.a, ProblemAppended, "20 bytes appended"}}
		}},
		{"delete a recording", func(t *testing.T, e env, fx *fixture) { fx.removeRecording(t, e, fx.b, false) },
			false, func(fx *fixture) []want { return []want{{fx.b, ProblemMissing, "the manifest lists it"}} }},
		{"delete the newest", func(t *testing.T, e env, fx *fixture) { fx.removeRecording(t, e, fx.c, false) },
			false, func(fx *fixture) []want { return []want{{fx.c, ProblemMissing, "newest recording"}} }},
		{"reorder", func(t *testing.T, e env, fx *fixture) {
			a, c := e.get(t, fx.a), e.get(t, fx.c)
			e.put(t, fx.a, c)
			e.put(t, fx.c, a)
		}, false, func(fx *fixture) []want {
			return []want{{fx.a, ProblemReordered, "sealed for " + fx.c}, {fx.c, ProblemReordered, "sealed for " + fx.a}}
		}},
		{"swap seals", func(t *testing.T, e env, fx *fixture) {
			a, c := e.get(t, fx.a+SealSuffix), e.get(t, fx.c+SealSuffix)
			e.put(t, fx.a+SealSuffix, c)
			e.put(t, fx.c+SealSuffix, a)
		}, false, func(fx *fixture) []want {
			return []want{{fx.a, ProblemSealsSwapped, "is the seal of " + fx.c}, {fx.c, ProblemSealsSwapped, "is the seal of " + fx.a}}
		}},
		{"replace the key", func(t *testing.T, e env, fx *fixture) {
			// An attacker edits a recording and seals it with a key of
			// their own.
			b := e.get(t, fx.a)
			b = bytes.Replace(b, []byte("line 000007"), []byte("line 00000X"), 1)
			e.put(t, fx.a, b)
			ch := NewChain()
			ch.Write(b)
			head, last := ch.Head()
			old, _ := ParseSeal(e.get(t, fx.a+SealSuffix))
			d := old.SealData
			d.Head, d.Last = hexHash(head), hexHash(last)
			forged, err := EncodeSeal(d, mustKey(t))
			if err != nil {
				t.Fatal(err)
			}
			e.put(t, fx.a+SealSuffix, forged)
		}, false, func(fx *fixture) []want {
			return []want{{fx.a, ProblemUnknownKey, "not among the trusted keys"}, {fx.a, ProblemSealAbsent, "manifest lists"}}
		}},
		{"forge a seal with the key id", func(t *testing.T, e env, fx *fixture) {
			b := e.get(t, fx.a+SealSuffix)
			e.put(t, fx.a+SealSuffix, bytes.Replace(b, []byte(`"status":"complete"`), []byte(`"status":"malformed"`), 1))
		}, false, func(fx *fixture) []want {
			return []want{{fx.a, ProblemBadSignature, "altered or forged"}}
		}},
		{"remove a seal", func(t *testing.T, e env, fx *fixture) { e.remove(t, fx.a+SealSuffix) },
			false, func(fx *fixture) []want { return []want{{fx.a, ProblemSealAbsent, "no seal"}} }},
		{"remove a status", func(t *testing.T, e env, fx *fixture) { e.remove(t, fx.b+".status") },
			false, func(fx *fixture) []want {
				return []want{{fx.b, ProblemStatus, "sealed as interrupted, but the store says complete"}}
			}},
		{"cut the tail", func(t *testing.T, e env, fx *fixture) { e.remove(t, store.TailKey(fx.b)) },
			false, func(fx *fixture) []want { return []want{{fx.b, ProblemTruncated, "bytes cut from the end"}} }},
		{"delete the newest manifest segment", func(t *testing.T, e env, fx *fixture) {
			e.remove(t, SegmentName(fx.key.KeyID(), 3))
		}, false, func(fx *fixture) []want {
			return []want{{"", ProblemManifest, "says 3 entries, the store holds 2"}, {fx.c, ProblemNotInManifest, "no such entry"}}
		}},
		{"reorder manifest entries", func(t *testing.T, e env, fx *fixture) {
			name := SegmentName(fx.key.KeyID(), 1)
			lines := strings.SplitAfter(string(e.get(t, name)), "\n")
			lines[1], lines[2] = lines[2], lines[1]
			e.put(t, name, []byte(strings.Join(lines, "")))
		}, false, func(fx *fixture) []want {
			return []want{{"", ProblemReordered, "entries reordered"}}
		}},
		{"roll the store back", func(t *testing.T, e env, fx *fixture) {
			// Everything newer than the first segment goes, the head
			// with it: only an anchor kept elsewhere tells.
			fx.removeRecording(t, e, fx.c, false)
			e.remove(t, SegmentName(fx.key.KeyID(), 3))
			e.put(t, HeadName(fx.key.KeyID()), fx.firstHead)
		}, true, func(fx *fixture) []want {
			return []want{{"", ProblemManifest, "this recorder's state"}}
		}},
	}
}

func runTamper(t *testing.T, newEnv func(t *testing.T) env) {
	for _, tt := range tamperCases() {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			fx := setup(t, e)
			tt.mutate(t, e, fx)
			opts := VerifyOptions{Keys: ring(fx.key)}
			if tt.anchor {
				a, ok := LocalAnchor(fx.dir)
				if !ok {
					t.Fatal("no local anchor")
				}
				opts.Anchors = []Anchor{a}
			}
			rep := verify(t, e.reader(t), opts)
			wants := tt.want(fx)
			if len(wants) == 0 {
				if !rep.OK() || len(rep.Recordings) != 3 {
					t.Fatalf("want a clean report of 3 recordings:\n%s", describe(rep))
				}
				for _, r := range rep.Recordings {
					if !r.Sealed {
						t.Errorf("%s not sealed", r.Key)
					}
				}
				return
			}
			if rep.OK() {
				t.Fatalf("want problems, the report is clean:\n%s", describe(rep))
			}
			for _, w := range wants {
				if !hasProblem(rep, w) {
					t.Errorf("want %s problem %q on %q; got:\n%s", w.kind, w.text, w.key, describe(rep))
				}
			}
		})
	}
}

func hasProblem(rep *Report, w want) bool {
	var probs []Problem
	if w.key == "" {
		for _, m := range rep.Manifests {
			probs = append(probs, m.Problems...)
		}
	}
	for _, r := range rep.Recordings {
		if r.Key == w.key {
			probs = append(probs, r.Problems...)
		}
	}
	for _, p := range probs {
		if p.Kind == w.kind && strings.Contains(p.Detail, w.text) {
			return true
		}
	}
	return false
}

func TestTamperFS(t *testing.T) {
	runTamper(t, func(t *testing.T) env { return newFSEnv(t) })
}

func TestTamperS3(t *testing.T) {
	for _, server := range s3test.Names {
		t.Run(server, func(t *testing.T) {
			srv := s3test.Start(t, server)
			runTamper(t, func(t *testing.T) env { return newS3Env(t, srv) })
		})
	}
}
