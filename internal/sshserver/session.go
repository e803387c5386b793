package sshserver

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/reel-rec/reel/internal/policy"
)

// session is one "session" channel: a shell, a command or a subsystem.
type session struct {
	c   *serverConn
	s   *Server
	ch  ssh.Channel
	log *slog.Logger

	// Set by requests before the start, read-only after it.
	env     []string // accepted client variables, "NAME=value"
	pty     *ptyRequest
	kind    string // "shell", "exec" or "subsystem"
	command string // exec: the command line; subsystem: its name

	mu      sync.Mutex
	master  *os.File    // the pty master while the process runs
	proc    *os.Process // the process, once started
	exited  bool        // proc has been waited for
	winCols uint32      // the terminal size last asked for
	winRows uint32

	rec     sessionRecording
	outMu   sync.Mutex  // serializes writes to the channel with ended
	ended   atomic.Bool // reel ended the session (fail closed): drop all I/O
	endMsg  chan string // the message to show when reel ends the session
	killer  *time.Timer
	workers sync.WaitGroup // I/O goroutines
}

type ptyRequest struct {
	term       string
	cols, rows uint32
}

// handleSession serves one session channel until it closes.
func (c *serverConn) handleSession(nch ssh.NewChannel) {
	ch, reqs, err := nch.Accept()
	if err != nil {
		return
	}
	ss := &session{
		c: c, s: c.s, ch: ch,
		log:    c.s.Log.With("connection", c.id, "user", c.sc.User(), "remote", c.src),
		endMsg: make(chan string, 1),
	}
	var runDone chan struct{}
	for req := range reqs {
		switch req.Type {
		case "shell", "exec", "subsystem":
			ok := runDone == nil && ss.setStart(req.Type, req.Payload)
			req.Reply(ok, nil)
			if ok {
				runDone = make(chan struct{})
				go func() {
					defer close(runDone)
					ss.run()
				}()
			}
		default:
			ok := ss.handleRequest(req.Type, req.Payload, runDone != nil)
			if req.WantReply {
				req.Reply(ok, nil)
			}
		}
	}
	// The channel is closed: by us at the end of run, or by the client
	// or a dropped connection, in which case the process is hung up.
	ss.hangup()
	if runDone != nil {
		<-runDone
	}
	ch.Close()
	ss.workers.Wait()
}

// handleRequest answers the requests other than the start.
func (ss *session) handleRequest(typ string, payload []byte, started bool) bool {
	switch typ {
	case "env":
		var kv struct{ Name, Value string }
		if started || ssh.Unmarshal(payload, &kv) != nil || !acceptEnv(kv.Name) || len(ss.env) >= 64 {
			return false
		}
		ss.env = append(ss.env, kv.Name+"="+kv.Value)
		return true
	case "pty-req":
		var p struct {
			Term                         string
			Columns, Rows, Width, Height uint32
			Modes                        string
		}
		if started || ss.pty != nil || ssh.Unmarshal(payload, &p) != nil {
			return false
		}
		if ss.c.auth.noPTY {
			ss.log.Info("pty refused: the key's options forbid it (no-pty or restrict)", "key", ss.c.auth.keySource)
			return false
		}
		ss.pty = &ptyRequest{term: p.Term, cols: p.Columns, rows: p.Rows}
		ss.winCols, ss.winRows = p.Columns, p.Rows
		return true
	case "window-change":
		var w struct{ Columns, Rows, Width, Height uint32 }
		if ss.pty == nil || ssh.Unmarshal(payload, &w) != nil {
			return false
		}
		ss.resize(w.Columns, w.Rows)
		return true
	case "signal":
		var sig struct{ Signal string }
		if ssh.Unmarshal(payload, &sig) != nil {
			return false
		}
		return ss.signal(sig.Signal)
	}
	// x11-req, auth-agent-req@openssh.com and the rest: refused.
	return false
}

// acceptEnv says which variables a client may set, as OpenSSH's default
// "AcceptEnv LANG LC_*".
func acceptEnv(name string) bool {
	return name == "LANG" || strings.HasPrefix(name, "LC_") && len(name) > 3
}

// setStart records what the session is to run; false refuses it.
func (ss *session) setStart(typ string, payload []byte) bool {
	switch typ {
	case "exec":
		var p struct{ Command string }
		if ssh.Unmarshal(payload, &p) != nil {
			return false
		}
		ss.command = p.Command
	case "subsystem":
		var p struct{ Name string }
		if ssh.Unmarshal(payload, &p) != nil || p.Name != "sftp" || ss.s.sftpPath == "" {
			ss.log.Info("subsystem refused", "subsystem", p.Name)
			return false
		}
		ss.command = p.Name
	}
	ss.kind = typ
	return true
}

