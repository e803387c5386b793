package review

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/reel-rec/reel/internal/asciicast"
	"github.com/reel-rec/reel/internal/store"
)

// User is who a recording's USER column shows: the SSH user (with the
// local account it ran as, when different: "alice→root"), else the
// sender's tailnet user. Kubernetes sessions show the tailnet user; the
// pod is in Command. It is "" for a nil header.
func User(h *asciicast.Header) string {
	if h == nil {
		return ""
	}
	switch {
	case h.SSHUser != "" && h.LocalUser != "" && h.SSHUser != h.LocalUser:
		return h.SSHUser + "→" + h.LocalUser
	case h.SSHUser != "":
		return h.SSHUser
	case h.LocalUser != "":
		return h.LocalUser
	}
	return h.SrcNodeUser
}

// Command is what a recording's COMMAND column shows: the command (else
// the title), or for a Kubernetes session "exec namespace/pod container".
func Command(h *asciicast.Header) string {
	if h == nil {
		return ""
	}
	if k := h.Kubernetes; k != nil {
		kind := k.SessionType
		if kind == "" {
			kind = "exec"
		}
		pod := k.PodName
		if k.Namespace != "" {
			pod = k.Namespace + "/" + pod
		}
		s := kind + " " + pod
		if k.Container != "" {
			s += " " + k.Container
		}
		if h.Command != "" {
			s += ": " + h.Command
		}
		return s
	}
	if h.Command != "" {
		return h.Command
	}
	return h.Title
}

// MatchUser reports whether user names one of the recording's users: the
// SSH user, the local user or the sender's tailnet user (whole, or the part
// before '@'), ignoring case.
func MatchUser(h *asciicast.Header, user string) bool {
	if h == nil {
		return false
	}
	for _, u := range []string{h.SSHUser, h.LocalUser, h.SrcNodeUser} {
		if matchName(u, user) {
			return true
		}
	}
	return false
}

// HasUser reports whether user names one of the summarised recording's
// users: for a terminal recording as MatchUser says, for a desktop the
// authenticated user (whole, or the part before '@'), ignoring case.
func (s *Summary) HasUser(user string) bool {
	if s.Desktop != nil {
		return matchName(s.Desktop.User, user)
	}
	return MatchUser(s.Header, user)
}

// Explain says, as the end of a sentence that starts with the recording's
// name, how a recording that did not end normally is incomplete: "was
// interrupted (...)". It is "" for a complete recording. The store's
// reason is included, made safe for a terminal.
func Explain(info store.Info) string {
	var what string
	switch info.Status {
	case store.StatusComplete:
		return ""
	case store.StatusLive:
		what = "is still being recorded; this is what was stored so far"
	case store.StatusInterrupted:
		what = "was interrupted (the upload did not end normally); it was cut at its last complete line"
	case store.StatusFailed:
		what = "is incomplete: storing it failed"
	case store.StatusMalformed:
		what = "is malformed: the sender did not send valid asciicast"
	default:
		what = "has status " + string(info.Status)
	}
	if info.Reason != "" {
		what += " (" + info.Reason + ")"
	}
	return Sanitize(what, 300)
}

// Sanitize makes s safe to print on a terminal: control characters
// (escape sequences a sender might plant), invalid UTF-8 and line
// separators become '?', and s is cut to at most n runes, ending in '…'
// when cut.
func Sanitize(s string, n int) string {
	rs := []rune(s)
	cut := len(rs) > n
	if cut {
		rs = rs[:max(n-1, 0)]
	}
	for i, r := range rs {
		if r == utf8.RuneError || unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
			rs[i] = '?'
		}
	}
	if cut {
		return strings.TrimRightFunc(string(rs), unicode.IsSpace) + "…"
	}
	return string(rs)
}
