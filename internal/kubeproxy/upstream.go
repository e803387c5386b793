package kubeproxy

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/transport"
)

// Upstream is the API server the proxy forwards to.
type Upstream struct {
	// URL is the API server's base URL.
	URL *url.URL
	// Own carries requests with reel's own credentials: impersonated
	// requests, TokenReviews.
	Own http.RoundTripper
	// Anonymous carries requests with the API server's TLS settings but
	// no credentials: the user's own go with the request (pass-through).
	Anonymous http.RoundTripper
	// Source says where the configuration came from, for the log.
	Source string
}

// LoadUpstream reads the API server's address and reel's credentials:
// from the kubeconfig file (and its context, if given), or, with no file,
// from the pod's service account when running in a cluster, else from
// kubectl's default kubeconfig ($KUBECONFIG, ~/.kube/config).
//
// Both transports speak HTTP/1.1 only: SPDY and WebSocket upgrades cannot
// cross HTTP/2, and every request may be an upgrade.
func LoadUpstream(kubeconfig, context string) (*Upstream, error) {
	var cfg *rest.Config
	var err error
	source := kubeconfig
	switch {
	case kubeconfig == "" && context == "" && os.Getenv("KUBERNETES_SERVICE_HOST") != "":
		cfg, err = rest.InClusterConfig()
		source = "in-cluster service account"
	default:
		rules := clientcmd.NewDefaultClientConfigLoadingRules()
		rules.ExplicitPath = kubeconfig
		if kubeconfig == "" {
			source = "default kubeconfig"
		}
		cfg, err = clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: context}).ClientConfig()
	}
	if err != nil {
		return nil, fmt.Errorf("kube-proxy: upstream API server (%s): %w", source, err)
	}
	return NewUpstream(cfg, source)
}

// NewUpstream makes the transports for cfg.
func NewUpstream(cfg *rest.Config, source string) (*Upstream, error) {
	u, err := url.Parse(cfg.Host)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return nil, fmt.Errorf("kube-proxy: upstream API server address %q: want https://host[:port]", cfg.Host)
	}
	own, err := roundTripper(cfg)
	if err != nil {
		return nil, err
	}
	anon, err := roundTripper(rest.AnonymousClientConfig(cfg))
	if err != nil {
		return nil, err
	}
	return &Upstream{URL: u, Own: own, Anonymous: anon, Source: source}, nil
}

func roundTripper(cfg *rest.Config) (http.RoundTripper, error) {
	tc, err := cfg.TransportConfig()
	if err != nil {
		return nil, fmt.Errorf("kube-proxy: upstream transport: %w", err)
	}
	tlsConfig, err := transport.TLSConfigFor(tc)
	if err != nil {
		return nil, fmt.Errorf("kube-proxy: upstream TLS: %w", err)
	}
	if tlsConfig != nil {
		tlsConfig.NextProtos = []string{"http/1.1"}
		// Every exec, attach or port-forward takes a connection of its
		// own (an upgraded one is never reused): resuming the TLS session
		// spares each a full handshake.
		tlsConfig.ClientSessionCache = tls.NewLRUClientSessionCache(256)
	}
	base := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		TLSClientConfig:       tlsConfig,
		TLSHandshakeTimeout:   10 * time.Second,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       90 * time.Second,
		ExpectContinueTimeout: time.Second,
		// No HTTP/2: an empty map turns it off.
		TLSNextProto: map[string]func(string, *tls.Conn) http.RoundTripper{},
	}
	if cfg.Dial != nil {
		base.DialContext = cfg.Dial
	}
	rt, err := transport.HTTPWrappersForConfig(tc, base)
	if err != nil {
		return nil, fmt.Errorf("kube-proxy: upstream credentials: %w", err)
	}
	return rt, nil
}

var errNoUpstream = errors.New("kube-proxy: no upstream API server")
