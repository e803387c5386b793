// Package tailnettest runs a whole tailnet's infrastructure in process, on
// loopback, for tests and benchmarks: Tailscale's own test control server
// (tailscale.com/tstest/integration/testcontrol), a DERP relay and a STUN
// server. Nodes (reel's tsnet node, real tailscaled, Tailscale's Kubernetes
// API proxy) join it with its URL as their control server; nothing reaches
// Tailscale's services.
//
// Nodes started against it should run with TS_DISABLE_PORTMAPPER=1 and
// TS_DEBUG_OMIT_LOCAL_ADDRS=1 (SetNodeEnv), else they probe the default
// gateway and advertise their LAN addresses.
package tailnettest

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"

	"tailscale.com/derp/derpserver"
	"tailscale.com/net/stunserver"
	"tailscale.com/tailcfg"
	"tailscale.com/tstest/integration/testcontrol"
	"tailscale.com/types/key"
	"tailscale.com/types/logger"
)

// NodeEnv is the environment nodes need to stay on loopback: no port
// mapping (UPnP, NAT-PMP, PCP probes of the gateway) and no local LAN
// addresses advertised as endpoints.
var NodeEnv = []string{"TS_DISABLE_PORTMAPPER=1", "TS_DEBUG_OMIT_LOCAL_ADDRS=1"}

// SetNodeEnv sets NodeEnv in this process's environment, for in-process
// (tsnet) nodes, which read it at start.
func SetNodeEnv() error {
	for _, kv := range NodeEnv {
		k, v, _ := strings.Cut(kv, "=")
		if err := os.Setenv(k, v); err != nil {
			return err
		}
	}
	return nil
}

// Control is a running control server with its DERP and STUN servers.
type Control struct {
	// URL is the control server's URL: a node's ControlURL / --login-server.
	URL string
	// Server is Tailscale's test control server: set SSH policy, app
	// capabilities, look nodes up.
	Server *testcontrol.Server
	// DERPMap is the map the control server hands out (one region, on
	// loopback).
	DERPMap *tailcfg.DERPMap

	derp    *derpserver.Server
	derpSrv *httptest.Server
	ctlSrv  *httptest.Server
	cancel  context.CancelFunc
	stunErr chan error
}

// Start starts DERP, STUN and the control server on 127.0.0.1. logf
// receives the control server's log (nil discards); configure, if given,
// sets the control server's fields before it serves. Call Close when done.
func Start(logf logger.Logf, configure ...func(*testcontrol.Server)) (*Control, error) {
	if logf == nil {
		logf = logger.Discard
	}
	c := &Control{stunErr: make(chan error, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel

	stun := stunserver.New(ctx)
	if err := stun.Listen("127.0.0.1:0"); err != nil {
		cancel()
		return nil, fmt.Errorf("tailnettest: STUN: %w", err)
	}
	go func() { c.stunErr <- stun.Serve() }()
	stunPort := stun.LocalAddr().(*net.UDPAddr).Port

	c.derp = derpserver.New(key.NewNode(), logger.Discard)
	c.derpSrv = httptest.NewUnstartedServer(derpserver.Handler(c.derp))
	c.derpSrv.Config.ErrorLog = logger.StdLogger(logger.Discard)
	c.derpSrv.Config.TLSNextProto = map[string]func(*http.Server, *tls.Conn, http.Handler){}
	c.derpSrv.StartTLS()
	derpPort := c.derpSrv.Listener.Addr().(*net.TCPAddr).Port

	c.DERPMap = &tailcfg.DERPMap{
		Regions: map[int]*tailcfg.DERPRegion{
			1: {
				RegionID:   1,
				RegionCode: "test",
				Nodes: []*tailcfg.DERPNode{{
					Name:             "t1",
					RegionID:         1,
					HostName:         "127.0.0.1",
					IPv4:             "127.0.0.1",
					IPv6:             "none",
					STUNPort:         stunPort,
					DERPPort:         derpPort,
					InsecureForTests: true,
					STUNTestIP:       "127.0.0.1",
				}},
			},
		},
	}
	c.Server = &testcontrol.Server{
		Logf:    logf,
		DERPMap: c.DERPMap,
		DNSConfig: &tailcfg.DNSConfig{
			Proxied: true,
		},
		MagicDNSDomain: "tail-scale.ts.net",
	}
	for _, f := range configure {
		f(c.Server)
	}
	c.ctlSrv = httptest.NewUnstartedServer(c.Server)
	c.Server.HTTPTestServer = c.ctlSrv
	c.ctlSrv.Start()
	c.URL = c.ctlSrv.URL
	return c, nil
}

// Close stops the servers.
func (c *Control) Close() error {
	c.ctlSrv.CloseClientConnections()
	c.ctlSrv.Close()
	c.derpSrv.CloseClientConnections()
	c.derpSrv.Close()
	derr := c.derp.Close()
	c.cancel()
	serr := <-c.stunErr
	return errors.Join(derr, serr)
}

// NodeByName returns the control server's record of the node whose
// hostname is name, or nil.
func (c *Control) NodeByName(name string) *tailcfg.Node {
	for _, n := range c.Server.AllNodes() {
		if n.Hostinfo.Valid() && n.Hostinfo.Hostname() == name {
			return n
		}
	}
	return nil
}
