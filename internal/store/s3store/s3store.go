// Package s3store keeps recordings and events in an S3-compatible bucket
// (AWS S3, MinIO, versitygw, Cloudflare R2, ...). It is the only package that
// imports the S3 client.
//
// Keys in the bucket mirror the disk layout of fsstore, under an optional
// prefix:
//
//	<prefix><node>/<timestamp>.cast                 the recording, one object per session
//	<prefix><node>/<timestamp>.cast.status          only when it did not end normally: JSON {status, reason, size, closed}
//	<prefix><node>/<timestamp>.cast.tail            bytes cut off after the last complete line, if any
//	<prefix><node>/events/<YYYY-MM-DD>/<segment>.jsonl  events, one JSON line each, in segments
//	<prefix><node>/.sender                          the sender's identity, when the node is not it unchanged (store.SenderKey)
//
// # Streaming through a local spool
//
// A recorder's store (one opened with a SpoolDir) writes every recording to
// a spool file on local disk first; Sync means "spooled and fsync'd", which
// is what the recorder's acks promise. Background uploaders copy the spool
// to the bucket: while a recording is live, each time a part's worth of
// synced whole lines is spooled it is sent as one part of a multipart upload;
// when the recording is closed the rest is sent and the upload completed into
// one object. Small recordings go up in a single PUT when they end. Events
// are appended to a spool segment per node, which is uploaded as one object
// when it is a minute old or full.
//
// Uploads retry with exponential backoff for as long as it takes, so a
// bucket that is unreachable only delays them: sessions go on being acked
// from the spool. A restarted recorder finds what the spool still holds and
// resumes: closed recordings and event segments are uploaded, and Recover
// cuts recordings that were live at the crash at their last complete line,
// marks them interrupted and uploads them (resuming their multipart upload
// where the bucket still has it, restarting it where not).
//
// The spool has a size limit. Past SpoolWarn of it the store logs a warning;
// past 90% it refuses new recordings (store.ErrInsufficientSpace), and at
// the limit writes to running recordings fail, so that the recorder ends
// them with an error frame (fail-closed senders stop, fail-open ones go on
// unrecorded).
//
// A store opened without a SpoolDir is read-only: it lists and reads the
// bucket directly (ranged reads; nothing is downloaded to list), for
// reviewers' commands such as "reel ls" and "reel play". It sees recordings
// and events once they have landed in the bucket.
package s3store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"golang.org/x/sys/unix"

	"github.com/reel-rec/reel/internal/store"
)

var _ store.Store = (*Store)(nil)

// Addressing says how requests name the bucket.
type Addressing string

const (
	// AddressAuto uses virtual-host style where the endpoint is known to
	// support it (AWS, ...), path style elsewhere.
	AddressAuto Addressing = "auto"
	// AddressPath puts the bucket in the path: https://endpoint/bucket/key.
	AddressPath Addressing = "path"
	// AddressVirtual puts the bucket in the host name:
	// https://bucket.endpoint/key.
	AddressVirtual Addressing = "virtual"
)

// Defaults for Config fields left zero.
const (
	DefaultPartSize        = 8 << 20
	MinPartSize            = 5 << 20 // S3's smallest part but the last
	DefaultSpoolLimit      = 10 << 30
	DefaultSpoolWarn       = 0.8
	DefaultEventSegmentAge = time.Minute
	DefaultRetryMin        = 500 * time.Millisecond
	DefaultRetryMax        = 30 * time.Second
)

// createRefuseFraction is the spool fill past which Create refuses new
// recordings, leaving the rest for the ones already running.
const createRefuseFraction = 0.9

