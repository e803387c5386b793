package sshserver

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestParseKeyOptions(t *testing.T) {
	for _, tc := range []struct {
		opts    string
		noPTY   bool
		command string // "-" for none
		from    int    // number of from= patterns
		wantErr string
	}{
		{"no-pty", true, "-", 0, ""},
		{"NO-PTY", true, "-", 0, ""},
		{"restrict", true, "-", 0, ""},
		{"restrict,pty", false, "-", 0, ""},
		{"pty,restrict", true, "-", 0, ""}, // in order, as sshd
		{"no-pty,pty", false, "-", 0, ""},
		{"no-port-forwarding,no-agent-forwarding,no-X11-forwarding,no-user-rc", false, "-", 0, ""},
		{"restrict,port-forwarding,agent-forwarding,x11-forwarding,user-rc", true, "-", 0, ""},
		{`permitopen="localhost:80",permitlisten="8080"`, false, "-", 0, ""},
		{`command="echo \"hi\", there \\n"`, false, `echo "hi", there \\n`, 0, ""}, // only \" is an escape
		{`command=""`, false, "", 0, ""},
		{`from="10.0.0.0/8,!10.1.2.3,*.example.com",no-pty`, true, "-", 3, ""},
		{`expiry-time="20300101"`, false, "-", 0, ""},
		{`command="a",command="b"`, false, "", 0, `more than one "command"`},
		{`from="1.2.3.4",from="5.6.7.8"`, false, "", 0, `more than one "from"`},
		{`command=ls`, false, "", 0, "double quotes"},
		{`command`, false, "", 0, "needs a value"},
		{`no-pty="yes"`, false, "", 0, "takes no value"},
		{`command="ls`, false, "", 0, "no closing quote"},
		{`command="ls"x`, false, "", 0, `unexpected "x"`},
		{`no-pty,`, false, "", 0, "end with a comma"},
		{`environment="A=b"`, false, "", 0, "not supported"},
		{`cert-authority`, false, "", 0, "not supported"},
		{`principals="a"`, false, "", 0, "not supported"},
		{`no-touch-required`, false, "", 0, "not supported"},
		{`verify-required`, false, "", 0, "not supported"},
		{`tunnel="0"`, false, "", 0, "not supported"},
		{`frobnicate`, false, "", 0, `unknown option "frobnicate"`},
		{`from=""`, false, "", 0, "empty pattern"},
		{`from="10.0.0.1/8"`, false, "", 0, "bits set past the mask"},
		{`from="10.0.0.0/33"`, false, "", 0, "not an address/bits network"},
		{`from="::ffff:10.0.0.0/8"`, false, "", 0, "at least 96 bits"},
		{`expiry-time="2030"`, false, "", 0, "want YYYYMMDD"},
		{`expiry-time="20301399"`, false, "", 0, "not a valid date"},
	} {
		t.Run(tc.opts, func(t *testing.T) {
			o, err := parseKeyOptions(tc.opts)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			cmd := "-"
			if o.hasCommand {
				cmd = o.command
			}
			if o.noPTY != tc.noPTY || cmd != tc.command || len(o.from) != tc.from || o.text != tc.opts {
				t.Errorf("got noPTY %v, command %q, %d from patterns, text %q; want %v, %q, %d",
					o.noPTY, cmd, len(o.from), o.text, tc.noPTY, tc.command, tc.from)
			}
		})
	}
}

func TestFromAllows(t *testing.T) {
	for _, tc := range []struct {
		from string
		src  string
		want bool
	}{
		{"127.0.0.1", "127.0.0.1", true},
		{"127.0.0.1", "127.0.0.2", false},
		{"127.0.0.0/8", "127.9.9.9", true},
		{"10.0.0.0/8", "127.0.0.1", false},
		{"10.0.0.0/8,127.0.0.1", "127.0.0.1", true},
		{"!127.0.0.1,*", "127.0.0.1", false},           // a negated match refuses
		{"*,!127.0.0.1", "127.0.0.1", false},           // wherever it is
		{"!10.0.0.0/8,127.0.0.0/8", "127.0.0.1", true}, // a negation that does not match
		{"!10.0.0.0/8", "127.0.0.1", false},            // negations alone admit nobody
		{"127.0.0.*", "127.0.0.1", true},
		{"127.0.0.?", "127.0.0.1", true},
		{"127.0.0.?", "127.0.0.10", false},
		{"*.example.com", "127.0.0.1", false},
		{"localhost", "127.0.0.1", false}, // no DNS
		{"::1", "::1", true},
		{"::/0", "::1", true},
		{"::ffff:127.0.0.0/104", "127.0.0.1", true},
		{"127.0.0.1", "::ffff:127.0.0.1", true}, // mapped sources are seen as IPv4
		{"0.0.0.0/0", "::1", false},
	} {
		t.Run(tc.from+" "+tc.src, func(t *testing.T) {
			pats, err := parseFromList(tc.from)
			if err != nil {
				t.Fatal(err)
			}
			if got := fromAllows(pats, netip.MustParseAddr(tc.src)); got != tc.want {
				t.Errorf("fromAllows = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestGlobMatch(t *testing.T) {
	for _, tc := range []struct {
		pat, s string
		want   bool
	}{
		{"", "", true}, {"", "a", false}, {"*", "", true}, {"*", "abc", true},
		{"a*c", "abbbc", true}, {"a*c", "abcd", false}, {"a?c", "abc", true}, {"a?c", "ac", false},
		{"*a*b", "xaxxb", true}, {"**", "x", true}, {"a*", "b", false},
	} {
		if got := globMatch(tc.pat, tc.s); got != tc.want {
			t.Errorf("globMatch(%q, %q) = %v, want %v", tc.pat, tc.s, got, tc.want)
		}
	}
	// Many stars against a long miss stay cheap (no exponential backtracking).
	pat := strings.Repeat("*a", 200) + "b"
	if globMatch(pat, strings.Repeat("a", 5000)) {
		t.Error("matched without the b")
	}
}

func TestParseExpiry(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Time
	}{
		{"20300102Z", time.Date(2030, 1, 2, 0, 0, 0, 0, time.UTC)},
		{"203001021504Z", time.Date(2030, 1, 2, 15, 4, 0, 0, time.UTC)},
		{"20300102150405Z", time.Date(2030, 1, 2, 15, 4, 5, 0, time.UTC)},
		{"20300102", time.Date(2030, 1, 2, 0, 0, 0, 0, time.Local)},
	} {
		got, err := parseExpiry(tc.in)
		if err != nil || !got.Equal(tc.want) {
			t.Errorf("parseExpiry(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	o, _ := parseKeyOptions(`expiry-time="20300101Z",expiry-time="20250101Z"`)
	if !o.expiry.Equal(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("two expiry times: %v, want the earlier", o.expiry)
	}
	src := netip.MustParseAddr("127.0.0.1")
	if why := o.allows(src, time.Date(2024, 12, 31, 23, 59, 59, 0, time.UTC)); why != "" {
		t.Errorf("before the expiry: %q", why)
	}
	if why := o.allows(src, time.Date(2025, 1, 1, 0, 0, 1, 0, time.UTC)); !strings.Contains(why, "expired") {
		t.Errorf("after the expiry: %q", why)
	}
}
