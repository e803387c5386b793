package policy

import (
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestExampleFile checks that the example shipped in examples/ (and shown
// in docs/policy.md) parses and decides as its comments say.
func TestExampleFile(t *testing.T) {
	src, err := os.ReadFile("../../examples/policy.hujson")
	if err != nil {
		t.Fatal(err)
	}
	p, err := Parse("policy.hujson", src)
	if err != nil {
		t.Fatalf("example policy does not parse:\n%v", err)
	}
	if len(p.SSHRules) != 5 || len(p.KubeRules) != 2 || len(p.ViewerRules) != 2 {
		t.Errorf("rules: got %d ssh, %d kubernetes, %d viewers; want 5, 2, 2", len(p.SSHRules), len(p.KubeRules), len(p.ViewerRules))
	}
	d := p.SSH(SSHRequest{User: "carol@example.com", Src: netip.MustParseAddr("100.64.0.7"), LocalUser: "carol", Host: "web1", HostTags: []string{"tag:prod"}})
	if d.Action != Accept || d.Rule != 2 || !d.Record || d.RecordRule != 3 || !d.RecordInput || d.EnforceRecorder {
		t.Errorf("carol on a prod host: got %+v", d)
	}
	d = p.SSH(SSHRequest{User: "alice@example.com", Src: netip.MustParseAddr("192.168.77.3"), LocalUser: "alice", Host: "web1"})
	if d.Action != Reject || d.Rule != 0 {
		t.Errorf("alice from guest Wi-Fi: got %+v", d)
	}
}

// TestDocExample checks that the example in docs/policy.md is the file in
// examples/, so that the documented example is the tested one.
func TestDocExample(t *testing.T) {
	doc, err := os.ReadFile("../../docs/policy.md")
	if err != nil {
		t.Fatal(err)
	}
	example, err := os.ReadFile("../../examples/policy.hujson")
	if err != nil {
		t.Fatal(err)
	}
	_, block, ok := strings.Cut(string(doc), "## A full example")
	if ok {
		_, block, ok = strings.Cut(block, "```hujson\n")
	}
	if ok {
		block, _, ok = strings.Cut(block, "```\n")
	}
	if !ok {
		t.Fatal("docs/policy.md has no hujson block under \"## A full example\"")
	}
	if diff := cmp.Diff(string(example), block); diff != "" {
		t.Errorf("docs/policy.md example differs from examples/policy.hujson (-file +doc):\n%s", diff)
	}
}
