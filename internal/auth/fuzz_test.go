package auth

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// FuzzSessionCookie: whatever a cookie holds, parseSessionID accepts only
// the 43-character base64url form of 32 bytes, and a request carrying it
// finds no session it was not given.
func FuzzSessionCookie(f *testing.F) {
	f.Add(newSessionID())
	f.Add("")
	f.Add(strings.Repeat("A", 43))
	f.Add(strings.Repeat("_", 44))
	f.Add("a=b; c")
	a := &Authenticator{Accounts: newAccounts("/nonexistent/accounts.json", testParams, nil)}
	f.Fuzz(func(t *testing.T, v string) {
		id, ok := parseSessionID(v)
		if ok {
			b, err := base64.RawURLEncoding.DecodeString(id)
			if err != nil || len(b) != 32 || id != v || base64.RawURLEncoding.EncodeToString(b) != v {
				t.Fatalf("accepted %q", v)
			}
		}
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("Cookie", cookieSession+"="+v)
		if _, err := a.Viewer(r); err == nil {
			t.Fatalf("cookie %q found a viewer", v)
		}
	})
}

// FuzzProxyHeader: the identity header's value is taken only when it is
// one valid name, exactly as sent.
func FuzzProxyHeader(f *testing.F) {
	f.Add("alice@example.com", "")
	f.Add("alice", "root")
	f.Add("", "")
	f.Add("a\r\nX: y", "")
	f.Add("élodie", "")
	f.Fuzz(func(t *testing.T, v1, v2 string) {
		values := []string{v1}
		if v2 != "" {
			values = append(values, v2)
		}
		name, err := parseProxyHeader(values)
		if err != nil {
			return
		}
		if len(values) != 1 || name != v1 || !ValidName(name) || strings.ContainsAny(name, " ,;:\r\n\t\x00<>\"'/\\") {
			t.Fatalf("accepted %q as %q", values, name)
		}
	})
}

// FuzzParseAccounts: the accounts file parser never panics, and what it
// accepts writes back to a file it reads the same.
func FuzzParseAccounts(f *testing.F) {
	h, _ := hashPassword("x", testParams)
	f.Add([]byte(`{"version":1,"accounts":[{"name":"a","role":"admin","hash":"` + h + `","mustChange":true,"created":"2026-01-01T00:00:00Z","changed":"2026-01-01T00:00:00Z"}]}`))
	f.Add([]byte(`{"version":1,"accounts":[]}`))
	f.Add([]byte(`{"version":1}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, data []byte) {
		accts, err := ParseAccounts(data)
		if err != nil {
			return
		}
		again, err := ParseAccounts(marshalAccounts(slices.Clone(accts)))
		if err != nil {
			t.Fatalf("written file does not parse: %v", err)
		}
		slices.SortFunc(accts, func(a, b Account) int { return cmpString(a.Name, b.Name) })
		if diff := cmp.Diff(accts, again); diff != "" {
			t.Fatalf("round trip (-first +second):\n%s", diff)
		}
	})
}

// FuzzParseHash: a hash string from a file never panics the parser and
// never asks for more than the limits allow.
func FuzzParseHash(f *testing.F) {
	h, _ := hashPassword("x", testParams)
	f.Add(h)
	f.Add("$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5a2V5")
	f.Add("$argon2id$v=19$m=1,t=1,p=1$$")
	f.Fuzz(func(t *testing.T, s string) {
		p, salt, key, err := parseHash(s)
		if err != nil {
			return
		}
		if p.Memory > maxMemory || p.Time > maxTime || p.Time == 0 || p.Threads == 0 || p.Memory < 8*uint32(p.Threads) || len(salt) < 8 || len(key) < 16 || len(salt) > maxKeySalt || len(key) > maxKeySalt {
			t.Fatalf("accepted %q: %+v, %d-byte salt, %d-byte key", s, p, len(salt), len(key))
		}
	})
}

// FuzzParseGrants: tailnet grant values never panic the parser, and an
// accepted grant holds only known actions and well-formed nodes.
func FuzzParseGrants(f *testing.F) {
	f.Add(`{"nodes":["tag:prod","web1"],"actions":["view"]}`)
	f.Add(`{"admin":true}`)
	f.Add(`{"nodes":["*"]} {}`)
	f.Add(`{"nodes":["a/b"]}`)
	f.Fuzz(func(t *testing.T, raw string) {
		gs, err := ParseGrants([]json.RawMessage{json.RawMessage(raw)})
		if err != nil {
			return
		}
		for _, g := range gs {
			for _, a := range g.Actions {
				if a != "view" && a != "download" {
					t.Fatalf("action %q accepted", a)
				}
			}
			for _, n := range g.Nodes {
				if !validGrantNode(n) || strings.ContainsAny(n, "/ \x00") {
					t.Fatalf("node %q accepted", n)
				}
			}
			if len(g.Nodes) == 0 && !g.Admin {
				t.Fatal("empty grant accepted")
			}
		}
	})
}

var _ http.Handler = (&Authenticator{}).Handler()
