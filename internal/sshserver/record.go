package sshserver

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/reel-rec/reel/internal/asciicast"
	"github.com/reel-rec/reel/internal/policy"
	"github.com/reel-rec/reel/internal/sender"
)

// sessionRecording is the recording side of one session.
type sessionRecording struct {
	rec         *sender.Recording                // the recording started, nil if none
	active      atomic.Pointer[sender.Recording] // rec until it is lost
	enforce     bool                             // fail closed
	recordInput bool                             // record input (pty sessions, policy opt-in)
	watch       chan struct{}                    // closed when the session is over
}

// startRecording starts the session's recording as the decision d says.
// It returns a message for the user when the session must be refused.
func (ss *session) startRecording(d policy.SSHDecision) string {
	r := &ss.rec
	r.enforce = d.EnforceRecorder
	r.recordInput = d.RecordInput && ss.pty != nil
	h := ss.header()
	pend := ss.s.gaps.pending()
	pend.addTo(&h)
	rec, err := ss.s.rec.Start(ss.c.ctx, d.Recorders, h)
	if err != nil {
		var lines []string
		if se, ok := err.(*sender.StartError); ok {
			for _, a := range se.Attempts {
				lines = append(lines, "  "+a.String())
			}
		}
		if r.enforce {
			ss.log.Warn("session refused: no recorder reachable and the policy enforces recording",
				"policy_line", d.RecordLine, "err", err)
			return "reel ssh: this session must be recorded, but no recorder could be reached:\n" +
				strings.Join(lines, "\n") + "\nThe session is refused (enforceRecorder)."
		}
		ss.log.Error("RECORDING FAILED TO START: the session runs UNRECORDED (fail open)",
			"policy_line", d.RecordLine, "err", err)
		ss.s.gaps.add(ss.gap("session not recorded: no recorder reachable", err))
		return ""
	}
	ss.s.gaps.remove(pend)
	r.rec = rec
	r.active.Store(rec)
	r.watch = make(chan struct{})
	ss.workers.Add(1)
	go func() {
		defer ss.workers.Done()
		select {
		case <-rec.Lost():
			r.lost(ss, rec, rec.Err())
		case <-r.watch:
		}
	}()
	return ""
}

// lost handles the loss of rec, once: under fail closed the session is
// ended; under fail open it goes on unrecorded, loudly.
func (r *sessionRecording) lost(ss *session, rec *sender.Recording, err error) {
	if !r.active.CompareAndSwap(rec, nil) {
		return
	}
	if r.enforce {
		ss.log.Warn("recording lost: ending the session, as the policy enforces recording",
			"recorder", rec.Recorder(), "err", err)
		ss.end(fmt.Sprintf("reel ssh: the recording of this session was lost (%v).\nThe policy requires recording: the session is ended.", err))
		return
	}
	ss.log.Error("RECORDING LOST: the session goes on UNRECORDED (fail open)",
		"recorder", rec.Recorder(), "err", err)
	ss.s.gaps.add(ss.gap("recording lost mid-session; the rest of the session is not recorded", err))
}

// output records terminal output. It reports whether the output may be
// shown: not when it cannot be recorded under fail closed.
func (r *sessionRecording) output(ss *session, p []byte) bool {
	rec := r.active.Load()
	if rec == nil {
		return !ss.ended.Load()
	}
	// A recorder slower than the program paces it: the pty stops being
	// read, and the program blocks on its writes.
	rec.WaitRoom()
	if err := rec.Output(p); err != nil {
		r.lost(ss, rec, err)
		return !r.enforce
	}
	return true
}

// input records what the user typed, when the policy asks for it and the
// terminal echoes it: a program that turns echo off (a password prompt)
// does so before it reads, so what is typed then is never recorded.
func (r *sessionRecording) input(ss *session, master *os.File, p []byte) {
	if !r.recordInput {
		return
	}
	rec := r.active.Load()
	if rec == nil || !echoOn(master) {
		return
	}
	if err := rec.Input(p); err != nil {
		r.lost(ss, rec, err)
	}
}

func (r *sessionRecording) resize(ss *session, cols, rows int) {
	if rec := r.active.Load(); rec != nil {
		if err := rec.Resize(cols, rows); err != nil {
			r.lost(ss, rec, err)
		}
	}
}

