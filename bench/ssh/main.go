// Command ssh measures what recording costs a "reel ssh" session (see
// docs/ssh.md, "Performance"):
//
//	P3:  throughput of "cat" of a large file through a recorded reel ssh
//	     session (enforceRecorder, so a recording that falls behind ends
//	     the session instead of silently dropping data), against the same
//	     reel ssh with recording off, and against Debian's OpenSSH sshd on
//	     loopback, in the same run. Runs alternate; medians are compared.
//	     The CPU time reel ssh spends per MiB recording is the difference
//	     of its CPU time recorded and not. -server-cpus, -recorder-cpus and
//	     -client-cpus pin the servers (with their sessions), the recorder
//	     and the ssh client with taskset, e.g. the SSH host on one core and
//	     what would be other machines (recorder, client) on the other.
//	P4:  keystroke-echo latency on a pty session: the time from sending a
//	     key to receiving its echo, recorded (output only, and with input
//	     recording) against recording off; the added p99.
//
// Every server is a child process: reel serve (the recorder, writing to
// disk with its durable acks), two or three reel ssh, and sshd. The
// OpenSSH client drives P3; P4 uses x/crypto/ssh in this process so that
// the client's own cost is the same for every server. Run from the
// repository root:
//
//	go run ./bench/ssh                    # P3 and P4
//	go run ./bench/ssh -mode p3 -mib 200 -runs 5
//	go run ./bench/ssh -mode p3 -no-sshd -server-cpus 0 -recorder-cpus 1 -client-cpus 1
//	go run ./bench/ssh -mode p4 -keys 3000
package main

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"flag"
	"fmt"
	"io"
	"log"
	mrand "math/rand/v2"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/reel-rec/reel/bench/internal/load"
	"github.com/reel-rec/reel/internal/store"
	"github.com/reel-rec/reel/internal/store/fsstore"
)

func main() {
	mode := flag.String("mode", "all", "what to measure: p3, p4 or all")
	mib := flag.Int("mib", 200, "p3: size of the file to cat, MiB")
	runs := flag.Int("runs", 5, "p3: runs of each server, alternating")
	usePTY := flag.Bool("pty", false, "p3: cat on a pty (ssh -tt) instead of a plain exec")
	keys := flag.Int("keys", 3000, "p4: keystrokes per configuration")
	reel := flag.String("reel", "", "reel binary (default: built from ./cmd/reel)")
	dir := flag.String("dir", "", "scratch directory (default: a temp dir); the recorder writes there")
	noSSHD := flag.Bool("no-sshd", false, "p3: skip the OpenSSH sshd comparison")
	cipher := flag.String("cipher", "", `p3: the client's cipher (ssh -c), e.g. aes128-gcm@openssh.com; default: OpenSSH's choice (chacha20-poly1305)`)
	flag.StringVar(&pin.server, "server-cpus", "", "CPUs (taskset -c list) for reel ssh and sshd, and so their sessions; default: any")
	flag.StringVar(&pin.recorder, "recorder-cpus", "", "CPUs (taskset -c list) for the recorder, reel serve; default: any")
	flag.StringVar(&pin.client, "client-cpus", "", "p3: CPUs (taskset -c list) for the ssh client; default: any")
	flag.StringVar(&recordBuffer, "record-buffer", "", `reel ssh --record-buffer (default: reel's, 8MiB); on a loaded machine the recorder can fall that far behind, and the recorded run then ends (enforceRecorder)`)
	flag.Parse()
	log.SetFlags(0)

	if *dir == "" {
		d, err := os.MkdirTemp("", "reel-bench-ssh")
		if err != nil {
			die("%v", err)
		}
		defer os.RemoveAll(d)
		atExit = append(atExit, func() { os.RemoveAll(d) })
		*dir = d
	}
	if *reel == "" {
		*reel = filepath.Join(*dir, "reel")
		out, err := exec.Command("go", "build", "-o", *reel, "./cmd/reel").CombinedOutput()
		if err != nil {
			die("building reel (run from the repository root): %v\n%s", err, out)
		}
	}
	b := setup(*reel, *dir, !*noSSHD && *mode != "p4", *mode != "p3")
	defer b.stop()
	if *mode == "p3" || *mode == "all" {
		b.cipher = *cipher
		b.p3(*mib, *runs, *usePTY)
	}
	if *mode == "p4" || *mode == "all" {
		b.p4(*keys)
	}
}

