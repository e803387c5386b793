package evidence

import (
	"context"
	"errors"
	"fmt"
	"github.com/reel-rec/reel/internal/audit"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/reel-rec/reel/internal/policy"
	"github.com/reel-rec/reel/internal/store"
	"github.com/reel-rec/reel/internal/store/fsstore"
)

const retentionRules = `{
	"retention": [
		{"statuses": ["malformed"], "keep": "7y"},
		{"nodes": ["short"], "keep": "30d"},
		{"users": ["alice"], "keep": "2y"},
		{"keep": "400d"},
	],
}`

// header returns a recording whose header names user.
func header(user string) []byte {
	return []byte(fmt.Sprintf(`{"version":2,"width":80,"height":24,"timestamp":1,"sshUser":%q}`+"\n[0.1,\"o\",\"hi\"]\n", user))
}

func TestRetentionApply(t *testing.T) {
	dir := t.TempDir()
	fs, err := fsstore.Open(filepath.Join(dir, "store"), fsstore.Options{MinFree: -1})
	if err != nil {
		t.Fatal(err)
	}
	k := mustKey(t)
	evDir := filepath.Join(dir, "evidence")
	s := openSealer(t, fs, evDir, k)
	defer s.Close()
	pol, err := policy.Parse("p", []byte(retentionRules))
	if err != nil {
		t.Fatal(err)
	}
	now := t0.AddDate(0, 0, 500)
	day := func(n int) time.Time { return now.AddDate(0, 0, -n) }
	keys := map[string]string{
		"old":           record(t, s, "node-1", day(401), header("bob"), 0, store.StatusComplete),     // 400d: due
		"young":         record(t, s, "node-1", day(399), header("bob"), 0, store.StatusComplete),     // 400d: not yet
		"old malformed": record(t, s, "node-1", day(450), []byte("junk\n"), 0, store.StatusMalformed), // 7y
		"short":         record(t, s, "short", day(31), header("bob"), 0, store.StatusComplete),       // 30d: due
		"short young":   record(t, s, "short", day(29), header("bob"), 0, store.StatusComplete),
		"alice":         record(t, s, "node-1", day(450), header("alice"), 0, store.StatusComplete), // 2y: not yet
		"old held":      record(t, s, "node-2", day(402), header("bob"), 0, store.StatusComplete),   // due, but held
		"old, exactly":  record(t, s, "node-3", day(400), header("bob"), 0, store.StatusComplete),   // due at now
	}
	live, err := s.Create(t.Context(), "node-9", day(1000))
	if err != nil {
		t.Fatal(err)
	}
	live.Write(header("bob"))
	live.Sync()
	defer live.Close(store.StatusComplete, "")

	al, err := audit.Open(AuditDir(dir))
	if err != nil {
		t.Fatal(err)
	}
	defer al.Close()
	auditor := AuditLog{al}
	holds := &Holds{Files: fs, Audit: auditor, Now: func() time.Time { return now }}
	if _, err := holds.Add(t.Context(), keys["old held"], "carol", "case 42"); err != nil {
		t.Fatal(err)
	}
	idx := &fakeIndex{}
	r := &Retention{Store: fs, Sealer: s, Policy: pol, Holds: holds, Audit: auditor, By: "reel serve", Now: func() time.Time { return now }, Index: idx}

	before := listKeys(t, fs)
	plan, err := r.Apply(t.Context(), true)
	if err != nil {
		t.Fatal(err)
	}
	wantPlan := map[string]string{keys["old"]: ActionDelete, keys["short"]: ActionDelete, keys["old held"]: ActionHeld, keys["old, exactly"]: ActionDelete}
	if diff := cmp.Diff(wantPlan, actions(plan)); diff != "" {
		t.Errorf("dry run (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(before, listKeys(t, fs)); diff != "" {
		t.Errorf("a dry run changed the store (-before +after):\n%s", diff)
	}
	if seq, _ := s.man.position(); seq != int64(len(keys)) {
		t.Errorf("a dry run wrote the manifest: %d entries, want %d", seq, len(keys))
	}
	if entries := readAudit(t, AuditDir(dir)); len(entries) != 1 {
		t.Errorf("a dry run wrote the audit trail: %+v", entries)
	}
	if len(idx.deleted) > 0 {
		t.Errorf("a dry run deleted from the index: %q", idx.deleted)
	}

	done, err := r.Apply(t.Context(), false)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(wantPlan, actions(done)); diff != "" {
		t.Errorf("apply (-want +got):\n%s", diff)
	}
	var left []string
	for _, key := range keys {
		if wantPlan[key] != ActionDelete {
			left = append(left, key)
		}
	}
	left = append(left, live.Key())
	slices.Sort(left)
	if diff := cmp.Diff(left, listKeys(t, fs)); diff != "" {
		t.Errorf("left in the store (-want +got):\n%s", diff)
	}
	wantGone := []string{keys["old"], keys["old, exactly"], keys["short"]}
	slices.Sort(wantGone)
	slices.Sort(idx.deleted)
	if diff := cmp.Diff(wantGone, idx.deleted); diff != "" {
		t.Errorf("deleted from the index (-want +got):\n%s", diff)
	}
	for _, key := range []string{keys["old"], keys["short"]} {
		if _, err := store.ReadFile(t.Context(), fs, key+SealSuffix); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("%s: seal left behind: %v", key, err)
		}
	}
	// The audit trail says who deleted what and why, after the hold.
	entries := readAudit(t, AuditDir(dir))
	var deleted []string
	for _, e := range entries {
		if e.Action == AuditRetentionDelete && e.Result == "ok" && e.User == "reel serve" && strings.Contains(e.Reason, "retention rule") {
			deleted = append(deleted, e.Target)
		}
	}
	slices.Sort(deleted)
	wantDeleted := []string{keys["old"], keys["old, exactly"], keys["short"]}
	slices.Sort(wantDeleted)
	if diff := cmp.Diff(wantDeleted, deleted); diff != "" {
		t.Errorf("audit trail deletions (-want +got):\n%s\n%+v", diff, entries)
	}
	if entries[0].Action != AuditHoldAdd || entries[0].User != "carol" || entries[1].Prev == "" {
		t.Errorf("audit trail: %+v", entries)
	}

	// The manifest says they were deleted by policy: verify is clean and
	// says so; a recording deleted by hand is reported missing.
	if err := s.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	rd, _ := fsstore.OpenReadOnly(filepath.Join(dir, "store"))
	rep := verify(t, rd, VerifyOptions{Keys: ring(k)})
	if !rep.OK() {
		t.Fatalf("after retention:\n%s", describe(rep))
	}
	notes := 0
	for _, res := range rep.Recordings {
		for _, n := range res.Notes {
			if res.Deleted && strings.Contains(n, "deleted by policy") && strings.Contains(n, "retention rule") {
				notes++
			}
		}
	}
	if notes != 3 {
		t.Errorf("verify notes %d deletions by policy, want 3:\n%s", notes, describe(rep))
	}
	if err := fs.DeleteFile(t.Context(), keys["young"]); err != nil {
		t.Fatal(err)
	}
	rep = verify(t, rd, VerifyOptions{Keys: ring(k)})
	if !hasProblem(rep, want{keys["young"], ProblemMissing, "the manifest lists it"}) {
		t.Errorf("a recording deleted not by policy:\n%s", describe(rep))
	}

	// Released, the held one goes at the next run.
	if err := holds.Remove(t.Context(), keys["old held"], "carol", "case closed"); err != nil {
		t.Fatal(err)
	}
	done, err = r.Apply(t.Context(), false)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]string{keys["old held"]: ActionDelete}, actions(done)); diff != "" {
		t.Errorf("after release (-want +got):\n%s", diff)
	}
}

func listKeys(t *testing.T, st store.Store) []string {
	var out []string
	for info, err := range st.List(context.Background(), store.Filter{}) {
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, info.Key)
	}
	return out
}

func actions(ds []Decision) map[string]string {
	m := map[string]string{}
	for _, d := range ds {
		m[d.Key] = d.Action
	}
	return m
}

func TestRetentionNeedsSealer(t *testing.T) {
	r := &Retention{Store: nil}
	if _, err := r.Apply(t.Context(), false); err == nil {
		t.Error("Apply without the evidence state deleted")
	}
}

// fakeIndex records what retention removes from the index.
type fakeIndex struct{ deleted []string }

func (f *fakeIndex) DeleteRecording(_ context.Context, key string) error {
	f.deleted = append(f.deleted, key)
	return nil
}

// readAudit reads every entry of the audit log in dir, and checks its
// chain.
func readAudit(t *testing.T, dir string) []audit.Entry {
	t.Helper()
	var out []audit.Entry
	for e, err := range audit.Read(context.Background(), dir, audit.Query{}) {
		if err != nil {
			t.Fatalf("audit log: %v", err)
		}
		out = append(out, e)
	}
	return out
}
