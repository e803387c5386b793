package web

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/reel-rec/reel/internal/asciicast"
	"github.com/reel-rec/reel/internal/index"
	"github.com/reel-rec/reel/internal/store"
	"github.com/reel-rec/reel/internal/vt"
)

// The live view: a recording in progress is streamed to the player over a
// WebSocket in asciinema's ALiS v1 protocol (the player's "v1.alis"
// subprotocol). One room per watched recording reads the store as it
// grows (woken by the recorder's notifications, or every second without
// them), feeds a terminal emulator and fans frames out to its viewers. A
// viewer who joins late first gets a reset frame whose init is the
// emulator's ANSI dump: the current screen at once.

const (
	aliSubprotocol = "v1.alis"
	livePoll       = time.Second
	liveQueue      = 512 // frames a slow viewer may fall behind before it is dropped (it reconnects to a fresh snapshot)
)

type liveHub struct {
	st  store.Store
	log *slog.Logger

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu    sync.Mutex
	rooms map[string]*room
}

func newLiveHub(st store.Store, log *slog.Logger) *liveHub {
	h := &liveHub{st: st, log: log, rooms: map[string]*room{}}
	h.ctx, h.cancel = context.WithCancel(context.Background())
	return h
}

func (h *liveHub) close() {
	h.cancel()
	h.wg.Wait()
}

// changed wakes the room of key, if anyone watches it.
func (h *liveHub) changed(key string, size int64, status store.Status) {
	h.mu.Lock()
	rm := h.rooms[key]
	h.mu.Unlock()
	if rm != nil {
		select {
		case rm.wake <- struct{}{}:
		default:
		}
	}
}

// room is one live recording being watched.
type room struct {
	key  string
	wake chan struct{}

	waiting int // viewers between join and subs; guarded by liveHub.mu

	mu      sync.Mutex
	ready   chan struct{} // closed after the first read
	subs    map[*viewerConn]struct{}
	term    *vt.Terminal
	kube    bool
	header  bool
	last    float64 // the time of the last event fed, seconds
	off     int64   // bytes consumed (whole lines)
	carry   []byte  // an incomplete last line
	ended   bool
	endWhy  string
	readErr error
}

type viewerConn struct {
	frames chan []byte
	gone   chan struct{} // closed when the room drops this viewer
}

