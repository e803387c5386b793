package kubeproxy

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Mode is how the proxy presents users to the API server.
type Mode int

const (
	// PassThrough forwards the user's own credentials (a bearer token)
	// untouched; the proxy learns who the user is with a
	// SelfSubjectReview made with those credentials.
	PassThrough Mode = iota
	// Impersonate authenticates the user itself (a client certificate
	// from the proxy's client CA, or a bearer token checked with a
	// TokenReview) and sends requests with reel's own credentials and
	// Impersonate-* headers.
	Impersonate
)

func (m Mode) String() string {
	if m == Impersonate {
		return "impersonate"
	}
	return "pass-through"
}

// Identity is who a request comes from, as the API server knows them.
type Identity struct {
	User   string              `json:"username"`
	UID    string              `json:"uid,omitempty"`
	Groups []string            `json:"groups,omitempty"`
	Extra  map[string][]string `json:"extra,omitempty"`
	// Via says how it was learned: "client-certificate", "token-review",
	// "self-subject-review", or "" when unknown.
	Via string `json:"via,omitempty"`
}

// authError is a failure to authenticate the request; it becomes a 401.
type authError struct{ msg string }

func (e *authError) Error() string { return e.msg }

// identityCache keeps recent answers by a hash of the credentials.
type identityCache struct {
	mu      sync.Mutex
	entries map[[32]byte]cacheEntry
}

type cacheEntry struct {
	id      *Identity // nil: the credentials were refused
	err     error
	expires time.Time
}

const (
	identityTTL     = 30 * time.Second
	refusedTTL      = 5 * time.Second
	maxCacheEntries = 10000
)

func (c *identityCache) get(key [32]byte, now time.Time) (cacheEntry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[key]
	if !ok || now.After(e.expires) {
		return cacheEntry{}, false
	}
	return e, true
}

func (c *identityCache) put(key [32]byte, e cacheEntry, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil {
		c.entries = map[[32]byte]cacheEntry{}
	}
	if len(c.entries) >= maxCacheEntries {
		for k, v := range c.entries {
			if now.After(v.expires) || len(c.entries) >= maxCacheEntries {
				delete(c.entries, k)
			}
		}
	}
	c.entries[key] = e
}

// credentialKey hashes the headers that decide who a pass-through request
// is: its credentials and any impersonation it asks for.
func credentialKey(h http.Header) [32]byte {
	var b strings.Builder
	b.WriteString(h.Get("Authorization"))
	var keys []string
	for k := range h {
		if strings.HasPrefix(k, "Impersonate-") {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		b.WriteString("\x00" + k + "\x00" + strings.Join(h[k], "\x00"))
	}
	return sha256.Sum256([]byte(b.String()))
}

// identify returns who r comes from. In pass-through mode an identity the
// API server will not tell (no SelfSubjectReview, refused credentials) is
// the zero Identity: the request still goes through, and the API server
// answers it as it would without the proxy. In impersonation mode a user
// the proxy cannot authenticate is an *authError.
func (s *Server) identify(r *http.Request) (Identity, error) {
	if s.Mode == Impersonate {
		return s.identifyImpersonate(r)
	}
	if r.Header.Get("Authorization") == "" {
		return Identity{}, nil
	}
	key := credentialKey(r.Header)
	if e, ok := s.ids.get(key, s.now()); ok {
		if e.id == nil {
			return Identity{}, nil
		}
		return *e.id, nil
	}
	id, err := s.selfSubjectReview(r.Context(), r.Header)
	if err != nil {
		s.log().Debug("self subject review failed; identity unknown", "err", err)
		s.ids.put(key, cacheEntry{expires: s.now().Add(refusedTTL)}, s.now())
		return Identity{}, nil
	}
	s.ids.put(key, cacheEntry{id: &id, expires: s.now().Add(identityTTL)}, s.now())
	return id, nil
}

func (s *Server) identifyImpersonate(r *http.Request) (Identity, error) {
	for k := range r.Header {
		if strings.HasPrefix(k, "Impersonate-") {
			return Identity{}, &forbiddenError{"reel kube-proxy impersonates users itself; requests through it cannot carry Impersonate-* headers (" + k + ")"}
		}
	}
	if r.TLS != nil && len(r.TLS.VerifiedChains) > 0 {
		return certIdentity(r.TLS.VerifiedChains[0][0]), nil
	}
	auth := r.Header.Get("Authorization")
	token, ok := strings.CutPrefix(auth, "Bearer ")
	if !ok || token == "" {
		return Identity{}, &authError{"reel kube-proxy: no credentials: present a client certificate signed by the proxy's client CA, or a bearer token"}
	}
	key := sha256.Sum256([]byte(token))
	if e, ok := s.ids.get(key, s.now()); ok {
		if e.id == nil {
			return Identity{}, e.err
		}
		return *e.id, nil
	}
	id, err := s.tokenReview(r.Context(), token)
	if err != nil {
		var ae *authError
		if errors.As(err, &ae) {
			s.ids.put(key, cacheEntry{err: err, expires: s.now().Add(refusedTTL)}, s.now())
		}
		return Identity{}, err
	}
	s.ids.put(key, cacheEntry{id: &id, expires: s.now().Add(identityTTL)}, s.now())
	return id, nil
}

// certIdentity is the user of a client certificate, read as the API
// server reads one: the common name is the user, the organizations are
// the groups.
func certIdentity(c *x509.Certificate) Identity {
	groups := slices.Clone(c.Subject.Organization)
	if !slices.Contains(groups, "system:authenticated") {
		groups = append(groups, "system:authenticated")
	}
	return Identity{User: c.Subject.CommonName, Groups: groups, Via: "client-certificate"}
}

func (s *Server) tokenReview(ctx context.Context, token string) (Identity, error) {
	review := authnv1.TokenReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "authentication.k8s.io/v1", Kind: "TokenReview"},
		Spec:     authnv1.TokenReviewSpec{Token: token, Audiences: s.Audiences},
	}
	var out authnv1.TokenReview
	if err := s.postUpstream(ctx, s.Upstream.Own, "/apis/authentication.k8s.io/v1/tokenreviews", nil, &review, &out); err != nil {
		return Identity{}, fmt.Errorf("reel kube-proxy: TokenReview: %w", err)
	}
	if !out.Status.Authenticated {
		msg := "reel kube-proxy: the bearer token was not accepted by the API server's TokenReview"
		if out.Status.Error != "" {
			msg += ": " + out.Status.Error
		}
		return Identity{}, &authError{msg}
	}
	u := out.Status.User
	id := Identity{User: u.Username, UID: u.UID, Groups: u.Groups, Via: "token-review"}
	if len(u.Extra) > 0 {
		id.Extra = map[string][]string{}
		for k, v := range u.Extra {
			id.Extra[k] = v
		}
	}
	return id, nil
}

