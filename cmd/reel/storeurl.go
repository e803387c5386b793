package main

import (
	"fmt"
	"log/slog"
	"strings"

	"github.com/reel-rec/reel/internal/store"
	"github.com/reel-rec/reel/internal/store/fsstore"
)

// storeOptions are the storage flags shared by every command that reads or
// writes recordings.
type storeOptions struct {
	dst      string // a directory, or s3://endpoint / s3+http://host:port
	minFree  int64  // free-space reserve in bytes (fs) ; spool reserve (s3)
	stateDir string // where state (e.g. an S3 spool) lives
	log      *slog.Logger
	readOnly bool // reviewers' commands: do not take the writer's lock

	// S3 only: the S3 flags (addS3Flags; nil: from the --dst URL and the
	// environment alone) and the environment (nil: the process's).
	s3     *s3Flags
	getenv func(string) string
}

// openStore opens the store that opts.dst names, choosing the backend by
// URL scheme (litestream's replica_url.go is the model).
func openStore(opts storeOptions) (store.Store, error) {
	switch {
	case isS3(opts.dst):
		s, err := openS3Store(opts)
		if err != nil {
			return nil, err // not a nil *s3store.Store in a non-nil interface
		}
		return s, nil
	case strings.Contains(opts.dst, "://"):
		return nil, fmt.Errorf("--dst %s: unknown scheme (want a directory, s3:// or s3+http://)", opts.dst)
	}
	if opts.readOnly {
		return fsstore.OpenReadOnly(opts.dst)
	}
	return fsstore.Open(opts.dst, fsstore.Options{MinFree: opts.minFree, Log: opts.log})
}
