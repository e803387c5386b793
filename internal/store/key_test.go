package store

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestSafeNode(t *testing.T) {
	long := strings.Repeat("a", 128)
	tests := []struct {
		id, want string
	}{
		// Safe identities are their own node: stores made before keep
		// their layout.
		{"nABCDEF1CNTRL", "nABCDEF1CNTRL"},
		{"100.64.0.1", "100.64.0.1"},
		{"host.tailnet-1234.ts.net", "host.tailnet-1234.ts.net"},
		{"A_b-C.d", "A_b-C.d"},
		{"_x", "_x"},
		{"a_bcdefghijklmnop", "a_bcdefghijklmnop"},
		{long, long},
		// Anything else: a readable prefix, '_' and a hash of the whole.
		// These are pinned: a change would move a sender's new
		// recordings away from its old ones.
		{"a b", "a-b_zbuhucfklvxnebcd"},
		{"a/b", "a-b_yfgn3qbt6zfz32ua"},
		{"a\x00b", "a-b_lgzhdlq3xsy5ghkb"},
		{"-rf", "rf_nbwdtlgwgj532ld4"},
		{"--1", "1_6unoua2sxmb7gx7u"},
		{"::1", "1_574opssqmyt74fo5"},
		{".hidden", "hidden_c2jedeagvcfkwm3s"},
		{"..", "_l3a7pzya6n6d2czj"},
		{"/", "_rjpnvmucmmsegim6"},
		{"fd7a:115c:a1e0::1", "fd7a-115c-a1e0--1_5stoeqyirdz7phnz"},
		{"spiffe://example.org/ns/x", "spiffe---example.org-ns-x_lszfc2er3efwgflr"},
		{"émile", "mile_uvvtmpfchxm5xg6r"},
		{long + "x", strings.Repeat("a", 111) + "_3faeumjsvfdqo3j2"},
		// A safe identity that ends as SafeNode's names do is changed too,
		// so that it cannot be another identity's node.
		{"a-b_zbuhucfklvxnebcd", "a-b_zbuhucfklvxnebcd_yijtdu7yifugcjp5"},
		{"", ""},
	}
	got := map[string]string{}
	want := map[string]string{}
	for _, tt := range tests {
		got[tt.id] = SafeNode(tt.id)
		want[tt.id] = tt.want
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("SafeNode (-want +got):\n%s", diff)
	}
}

func TestValidNode(t *testing.T) {
	tests := map[string]bool{
		"n1": true, "100.64.0.1": true, "a-b_zbuhucfklvxnebcd": true,
		"--1": true, // made by earlier versions; still readable
		"-":   true,
		"":    false, ".": false, "..": false, ".reel": false, "a/b": false, "a b": false, "a\x00": false,
		strings.Repeat("a", 128): true, strings.Repeat("a", 129): false,
	}
	got := map[string]bool{}
	for node := range tests {
		got[node] = ValidNode(node)
	}
	if diff := cmp.Diff(tests, got); diff != "" {
		t.Errorf("ValidNode (-want +got):\n%s", diff)
	}
}

func TestSenderKey(t *testing.T) {
	tests := []struct {
		node, key string
		kept      bool
	}{
		{"n1", "n1/.sender", false},
		{SafeNode("a b"), SafeNode("a b") + "/.sender", true},
		{SafeNode("::1"), SafeNode("::1") + "/.sender", true},
		{"a_bcdefghijklmnopq", "a_bcdefghijklmnopq/.sender", true},
		{"_bcdefghijklmnopq", "_bcdefghijklmnopq/.sender", true},
		{"a_bcdefghijklmnop1", "a_bcdefghijklmnop1/.sender", false},
		{"a_bcdefghijklmnoP", "a_bcdefghijklmnoP/.sender", false},
		{"a_bcdefghijklmnop", "a_bcdefghijklmnop/.sender", false},
		{"a-bcdefghijklmnopq", "a-bcdefghijklmnopq/.sender", false},
	}
	for _, tt := range tests {
		key, kept := SenderKey(tt.node)
		if key != tt.key || kept != tt.kept {
			t.Errorf("SenderKey(%q) = %q, %v; want %q, %v", tt.node, key, kept, tt.key, tt.kept)
		}
	}
}

// checkNode fails unless node is a safe path element SafeNode may return.
func checkNode(t *testing.T, id, node string) {
	t.Helper()
	if id == "" {
		if node != "" {
			t.Fatalf("SafeNode(%q) = %q, want \"\"", id, node)
		}
		return
	}
	if !ValidNode(node) || node[0] == '-' || node[0] == '.' || len(node) > maxNodeLen {
		t.Fatalf("SafeNode(%q) = %q: not a safe node id", id, node)
	}
	if _, _, err := ParseKey(RecordingKey(node, time.Unix(1700000000, 0))); err != nil {
		t.Fatalf("SafeNode(%q) = %q makes a bad key: %v", id, node, err)
	}
}

// FuzzSafeNode: distinct identities never share a node, and every node is
// a safe path element that does not look like a flag.
func FuzzSafeNode(f *testing.F) {
	for _, s := range [][2]string{
		{"a b", "a/b"}, {"a\x00b", "a-b"}, {"a b", "a-b_zbuhucfklvxnebcd"},
		{strings.Repeat("a", 128) + "x", strings.Repeat("a", 128) + "y"},
		{"::1", "--1"}, {"-rf", "rf"}, {".x", "x"}, {"\xff", "\xfe"}, {"", "a"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		na, nb := SafeNode(a), SafeNode(b)
		checkNode(t, a, na)
		checkNode(t, b, nb)
		if a != b && na == nb {
			t.Fatalf("SafeNode(%q) = SafeNode(%q) = %q", a, b, na)
		}
		if ValidNode(a) && a[0] != '-' && !hashed(a) && na != a {
			t.Fatalf("SafeNode(%q) = %q; a safe identity must stay as it is", a, na)
		}
	})
}