// forcedCommand returns the command the key's command= option forces, or
// "".
func (ss *session) forcedCommand() string {
	if ss.c.auth.forced {
		return ss.c.auth.command
	}
	return ""
}

// commandRun returns the command line the session runs: the forced
// command, or the client's for exec; "" for a login shell or sftp.
func (ss *session) commandRun() string {
	switch {
	case ss.c.auth.forced:
		return ss.c.auth.command
	case ss.kind == "exec":
		return ss.command
	}
	return ""
}

// exitInfo is how a session ended, as told to the client.
type exitInfo struct {
	code   int
	signal string // SSH signal name ("TERM") when killed by a signal
	core   bool
}

// run runs the session to its end and closes the channel.
func (ss *session) run() {
	ex := ss.execute()
	ss.outMu.Lock()
	ss.ch.CloseWrite()
	ss.outMu.Unlock()
	if ex.signal != "" {
		ss.ch.SendRequest("exit-signal", false, ssh.Marshal(struct {
			Signal     string
			CoreDumped bool
			Error      string
			Lang       string
		}{ex.signal, ex.core, "", ""}))
	} else {
		ss.ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{uint32(ex.code)}))
	}
	ss.ch.Close()
	ss.rec.finish(ss)
}

// refuse tells the user why the session does not run.
func (ss *session) refuse(msg string) exitInfo {
	ss.writeStderr(msg)
	return exitInfo{code: 1}
}

// writeStderr writes a message from reel to the user's terminal.
func (ss *session) writeStderr(msg string) {
	msg = strings.TrimRight(msg, "\n") + "\n"
	if ss.pty != nil {
		msg = "\r\n" + strings.ReplaceAll(msg, "\n", "\r\n")
	}
	io.WriteString(ss.ch.Stderr(), msg)
}

func (ss *session) execute() exitInfo {
	u := ss.c.user
	d := ss.s.Policy().SSH(ss.s.policyRequest(ss.c.sc.User(), u.Name, ss.c.src.Addr()))
	if d.Action != policy.Accept {
		ss.log.Info("session refused by policy", "why", d.Why)
		return ss.refuse("reel ssh: the policy does not admit this session.")
	}
	if d.Record {
		if msg := ss.startRecording(d); msg != "" {
			return ss.refuse(msg)
		}
	}
	ss.log.Info("session start", "kind", ss.kind, "command", ss.command, "forced_command", ss.forcedCommand(),
		"pty", ss.pty != nil, "recorded", ss.rec.active.Load() != nil)

	cmd, err := ss.buildCommand()
	if err != nil {
		ss.log.Error("session: cannot run", "err", err)
		return ss.refuse("reel ssh: " + err.Error())
	}
	var ex exitInfo
	if ss.pty != nil {
		ex, err = ss.runPTY(cmd)
	} else {
		ex, err = ss.runPipes(cmd)
	}
	if err != nil && !ss.ended.Load() {
		ss.log.Error("session: cannot run", "err", err)
		return ss.refuse("reel ssh: cannot start the session: " + err.Error())
	}
	select {
	case msg := <-ss.endMsg:
		// Reel ended the session: say why, after everything shown so far.
		ss.outMu.Lock()
		ss.writeStderr(msg)
		ss.outMu.Unlock()
		ex = exitInfo{code: 1}
	default:
	}
	ss.log.Info("session end", "kind", ss.kind, "exit", ex.code, "signal", ex.signal)
	return ex
}

// buildCommand prepares the process the session runs, as the local user.
func (ss *session) buildCommand() (*exec.Cmd, error) {
	u := ss.c.user
	cmd := &exec.Cmd{Path: u.Shell}
	cmd.Env = ss.environ()
	switch {
	case ss.c.auth.forced:
		// The key's command= runs whatever the client asked for; the
		// request is in SSH_ORIGINAL_COMMAND, as with sshd.
		cmd.Args = []string{filepath.Base(u.Shell), "-c", ss.c.auth.command}
		switch ss.kind {
		case "exec":
			cmd.Env = append(cmd.Env, "SSH_ORIGINAL_COMMAND="+ss.command)
		case "subsystem":
			cmd.Env = append(cmd.Env, "SSH_ORIGINAL_COMMAND="+ss.s.sftpPath)
		}
	case ss.kind == "shell":
		cmd.Args = []string{"-" + filepath.Base(u.Shell)} // a login shell
	case ss.kind == "exec":
		cmd.Args = []string{filepath.Base(u.Shell), "-c", ss.command}
	case ss.kind == "subsystem":
		cmd.Path = ss.s.sftpPath
		cmd.Args = []string{filepath.Base(ss.s.sftpPath)}
	}
	cmd.Dir = u.Home
	if fi, err := os.Stat(u.Home); err != nil || !fi.IsDir() {
		cmd.Dir = "/"
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if os.Geteuid() == 0 {
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: u.UID, Gid: u.GID, Groups: u.Groups}
	}
	return cmd, nil
}

