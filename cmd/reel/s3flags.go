package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/reel-rec/reel/internal/store"
	"github.com/reel-rec/reel/internal/store/s3store"
)

// s3Flags are the flags for S3-compatible storage, used when --dst is
// s3://endpoint (TLS) or s3+http://host:port (plain HTTP). Values left
// empty come from the --dst URL's path (s3://endpoint/bucket/prefix) and
// then from the environment.
type s3Flags struct {
	bucket       string
	accessKey    string
	secretKey    string
	prefix       string
	region       string
	addressing   string
	spoolMax     string
	uploaders    int
	createBucket bool

	getenv func(string) string
}

// addS3Flags registers the S3 flags on fs. Commands that take --dst call
// it and pass the result as storeOptions.s3.
func addS3Flags(fs *flag.FlagSet, env *cmdEnv) *s3Flags {
	f := &s3Flags{getenv: env.getenv}
	fs.StringVar(&f.bucket, "bucket", "", "S3 bucket for recordings, with an s3:// --dst (env TSRECORDER_BUCKET)")
	fs.StringVar(&f.accessKey, "access-key", "", "S3 access key id (env AWS_ACCESS_KEY_ID; else the shared credentials file, then the instance role)")
	fs.StringVar(&f.secretKey, "secret-key", "", "S3 secret access key (env AWS_SECRET_ACCESS_KEY)")
	fs.StringVar(&f.prefix, "s3-prefix", "", "key prefix inside the bucket, e.g. recordings/")
	fs.StringVar(&f.region, "s3-region", "", "the bucket's region; empty asks the server (env AWS_REGION)")
	fs.StringVar(&f.addressing, "s3-addressing", "auto", "bucket addressing: auto, path (https://host/bucket/key) or virtual (https://bucket.host/key)")
	fs.StringVar(&f.spoolMax, "s3-spool-max", "10GiB", "most disk the local S3 spool (under --statedir) may use while uploads are behind")
	fs.IntVar(&f.uploaders, "s3-uploaders", 0, "uploads to run at once; 0 means one per CPU (2 to 16)")
	fs.BoolVar(&f.createBucket, "s3-create-bucket", false, "create the bucket if it does not exist")
	return f
}

// isS3 reports whether dst names S3 storage.
func isS3(dst string) bool {
	return strings.HasPrefix(dst, "s3://") || strings.HasPrefix(dst, "s3+http://") || strings.HasPrefix(dst, "s3+https://")
}

// openS3Store opens the S3 store opts names. A writer's store spools in
// <statedir>/s3-spool; a reader's (opts.readOnly) has no spool.
func openS3Store(opts storeOptions) (*s3store.Store, error) {
	f := opts.s3
	if f == nil {
		f = &s3Flags{addressing: "auto", spoolMax: "10GiB"}
	}
	getenv := opts.getenv
	if getenv == nil {
		getenv = f.getenv
	}
	if getenv == nil {
		getenv = os.Getenv
	}
	endpoint, insecure, urlBucket, urlPrefix, err := s3store.ParseURL(opts.dst)
	if err != nil {
		return nil, fmt.Errorf("--dst: %w", err)
	}
	cfg := s3store.Config{
		Endpoint:       endpoint,
		Insecure:       insecure,
		Bucket:         firstOf(f.bucket, urlBucket, getenv("TSRECORDER_BUCKET")),
		Prefix:         firstOf(f.prefix, urlPrefix),
		Region:         firstOf(f.region, getenv("AWS_REGION"), getenv("AWS_DEFAULT_REGION")),
		Addressing:     s3store.Addressing(f.addressing),
		AccessKey:      firstOf(f.accessKey, getenv("AWS_ACCESS_KEY_ID")),
		SecretKey:      firstOf(f.secretKey, getenv("AWS_SECRET_ACCESS_KEY")),
		SendContentMD5: getenv("S3_SEND_CONTENT_MD5") == "true",
		CreateBucket:   f.createBucket && !opts.readOnly,
		Uploaders:      f.uploaders,
		MinFree:        opts.minFree,
		Log:            opts.log,
	}
	if cfg.AccessKey != "" && f.accessKey == "" {
		cfg.SessionToken = getenv("AWS_SESSION_TOKEN")
	}
	if cfg.Bucket == "" {
		return nil, usagef("--dst %s needs a bucket: --bucket, TSRECORDER_BUCKET, or s3://endpoint/bucket", opts.dst)
	}
	if !opts.readOnly {
		if opts.stateDir == "" {
			return nil, usagef("--dst %s needs --statedir: live recordings are spooled there before they are uploaded", opts.dst)
		}
		cfg.SpoolDir = filepath.Join(opts.stateDir, "s3-spool")
		if cfg.SpoolLimit, err = parseBytes(f.spoolMax); err != nil || cfg.SpoolLimit <= 0 {
			return nil, usagef("--s3-spool-max %q: want a size such as 10GiB", f.spoolMax)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return s3store.Open(ctx, cfg)
}

func firstOf(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}

// drainStore gives an S3 store up to timeout to land what its spool holds
// before the recorder exits; what is left is uploaded at the next start.
// It does nothing for other stores.
func drainStore(st store.Store, timeout time.Duration, log *slog.Logger) {
	s3, ok := st.(*s3store.Store)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := s3.Flush(ctx); err != nil {
		m := s3.Metrics()
		log.Warn("uploads still pending at exit; they resume at the next start",
			"pending", m.UploadsPending, "spool_bytes", m.SpoolBytes, "err", err)
	}
}

// s3Metrics returns a function that writes the S3 store's metrics in
// Prometheus text format, or nil when st is not an S3 store.
func s3Metrics(st store.Store) func(io.Writer) {
	s3, ok := st.(*s3store.Store)
	if !ok {
		return nil
	}
	return func(w io.Writer) {
		m := s3.Metrics()
		alarm := 0
		if m.SpoolAlarm {
			alarm = 1
		}
		for _, g := range []struct {
			name, kind, help string
			v                any
		}{
			{"reel_s3_spool_bytes", "gauge", "Bytes the local S3 spool holds.", m.SpoolBytes},
			{"reel_s3_spool_limit_bytes", "gauge", "Most bytes the S3 spool may hold (--s3-spool-max).", m.SpoolLimit},
			{"reel_s3_spool_alarm", "gauge", "1 when the S3 spool is past its warning level (uploads are behind).", alarm},
			{"reel_s3_uploads_pending", "gauge", "Recordings and event segments not yet landed in the bucket, live ones included.", m.UploadsPending},
			{"reel_s3_uploads_failing", "gauge", "Uploads waiting to retry after a failure.", m.UploadsFailing},
			{"reel_s3_upload_retries_total", "counter", "Failed upload attempts.", m.Retries},
			{"reel_s3_objects_landed_total", "counter", "Recordings and event segments completed in the bucket.", m.Landed},
			{"reel_s3_landed_bytes_total", "counter", "Bytes of the objects completed in the bucket.", m.LandedBytes},
		} {
			fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n%s %v\n", g.name, g.help, g.name, g.kind, g.name, g.v)
		}
	}
}

// chainMetrics writes a's metrics, then b's; either may be nil.
func chainMetrics(a, b func(io.Writer)) func(io.Writer) {
	return func(w io.Writer) {
		for _, f := range []func(io.Writer){a, b} {
			if f != nil {
				f(w)
			}
		}
	}
}
