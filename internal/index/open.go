package index

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
)

// Open opens (creating when needed) the index that url names, choosing
// the implementation by scheme:
//
//	postgres://... or postgresql://...   PostgreSQL (pg_trgm)
//	sqlite:PATH, or a plain PATH         a SQLite file
//
// A SQLite file that is corrupt or not reel's is moved aside (and log
// says where) and a new, empty index made in its place: the index is a
// cache of the store, rebuilt from it. log may be nil.
func Open(ctx context.Context, url string, log *slog.Logger) (Index, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	switch {
	case strings.HasPrefix(url, "postgres://"), strings.HasPrefix(url, "postgresql://"):
		return openPostgres(ctx, url)
	case strings.HasPrefix(url, "sqlite:"):
		return openSQLite(ctx, strings.TrimPrefix(strings.TrimPrefix(url, "sqlite:"), "//"), log)
	case strings.Contains(url, "://"):
		return nil, fmt.Errorf("index %s: unknown scheme (want postgres://, sqlite: or a file path)", url)
	case url == "":
		return nil, fmt.Errorf("index: no location given")
	}
	return openSQLite(ctx, url, log)
}

// Describe names url for messages without its password.
func Describe(url string) string {
	if i := strings.Index(url, "://"); i >= 0 {
		if at := strings.LastIndex(url, "@"); at > i {
			cred := url[i+3 : at]
			if user, _, ok := strings.Cut(cred, ":"); ok {
				return url[:i+3] + user + ":***" + url[at:]
			}
		}
	}
	return url
}