// Config configures a Store.
type Config struct {
	// Endpoint is the server's host[:port], without scheme.
	Endpoint string
	// Insecure talks plain HTTP instead of HTTPS (for a local test server).
	Insecure bool
	// Bucket holds the recordings.
	Bucket string
	// Prefix is put before every key ("recordings/"); a trailing slash is
	// added when missing.
	Prefix string
	// Region is the bucket's region; empty discovers it from the server.
	Region string
	// Addressing picks path-style or virtual-host requests; empty is auto.
	Addressing Addressing

	// AccessKey and SecretKey (and SessionToken for temporary
	// credentials), when set, are used as they are. When empty the usual
	// chain is tried: the AWS shared credentials file (AWS_PROFILE,
	// AWS_SHARED_CREDENTIALS_FILE) and then the instance's IAM role. With
	// none of these, requests are anonymous.
	AccessKey, SecretKey, SessionToken string
	// SendContentMD5 sends a Content-MD5 header with every upload, which
	// some servers (Cloudflare R2 with object lock) require.
	SendContentMD5 bool
	// CreateBucket creates the bucket when it does not exist.
	CreateBucket bool
	// Transport, if set, carries the HTTP requests (custom TLS roots,
	// proxies, tests).
	Transport http.RoundTripper

	// SpoolDir is the local directory live recordings and events are
	// spooled in; empty opens the store read-only. One process at a time
	// may use a spool.
	SpoolDir string
	// SpoolLimit is the most bytes the spool may hold (DefaultSpoolLimit
	// if zero).
	SpoolLimit int64
	// SpoolWarn is the fraction of SpoolLimit past which the store warns
	// (DefaultSpoolWarn if zero).
	SpoolWarn float64
	// MinFree is the free space, in bytes, below which the spool's file
	// system takes no new recordings; zero or negative disables the check.
	MinFree int64
	// PartSize is the size of a multipart upload's parts
	// (DefaultPartSize if zero; at least MinPartSize).
	PartSize int64
	// Uploaders is the number of uploads run at once; zero means one per
	// CPU, at least 2 and at most 16. Uploads cost the recorder CPU (and a
	// local S3 server more), so on a small machine fewer uploads keep the
	// acks fast; a distant bucket with a slow link per connection wants
	// more.
	Uploaders int
	// EventSegmentAge is how long an event segment stays open before it is
	// uploaded (DefaultEventSegmentAge if zero).
	EventSegmentAge time.Duration
	// RetryMin and RetryMax bound the backoff between failed attempts of
	// an upload (DefaultRetryMin, DefaultRetryMax if zero).
	RetryMin, RetryMax time.Duration

	// Log receives what the store does on its own: uploads that fail and
	// resume, where each recording landed, recovery, spool alarms. Nil
	// discards.
	Log *slog.Logger
	// Now is the clock (time.Now if nil).
	Now func() time.Time
}

// Store is a store.Store on an S3-compatible bucket. Create it with Open.
type Store struct {
	cfg    Config
	client *minio.Client
	core   minio.Core // reads, and everything but uploads
	up     minio.Core // uploads: no retries of its own (see newClient)
	prefix string
	log    *slog.Logger
	now    func() time.Time

	sp      *spool // nil when read-only
	senders senders

	stats struct {
		retries       atomic.Int64
		landed        atomic.Int64
		landedBytes   atomic.Int64
		failedUploads atomic.Int64 // recordings/segments currently failing
	}
	lastErr atomic.Pointer[string]

	closeOnce sync.Once
}

// Open connects to the bucket cfg names and, when cfg.SpoolDir is set, opens
// the spool and starts uploading what it holds. A bucket that cannot be
// reached is not an error for a store with a spool (uploads wait for it);
// a bucket that does not exist or refuses the credentials is.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	client, err := newClient(cfg, 2)
	if err != nil {
		return nil, err
	}
	upClient, err := newClient(cfg, 1)
	if err != nil {
		return nil, err
	}
	s := &Store{cfg: cfg, client: client, core: minio.Core{Client: client}, up: minio.Core{Client: upClient}, prefix: cfg.Prefix, log: cfg.Log, now: cfg.Now}
	if err := s.checkBucket(ctx); err != nil {
		return nil, err
	}
	if cfg.SpoolDir != "" {
		sp, err := openSpool(s)
		if err != nil {
			return nil, err
		}
		s.sp = sp
		sp.start()
	}
	return s, nil
}