// bench holds the servers.
type bench struct {
	dir, user, keyPath string
	pids               map[string]int // server address (or "recorder") -> pid
	signer             ssh.Signer
	rec                string // reel serve's address
	recDst             string
	reelRec            string // reel ssh, recorded (fail closed)
	reelOff            string // reel ssh, not recorded
	reelInput          string // reel ssh, recorded with input recording ("" unless p4)
	sshd               string // OpenSSH sshd ("" if skipped)
	cipher             string // p3: ssh -c
	children           []*child
}

func setup(reel, dir string, withSSHD, withInput bool) *bench {
	u, err := user.Current()
	if err != nil {
		die("%v", err)
	}
	b := &bench{dir: dir, user: u.Username, recDst: filepath.Join(dir, "recordings"), pids: map[string]int{}}
	atExit = append(atExit, b.stop)
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	block, _ := ssh.MarshalPrivateKey(priv, "")
	b.keyPath = filepath.Join(dir, "id_ed25519")
	must(os.WriteFile(b.keyPath, pem.EncodeToMemory(block), 0o600))
	b.signer, _ = ssh.NewSignerFromKey(priv)
	pub := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(b.signer.PublicKey())))
	keys := filepath.Join(dir, "reel_keys")
	must(os.WriteFile(keys, []byte(b.user+" "+pub+"\n"), 0o644))

	b.rec = freeAddr()
	b.pids["recorder"] = b.start(pin.recorder, reel, "serve", "--dst", b.recDst, "--listen", b.rec, "--min-free", "0", "--log-level", "warn")
	waitListen(b.rec)

	policy := func(name, extra string) string {
		p := filepath.Join(dir, name)
		text := `{"ssh": [{"action": "accept", "src": ["*"], "dst": ["*"], "users": ["*", "root"]}]}`
		if extra != "off" {
			text = fmt.Sprintf(`{"recorders": {"tag:rec": [%q]}, "ssh": [{"action": "accept", "src": ["*"], "dst": ["*"], "users": ["*", "root"], "recorder": ["tag:rec"], "enforceRecorder": true, %s}]}`, b.rec, extra)
		}
		must(os.WriteFile(p, []byte(text), 0o644))
		return p
	}
	startReel := func(name, extra string) string {
		addr := freeAddr()
		args := []string{"ssh", "--listen", addr, "--policy", policy(name+".hujson", extra), "--statedir", filepath.Join(dir, "state"),
			"--authorized-keys", keys, "--no-user-keys", "--log-level", "warn"}
		if recordBuffer != "" {
			args = append(args, "--record-buffer", recordBuffer)
		}
		b.pids[addr] = b.start(pin.server, reel, args...)
		waitListen(addr)
		return addr
	}
	b.reelRec = startReel("recorded", "")
	b.reelOff = startReel("off", "off")
	if withInput {
		b.reelInput = startReel("input", `"inputRecording": true`)
	}
	if withSSHD {
		b.sshd = b.startSSHD(pub)
	}
	return b
}

// startSSHD runs Debian's sshd on a loopback port with its own host key
// and config.
func (b *bench) startSSHD(pub string) string {
	sshd, err := exec.LookPath("sshd")
	if err != nil {
		sshd = "/usr/sbin/sshd"
	}
	if _, err := os.Stat(sshd); err != nil {
		die("sshd not found (apt-get install openssh-server, or -no-sshd): %v", err)
	}
	d := filepath.Join(b.dir, "sshd")
	must(os.MkdirAll(d, 0o700))
	hostKey := filepath.Join(d, "host_ed25519")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", hostKey).CombinedOutput(); err != nil {
		die("ssh-keygen: %v\n%s", err, out)
	}
	ak := filepath.Join(d, "authorized_keys")
	must(os.WriteFile(ak, []byte(pub+"\n"), 0o600))
	addr := freeAddr()
	host, port, _ := net.SplitHostPort(addr)
	conf := filepath.Join(d, "sshd_config")
	must(os.WriteFile(conf, []byte(fmt.Sprintf(`Port %s
ListenAddress %s
HostKey %s
AuthorizedKeysFile %s
PidFile %s
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PermitRootLogin prohibit-password
Subsystem sftp internal-sftp
LogLevel ERROR
`, port, host, hostKey, ak, filepath.Join(d, "sshd.pid"))), 0o644))
	if os.Geteuid() == 0 {
		// sshd's privilege separation directory (created by the
		// openssh-server package's service, not by the binary).
		os.MkdirAll("/run/sshd", 0o755)
	}
	b.pids[addr] = b.start(pin.server, sshd, "-D", "-e", "-f", conf)
	waitListen(addr)
	return addr
}

