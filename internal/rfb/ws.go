package rfb

import (
	"context"
	"errors"
	"net"
	"net/http"
	"time"

	"github.com/coder/websocket"
)

// ServeWebSocket accepts RFB over WebSocket (binary messages), as noVNC
// speaks it, on ln until Shutdown. The listener is served with TLS from
// TLSConfig (wss://); inside it users authenticate with VeNCrypt Plain.
func (s *Server) ServeWebSocket(ln net.Listener) error {
	if s.TLSConfig == nil || s.Auth == nil || s.Policy == nil || s.Upstream == "" {
		return errors.New("rfb: Server needs Upstream, TLSConfig, Auth and Policy")
	}
	hs := &http.Server{
		Handler:           http.HandlerFunc(s.serveWS),
		TLSConfig:         s.TLSConfig.Clone(),
		ReadHeaderTimeout: 10 * time.Second,
	}
	hs.TLSConfig.NextProtos = []string{"http/1.1"}
	if !s.track(wsListener{ln, hs}, nil, true) {
		ln.Close()
		return ErrServerClosed
	}
	defer s.track(wsListener{ln, hs}, nil, false)
	err := hs.ServeTLS(ln, "", "")
	if errors.Is(err, http.ErrServerClosed) {
		return ErrServerClosed
	}
	return err
}

// wsListener closes the HTTP server when the Server closes its listeners.
type wsListener struct {
	net.Listener
	hs *http.Server
}

func (l wsListener) Close() error {
	return l.hs.Close()
}

func (s *Server) serveWS(w http.ResponseWriter, r *http.Request) {
	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{OriginPatterns: s.WebSocketOrigins})
	if err != nil {
		s.log().Warn("vnc: websocket", "remote", r.RemoteAddr, "err", err)
		return
	}
	// The session outlives the request's context, which ends when this
	// handler returns; the connection is closed by the session.
	nc := websocket.NetConn(context.Background(), c, websocket.MessageBinary)
	if !s.track(nil, nc, true) {
		nc.Close()
		return
	}
	s.wg.Add(1)
	defer s.wg.Done()
	defer s.track(nil, nc, false)
	defer nc.Close()
	s.session(nc, listenMode{ws: true})
}
