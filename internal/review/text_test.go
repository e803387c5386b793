package review

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/reel-rec/reel/internal/asciicast"
	"github.com/reel-rec/reel/internal/store"
)

func TestSanitize(t *testing.T) {
	tests := []struct {
		name, in string
		n        int
		want     string
	}{
		{"plain", "bash -l", 10, "bash -l"},
		{"escape sequences", "ls\x1b[2J\x1b]0;pwned\x07", 40, "ls?[2J?]0;pwned?"},
		{"newline", "a\nb", 10, "a?b"},
		{"cut", "abcdefgh", 5, "abcd…"},
		{"cut trims spaces", "abc   defg", 5, "abc…"},
		{"runes not bytes", "ääääää", 4, "äää…"},
		{"exactly n", "abcde", 5, "abcde"},
		{"bad utf8", "a\xffb", 5, "a?b"},
		{"line separator", "a\u2028b", 5, "a?b"},
		{"C1 control", "a\u009bb", 5, "a?b"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Sanitize(tc.in, tc.n); got != tc.want {
				t.Errorf("Sanitize(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
			}
		})
	}
}

func TestUserAndCommand(t *testing.T) {
	tests := []struct {
		name          string
		h             *asciicast.Header
		user, command string
	}{
		{"no header", nil, "", ""},
		{"ssh same user", &asciicast.Header{SSHUser: "root", LocalUser: "root", SrcNodeUser: "alice@example.com", Command: "bash -l"}, "root", "bash -l"},
		{"ssh mapped user", &asciicast.Header{SSHUser: "alice", LocalUser: "ubuntu", Command: "top"}, "alice→ubuntu", "top"},
		{"local only", &asciicast.Header{LocalUser: "bob"}, "bob", ""},
		{"tailnet user only", &asciicast.Header{SrcNodeUser: "carol@example.com", Title: "demo"}, "carol@example.com", "demo"},
		{"kubernetes", &asciicast.Header{SrcNodeUser: "dave@example.com", Kubernetes: &asciicast.Kubernetes{PodName: "web-0", Namespace: "prod", Container: "app", SessionType: "exec"}}, "dave@example.com", "exec prod/web-0 app"},
		{"kubernetes attach with command", &asciicast.Header{Command: "sh", Kubernetes: &asciicast.Kubernetes{PodName: "p", SessionType: "attach"}}, "", "attach p: sh"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := []string{User(tc.h), Command(tc.h)}
			if diff := cmp.Diff([]string{tc.user, tc.command}, got); diff != "" {
				t.Errorf("(-want +got)\n%s", diff)
			}
		})
	}
}

func TestMatchUser(t *testing.T) {
	h := &asciicast.Header{SSHUser: "alice", LocalUser: "ubuntu", SrcNodeUser: "Alice.Smith@example.com"}
	tests := []struct {
		user string
		want bool
	}{
		{"alice", true},
		{"ubuntu", true},
		{"alice.smith@example.com", true},
		{"alice.smith", true},
		{"ALICE", true},
		{"example.com", false},
		{"bob", false},
		{"alic", false},
	}
	for _, tc := range tests {
		t.Run(tc.user, func(t *testing.T) {
			if got := MatchUser(h, tc.user); got != tc.want {
				t.Errorf("MatchUser(%q) = %v, want %v", tc.user, got, tc.want)
			}
		})
	}
	if MatchUser(nil, "alice") {
		t.Error("a recording without a header matched a user")
	}
}

func TestExplain(t *testing.T) {
	tests := []struct {
		info store.Info
		want string
	}{
		{store.Info{Status: store.StatusComplete}, ""},
		{store.Info{Status: store.StatusLive}, "is still being recorded; this is what was stored so far"},
		{store.Info{Status: store.StatusInterrupted, Reason: "connection lost"}, "was interrupted (the upload did not end normally); it was cut at its last complete line (connection lost)"},
		{store.Info{Status: store.StatusFailed, Reason: "disk full\x1b[2J"}, "is incomplete: storing it failed (disk full?[2J)"},
		{store.Info{Status: store.StatusMalformed}, "is malformed: the sender did not send valid asciicast"},
	}
	for _, tc := range tests {
		t.Run(string(tc.info.Status), func(t *testing.T) {
			if got := Explain(tc.info); got != tc.want {
				t.Errorf("Explain = %q, want %q", got, tc.want)
			}
		})
	}
}
