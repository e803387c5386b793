package store

import (
	"context"
	"crypto/sha256"
	"encoding/base32"
	"fmt"
	"io"
	"path"
	"strings"
	"time"
)

// maxNodeLen bounds a node id, far below any file system's name limit.
const maxNodeLen = 128

// MaxSenderLen bounds a sender identity that Create and PutEvent accept.
const MaxSenderLen = 4096

// hashLen is the length of the hash SafeNode appends: 16 base32 digits,
// 80 bits of SHA-256.
const hashLen = 16

var nodeHash = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// SafeNode turns a sender identity (a certificate name, a stable node ID, an
// IP address) into the node id its recordings are filed under: one path
// element made only of [A-Za-z0-9._-], not starting with '-' or '.', at most
// 128 bytes. Distinct identities get distinct node ids.
//
// An identity that already is such a name is its own node id (so stores
// made before keep their layout), unless it ends as the names below do.
// Any other identity (one with other bytes, a leading '-' or '.', or too
// long) becomes a readable prefix of it, other bytes turned into '-',
// followed by '_' and 16 base32 digits of the identity's SHA-256: the
// command line never reads one as a flag, and two identities share a node
// only if 80 bits of SHA-256 collide (which the stores check, refusing the
// second). SafeNode("") is "".
func SafeNode(id string) string {
	if id == "" {
		return ""
	}
	if ValidNode(id) && id[0] != '-' && !hashed(id) {
		return id
	}
	b := make([]byte, 0, maxNodeLen)
	for i := 0; i < len(id) && len(b) < maxNodeLen-1-hashLen; i++ {
		c := id[i]
		if !nodeByte(c) {
			c = '-'
		}
		if len(b) == 0 && (c == '-' || c == '.') {
			continue
		}
		b = append(b, c)
	}
	sum := sha256.Sum256([]byte(id))
	b = append(b, '_')
	return string(nodeHash.AppendEncode(b, sum[:hashLen*5/8]))
}

// ValidNode reports whether node is well formed as the node of a key: one
// path element of [A-Za-z0-9._-], not starting with '.', at most 128
// bytes. Every SafeNode value is; so are the node ids earlier versions
// made, which may start with '-' (an IPv6 address such as "::1" became
// "--1"), and which stay readable.
func ValidNode(node string) bool {
	if node == "" || len(node) > maxNodeLen || node[0] == '.' {
		return false
	}
	for i := range len(node) {
		if !nodeByte(node[i]) {
			return false
		}
	}
	return true
}

func nodeByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.'
}

// hashed reports whether node ends as SafeNode ends an identity it had to
// change: '_' and hashLen base32 digits.
func hashed(node string) bool {
	i := len(node) - hashLen - 1
	if i < 0 || node[i] != '_' {
		return false
	}
	for _, c := range []byte(node[i+1:]) {
		if !(c >= 'a' && c <= 'z' || c >= '2' && c <= '7') {
			return false
		}
	}
	return true
}

// SenderKey returns where a store keeps the identity of node's sender,
// "<node>/.sender", and whether it keeps one there: for a node that SafeNode
// made by changing an identity (the file holds the identity, byte for
// byte). Any other node is its sender's identity unchanged; so is a node
// that an earlier version made, which has no such file.
func SenderKey(node string) (key string, kept bool) {
	return node + "/.sender", hashed(node)
}

// ReadSender reads a sender identity kept as SenderKey says.
func ReadSender(r io.Reader) (string, error) {
	b, err := io.ReadAll(io.LimitReader(r, MaxSenderLen+1))
	if err == nil && (len(b) == 0 || len(b) > MaxSenderLen) {
		err = fmt.Errorf("%d bytes, want 1 to %d", len(b), MaxSenderLen)
	}
	return string(b), err
}

// NodeTaken is the error Create and PutEvent return when node already
// belongs to another sender, owner: two identities whose SafeNode hashes
// collide. Nothing is filed under a node that is not the sender's.
func NodeTaken(node, sender, owner string) error {
	return fmt.Errorf("node %s already holds the recordings of sender %q, not of %q", node, owner, sender)
}