func (b *bench) p3(mib, runs int, usePTY bool) {
	file := filepath.Join(b.dir, "big.txt")
	writeTextFile(file, mib)
	devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	must(err)
	defer devnull.Close()

	type target struct {
		name, addr string
		secs       []float64
		cpu        [][3]float64 // server (with the session's cat), recorder, client
	}
	targets := []*target{{name: "reel ssh, recorded", addr: b.reelRec}, {name: "reel ssh, recording off", addr: b.reelOff}}
	if b.sshd != "" {
		targets = append(targets, &target{name: "OpenSSH sshd", addr: b.sshd})
	}
	mode := "exec (no pty)"
	if usePTY {
		mode = "pty (ssh -tt)"
	}
	cipherNote := "default cipher"
	if b.cipher != "" {
		cipherNote = "cipher " + b.cipher
	}
	fmt.Printf("P3: cat of a %d MiB text file through ssh, %s, %s, %d runs each, alternating\n", mib, mode, cipherNote, runs)
	if pin != (pinning{}) {
		fmt.Printf("    CPUs (taskset -c): servers %q, recorder %q, client %q\n", pin.server, pin.recorder, pin.client)
	}
	size := float64(mib) * (1 << 20)
	for i := range runs {
		for _, t := range targets {
			_, port, _ := net.SplitHostPort(t.addr)
			args := append(b.clientOpts(), "-p", port)
			if b.cipher != "" {
				args = append(args, "-c", b.cipher)
			}
			if usePTY {
				args = append(args, "-tt")
			}
			args = append(args, b.user+"@127.0.0.1", "cat "+file)
			cmd := pinned(pin.client, "ssh", args...)
			cmd.Stdout = devnull
			var stderr strings.Builder
			cmd.Stderr = &stderr
			if usePTY {
				cmd.Stdin = nil
			}
			srv0, rec0 := cpuTime(b.pids[t.addr]), cpuTime(b.pids["recorder"])
			t0 := time.Now()
			err := cmd.Run()
			d := time.Since(t0).Seconds()
			if err != nil {
				die("%s: run %d: %v\n%s", t.name, i+1, err, stderr.String())
			}
			t.secs = append(t.secs, d)
			note := ""
			if t.addr == b.reelRec {
				note = b.checkRecording(int64(size))
			}
			time.Sleep(200 * time.Millisecond) // let the servers' last work land in their counters
			srvCPU, recCPU := cpuTime(b.pids[t.addr])-srv0, cpuTime(b.pids["recorder"])-rec0
			cliCPU := cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
			t.cpu = append(t.cpu, [3]float64{srvCPU.Seconds(), recCPU.Seconds(), cliCPU.Seconds()})
			fmt.Printf("  run %d  %-26s %6.2f s  %7.1f MiB/s   CPU s: server %.2f, recorder %.2f, client %.2f%s\n",
				i+1, t.name, d, size/(1<<20)/d, srvCPU.Seconds(), recCPU.Seconds(), cliCPU.Seconds(), note)
		}
	}
	med := func(t *target) float64 { return size / (1 << 20) / median(t.secs) }
	fmt.Println("P3 medians:")
	srvMS := map[*target]float64{}
	for _, t := range targets {
		var srv, rec, cli []float64
		for _, c := range t.cpu {
			srv, rec, cli = append(srv, c[0]), append(rec, c[1]), append(cli, c[2])
		}
		srvMS[t] = 1000 * median(srv) / float64(mib)
		fmt.Printf("  %-26s %7.1f MiB/s   CPU ms/MiB: server %.2f, recorder %.2f, client %.2f\n", t.name, med(t),
			srvMS[t], 1000*median(rec)/float64(mib), 1000*median(cli)/float64(mib))
	}
	fmt.Printf("  recorded / recording off: %.2fx (goal >= 0.9x)\n", med(targets[0])/med(targets[1]))
	fmt.Printf("  recording's own CPU in reel ssh: %.2f ms/MiB (server CPU recorded - off)\n", srvMS[targets[0]]-srvMS[targets[1]])
	if len(targets) > 2 {
		fmt.Printf("  recorded / OpenSSH sshd:  %.2fx (goal >= 0.8x)\n", med(targets[0])/med(targets[2]))
		fmt.Printf("  recording off / OpenSSH:  %.2fx\n", med(targets[1])/med(targets[2]))
	}
}

