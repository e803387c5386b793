package main

import (
	"context"
	"flag"
	"fmt"
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
	secretFile   string
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
	fs.StringVar(&f.secretFile, "secret-key-file", "", "file holding the S3 secret access key (else env AWS_SECRET_ACCESS_KEY); the secret is never taken from the command line, where every user of the machine can read it")
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
		SecretKey:      getenv("AWS_SECRET_ACCESS_KEY"),
		SendContentMD5: getenv("S3_SEND_CONTENT_MD5") == "true",
		CreateBucket:   f.createBucket && !opts.readOnly,
		Uploaders:      f.uploaders,
		MinFree:        opts.minFree,
		Log:            opts.log,
	}
	if cfg.AccessKey != "" && f.accessKey == "" {
		cfg.SessionToken = getenv("AWS_SESSION_TOKEN")
	}
	if f.secretFile != "" {
		b, err := os.ReadFile(f.secretFile)
		if err != nil {
			return nil, fmt.Errorf("--secret-key-file: %w", err)
		}
		if cfg.SecretKey = strings.TrimSpace(string(b)); cfg.SecretKey == "" {
			return nil, fmt.Errorf("--secret-key-file %s is empty", f.secretFile)
		}
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

// refuseSecretOnArgv fails when args hold --secret-key: a secret on the
// command line is visible to every user of the machine (ps, /proc).
func refuseSecretOnArgv(args []string) error {
	for _, a := range args {
		if a == "--" {
			break
		}
		name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if strings.HasPrefix(a, "-") && name == "secret-key" {
			return usagef("--secret-key is not accepted: every user of the machine can read the command line; put the secret in AWS_SECRET_ACCESS_KEY or in a file named by --secret-key-file")
		}
	}
	return nil
}

// flusher is implemented by stores that land data in the background
// (s3store): Flush waits until what they hold has landed, or ctx ends.
type flusher interface {
	Flush(ctx context.Context) error
}

// drainStore gives a store that lands data in the background up to timeout
// to land it before the recorder exits; what is left goes at the next
// start.
func drainStore(st store.Store, timeout time.Duration, log *slog.Logger) {
	f, ok := st.(flusher)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := f.Flush(ctx); err != nil {
		log.Warn("uploads still pending at exit; they resume at the next start", "err", err)
	}
}
