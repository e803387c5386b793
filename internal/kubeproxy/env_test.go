package kubeproxy_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
	"k8s.io/client-go/rest"

	"github.com/reel-rec/reel/internal/asciicast"
	"github.com/reel-rec/reel/internal/kubeproxy"
	"github.com/reel-rec/reel/internal/kubetest"
	"github.com/reel-rec/reel/internal/policy"
	"github.com/reel-rec/reel/internal/recorder"
	"github.com/reel-rec/reel/internal/sender"
	"github.com/reel-rec/reel/internal/store"
	"github.com/reel-rec/reel/internal/store/memstore"
	"github.com/reel-rec/reel/internal/testutil"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// Tokens the test API server knows.
const (
	saToken    = "reel-sa-token"
	aliceToken = "alice-token"
	bobToken   = "bob-token"
	saName     = "system:serviceaccount:reel:kube-proxy"
)

// realRecorder is reel's recorder in process, behind a cuttable proxy.
type realRecorder struct {
	addr  netip.AddrPort // through the proxy
	store *memstore.Store
	cut   func()
}

func startRecorder(t *testing.T) *realRecorder {
	t.Helper()
	st := memstore.New(memstore.Options{})
	srv := &recorder.Server{Store: st, AckInterval: 50 * time.Millisecond}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); srv.Serve(ln) }()
	p := testutil.StartProxy(t, ln.Addr().String())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		<-done
		st.Close()
	})
	return &realRecorder{addr: p.Addr, store: st, cut: p.Cut}
}

// cast is one stored recording.
type cast struct {
	key    string
	status store.Status
	raw    []byte
	header asciicast.Header
	events []asciicast.Event
}

func (rr *realRecorder) casts(t *testing.T) []cast {
	t.Helper()
	ctx := context.Background()
	var out []cast
	for info, err := range rr.store.List(ctx, store.Filter{}) {
		if err != nil {
			t.Fatal(err)
		}
		rd, err := rr.store.Open(ctx, info.Key)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rd)
		rd.Close()
		if err != nil {
			t.Fatal(err)
		}
		c := cast{key: info.Key, status: info.Status, raw: b}
		c.header, c.events, err = parseCast(b)
		// A live recording may end mid-line or before its header line
		// (the file exists before the header is written): waitCasts
		// waits for it to finish. A finished one must parse whole.
		if err != nil && info.Status != store.StatusLive {
			t.Fatalf("%s (%s): %v\n%s", info.Key, info.Status, err, b)
		}
		out = append(out, c)
	}
	return out
}

// parseCast decodes a whole recording.
func parseCast(b []byte) (asciicast.Header, []asciicast.Event, error) {
	dec := asciicast.NewDecoder(bytes.NewReader(b))
	h, err := dec.Header()
	if err != nil {
		return h, nil, fmt.Errorf("header: %w", err)
	}
	var events []asciicast.Event
	for {
		ev, err := dec.Next()
		if err == io.EOF {
			return h, events, nil
		}
		if err != nil {
			return h, events, err
		}
		events = append(events, ev)
	}
}

// waitCasts waits until n recordings are stored and complete.
func (rr *realRecorder) waitCasts(t *testing.T, n int) []cast {
	t.Helper()
	var got []cast
	testutil.WaitForSeen(t, testutil.DefaultWait, fmt.Sprintf("%d complete recordings", n), func() bool {
		got = rr.casts(t)
		if len(got) != n {
			return false
		}
		for _, c := range got {
			if c.status != store.StatusComplete {
				return false
			}
		}
		return true
	}, func() string { return fmt.Sprint(len(got), " recordings") })
	return got
}