// CheckSender checks a sender identity given to Create or PutEvent and
// returns its node id.
func CheckSender(sender string) (node string, err error) {
	if sender == "" || len(sender) > MaxSenderLen {
		return "", fmt.Errorf("%w: sender identity of %d bytes (want 1 to %d)", ErrInvalidKey, len(sender), MaxSenderLen)
	}
	return SafeNode(sender), nil
}

// nameLayout is the timestamp part of a recording's name: fixed width, so
// that names sort by time, UTC, and made of [0-9TZ.-] only.
const nameLayout = "2006-01-02T15-04-05.000000000Z"

// RecordingName returns the file name (without node) of a recording started
// at t: "<UTC timestamp with nanoseconds>.cast".
func RecordingName(t time.Time) string {
	return t.UTC().Format(nameLayout) + ".cast"
}

// RecordingKey returns "<node>/<RecordingName(t)>".
func RecordingKey(node string, t time.Time) string {
	return node + "/" + RecordingName(t)
}

// Kind is what a recording holds. Its key's extension tells: the store
// keeps every kind side by side, and a reader picks the decoder by kind.
type Kind string

const (
	// KindTerminal is asciicast v2, key "<node>/<name>.cast": what every
	// Tailscale sender and reel's terminal senders send.
	KindTerminal Kind = "terminal"
	// KindDesktop is reel's desktop recording format (internal/desktop,
	// docs/desktop-format.md), key "<node>/<name>.desk".
	KindDesktop Kind = "desktop"
)

// Ext returns the key extension of recordings of kind k.
func (k Kind) Ext() string {
	if k == KindDesktop {
		return ".desk"
	}
	return ".cast"
}

// KindOf returns the kind of the recording whose key (or file name) is
// key.
func KindOf(key string) Kind {
	if strings.HasSuffix(key, ".desk") {
		return KindDesktop
	}
	return KindTerminal
}

// IsRecordingName reports whether a file name ends with the extension of
// a kind of recording.
func IsRecordingName(name string) bool {
	return strings.HasSuffix(name, ".cast") || strings.HasSuffix(name, ".desk")
}

// KindKey returns "<node>/<UTC timestamp><kind's extension>".
func KindKey(node string, t time.Time, k Kind) string {
	return node + "/" + t.UTC().Format(nameLayout) + k.Ext()
}

// A KindCreator is a Store that can keep recordings of other kinds than
// KindTerminal (which Create makes). CreateKind is Create for a recording
// of kind: sender is the raw sender identity, filed under SafeNode(sender)
// and kept beside it exactly as Create does, and the key ends with
// kind.Ext(). The recorder refuses other kinds on a store without it.
type KindCreator interface {
	CreateKind(ctx context.Context, sender string, start time.Time, kind Kind) (Writer, error)
}

// ParseKey splits a recording key into node and start time, and checks that
// it is well formed (no "..", no absolute path, no odd bytes).
func ParseKey(key string) (node string, start time.Time, err error) {
	node, name, ok := strings.Cut(key, "/")
	if !ok || !ValidNode(node) || strings.Contains(name, "/") || !IsRecordingName(name) {
		return "", time.Time{}, fmt.Errorf("%w: %q", ErrInvalidKey, key)
	}
	start, err = time.Parse(nameLayout, strings.TrimSuffix(name, KindOf(name).Ext()))
	if err != nil {
		return "", time.Time{}, fmt.Errorf("%w: %q: %v", ErrInvalidKey, key, err)
	}
	if path.Clean(key) != key {
		return "", time.Time{}, fmt.Errorf("%w: %q", ErrInvalidKey, key)
	}
	return node, start, nil
}

// TailKey is where the bytes after a recording's last complete line are kept
// when the recording is cut (interrupted or failed).
func TailKey(key string) string { return key + ".tail" }