// checkRecording waits for the newest recording to be stored complete and
// at least want bytes long, and describes it; anything else is fatal: a
// throughput bought by losing the recording is no throughput.
func (b *bench) checkRecording(want int64) string {
	deadline := time.Now().Add(60 * time.Second)
	for {
		st, err := fsstore.OpenReadOnly(b.recDst)
		must(err)
		var newest store.Info
		for info, err := range st.List(context.Background(), store.Filter{}) {
			must(err)
			if info.Start.After(newest.Start) {
				newest = info
			}
		}
		st.Close()
		if newest.Status == store.StatusComplete {
			if newest.Size < want {
				die("recording %s holds %d bytes, less than the %d sent", newest.Key, newest.Size, want)
			}
			return fmt.Sprintf("  (recording complete, %.0f MiB)", float64(newest.Size)/(1<<20))
		}
		if newest.Status != store.StatusLive && newest.Status != "" {
			die("recording %s is %s: %s", newest.Key, newest.Status, newest.Reason)
		}
		if time.Now().After(deadline) {
			die("recording %s still %q after 60 s", newest.Key, newest.Status)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (b *bench) p4(keys int) {
	type target struct {
		name, addr string
		lat        []time.Duration
	}
	targets := []*target{{name: "recording off", addr: b.reelOff}, {name: "recorded (output)", addr: b.reelRec}}
	if b.reelInput != "" {
		targets = append(targets, &target{name: "recorded (output+input)", addr: b.reelInput})
	}
	fmt.Printf("P4: keystroke-echo latency on a pty session, %d keystrokes each, in rounds of 10\n", keys)
	sessions := make([]*echoSession, len(targets))
	for i, t := range targets {
		sessions[i] = b.openEcho(t.addr)
		defer sessions[i].close()
	}
	for done := 0; done < keys; done += 10 {
		for i, t := range targets {
			t.lat = append(t.lat, sessions[i].measure(min(10, keys-done))...)
		}
	}
	base := percentile(targets[0].lat, 0.99)
	for _, t := range targets {
		p50, p99, p999 := percentile(t.lat, 0.5), percentile(t.lat, 0.99), percentile(t.lat, 0.999)
		fmt.Printf("  %-26s p50 %7.3f ms  p99 %7.3f ms  p99.9 %7.3f ms", t.name, ms(p50), ms(p99), ms(p999))
		if t != targets[0] {
			fmt.Printf("  added p99 %+.3f ms (goal <= 1 ms)", ms(p99-base))
		}
		fmt.Println()
	}
}

// echoSession is a pty session running "cat >/dev/null": the terminal
// echoes what is typed.
type echoSession struct {
	c   *ssh.Client
	s   *ssh.Session
	in  io.WriteCloser
	out *bufio.Reader
}

func (b *bench) openEcho(addr string) *echoSession {
	c, err := ssh.Dial("tcp", addr, &ssh.ClientConfig{
		User: b.user, Auth: []ssh.AuthMethod{ssh.PublicKeys(b.signer)},
		HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 10 * time.Second,
	})
	must(err)
	s, err := c.NewSession()
	must(err)
	must(s.RequestPty("xterm", 24, 80, ssh.TerminalModes{ssh.ECHO: 1}))
	in, err := s.StdinPipe()
	must(err)
	out, err := s.StdoutPipe()
	must(err)
	must(s.Start("cat >/dev/null"))
	e := &echoSession{c: c, s: s, in: in, out: bufio.NewReader(out)}
	e.measure(20) // warm up
	return e
}

// measure types n keys at human-like intervals and returns how long each
// took to come back.
func (e *echoSession) measure(n int) []time.Duration {
	lat := make([]time.Duration, 0, n)
	for range n {
		k := byte('a' + mrand.IntN(26))
		t0 := time.Now()
		_, err := e.in.Write([]byte{k})
		must(err)
		for {
			c, err := e.out.ReadByte()
			must(err)
			if c == k {
				break
			}
		}
		lat = append(lat, time.Since(t0))
		time.Sleep(time.Duration(2+mrand.IntN(4)) * time.Millisecond)
	}
	return lat
}

func (e *echoSession) close() {
	e.in.Close()
	e.s.Close()
	e.c.Close()
}

func (b *bench) clientOpts() []string {
	return []string{"-F", "/dev/null", "-i", b.keyPath, "-o", "IdentitiesOnly=yes",
		"-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
		"-o", "BatchMode=yes", "-o", "LogLevel=ERROR"}
}

// writeTextFile writes mib MiB of printable text lines, like a log file:
// what a terminal session shows, so the recording is text too.
func writeTextFile(path string, mib int) {
	f, err := os.Create(path)
	must(err)
	w := bufio.NewWriterSize(f, 1<<20)
	r := mrand.New(mrand.NewPCG(1, 2))
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,:;-_/=+()[]"
	line := make([]byte, 0, 128)
	for n := 0; n < mib<<20; {
		line = line[:0]
		line = fmt.Appendf(line, "%08d ", n)
		for l := 40 + r.IntN(80); len(line) < l; {
			line = append(line, alphabet[r.IntN(len(alphabet))])
		}
		line = append(line, '\n')
		if n+len(line) > mib<<20 {
			line = line[:mib<<20-n]
		}
		w.Write(line)
		n += len(line)
	}
	must(w.Flush())
	must(f.Close())
}

type child struct {
	cmd  *exec.Cmd
	done chan struct{}
}

// pinning says which CPUs (taskset -c lists) each side runs on; "" for
// any.
type pinning struct{ server, recorder, client string }

var (
	pin          pinning
	recordBuffer string
)

// pinned is exec.Command, run through taskset when cpus is not "".
func pinned(cpus, name string, args ...string) *exec.Cmd {
	if cpus == "" {
		return exec.Command(name, args...)
	}
	return exec.Command("taskset", append([]string{"-c", cpus, name}, args...)...)
}

// start starts a server on cpus (see pinned) and returns its pid (taskset
// execs the server, so it keeps the pid).
func (b *bench) start(cpus, name string, args ...string) int {
	cmd := pinned(cpus, name, args...)
	logf, err := os.Create(filepath.Join(b.dir, filepath.Base(name)+"-"+fmt.Sprint(len(b.children))+".log"))
	must(err)
	cmd.Stdout, cmd.Stderr = logf, logf
	must(cmd.Start())
	c := &child{cmd: cmd, done: make(chan struct{})}
	go func() {
		cmd.Wait()
		logf.Close()
		close(c.done)
	}()
	b.children = append(b.children, c)
	return cmd.Process.Pid
}

// cpuTime returns the CPU time a process and its waited-for children
// (sessions, sshd's per-connection processes) have used.
func cpuTime(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the command name, which is in parentheses.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	var ticks int64
	for _, i := range []int{11, 12, 13, 14} { // utime stime cutime cstime
		var v int64
		fmt.Sscan(f[i], &v)
		ticks += v
	}
	return time.Duration(ticks) * time.Second / 100 // USER_HZ
}

func (b *bench) stop() {
	for _, c := range slices.Backward(b.children) {
		c.cmd.Process.Signal(os.Interrupt)
		select {
		case <-c.done:
		case <-time.After(15 * time.Second):
			c.cmd.Process.Kill()
			<-c.done
		}
	}
}

func waitListen(addr string) { must(load.WaitListen(addr, nil)) }

func freeAddr() string { return load.FreeAddr() }

func median(xs []float64) float64 { return load.Median(xs) }

func percentile(d []time.Duration, p float64) time.Duration { return load.Percentile(d, p) }

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func must(err error) {
	if err != nil {
		die("%v", err)
	}
}

// atExit runs before a fatal exit: it stops the servers and removes the
// scratch directory, which deferred calls would not do.
var atExit []func()

func die(format string, args ...any) {
	for _, f := range slices.Backward(atExit) {
		f()
	}
	log.Fatalf(format, args...)
}
