// Package s3test runs real S3-compatible servers (versitygw and MinIO) on
// loopback for tests, each with its own data directory.
//
// The servers are built once by scripts/install-s3-servers.sh (go install,
// cached by version). A test that needs one and does not find it is skipped
// on a laptop and fails when CI=true. Set REEL_S3_INSTALL=1 to let the test
// build a missing server itself (a few minutes each).
package s3test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/reel-rec/reel/internal/testutil"
)

// Versions of the servers; keep them in step with
// scripts/install-s3-servers.sh.
var versions = map[string]struct{ module, version string }{
	"versitygw": {"github.com/versity/versitygw/cmd/versitygw", "v1.8.0"},
	"minio":     {"github.com/minio/minio", "v0.0.0-20260212201848-7aac2a2c5b7c"},
}

// Names are the servers this package can run.
var Names = []string{"versitygw", "minio"}

// cacheDir is where scripts/install-s3-servers.sh puts the binaries.
func cacheDir() (string, error) {
	if d := os.Getenv("REEL_S3_SERVERS_DIR"); d != "" {
		return d, nil
	}
	out, err := exec.Command("go", "env", "GOPATH").Output()
	if err != nil {
		return "", fmt.Errorf("s3test: go env GOPATH: %w", err)
	}
	gopath := strings.TrimSpace(string(out))
	if i := strings.IndexByte(gopath, os.PathListSeparator); i >= 0 {
		gopath = gopath[:i]
	}
	return filepath.Join(gopath, "reel-s3-servers"), nil
}

var installMu sync.Mutex

// Binary returns the path of server name's binary, building it first when
// REEL_S3_INSTALL=1 and it is missing.
func Binary(name string) (string, error) {
	v, ok := versions[name]
	if !ok {
		return "", fmt.Errorf("s3test: unknown server %q", name)
	}
	dir, err := cacheDir()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, name+"@"+v.version, name)
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	if os.Getenv("REEL_S3_INSTALL") != "1" {
		return "", fmt.Errorf("s3test: %s not found at %s: run scripts/install-s3-servers.sh (or set REEL_S3_INSTALL=1)", name, bin)
	}
	installMu.Lock()
	defer installMu.Unlock()
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	tmp, err := os.MkdirTemp(dir, ".build.")
	if err != nil {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return "", err
		}
		if tmp, err = os.MkdirTemp(dir, ".build."); err != nil {
			return "", err
		}
	}
	defer os.RemoveAll(tmp)
	cmd := exec.Command("go", "install", v.module+"@"+v.version)
	cmd.Env = append(os.Environ(), "GOBIN="+tmp, "GOFLAGS=-buildvcs=false")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("s3test: go install %s@%s: %w\n%s", v.module, v.version, err, out)
	}
	if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
		return "", err
	}
	return bin, os.Rename(filepath.Join(tmp, name), bin)
}

// Require returns server name's binary, or skips the test (fails it when
// CI=true) when the server is not installed.
func Require(t testing.TB, name string) string {
	t.Helper()
	bin, err := Binary(name)
	if err != nil {
		testutil.SkipOrFail(t, "%v", err)
	}
	return bin
}

// Server is one running S3 server.
type Server struct {
	Name      string // "versitygw" or "minio"
	Addr      string // host:port on loopback
	AccessKey string
	SecretKey string
	Dir       string // its data directory

	bin  string
	logf func(format string, args ...any)
	cmd  *exec.Cmd
	done chan struct{}
	log  *os.File
}

// Start runs server name on a free loopback port with a fresh data
// directory and waits until it answers. It is stopped when the test ends.
func Start(t testing.TB, name string) *Server {
	t.Helper()
	bin := Require(t, name)
	s := &Server{
		Name:      name,
		AccessKey: "reeltestaccess",
		SecretKey: "reeltestsecret-0123456789",
		Dir:       t.TempDir(),
		bin:       bin,
		logf:      t.Logf,
	}
	var err error
	for range 5 { // the port is free when picked; retry if another took it
		if s.Addr, err = freePort(); err != nil {
			break
		}
		if err = s.start(); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("s3test: start %s: %v", name, err)
	}
	t.Cleanup(s.Stop)
	return s
}

// Endpoint is the server's URL, "http://127.0.0.1:P".
func (s *Server) Endpoint() string { return "http://" + s.Addr }