func (c *Config) fill() error {
	if c.Endpoint == "" {
		return errors.New("s3store: no endpoint")
	}
	if c.Bucket == "" {
		return errors.New("s3store: no bucket (--bucket or TSRECORDER_BUCKET)")
	}
	if c.Prefix != "" {
		c.Prefix = strings.TrimPrefix(c.Prefix, "/")
		if !strings.HasSuffix(c.Prefix, "/") {
			c.Prefix += "/"
		}
	}
	switch c.Addressing {
	case "", AddressAuto, AddressPath, AddressVirtual:
	default:
		return fmt.Errorf("s3store: addressing %q: want auto, path or virtual", c.Addressing)
	}
	if c.SpoolLimit == 0 {
		c.SpoolLimit = DefaultSpoolLimit
	}
	if c.SpoolWarn <= 0 || c.SpoolWarn >= 1 {
		c.SpoolWarn = DefaultSpoolWarn
	}
	if c.PartSize == 0 {
		c.PartSize = DefaultPartSize
	}
	if c.PartSize < MinPartSize {
		return fmt.Errorf("s3store: part size %d is below S3's minimum of %d", c.PartSize, MinPartSize)
	}
	if c.Uploaders <= 0 {
		c.Uploaders = min(max(runtime.GOMAXPROCS(0), 2), 16)
	}
	if c.EventSegmentAge <= 0 {
		c.EventSegmentAge = DefaultEventSegmentAge
	}
	if c.RetryMin <= 0 {
		c.RetryMin = DefaultRetryMin
	}
	if c.RetryMax <= 0 {
		c.RetryMax = DefaultRetryMax
	}
	if c.RetryMax < c.RetryMin {
		c.RetryMax = c.RetryMin
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return nil
}

// newClient returns an S3 client that makes up to maxRetries attempts of
// a request. Uploads need 1: on a retry the client seeks the request body
// back while the HTTP transport may still be sending it from the failed
// attempt (a data race on the reader); the uploaders retry with their own
// backoff and a fresh reader instead. Requests without a body may retry.
func newClient(cfg Config, maxRetries int) (*minio.Client, error) {
	var creds *credentials.Credentials
	if cfg.AccessKey != "" || cfg.SecretKey != "" {
		creds = credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, cfg.SessionToken)
	} else {
		creds = credentials.NewChainCredentials([]credentials.Provider{
			&credentials.FileAWSCredentials{},
			&credentials.IAM{},
		})
	}
	lookup := minio.BucketLookupAuto
	switch cfg.Addressing {
	case AddressPath:
		lookup = minio.BucketLookupPath
	case AddressVirtual:
		lookup = minio.BucketLookupDNS
	}
	tr := cfg.Transport
	if tr == nil {
		t, err := minio.DefaultTransport(!cfg.Insecure)
		if err != nil {
			return nil, fmt.Errorf("s3store: %w", err)
		}
		t.DialContext = (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext
		t.ResponseHeaderTimeout = 2 * time.Minute
		t.MaxIdleConnsPerHost = 64
		tr = t
	}
	client, err := minio.New(cfg.Endpoint, &minio.Options{
		Creds:        creds,
		Secure:       !cfg.Insecure,
		Transport:    tr,
		Region:       cfg.Region,
		BucketLookup: lookup,
		MaxRetries:   maxRetries,
	})
	if err != nil {
		return nil, fmt.Errorf("s3store: endpoint %s: %w", cfg.Endpoint, err)
	}
	return client, nil
}

// checkBucket makes sure the bucket exists (creating it if asked). A
// network failure is only logged when the store has a spool.
func (s *Store) checkBucket(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	ok, err := s.client.BucketExists(ctx, s.cfg.Bucket)
	switch {
	case err == nil && ok:
		return nil
	case err == nil && s.cfg.CreateBucket:
		if err := s.client.MakeBucket(ctx, s.cfg.Bucket, minio.MakeBucketOptions{Region: s.cfg.Region}); err != nil {
			if code := minio.ToErrorResponse(err).Code; code != "BucketAlreadyOwnedByYou" && code != "BucketAlreadyExists" {
				return fmt.Errorf("s3store: create bucket %s: %w", s.cfg.Bucket, err)
			}
		}
		s.log.Info("created bucket", "bucket", s.cfg.Bucket, "endpoint", s.cfg.Endpoint)
		return nil
	case err == nil:
		return fmt.Errorf("s3store: bucket %s does not exist at %s", s.cfg.Bucket, s.cfg.Endpoint)
	}
	if resp := minio.ToErrorResponse(err); resp.Code != "" || s.cfg.SpoolDir == "" {
		return fmt.Errorf("s3store: bucket %s at %s: %w", s.cfg.Bucket, s.cfg.Endpoint, err)
	}
	s.log.Warn("bucket unreachable; recordings are spooled until it is back", "bucket", s.cfg.Bucket, "endpoint", s.cfg.Endpoint, "err", err)
	return nil
}

// Close stops the uploaders and closes the spool. What has not landed
// stays in the spool and is uploaded by the next Open; call Flush first to
// wait for it. Writers must be closed first.
func (s *Store) Close() error {
	var err error
	s.closeOnce.Do(func() {
		if s.sp != nil {
			err = s.sp.close(false)
		}
	})
	return err
}

// Flush seals the open event segments and waits until everything the spool
// holds, except live recordings, has landed in the bucket, retrying failed
// uploads at once. It returns ctx's error if that takes too long.
func (s *Store) Flush(ctx context.Context) error {
	if s.sp == nil {
		return nil
	}
	return s.sp.flush(ctx)
}

// Space reports the free and total bytes of the file system holding the
// spool, and the reserve (Config.MinFree) below which Create refuses new
// recordings. A read-only store has no spool and reports an error.
func (s *Store) Space() (free, total, reserve int64, err error) {
	if s.sp == nil {
		return 0, 0, 0, errReadOnly
	}
	var st unix.Statfs_t
	if err := unix.Statfs(s.sp.dir, &st); err != nil {
		return 0, 0, s.cfg.MinFree, fmt.Errorf("s3store: statfs %s: %w", s.sp.dir, err)
	}
	return int64(st.Bavail) * st.Bsize, int64(st.Blocks) * st.Bsize, max(s.cfg.MinFree, 0), nil
}

// Location describes where the store keeps recordings, for logs:
// "s3://endpoint/bucket/prefix".
func (s *Store) Location() string {
	scheme := "s3"
	if s.cfg.Insecure {
		scheme = "s3+http"
	}
	return scheme + "://" + s.cfg.Endpoint + "/" + s.cfg.Bucket + "/" + s.prefix
}

// ObjectURL returns the URL-like name of key's object, for logs.
func (s *Store) ObjectURL(key string) string { return s.Location() + key }

// objKey is the bucket key of a store key.
func (s *Store) objKey(key string) string { return s.prefix + key }

func statusKey(key string) string { return key + ".status" }

// Metrics are counters and gauges about the store, for monitoring.
type Metrics struct {
	SpoolBytes     int64  `json:"spool_bytes"`     // bytes the spool holds
	SpoolLimit     int64  `json:"spool_limit"`     // most it may hold
	LiveRecordings int    `json:"live_recordings"` // being written
	UploadsPending int    `json:"uploads_pending"` // recordings and event segments not yet landed (live ones included)
	UploadsFailing int    `json:"uploads_failing"` // of those, how many are waiting to retry
	Retries        int64  `json:"retries"`         // failed upload attempts since Open
	Landed         int64  `json:"landed"`          // objects completed since Open
	LandedBytes    int64  `json:"landed_bytes"`    // their bytes
	LastError      string `json:"last_error"`      // the last upload error, "" if none
	SpoolAlarm     bool   `json:"spool_alarm"`     // the spool is past its warning level
}

// Metrics returns the store's current metrics.
func (s *Store) Metrics() Metrics {
	m := Metrics{
		Retries:     s.stats.retries.Load(),
		Landed:      s.stats.landed.Load(),
		LandedBytes: s.stats.landedBytes.Load(),
	}
	if p := s.lastErr.Load(); p != nil {
		m.LastError = *p
	}
	if s.sp != nil {
		s.sp.metrics(&m)
	}
	return m
}

// ParseURL splits a --dst value "s3://host[:port][/bucket[/prefix]]" (TLS)
// or "s3+http://host:port[/bucket[/prefix]]" (plain HTTP) into endpoint,
// whether it is plain HTTP, and the bucket and prefix it names, if any.
func ParseURL(dst string) (endpoint string, insecure bool, bucket, prefix string, err error) {
	u, err := url.Parse(dst)
	if err != nil {
		return "", false, "", "", fmt.Errorf("s3store: %q: %w", dst, err)
	}
	switch u.Scheme {
	case "s3", "s3+https":
	case "s3+http":
		insecure = true
	default:
		return "", false, "", "", fmt.Errorf("s3store: %q: scheme must be s3:// or s3+http://", dst)
	}
	if u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return "", false, "", "", fmt.Errorf("s3store: %q: want s3://host[:port][/bucket[/prefix]]", dst)
	}
	p := strings.Trim(u.Path, "/")
	bucket, prefix, _ = strings.Cut(p, "/")
	return u.Host, insecure, bucket, strings.Trim(prefix, "/"), nil
}

// errCode is the S3 error code of err, "" if it is not an S3 error.
func errCode(err error) string { return minio.ToErrorResponse(err).Code }

func isNoSuchKey(err error) bool {
	c := errCode(err)
	return c == "NoSuchKey" || c == "NotFound"
}