func (s *Server) selfSubjectReview(ctx context.Context, h http.Header) (Identity, error) {
	review := authnv1.SelfSubjectReview{TypeMeta: metav1.TypeMeta{APIVersion: "authentication.k8s.io/v1", Kind: "SelfSubjectReview"}}
	hdr := http.Header{}
	for k, v := range h {
		if k == "Authorization" || strings.HasPrefix(k, "Impersonate-") {
			hdr[k] = v
		}
	}
	var out authnv1.SelfSubjectReview
	if err := s.postUpstream(ctx, s.Upstream.Anonymous, "/apis/authentication.k8s.io/v1/selfsubjectreviews", hdr, &review, &out); err != nil {
		return Identity{}, err
	}
	u := out.Status.UserInfo
	id := Identity{User: u.Username, UID: u.UID, Groups: u.Groups, Via: "self-subject-review"}
	if len(u.Extra) > 0 {
		id.Extra = map[string][]string{}
		for k, v := range u.Extra {
			id.Extra[k] = v
		}
	}
	return id, nil
}

// postUpstream POSTs in as JSON to path on the API server and decodes the
// answer into out.
func (s *Server) postUpstream(ctx context.Context, rt http.RoundTripper, path string, h http.Header, in, out any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.upstreamURL(path, ""), bytes.NewReader(body))
	if err != nil {
		return err
	}
	for k, v := range h {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := rt.RoundTrip(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s: %s: %s", path, resp.Status, strings.TrimSpace(string(b)))
	}
	return json.Unmarshal(b, out)
}

// upstreamURL joins the upstream base URL with path and query.
func (s *Server) upstreamURL(path, rawQuery string) string {
	u := *s.Upstream.URL
	u.Path = strings.TrimSuffix(u.Path, "/") + path
	u.RawPath = ""
	u.RawQuery = rawQuery
	return u.String()
}

// setImpersonation replaces the request's credentials by impersonation
// of id (reel's own credentials are added by the Own transport).
func setImpersonation(h http.Header, id Identity) {
	h.Del("Authorization")
	for k := range h {
		if strings.HasPrefix(k, "Impersonate-") {
			delete(h, k)
		}
	}
	h.Set("Impersonate-User", id.User)
	if id.UID != "" {
		h.Set("Impersonate-Uid", id.UID)
	}
	for _, g := range id.Groups {
		if g == "system:authenticated" {
			continue // the API server adds it to every impersonated user
		}
		h.Add("Impersonate-Group", g)
	}
	for k, vs := range id.Extra {
		for _, v := range vs {
			h.Add("Impersonate-Extra-"+url.PathEscape(k), v)
		}
	}
}