// Client returns an S3 client of the test's own on the server: a view of
// its buckets independent of the code under test.
func (s *Server) Client(t testing.TB) *minio.Client {
	t.Helper()
	c, err := minio.New(s.Addr, &minio.Options{Creds: credentials.NewStaticV4(s.AccessKey, s.SecretKey, "")})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Uploads lists bucket's multipart uploads in progress, with Size set to
// the bytes of the parts uploaded so far.
func Uploads(ctx context.Context, c *minio.Client, bucket string) ([]minio.ObjectMultipartInfo, error) {
	var out []minio.ObjectMultipartInfo
	for u := range c.ListIncompleteUploads(ctx, bucket, "", true) {
		if u.Err != nil {
			return nil, fmt.Errorf("list uploads: %w", u.Err)
		}
		// The listing does not add up the parts: do it here.
		parts, err := minio.Core{Client: c}.ListObjectParts(ctx, bucket, u.Key, u.UploadID, 0, 1000)
		if err != nil {
			return nil, fmt.Errorf("list parts of %s: %w", u.Key, err)
		}
		u.Size = 0
		for _, p := range parts.ObjectParts {
			u.Size += p.Size
		}
		out = append(out, u)
	}
	return out, nil
}

func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func (s *Server) start() error {
	data := filepath.Join(s.Dir, "data")
	if err := os.MkdirAll(data, 0o755); err != nil {
		return err
	}
	var cmd *exec.Cmd
	switch s.Name {
	case "versitygw":
		cmd = exec.Command(s.bin, "--access", s.AccessKey, "--secret", s.SecretKey, "--port", s.Addr, "posix", data)
		cmd.Env = append(cleanEnv(), "VGW_QUIET=true")
	case "minio":
		console, err := freePort()
		if err != nil {
			return err
		}
		cmd = exec.Command(s.bin, "server", data, "--quiet", "--address", s.Addr, "--console-address", console)
		cmd.Env = append(cleanEnv(),
			"MINIO_ROOT_USER="+s.AccessKey, "MINIO_ROOT_PASSWORD="+s.SecretKey,
			"MINIO_UPDATE=off", "MINIO_BROWSER=off", "MINIO_CI_CD=1")
	default:
		return fmt.Errorf("unknown server %q", s.Name)
	}
	logFile, err := os.OpenFile(filepath.Join(s.Dir, "server.log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return err
	}
	s.cmd, s.log, s.done = cmd, logFile, make(chan struct{})
	go func(done chan struct{}) { cmd.Wait(); close(done) }(s.done)
	if err := s.waitReady(testutil.DefaultWait); err != nil {
		s.Stop()
		return fmt.Errorf("%w; log:\n%s", err, s.Log())
	}
	return nil
}

// waitReady polls until the server answers HTTP on its address.
func (s *Server) waitReady(limit time.Duration) error {
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{Proxy: nil}}
	defer client.CloseIdleConnections()
	var last error
	exited := false
	err := testutil.Poll(limit, func() bool {
		select {
		case <-s.done:
			exited = true
			return true
		default:
		}
		// An anonymous ListBuckets: refused (403) once the server is up,
		// 503 while it initialises.
		resp, err := client.Get(s.Endpoint() + "/")
		if err != nil {
			last = err
			return false
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		last = fmt.Errorf("%s", resp.Status)
		return resp.StatusCode != http.StatusServiceUnavailable
	})
	switch {
	case exited:
		return errors.New("server exited")
	case err != nil:
		return fmt.Errorf("not ready: %w: %v", err, last)
	}
	return nil
}

// Stop kills the server and waits for it to exit; its data stays. It is
// safe to call more than once.
func (s *Server) Stop() {
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Kill()
	<-s.done
	s.log.Close()
	s.cmd = nil
}

// Restart starts a stopped server again on the same address and data.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	var err error
	// The old socket may linger a moment: try until it starts.
	if testutil.Poll(testutil.DefaultWait, func() bool { err = s.start(); return err == nil }) != nil {
		t.Fatalf("s3test: restart %s: %v", s.Name, err)
	}
}

// Log returns what the server printed.
func (s *Server) Log() string {
	b, _ := os.ReadFile(filepath.Join(s.Dir, "server.log"))
	return string(b)
}

// cleanEnv is the environment without proxies and AWS settings that would
// change how the servers behave.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch {
		case strings.HasPrefix(strings.ToUpper(k), "AWS_"), strings.HasPrefix(k, "MINIO_"), strings.HasPrefix(k, "VGW_"),
			strings.EqualFold(k, "HTTP_PROXY"), strings.EqualFold(k, "HTTPS_PROXY"), strings.EqualFold(k, "ALL_PROXY"):
			continue
		}
		env = append(env, kv)
	}
	return env
}
