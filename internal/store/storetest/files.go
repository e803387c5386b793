package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/reel-rec/reel/internal/store"
	"github.com/reel-rec/reel/internal/testutil"
)

// files returns st's store.Files or fails the test: every backend keeps
// files.
func files(t *testing.T, st store.Store) store.Files {
	t.Helper()
	f, ok := st.(store.Files)
	if !ok {
		t.Fatalf("%T does not implement store.Files", st)
	}
	return f
}

func putFile(t *testing.T, f store.Files, name string, data []byte) {
	t.Helper()
	if err := f.PutFile(ctxT(t), name, data); err != nil {
		t.Fatalf("PutFile(%q): %v", name, err)
	}
}

func readFile(t *testing.T, f store.Files, name string) []byte {
	t.Helper()
	r, err := f.OpenFile(ctxT(t), name)
	if err != nil {
		t.Fatalf("OpenFile(%q): %v", name, err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("read %q: %v", name, err)
	}
	if int64(len(b)) != r.Size() {
		t.Errorf("OpenFile(%q): read %d bytes, Size() = %d", name, len(b), r.Size())
	}
	return b
}

func listFiles(t *testing.T, f store.Files, dir string) []string {
	t.Helper()
	var out []string
	for name, err := range f.ListFiles(ctxT(t), dir) {
		if err != nil {
			t.Fatalf("ListFiles(%q): %v", dir, err)
		}
		out = append(out, name)
	}
	return out
}

// deleteFile deletes name, waiting while a store that uploads in the
// background has not landed a closed recording yet (ErrLive).
func deleteFile(t *testing.T, f store.Files, name string) {
	t.Helper()
	var err error
	testutil.WaitForSeen(t, testutil.DefaultWait, "DeleteFile("+name+") to succeed", func() bool {
		err = f.DeleteFile(ctxT(t), name)
		return !errors.Is(err, store.ErrLive)
	}, func() string { return fmt.Sprint(err) })
	if err != nil {
		t.Fatalf("DeleteFile(%q): %v", name, err)
	}
}

func (s *suite) testFiles(t *testing.T) {
	t.Run("RoundTrip", s.testFilesRoundTrip)
	t.Run("Names", s.testFileNames)
	t.Run("List", s.testFilesList)
	t.Run("Delete", s.testFilesDelete)
	t.Run("Crash", s.testFilesCrash)
}

func (s *suite) testFilesRoundTrip(t *testing.T) {
	st := s.newStore(t)
	f := files(t, st)
	w := create(t, st, "node-1", base)
	write(t, w, castLines(10, 40), 100)
	closeW(t, w, store.StatusComplete, "")

	seal := []byte("seal v1\n\x00\xffbinary is fine\n")
	putFile(t, f, w.Key()+".seal", seal)
	putFile(t, f, ".evidence/k1/manifest/0001.jsonl", []byte("{}\n"))
	if got := readFile(t, f, w.Key()+".seal"); !bytes.Equal(got, seal) {
		t.Errorf("sidecar: %s", firstDiff(got, seal))
	}
	// Replacing.
	putFile(t, f, w.Key()+".seal", []byte("second"))
	if got := readFile(t, f, w.Key()+".seal"); string(got) != "second" {
		t.Errorf("sidecar after PutFile again = %q, want %q", got, "second")
	}
	if got := readFile(t, f, ".evidence/k1/manifest/0001.jsonl"); string(got) != "{}\n" {
		t.Errorf("store-wide file = %q", got)
	}
	// An empty file is a file.
	putFile(t, f, ".evidence/empty", nil)
	if got := readFile(t, f, ".evidence/empty"); len(got) != 0 {
		t.Errorf("empty file = %q", got)
	}
	// The recording itself reads through Files too.
	if got, want := readFile(t, f, w.Key()), readAll(t, st, w.Key()); !bytes.Equal(got, want) {
		t.Errorf("OpenFile(recording): %s", firstDiff(got, want))
	}
	// Files are not recordings.
	if got := list(t, st, store.Filter{}); len(got) != 1 || got[0].Key != w.Key() || got[0].Status != store.StatusComplete {
		t.Errorf("List with files beside the recording = %+v, want just %s, complete", got, w.Key())
	}
	for _, name := range []string{w.Key() + ".chain", ".evidence/nothing", ".evidence/k1/manifest/0002.jsonl"} {
		if _, err := f.OpenFile(ctxT(t), name); !isNotFound(err) {
			t.Errorf("OpenFile(%q) of nothing: err = %v, want ErrNotFound", name, err)
		}
	}
}

func (s *suite) testFileNames(t *testing.T) {
	st := s.newStore(t)
	f := files(t, st)
	key := store.RecordingKey("node-1", base)
	bad := []string{
		"", "x", "node-1", "node-1/x.seal", key + ".SEAL", key + ".", key + ".se-al", key + ".waytoolongasuffixforasidecar",
		"../" + key + ".seal", "/" + key + ".seal", ".evidence", ".evidence/", ".evidence/../x", ".evidence/a//b",
		".evidence/.hidden", ".evidence/a/", ".evidence/a b", ".evidence/x.tmp", ".reel/lock", "node-1/.sender",
	}
	for _, name := range bad {
		if err := f.PutFile(ctxT(t), name, []byte("x")); !errors.Is(err, store.ErrInvalidKey) {
			t.Errorf("PutFile(%q): err = %v, want ErrInvalidKey", name, err)
		}
		if _, err := f.OpenFile(ctxT(t), name); !errors.Is(err, store.ErrInvalidKey) {
			t.Errorf("OpenFile(%q): err = %v, want ErrInvalidKey", name, err)
		}
		if err := f.DeleteFile(ctxT(t), name); !errors.Is(err, store.ErrInvalidKey) {
			t.Errorf("DeleteFile(%q): err = %v, want ErrInvalidKey", name, err)
		}
	}
	// The store's own files cannot be written through Files.
	for _, name := range []string{key, key + ".status", store.TailKey(key)} {
		if err := f.PutFile(ctxT(t), name, []byte("x")); !errors.Is(err, store.ErrInvalidKey) {
			t.Errorf("PutFile(%q): err = %v, want ErrInvalidKey", name, err)
		}
	}
	for _, dir := range []string{"", ".evidence", "node-1/", ".evidence/a", "../"} {
		for _, err := range f.ListFiles(ctxT(t), dir) {
			if !errors.Is(err, store.ErrInvalidKey) {
				t.Errorf("ListFiles(%q): err = %v, want ErrInvalidKey", dir, err)
			}
		}
	}
}

func (s *suite) testFilesList(t *testing.T) {
	st := s.newStore(t)
	f := files(t, st)
	for _, name := range []string{".evidence/m/2", ".evidence/m/1", ".evidence/m/sub/3", ".evidence/n/4", ".evidence/m0"} {
		putFile(t, f, name, []byte(name))
	}
	w := create(t, st, "node-1", base)
	closeW(t, w, store.StatusComplete, "")
	putFile(t, f, w.Key()+".seal", []byte("x"))

	if diff := cmp.Diff([]string{".evidence/m/1", ".evidence/m/2", ".evidence/m/sub/3"}, listFiles(t, f, ".evidence/m/")); diff != "" {
		t.Errorf("ListFiles(.evidence/m/) (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{".evidence/m/1", ".evidence/m/2", ".evidence/m/sub/3", ".evidence/m0", ".evidence/n/4"}, listFiles(t, f, ".evidence/")); diff != "" {
		t.Errorf("ListFiles(.evidence/) (-want +got):\n%s", diff)
	}
	if got := listFiles(t, f, ".evidence/none/"); len(got) != 0 {
		t.Errorf("ListFiles of an empty folder = %q", got)
	}
	// Stopping early is allowed.
	for range f.ListFiles(ctxT(t), ".evidence/") {
		break
	}
}

func (s *suite) testFilesDelete(t *testing.T) {
	st := s.newStore(t)
	f := files(t, st)
	live := create(t, st, "node-1", base)
	write(t, live, castLines(3, 40), 100)
	syncW(t, live)
	if err := f.DeleteFile(ctxT(t), live.Key()); !errors.Is(err, store.ErrLive) {
		t.Errorf("DeleteFile(live recording): err = %v, want ErrLive", err)
	}

	// An interrupted recording with a tail, a status and sidecars.
	w := create(t, st, "node-1", base.Add(time.Second))
	data := append(castLines(100, 60), `[9,"o","half a li`...)
	write(t, w, data, 1000)
	closeW(t, w, store.StatusInterrupted, "gone")
	main, tail := cutTail(data)
	putFile(t, f, w.Key()+".chain", []byte("chain"))
	putFile(t, f, w.Key()+".seal", []byte("seal"))
	if got := readFile(t, f, store.TailKey(w.Key())); !bytes.Equal(got, tail) {
		t.Errorf("OpenFile(tail): %s", firstDiff(got, tail))
	}
	if got := stat(t, st, w.Key()); got.Status != store.StatusInterrupted || got.Size != int64(len(main)) {
		t.Errorf("Stat with sidecars = %+v, want interrupted, %d bytes", got, len(main))
	}

	deleteFile(t, f, w.Key())
	if _, err := st.Stat(ctxT(t), w.Key()); !isNotFound(err) {
		t.Errorf("Stat after DeleteFile: err = %v, want ErrNotFound", err)
	}
	if _, err := st.Open(ctxT(t), w.Key()); !isNotFound(err) {
		t.Errorf("Open after DeleteFile: err = %v, want ErrNotFound", err)
	}
	if _, err := f.OpenFile(ctxT(t), store.TailKey(w.Key())); !isNotFound(err) {
		t.Errorf("OpenFile(tail) after DeleteFile: err = %v, want ErrNotFound", err)
	}
	if _, err := s.h.ReadRaw(t, st, store.TailKey(w.Key())); !isNotFound(err) {
		t.Errorf("ReadRaw(tail) after DeleteFile: err = %v, want ErrNotFound", err)
	}
	if got := list(t, st, store.Filter{Since: base.Add(time.Second)}); len(got) != 0 {
		t.Errorf("List after DeleteFile = %+v, want nothing", got)
	}
	if got := readFile(t, f, w.Key()+".seal"); string(got) != "seal" {
		t.Errorf("the seal after its recording was deleted = %q; sidecars stay until deleted by name", got)
	}
	for _, name := range []string{w.Key() + ".seal", w.Key() + ".chain"} {
		deleteFile(t, f, name)
		if _, err := f.OpenFile(ctxT(t), name); !isNotFound(err) {
			t.Errorf("OpenFile(%q) after DeleteFile: err = %v, want ErrNotFound", name, err)
		}
	}
	putFile(t, f, ".evidence/holds/x", []byte("h"))
	deleteFile(t, f, ".evidence/holds/x")
	if got := listFiles(t, f, ".evidence/"); len(got) != 0 {
		t.Errorf("ListFiles after DeleteFile = %q", got)
	}
	for _, name := range []string{w.Key(), w.Key() + ".seal", ".evidence/holds/x"} {
		if err := f.DeleteFile(ctxT(t), name); !isNotFound(err) {
			t.Errorf("DeleteFile(%q) again: err = %v, want ErrNotFound", name, err)
		}
	}
	closeW(t, live, store.StatusComplete, "")
}

func (s *suite) testFilesCrash(t *testing.T) {
	st := s.newStoreNoClose(t)
	f := files(t, st)
	w := create(t, st, "node-1", base)
	write(t, w, castLines(10, 40), 100)
	syncW(t, w)
	putFile(t, f, w.Key()+".chain", []byte("live chain"))
	putFile(t, f, ".evidence/k/1", []byte("one"))
	st2 := s.crash(t, st)
	if _, err := st2.Recover(ctxT(t)); err != nil {
		t.Fatalf("Recover: %v", err)
	}
	f2 := files(t, st2)
	if got := readFile(t, f2, w.Key()+".chain"); string(got) != "live chain" {
		t.Errorf("sidecar after a crash = %q", got)
	}
	if diff := cmp.Diff([]string{".evidence/k/1"}, listFiles(t, f2, ".evidence/")); diff != "" {
		t.Errorf("ListFiles after a crash (-want +got):\n%s", diff)
	}
}

// testFilesReaderView checks that a reviewer's store sees the files and
// the statuses of recordings that have sidecars.
func (s *suite) testFilesReaderView(t *testing.T) {
	st := s.newStore(t)
	f := files(t, st)
	var keys []string
	statuses := []store.Status{store.StatusFailed, store.StatusComplete, store.StatusMalformed}
	for i, status := range statuses {
		w := create(t, st, "node-1", base.Add(time.Duration(i)*time.Second))
		write(t, w, append(castLines(5, 40), "[1,"...), 100)
		closeW(t, w, status, "why")
		// .chain and .seal sort between the recording and its .status.
		putFile(t, f, w.Key()+".chain", []byte("c"))
		putFile(t, f, w.Key()+".seal", []byte("s"))
		keys = append(keys, w.Key())
	}
	putFile(t, f, ".evidence/k/1", []byte("one"))
	r := s.h.Reader(t, st)
	defer r.Close()
	want := list(t, st, store.Filter{})
	if diff := cmp.Diff(want, list(t, r, store.Filter{})); diff != "" {
		t.Errorf("reader's List (-writer +reader):\n%s", diff)
	}
	for i, info := range list(t, r, store.Filter{}) {
		if i >= len(statuses) || info.Status != statuses[i] || (info.Status != store.StatusComplete && info.Reason != "why") {
			t.Errorf("reader's List: %s is %s (%q), want %v", info.Key, info.Status, info.Reason, statuses)
		}
	}
	rf := files(t, r)
	for _, k := range keys {
		if got := readFile(t, rf, k+".seal"); string(got) != "s" {
			t.Errorf("reader's %s.seal = %q", k, got)
		}
	}
	if got := listFiles(t, rf, ".evidence/"); !slices.Equal(got, []string{".evidence/k/1"}) {
		t.Errorf("reader's ListFiles = %q", got)
	}
}
