package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"sync"
	"time"
)

// A session is a logged-in account. Only the SHA-256 of its id is kept:
// the id itself is in the browser's cookie alone.
type session struct {
	name       string
	role       Role
	hash       string // the account's password hash when the session began
	mustChange bool
	csrf       string
	created    time.Time
	lastSeen   time.Time
}

// sessionIDLen is the length of a session id in its cookie: 32 random
// bytes, base64url without padding.
const sessionIDLen = 43

// newSessionID returns a fresh random session id.
func newSessionID() string {
	b := make([]byte, 32)
	rand.Read(b) // never fails (crypto/rand)
	return base64.RawURLEncoding.EncodeToString(b)
}

// parseSessionID checks that a cookie's value looks like a session id:
// exactly sessionIDLen characters of base64url that decode to 32 bytes.
// It says nothing about whether the session exists.
func parseSessionID(v string) (string, bool) {
	if len(v) != sessionIDLen {
		return "", false
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(v)
	if err != nil || len(b) != 32 {
		return "", false
	}
	return v, true
}

// sessionStore keeps sessions in memory: a restart logs everyone out.
type sessionStore struct {
	ttl, idle time.Duration
	max       int // sessions in all
	maxUser   int // sessions per account

	mu sync.Mutex
	m  map[[sha256.Size]byte]*session
}

func newSessionStore(ttl, idle time.Duration) *sessionStore {
	return &sessionStore{ttl: ttl, idle: idle, max: 10000, maxUser: 32, m: map[[sha256.Size]byte]*session{}}
}

func sessionKey(id string) [sha256.Size]byte { return sha256.Sum256([]byte(id)) }

// create starts a session and returns its id.
func (s *sessionStore) create(acct Account, now time.Time) (string, *session) {
	id := newSessionID()
	sess := &session{
		name: acct.Name, role: acct.Role, hash: acct.Hash, mustChange: acct.MustChange,
		csrf: newSessionID(), created: now, lastSeen: now,
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweep(now)
	// Bound the sessions of one account, then all: the least recently
	// used go first.
	var mine []*session
	for _, o := range s.m {
		if o.name == acct.Name {
			mine = append(mine, o)
		}
	}
	for len(mine) >= s.maxUser {
		s.evict(func(o *session) bool { return o.name == acct.Name })
		mine = mine[1:]
	}
	for len(s.m) >= s.max {
		s.evict(func(*session) bool { return true })
	}
	s.m[sessionKey(id)] = sess
	return id, sess
}

// evict removes the least recently seen session that match selects.
func (s *sessionStore) evict(match func(*session) bool) {
	var oldK [sha256.Size]byte
	var old *session
	for k, o := range s.m {
		if match(o) && (old == nil || o.lastSeen.Before(old.lastSeen)) {
			oldK, old = k, o
		}
	}
	if old != nil {
		delete(s.m, oldK)
	}
}

func (s *sessionStore) expired(sess *session, now time.Time) bool {
	return now.Sub(sess.created) >= s.ttl || now.Sub(sess.lastSeen) >= s.idle
}

// sweep drops expired sessions. s.mu is held.
func (s *sessionStore) sweep(now time.Time) {
	for k, o := range s.m {
		if s.expired(o, now) {
			delete(s.m, k)
		}
	}
}

// get returns the live session with id and marks it used.
func (s *sessionStore) get(id string, now time.Time) (session, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := sessionKey(id)
	sess, ok := s.m[k]
	if !ok {
		return session{}, false
	}
	if s.expired(sess, now) {
		delete(s.m, k)
		return session{}, false
	}
	sess.lastSeen = now
	return *sess, true
}

// remove ends the session with id.
func (s *sessionStore) remove(id string) {
	s.mu.Lock()
	delete(s.m, sessionKey(id))
	s.mu.Unlock()
}

// removeUser ends every session of the account name.
func (s *sessionStore) removeUser(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, o := range s.m {
		if o.name == name {
			delete(s.m, k)
		}
	}
}

// count returns how many sessions there are (tests).
func (s *sessionStore) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m)
}