func (ss *session) environ() []string {
	u := ss.c.user
	path := "/usr/local/bin:/usr/bin:/bin"
	if u.UID == 0 {
		path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	}
	local, _ := netip.ParseAddrPort(ss.c.nc.LocalAddr().String())
	src := ss.c.src
	env := []string{
		"HOME=" + u.Home,
		"USER=" + u.Name,
		"LOGNAME=" + u.Name,
		"SHELL=" + u.Shell,
		"PATH=" + path,
		"MAIL=/var/mail/" + u.Name,
		fmt.Sprintf("SSH_CLIENT=%s %d %d", src.Addr(), src.Port(), local.Port()),
		fmt.Sprintf("SSH_CONNECTION=%s %d %s %d", src.Addr(), src.Port(), local.Addr().Unmap(), local.Port()),
	}
	if ss.pty != nil && ss.pty.term != "" {
		env = append(env, "TERM="+ss.pty.term)
	}
	return append(env, ss.env...)
}

// runPTY runs cmd on a new pty: the user's keystrokes go to the master,
// what the master prints goes to the user and the recording.
func (ss *session) runPTY(cmd *exec.Cmd) (exitInfo, error) {
	master, tty, err := openPTY()
	if err != nil {
		return exitInfo{}, err
	}
	defer tty.Close()
	ss.mu.Lock()
	cols, rows := ss.winCols, ss.winRows
	ss.mu.Unlock()
	if err := setWinsize(master, cols, rows); err != nil {
		master.Close()
		return exitInfo{}, fmt.Errorf("pty size: %w", err)
	}
	if cmd.SysProcAttr.Credential != nil {
		// The terminal belongs to the user, as login(1) leaves it.
		tty.Chown(int(ss.c.user.UID), -1)
		tty.Chmod(0o620)
	}
	cmd.Env = append(cmd.Env, "SSH_TTY="+tty.Name())
	cmd.Stdin, cmd.Stdout, cmd.Stderr = tty, tty, tty
	cmd.SysProcAttr.Setctty = true
	cmd.SysProcAttr.Ctty = 0
	if err := ss.startProcess(cmd, master); err != nil {
		master.Close()
		return exitInfo{}, err
	}
	tty.Close()

	outDone := make(chan struct{})
	go func() {
		defer close(outDone)
		buf := make([]byte, 32<<10)
		for {
			n, err := master.Read(buf)
			if n > 0 {
				ss.writeOut(ss.ch, buf[:n], true)
			}
			if err != nil {
				return // EIO once no process holds the terminal
			}
		}
	}()
	ss.workers.Add(1)
	go func() {
		defer ss.workers.Done()
		buf := make([]byte, 32<<10)
		for {
			n, err := ss.ch.Read(buf)
			if n > 0 && !ss.ended.Load() {
				ss.rec.input(ss, master, buf[:n])
				if _, werr := master.Write(buf[:n]); werr != nil {
					return
				}
			}
			if err != nil {
				return
			}
		}
	}()
	ex := ss.wait(cmd)
	// Drain what the process printed last. Background processes that keep
	// the terminal open do not hold the session: stop after a pause.
	master.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	<-outDone
	ss.mu.Lock()
	ss.master = nil
	ss.mu.Unlock()
	master.Close() // hangs up whatever still runs on the terminal
	return ex, nil
}

// runPipes runs cmd with pipes for stdin, stdout and stderr: commands
// without a pty, and the sftp subsystem.
func (ss *session) runPipes(cmd *exec.Cmd) (exitInfo, error) {
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return exitInfo{}, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return exitInfo{}, err
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return exitInfo{}, err
	}
	if err := ss.startProcess(cmd, nil); err != nil {
		return exitInfo{}, err
	}
	// The sftp protocol is binary file transfer, not a terminal: its
	// recording holds the header only.
	record := ss.kind != "subsystem"
	var outs sync.WaitGroup
	for _, p := range []struct {
		r io.Reader
		w io.Writer
	}{{stdout, ss.ch}, {stderr, ss.ch.Stderr()}} {
		outs.Add(1)
		go func() {
			defer outs.Done()
			buf := make([]byte, 32<<10)
			for {
				n, err := p.r.Read(buf)
				if n > 0 {
					ss.writeOut(p.w, buf[:n], record)
				}
				if err != nil {
					return
				}
			}
		}()
	}
	ss.workers.Add(1)
	go func() {
		defer ss.workers.Done()
		// Input is never recorded without a pty: there is no echo to
		// tell a password from a command.
		buf := make([]byte, 32<<10)
		for {
			n, err := ss.ch.Read(buf)
			if n > 0 && !ss.ended.Load() {
				if _, werr := stdin.Write(buf[:n]); werr != nil {
					break
				}
			}
			if err != nil {
				break
			}
		}
		stdin.Close()
	}()
	outs.Wait()
	return ss.wait(cmd), nil
}

