package tailnet

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"
)

// listener marks the connections it accepts as tailnet connections: their
// LocalAddr is an Addr. net/http puts a connection's LocalAddr in every
// request's context, which is how Via tells them apart.
type listener struct {
	net.Listener
}

func (l *listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &conn{Conn: c}, nil
}

func (l *listener) Addr() net.Addr { return Addr{l.Listener.Addr()} }

type conn struct {
	net.Conn
}

func (c *conn) LocalAddr() net.Addr { return Addr{c.Conn.LocalAddr()} }

// Addr is the local address of a connection accepted on the tailnet.
type Addr struct {
	net.Addr
}

// Via reports whether r came in through a tailnet listener (Node.Listen or
// ListenTLS) rather than a plain one.
func Via(r *http.Request) bool {
	_, ok := r.Context().Value(http.LocalAddrContextKey).(Addr)
	return ok
}

// WhoIsTimeout bounds one WhoIs lookup made by Identify.
const WhoIsTimeout = 10 * time.Second

// ErrNotTailnet is Identify's answer for a request that did not come
// through the tailnet when there is no fallback.
var ErrNotTailnet = errors.New("tailnet: the request did not come over the tailnet")

// Identify returns a function for recorder.Server.Identify: a request that
// came over the tailnet is named by its sender's stable node ID, from WhoIs,
// which is where tsrecorder files its recordings; a WhoIs failure refuses
// it. Any other request goes to fallback (the plain listener's rules), or is
// refused when fallback is nil.
func Identify(n Node, fallback func(*http.Request) (string, error)) func(*http.Request) (string, error) {
	return func(r *http.Request) (string, error) {
		if !Via(r) {
			if fallback == nil {
				return "", ErrNotTailnet
			}
			return fallback(r)
		}
		ctx, cancel := context.WithTimeout(r.Context(), WhoIsTimeout)
		defer cancel()
		id, err := n.WhoIs(ctx, r.RemoteAddr)
		if err != nil {
			return "", err
		}
		if id.NodeID == "" {
			return "", fmt.Errorf("tailnet: peer %s has no node ID", r.RemoteAddr)
		}
		return id.NodeID, nil
	}
}
