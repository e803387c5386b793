package policy

import (
	"strings"
	"testing"
	"time"
)

const retentionPolicy = `{
	"groups": {"group:contractors": ["mallory", "trent@example.com"]},
	"retention": [
		// Evidence of something wrong is kept longest.
		{"statuses": ["malformed"], "keep": "7y"},
		{"users": ["group:contractors"], "keep": "2y"},
		{"nodes": ["tag:pci"], "kinds": ["terminal", "kubernetes"], "keep": "18m"},
		{"kinds": ["desktop"], "keep": "90d"},
		{"nodes": ["build-1"], "statuses": ["interrupted", "failed"], "keep": "6w"},
		{"keep": "400d"},
	],
}`

func TestRetention(t *testing.T) {
	p := mustParse(t, retentionPolicy)
	tests := []struct {
		s    RetentionSubject
		rule int
		keep Keep
	}{
		{RetentionSubject{Node: "web-1", Kind: KindTerminal, Status: "malformed", Users: []string{"mallory"}}, 0, Keep{Years: 7}},
		{RetentionSubject{Node: "web-1", Kind: KindTerminal, Status: "complete", Users: []string{"trent@example.com"}}, 1, Keep{Years: 2}},
		{RetentionSubject{Node: "web-1", Kind: KindTerminal, Status: "complete", Users: []string{"mallory@corp"}}, 1, Keep{Years: 2}},
		{RetentionSubject{Node: "db-1", Tags: []string{"tag:pci"}, Kind: KindKubernetes, Status: "complete"}, 2, Keep{Months: 18}},
		{RetentionSubject{Node: "db-1", Tags: []string{"tag:pci"}, Kind: KindDesktop, Status: "complete"}, 3, Keep{Days: 90}},
		{RetentionSubject{Node: "build-1", Kind: KindTerminal, Status: "interrupted"}, 4, Keep{Days: 42}},
		{RetentionSubject{Node: "build-1", Kind: KindTerminal, Status: "complete"}, 5, Keep{Days: 400}},
	}
	for _, tt := range tests {
		keep, rule, why := p.Retention(tt.s)
		if rule != tt.rule || keep != tt.keep {
			t.Errorf("Retention(%+v) = %+v, rule %d (%s); want %+v, rule %d", tt.s, keep, rule, why, tt.keep, tt.rule)
		}
	}
	if keep, rule, _ := mustParse(t, `{}`).Retention(RetentionSubject{Node: "x"}); rule != -1 || !keep.Forever {
		t.Errorf("no rules: %+v, rule %d; want kept for ever", keep, rule)
	}
	if !p.NeedsHeader() || mustParse(t, `{"retention": [{"statuses": ["failed"], "keep": "1d"}]}`).NeedsHeader() {
		t.Error("NeedsHeader wrong")
	}
}

func TestKeepUntil(t *testing.T) {
	start := time.Date(2024, 2, 29, 12, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		keep string
		want time.Time
	}{
		{"1y", time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)}, // calendar years: Feb 29 + 1y is Mar 1
		{"7y", time.Date(2031, 3, 1, 12, 0, 0, 0, time.UTC)},
		{"400d", start.AddDate(0, 0, 400)},
		{"2w", time.Date(2024, 3, 14, 12, 0, 0, 0, time.UTC)},
		{"18m", time.Date(2025, 8, 29, 12, 0, 0, 0, time.UTC)},
	} {
		k, err := ParseKeep(tt.keep)
		if err != nil {
			t.Fatal(err)
		}
		if got, ok := k.Until(start); !ok || !got.Equal(tt.want) {
			t.Errorf("%s: Until = %v, want %v", tt.keep, got, tt.want)
		}
	}
	if _, ok := (Keep{Forever: true}).Until(start); ok {
		t.Error("forever has a date")
	}
	for _, bad := range []string{"", "d", "0d", "-1d", "+1d", "1", "1h", "1.5y", "01d", "never", "9999999y"} {
		if _, err := ParseKeep(bad); err == nil {
			t.Errorf("ParseKeep(%q) accepted", bad)
		}
	}
}

func TestRetentionErrors(t *testing.T) {
	src := `{"retention": [
		{"keep": "1 year"},
		{"kinds": ["vnc"], "statuses": ["live"], "keep": "1d"},
		{"users": ["group:nope"], "nodes": ["tag:Bad!"], "keep": "1d"},
		{"nodes": [], "keep": "1d"},
		{"statuses": ["complete"]},
		{"keep": "1d", "owner": "x"},
	]}`
	_, err := Parse("p.hujson", []byte(src))
	got := strings.Join(errorLines(err), "\n")
	for _, want := range []string{
		`p.hujson:2:12: retention rule #1: keep "1 year"`,
		`p.hujson:3:14: retention rule #2: unknown kind "vnc"`,
		`retention rule #2: unknown status "live"`,
		`retention rule #3: users: undefined group "group:nope"`,
		`retention rule #3: nodes: bad tag "tag:Bad!"`,
		`retention rule #4: nodes`,
		`retention rule #5`,
		`retention rule #6`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("errors lack %q; got:\n%s", want, got)
		}
	}
}