// writeOut sends process output to the user, recording it first. Under
// fail closed, output that cannot be recorded is not shown.
func (ss *session) writeOut(w io.Writer, p []byte, record bool) {
	ss.outMu.Lock()
	defer ss.outMu.Unlock()
	if ss.ended.Load() {
		return
	}
	if record && !ss.rec.output(ss, p) {
		return
	}
	w.Write(p)
}

func (ss *session) startProcess(cmd *exec.Cmd, master *os.File) error {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.ended.Load() {
		return errors.New("session ended")
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	ss.proc, ss.master = cmd.Process, master
	return nil
}

// wait waits for the process and says how it ended.
func (ss *session) wait(cmd *exec.Cmd) exitInfo {
	err := cmd.Wait()
	ss.mu.Lock()
	ss.exited = true
	if ss.killer != nil {
		ss.killer.Stop()
	}
	ss.mu.Unlock()
	if cmd.ProcessState == nil {
		ss.log.Error("session: wait", "err", err)
		return exitInfo{code: 255}
	}
	ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if !ok {
		return exitInfo{code: cmd.ProcessState.ExitCode()}
	}
	if ws.Signaled() {
		if name, ok := sshSignalNames[ws.Signal()]; ok {
			return exitInfo{signal: name, core: ws.CoreDump()}
		}
		return exitInfo{code: 128 + int(ws.Signal())}
	}
	return exitInfo{code: ws.ExitStatus()}
}

// resize applies a window-change: to the pty, and to the recording.
func (ss *session) resize(cols, rows uint32) {
	ss.mu.Lock()
	ss.winCols, ss.winRows = cols, rows
	m := ss.master
	ss.mu.Unlock()
	if m != nil {
		setWinsize(m, cols, rows)
		ss.rec.resize(ss, int(cols), int(rows))
	}
}

// sshSignalNames are the signals RFC 4254 names, without "SIG".
var sshSignalNames = map[syscall.Signal]string{
	syscall.SIGABRT: "ABRT", syscall.SIGALRM: "ALRM", syscall.SIGFPE: "FPE",
	syscall.SIGHUP: "HUP", syscall.SIGILL: "ILL", syscall.SIGINT: "INT",
	syscall.SIGKILL: "KILL", syscall.SIGPIPE: "PIPE", syscall.SIGQUIT: "QUIT",
	syscall.SIGSEGV: "SEGV", syscall.SIGTERM: "TERM", syscall.SIGUSR1: "USR1",
	syscall.SIGUSR2: "USR2",
}

// signal delivers a signal the client sent to the process, as sshd does.
func (ss *session) signal(name string) bool {
	var sig syscall.Signal
	for s, n := range sshSignalNames {
		if n == name {
			sig = s
		}
	}
	if sig == 0 {
		return false
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.proc == nil || ss.exited {
		return false
	}
	return ss.proc.Signal(sig) == nil
}

// hangup ends the process of a session whose channel is gone: SIGHUP to
// its process group, SIGKILL if it is still there 5 s later.
func (ss *session) hangup() { ss.kill(syscall.SIGHUP, 5*time.Second) }

// end ends the session on reel's own decision (the recording was lost
// under fail closed): no more I/O, the message is shown at the end, and
// the process group is hung up and then killed.
func (ss *session) end(msg string) {
	ss.ended.Store(true)
	select {
	case ss.endMsg <- msg:
	default:
	}
	ss.kill(syscall.SIGHUP, 2*time.Second)
}

func (ss *session) kill(sig syscall.Signal, grace time.Duration) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.proc == nil || ss.exited {
		return
	}
	pid := ss.proc.Pid
	syscall.Kill(-pid, sig)
	if ss.master != nil {
		// Hang up the terminal too: a process blocked reading it gets
		// EOF even if it handles SIGHUP late (bash does, in "read").
		ss.master.Close()
	}
	if ss.killer == nil {
		ss.killer = time.AfterFunc(grace, func() {
			ss.mu.Lock()
			defer ss.mu.Unlock()
			if !ss.exited {
				syscall.Kill(-pid, syscall.SIGKILL)
			}
		})
	}
}