// join adds a viewer to key's room, starting the room if needed, and
// returns the frames to send first (the magic string and a reset frame
// with the current screen) and the viewer.
func (h *liveHub) join(ctx context.Context, key string) (*room, *viewerConn, [][]byte, error) {
	h.mu.Lock()
	if h.ctx.Err() != nil {
		h.mu.Unlock()
		return nil, nil, nil, errors.New("shutting down")
	}
	rm := h.rooms[key]
	if rm == nil {
		rm = &room{key: key, wake: make(chan struct{}, 1), ready: make(chan struct{}), subs: map[*viewerConn]struct{}{}}
		h.rooms[key] = rm
		h.wg.Add(1)
		go h.run(rm)
	}
	rm.waiting++
	vc := &viewerConn{frames: make(chan []byte, liveQueue), gone: make(chan struct{})}
	h.mu.Unlock()

	select {
	case <-rm.ready:
	case <-ctx.Done():
		h.mu.Lock()
		rm.waiting--
		h.mu.Unlock()
		return nil, nil, nil, ctx.Err()
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	rm.mu.Lock()
	defer rm.mu.Unlock()
	rm.waiting--
	if rm.readErr != nil {
		return nil, nil, nil, rm.readErr
	}
	first := [][]byte{[]byte("ALiS\x01"), rm.resetFrame()}
	if rm.ended || rm.subs == nil {
		return rm, nil, first, nil
	}
	rm.subs[vc] = struct{}{}
	return rm, vc, first, nil
}

// leave removes a viewer.
func (h *liveHub) leave(rm *room, vc *viewerConn) {
	rm.mu.Lock()
	delete(rm.subs, vc)
	rm.mu.Unlock()
}

// run reads the recording as it grows until it ends or nobody watches.
func (h *liveHub) run(rm *room) {
	defer h.wg.Done()
	t := time.NewTicker(livePoll)
	defer t.Stop()
	first := true
	for {
		h.poll(rm)
		if first {
			close(rm.ready)
			first = false
		}
		rm.mu.Lock()
		done := rm.ended || rm.readErr != nil
		empty := len(rm.subs) == 0
		rm.mu.Unlock()
		if done || empty {
			h.mu.Lock()
			rm.mu.Lock()
			// A viewer may have joined since: it holds the room only
			// once it is in subs, under rm.mu.
			if (rm.ended || rm.readErr != nil || (len(rm.subs) == 0 && rm.waiting == 0)) && h.rooms[rm.key] == rm {
				delete(h.rooms, rm.key)
				for vc := range rm.subs {
					close(vc.gone)
				}
				rm.subs = nil
				rm.mu.Unlock()
				h.mu.Unlock()
				return
			}
			rm.mu.Unlock()
			h.mu.Unlock()
		}
		select {
		case <-h.ctx.Done():
			rm.mu.Lock()
			for vc := range rm.subs {
				close(vc.gone)
			}
			rm.subs = nil
			rm.mu.Unlock()
			return
		case <-rm.wake:
		case <-t.C:
		}
	}
}

// poll reads what the recording gained and sends it to the viewers.
func (h *liveHub) poll(rm *room) {
	info, err := h.st.Stat(h.ctx, rm.key)
	if err != nil {
		rm.fail(err)
		return
	}
	if info.Size > rm.off+int64(len(rm.carry)) {
		rd, err := h.st.Open(h.ctx, rm.key)
		if err != nil {
			rm.fail(err)
			return
		}
		from := rm.off + int64(len(rm.carry))
		buf := make([]byte, 64<<10)
		for from < info.Size {
			n, err := rd.ReadAt(buf[:min(int64(len(buf)), info.Size-from)], from)
			if n > 0 {
				rm.feed(buf[:n])
				from += int64(n)
			}
			if err != nil && !errors.Is(err, io.EOF) {
				rd.Close()
				rm.fail(err)
				return
			}
			if n == 0 {
				break
			}
		}
		rd.Close()
	}
	if info.Status != store.StatusLive {
		rm.end("recording " + string(info.Status))
	}
}

func (rm *room) fail(err error) {
	rm.mu.Lock()
	defer rm.mu.Unlock()
	if rm.readErr == nil {
		rm.readErr = err
	}
}

// feed takes the next bytes of the recording: whole lines are parsed and
// sent; an incomplete last line waits for the rest.
func (rm *room) feed(p []byte) {
	rm.mu.Lock()
	defer rm.mu.Unlock()
	rm.carry = append(rm.carry, p...)
	for {
		i := bytes.IndexByte(rm.carry, '\n')
		if i < 0 {
			break
		}
		line := rm.carry[:i]
		rm.off += int64(i + 1)
		rm.line(bytes.TrimSpace(line))
		rm.carry = rm.carry[i+1:]
	}
	if len(rm.carry) == 0 {
		rm.carry = nil
	} else {
		rm.carry = append([]byte(nil), rm.carry...)
	}
}

// line handles one complete line. The caller holds rm.mu.
func (rm *room) line(line []byte) {
	if len(line) == 0 {
		return
	}
	if !rm.header {
		rm.header = true
		var hd asciicast.Header
		cols, rows := 80, 24
		if json.Unmarshal(line, &hd) == nil {
			if hd.Width > 0 && hd.Height > 0 {
				cols, rows = hd.Width, hd.Height
			}
			rm.kube = hd.IsKubernetes()
		}
		rm.term = vt.New(cols, rows)
		return
	}
	var ev asciicast.Event
	if json.Unmarshal(line, &ev) != nil {
		return // not an event: skipped, as a replay skips it
	}
	t := ev.Time
	if t < rm.last || t != t {
		t = rm.last
	}
	rel := uint64((t - rm.last) * 1e6)
	var frame []byte
	switch ev.Code {
	case asciicast.Output:
		rm.term.WriteString(ev.Data)
		frame = aliFrame('o', rel, []byte(ev.Data))
	case asciicast.Resize:
		cols, rows, err := asciicast.ParseResize(ev.Data, rm.kube)
		if err != nil {
			return
		}
		rm.term.Resize(cols, rows)
		cols, rows = rm.term.Size()
		frame = binary.AppendUvarint([]byte{'r'}, 0)
		frame = binary.AppendUvarint(frame, rel)
		frame = binary.AppendUvarint(frame, uint64(cols))
		frame = binary.AppendUvarint(frame, uint64(rows))
	case asciicast.Marker:
		frame = aliFrame('m', rel, []byte(ev.Data))
	default:
		return // input and exit are not shown
	}
	rm.last = t
	rm.send(frame)
}

// send queues a frame for every viewer; one that is too far behind is
// dropped (its player reconnects and starts from a fresh snapshot).
func (rm *room) send(frame []byte) {
	for vc := range rm.subs {
		select {
		case vc.frames <- frame:
		default:
			delete(rm.subs, vc)
			close(vc.gone)
		}
	}
}

func (rm *room) end(why string) {
	rm.mu.Lock()
	defer rm.mu.Unlock()
	if !rm.ended {
		rm.ended, rm.endWhy = true, why
	}
}

// resetFrame is the ALiS reset frame for the current state: time, size,
// no theme, and the screen as ANSI. The caller holds rm.mu.
func (rm *room) resetFrame() []byte {
	cols, rows := 80, 24
	var init []byte
	if rm.term != nil {
		cols, rows = rm.term.Size()
		init = rm.term.Dump()
	}
	f := binary.AppendUvarint([]byte{0x01}, 0)
	f = binary.AppendUvarint(f, uint64(rm.last*1e6))
	f = binary.AppendUvarint(f, uint64(cols))
	f = binary.AppendUvarint(f, uint64(rows))
	f = append(f, 0) // no theme
	f = binary.AppendUvarint(f, uint64(len(init)))
	return append(f, init...)
}

// aliFrame is an output or marker frame: type, id (0), time since the
// previous event in microseconds, then the data.
func aliFrame(typ byte, rel uint64, data []byte) []byte {
	f := binary.AppendUvarint([]byte{typ}, 0)
	f = binary.AppendUvarint(f, rel)
	f = binary.AppendUvarint(f, uint64(len(data)))
	return append(f, data...)
}

// liveSocket streams a live recording to the player.
func (s *Server) liveSocket(w http.ResponseWriter, r *http.Request, rec index.Recording) {
	if !s.auditFirst(w, r, "live", rec.Key, "") {
		return
	}
	// The Origin must be this site (the library's default), so another
	// site cannot open a viewer's socket with the viewer's cookies.
	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: []string{aliSubprotocol}})
	if err != nil {
		return // Accept answered
	}
	defer c.CloseNow()
	if c.Subprotocol() != aliSubprotocol {
		c.Close(websocket.StatusProtocolError, "this server speaks only "+aliSubprotocol)
		return
	}
	ctx := c.CloseRead(r.Context())
	rm, vc, first, err := s.live.join(ctx, rec.Key)
	if err != nil {
		c.Close(websocket.StatusInternalError, "cannot read the recording")
		return
	}
	for _, f := range first {
		if err := c.Write(ctx, websocket.MessageBinary, f); err != nil {
			if vc != nil {
				s.live.leave(rm, vc)
			}
			return
		}
	}
	if vc == nil {
		c.Close(4000, "recording ended")
		return
	}
	defer s.live.leave(rm, vc)
	for {
		select {
		case f := <-vc.frames:
			if err := c.Write(ctx, websocket.MessageBinary, f); err != nil {
				return
			}
		case <-vc.gone:
			// Drain what was queued before the room let go.
		drain:
			for {
				select {
				case f := <-vc.frames:
					if c.Write(ctx, websocket.MessageBinary, f) != nil {
						return
					}
				default:
					break drain
				}
			}
			rm.mu.Lock()
			ended, why := rm.ended, rm.endWhy
			rm.mu.Unlock()
			if ended {
				c.Close(4000, why)
			} else {
				c.Close(websocket.StatusTryAgainLater, "fell behind; reconnect")
			}
			return
		case <-ctx.Done():
			return
		}
	}
}
