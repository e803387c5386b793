package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"strings"
)

// Files is implemented by stores that keep, beside the recordings, small
// named files of their users: a recording's seal and hash chain
// ("<key>.seal", "<key>.chain"), and store-wide files under FilesDir (the
// evidence manifests, legal holds). Every backend implements it, and the
// conformance suite checks it.
//
// A name is either a recording's key, a sidecar of a recording ("<key>." and
// a suffix of 1 to 16 lowercase letters), or a path under FilesDir (see
// CheckFileName). The store's own sidecars (".status", ".tail") and the
// recordings can be read and deleted through Files but never written.
type Files interface {
	// PutFile stores data under name, replacing what was there. On
	// return without error it survives a crash.
	PutFile(ctx context.Context, name string, data []byte) error

	// OpenFile opens name for reading; a name with nothing stored under it
	// is an error wrapping ErrNotFound.
	OpenFile(ctx context.Context, name string) (Reader, error)

	// ListFiles yields, in byte order, the names stored under dir, a path
	// under FilesDir ending in "/", at any depth.
	ListFiles(ctx context.Context, dir string) iter.Seq2[string, error]

	// DeleteFile removes name. For a recording's key it removes the
	// recording with the store's own sidecars (.status, .tail), and fails
	// with ErrLive while the recording is live; its other sidecars stay
	// until they are deleted by name. Nothing stored under name is an error
	// wrapping ErrNotFound. On return without error the removal survives a
	// crash.
	DeleteFile(ctx context.Context, name string) error
}

// FilesDir is the folder, beside the nodes' folders, that holds store-wide
// files: "<FilesDir>/<path>". It cannot be a node (a node never starts with
// '.').
const FilesDir = ".evidence"

// ErrLive: the recording is live (or, in a store that uploads in the
// background, not yet landed), so it cannot be deleted.
var ErrLive = errors.New("recording is live")

// maxFileSuffix bounds a sidecar's suffix.
const maxFileSuffix = 16

// FileKind is what a file name names.
type FileKind int

const (
	// FileRecording is a recording's key.
	FileRecording FileKind = iota + 1
	// FileSidecar is "<key>.<suffix>": a file beside a recording.
	FileSidecar
	// FileStoreWide is a path under FilesDir.
	FileStoreWide
)

// storeSidecars are the sidecars the stores themselves write.
var storeSidecars = map[string]bool{"status": true, "tail": true}

// CheckFileName checks a name given to Files and says what it names: a
// recording key (FileRecording); "<key>.<suffix>" with a suffix of 1 to 16
// lowercase ASCII letters (FileSidecar, and key is the recording's key);
// or FilesDir + "/" followed by one or more path elements of
// [A-Za-z0-9._-], none starting with '.' or ending in ".tmp" (the
// backends' temporary files) (FileStoreWide). Anything else
// is an error wrapping ErrInvalidKey.
func CheckFileName(name string) (kind FileKind, key string, err error) {
	if rest, ok := strings.CutPrefix(name, FilesDir+"/"); ok {
		if rest == "" {
			return 0, "", fmt.Errorf("%w: file name %q", ErrInvalidKey, name)
		}
		for elem := range strings.SplitSeq(rest, "/") {
			if elem == "" || elem[0] == '.' || len(elem) > 255 || strings.HasSuffix(elem, ".tmp") {
				return 0, "", fmt.Errorf("%w: file name %q", ErrInvalidKey, name)
			}
			for i := range len(elem) {
				if !nodeByte(elem[i]) {
					return 0, "", fmt.Errorf("%w: file name %q", ErrInvalidKey, name)
				}
			}
		}
		return FileStoreWide, "", nil
	}
	if _, _, err := ParseKey(name); err == nil {
		return FileRecording, name, nil
	}
	i := strings.LastIndexByte(name, '.')
	if i < 0 {
		return 0, "", fmt.Errorf("%w: file name %q", ErrInvalidKey, name)
	}
	suffix := name[i+1:]
	if suffix == "" || len(suffix) > maxFileSuffix {
		return 0, "", fmt.Errorf("%w: file name %q", ErrInvalidKey, name)
	}
	for _, c := range []byte(suffix) {
		if c < 'a' || c > 'z' {
			return 0, "", fmt.Errorf("%w: file name %q", ErrInvalidKey, name)
		}
	}
	if _, _, err := ParseKey(name[:i]); err != nil {
		return 0, "", fmt.Errorf("%w: file name %q", ErrInvalidKey, name)
	}
	return FileSidecar, name[:i], nil
}

// CheckPutName checks a name given to PutFile: a sidecar other than the
// store's own (.status, .tail), or a store-wide file.
func CheckPutName(name string) error {
	kind, key, err := CheckFileName(name)
	if err != nil {
		return err
	}
	switch {
	case kind == FileRecording:
		return fmt.Errorf("%w: %q is a recording: recordings are written only by Create", ErrInvalidKey, name)
	case kind == FileSidecar && storeSidecars[name[len(key)+1:]]:
		return fmt.Errorf("%w: %q is kept by the store itself", ErrInvalidKey, name)
	}
	return nil
}

// CheckFilesDir checks a dir given to ListFiles: FilesDir + "/" and
// optionally more path elements, ending in "/".
func CheckFilesDir(dir string) error {
	if dir == FilesDir+"/" {
		return nil
	}
	if !strings.HasSuffix(dir, "/") {
		return fmt.Errorf("%w: folder %q does not end in /", ErrInvalidKey, dir)
	}
	if kind, _, err := CheckFileName(strings.TrimSuffix(dir, "/")); err != nil || kind != FileStoreWide {
		return fmt.Errorf("%w: folder %q is not under %s/", ErrInvalidKey, dir, FilesDir)
	}
	return nil
}

// MaxReadFile bounds what ReadFile reads.
const MaxReadFile = 64 << 20

// ReadFile reads all of a small file through f.
func ReadFile(ctx context.Context, f Files, name string) ([]byte, error) {
	r, err := f.OpenFile(ctx, name)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	if r.Size() > MaxReadFile {
		return nil, fmt.Errorf("%s: %d bytes: more than the %d a file read whole may have", name, r.Size(), MaxReadFile)
	}
	b := make([]byte, r.Size())
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	return b, nil
}