// finish closes the recording at the end of the session and waits for the
// recorder to confirm it.
func (r *sessionRecording) finish(ss *session) {
	if r.rec == nil {
		return
	}
	close(r.watch)
	timeout := ss.s.FinishTimeout
	if timeout <= 0 {
		timeout = DefaultFinishTimeout
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	err := r.rec.Close(ctx)
	if err != nil && r.active.CompareAndSwap(r.rec, nil) {
		ss.log.Error("RECORDING NOT CONFIRMED: its end may be missing", "recorder", r.rec.Recorder(), "err", err)
		ss.s.gaps.add(ss.gap("the recorder did not confirm the end of the recording", err))
	}
}

// header describes the session for its recording.
func (ss *session) header() asciicast.Header {
	c := ss.c
	h := asciicast.Header{
		Width:        80,
		Height:       24,
		SrcNode:      c.src.Addr().String(),
		SSHUser:      c.sc.User(),
		LocalUser:    c.user.Name,
		ConnectionID: c.id,
		Env:          map[string]string{},
		Extra:        map[string]json.RawMessage{},
	}
	h.Command = ss.commandRun()
	if ss.pty != nil {
		ss.mu.Lock()
		if ss.winCols > 0 && ss.winRows > 0 {
			h.Width, h.Height = int(ss.winCols), int(ss.winRows)
		}
		ss.mu.Unlock()
		h.Env["TERM"] = ss.pty.term
	}
	extra := map[string]any{
		"srcAddr":           c.src.String(),
		"sshKeyFingerprint": c.auth.fingerprint,
		"hostname":          ss.s.Hostname,
		"sender":            "reel ssh",
	}
	if len(ss.s.HostTags) > 0 {
		extra["hostTags"] = ss.s.HostTags
	}
	if ss.kind == "subsystem" {
		extra["subsystem"] = ss.command
	}
	if ss.rec.recordInput {
		extra["inputRecorded"] = true
	}
	if ss.c.auth.forced {
		// The key's command= ran instead of what the client asked for.
		extra["forcedCommand"] = ss.c.auth.command
		if ss.kind == "exec" {
			extra["originalCommand"] = ss.command
		}
	}
	if ss.c.auth.keyOptions != "" {
		extra["sshKeyOptions"] = ss.c.auth.keyOptions
	}
	for k, v := range extra {
		b, _ := json.Marshal(v)
		h.Extra[k] = b
	}
	return h
}

// gap describes a session, or part of one, that was not recorded.
type gap struct {
	Time         time.Time `json:"time"`
	What         string    `json:"what"`
	Reason       string    `json:"reason"`
	ConnectionID string    `json:"connectionID"`
	SSHUser      string    `json:"sshUser"`
	LocalUser    string    `json:"localUser"`
	SrcAddr      string    `json:"srcAddr"`
	Command      string    `json:"command,omitempty"`
}

func (ss *session) gap(what string, err error) gap {
	return gap{
		Time:         ss.s.Now().UTC().Truncate(time.Millisecond),
		What:         what,
		Reason:       err.Error(),
		ConnectionID: ss.c.id,
		SSHUser:      ss.c.sc.User(),
		LocalUser:    ss.c.user.Name,
		SrcAddr:      ss.c.src.String(),
		Command:      ss.commandRun(),
	}
}

// maxGaps bounds the gaps kept until a recording carries them; older ones
// are counted, not kept.
const maxGaps = 64

// gapLog keeps the gaps in recording (fail open) that no recording has
// reported yet. The header of the next recording that starts carries them
// ("recordingGaps"), so the recorder learns what it missed.
type gapLog struct {
	mu      sync.Mutex
	seq     uint64
	list    []seqGap
	omitted int
}

type seqGap struct {
	seq uint64
	gap gap
}

func (l *gapLog) add(g gap) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.seq++
	l.list = append(l.list, seqGap{l.seq, g})
	if len(l.list) > maxGaps {
		l.omitted += len(l.list) - maxGaps
		l.list = append([]seqGap(nil), l.list[len(l.list)-maxGaps:]...)
	}
}

// pendingGaps is a snapshot of the gap log, to put in a header.
type pendingGaps struct {
	gaps    []gap
	maxSeq  uint64
	omitted int
}

func (l *gapLog) pending() pendingGaps {
	l.mu.Lock()
	defer l.mu.Unlock()
	p := pendingGaps{omitted: l.omitted}
	for _, sg := range l.list {
		p.gaps = append(p.gaps, sg.gap)
		p.maxSeq = sg.seq
	}
	return p
}

// remove forgets the gaps of p, once a recording carrying them started.
func (l *gapLog) remove(p pendingGaps) {
	l.mu.Lock()
	defer l.mu.Unlock()
	i := 0
	for i < len(l.list) && l.list[i].seq <= p.maxSeq {
		i++
	}
	l.list = l.list[i:]
	l.omitted = max(0, l.omitted-p.omitted)
}

func (p pendingGaps) addTo(h *asciicast.Header) {
	if len(p.gaps) > 0 {
		b, _ := json.Marshal(p.gaps)
		h.Extra["recordingGaps"] = b
	}
	if p.omitted > 0 {
		h.Extra["recordingGapsOmitted"] = json.RawMessage(fmt.Sprint(p.omitted))
	}
}

// reportOutcome logs what the recording client reports.
func (s *Server) reportOutcome(o sender.Outcome) {
	attrs := []any{"outcome", o.Kind.String()}
	if o.Header != nil {
		attrs = append(attrs, "connection", o.Header.ConnectionID, "user", o.Header.SSHUser)
	}
	if o.Recorder.IsValid() {
		attrs = append(attrs, "recorder", o.Recorder, "proto", o.Protocol)
	}
	switch o.Kind {
	case sender.Started:
		if len(o.Attempts) > 1 {
			var failed []string
			for _, a := range o.Attempts[:len(o.Attempts)-1] {
				failed = append(failed, a.String())
			}
			attrs = append(attrs, "failed_over_from", failed)
			s.Log.Warn("recording started after failover", attrs...)
			return
		}
		s.Log.Info("recording started", attrs...)
	case sender.Finished:
		s.Log.Info("recording finished", append(attrs, "bytes", o.Sent, "acked", o.Acked)...)
	default:
		// The session logs failures with what they mean for it.
		s.Log.Debug("recording", append(attrs, "err", o.Err)...)
	}
}
