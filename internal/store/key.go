package store

import (
	"context"
	"fmt"
	"net/netip"
	"path"
	"strings"
	"time"
)

// maxNodeLen bounds a node id, far below any file system's name limit.
const maxNodeLen = 128

// SafeNode turns a sender identity (a certificate name, a stable node ID, an
// IP address) into a node id that is safe as one path element: only
// [A-Za-z0-9._-], not starting with a dot, at most 128 bytes. Other bytes
// become '-'. It returns "" for an identity that has no usable byte.
func SafeNode(id string) string {
	if ap, err := netip.ParseAddrPort(id); err == nil {
		id = ap.Addr().WithZone("").String()
	} else if a, err := netip.ParseAddr(id); err == nil {
		id = a.WithZone("").String()
	}
	b := []byte(id)
	if len(b) > maxNodeLen {
		b = b[:maxNodeLen]
	}
	useful := false
	for i, c := range b {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_':
			useful = true
		case c == '.' && i > 0, c == '-':
		default:
			b[i] = '-'
		}
	}
	if !useful {
		return ""
	}
	return string(b)
}

// ValidNode reports whether node is a value SafeNode could return.
func ValidNode(node string) bool {
	return node != "" && SafeNode(node) == node
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
// KindTerminal (which Create makes). The recorder refuses other kinds on a
// store without it.
type KindCreator interface {
	CreateKind(ctx context.Context, node string, start time.Time, kind Kind) (Writer, error)
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