// events returns the stored events, decoded.
func (rr *realRecorder) events(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	for ev, err := range rr.store.ListEvents(context.Background(), "127.0.0.1", time.Time{}, time.Time{}) {
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(ev.Data, &m); err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

// output joins the output of a cast: "o" data and decoded "b" data.
func (c cast) output(t *testing.T) string {
	var b strings.Builder
	for _, e := range c.events {
		switch e.Code {
		case "o":
			b.WriteString(e.Data)
		case "b":
			raw, err := base64Decode(e.Data)
			if err != nil {
				t.Fatalf("b event: %v", err)
			}
			b.Write(raw)
		}
	}
	return b.String()
}

// env is a test API server, reel kube-proxy in front of it, recorders.
type env struct {
	t       *testing.T
	kube    *kubetest.Server
	proxy   *kubeproxy.Server
	url     string
	ca      []byte
	pol     atomic.Pointer[policy.Policy]
	kubectl string
	dir     string
	logs    *testutil.Buffer
}

type envOptions struct {
	mode       kubeproxy.Mode
	clientCA   []byte        // impersonation: users' client certificates
	bufferSize int           // the sender's buffer; 0 for its default
	roomWait   time.Duration // the sender's RoomWait; 0 for its default
}

func newEnv(t *testing.T, o envOptions) *env {
	t.Helper()
	kubectl := testutil.NeedTool(t, "kubectl")
	e := &env{t: t, kubectl: kubectl, dir: t.TempDir(), logs: new(testutil.Buffer)}
	e.kube = &kubetest.Server{
		Users: map[string]kubetest.User{
			saToken:    {Name: saName},
			aliceToken: {Name: "alice", UID: "u-alice", Groups: []string{"sre"}},
			bobToken:   {Name: "bob", Groups: []string{"dev"}},
		},
		Impersonators: []string{saName},
		Dir:           e.dir,
	}
	hs := httptest.NewServer(e.kube.Handler())
	t.Cleanup(hs.Close)
	e.kube.URL = hs.URL

	up, err := kubeproxy.NewUpstream(&rest.Config{Host: hs.URL, BearerToken: saToken}, "test")
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := kubeproxy.SelfSigned([]string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	e.ca = certPEM
	tlsCfg := &tls.Config{Certificates: []tls.Certificate{cert}}
	if o.clientCA != nil {
		tlsCfg.ClientCAs = certPool(t, o.clientCA)
		tlsCfg.ClientAuth = tls.VerifyClientCertIfGiven
	}
	e.proxy = &kubeproxy.Server{
		Upstream:      up,
		Mode:          o.mode,
		Policy:        e.pol.Load,
		TLSConfig:     tlsCfg,
		Hostname:      "kp-test",
		Recording:     &sender.Client{AttemptTimeout: 5 * time.Second, BufferSize: o.bufferSize, RoomWait: o.roomWait},
		FinishTimeout: 10 * time.Second,
		Log:           slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.url = "https://" + ln.Addr().String()
	done := make(chan struct{})
	go func() { defer close(done); e.proxy.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		e.proxy.Shutdown(ctx)
		<-done
		if t.Failed() {
			t.Logf("kube-proxy log:\n%s", e.logs.String())
		}
	})
	return e
}

// setPolicy parses src, with RECORDER replaced by the recorder addresses.
func (e *env) setPolicy(src string, recorders ...netip.AddrPort) {
	e.t.Helper()
	var q []string
	for _, r := range recorders {
		q = append(q, fmt.Sprintf("%q", r.String()))
	}
	src = strings.ReplaceAll(src, "RECORDERS", "["+strings.Join(q, ", ")+"]")
	p, err := policy.Parse("test.hujson", []byte(src))
	if err != nil {
		e.t.Fatal(err)
	}
	e.pol.Store(p)
}

// kubeconfig writes a kubeconfig for user u.
func (e *env) kubeconfig(u kubeproxy.KubeconfigUser) string {
	e.t.Helper()
	b, err := kubeproxy.Kubeconfig(e.url, e.ca, u, "default")
	if err != nil {
		e.t.Fatal(err)
	}
	dir := e.t.TempDir()
	p := filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		e.t.Fatal(err)
	}
	return p
}

// run runs kubectl with kubeconfig; output has kubectl's klog noise
// removed.
func (e *env) run(kubeconfig string, o kubetest.Options, args ...string) (string, error) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := kubetest.Kubectl(ctx, e.kubectl, kubeconfig, o, args...)
	return kubectlNoise.ReplaceAllString(out, ""), err
}

// kubectlNoise matches kubectl's own klog lines (see internal/kubetest).
var kubectlNoise = regexp.MustCompile(`(?m)^[IWEF]\d{4} \d\d:\d\d:\d\d\.\d+ +\d+ [\w.-]+:\d+\] .*\r?\n`)
