package main

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/reel-rec/reel/internal/testutil"
)

// asciinemaCasts are recordings as senders stream them: Tailscale SSH's
// header, a Kubernetes one with its HEIGHTxWIDTH resizes, every event code,
// escape sequences, wide characters, long pauses, many events.
func asciinemaCasts() map[string]string {
	many := []string{`{"version":2,"width":100,"height":30,"timestamp":1793527200,"env":{"TERM":"xterm-256color","SHELL":"/bin/bash"}}`}
	for i := range 2000 {
		many = append(many, fmt.Sprintf(`[%d.%03d,"o","line %d: %s\r\n"]`, i/1000, i%1000, i, strings.Repeat("=+", i%70)))
	}
	return map[string]string{
		"tailscale-ssh": castLines(
			`{"version":2,"width":80,"height":24,"timestamp":1793527200,"srcNode":"laptop.tail0.ts.net","srcNodeID":"nLAPTOP","srcNodeTags":["tag:dev"],"srcNodeUserID":42,"srcNodeUser":"alice@example.com","env":{"TERM":"xterm-256color"},"sshUser":"alice","localUser":"ubuntu","connectionID":"ssh-session-1","command":"bash -l"}`,
			`[0.05,"o","\u001b[?2004h\u001b]0;alice@host: ~\u0007\u001b[01;32malice@host\u001b[00m:\u001b[01;34m~\u001b[00m$ "]`,
			`[1.5,"i","ls -l\r"]`,
			`[1.6,"o","ls -l\r\n\u001b[?2004l\rtotal 4\r\n-rw-r--r-- 1 alice alice 12 Nov  1 10:00 héllo wörld 🎬.txt\r\n"]`,
			`[2,"m","listing done"]`,
			`[2.2,"r","100x40"]`,
			`[62.2,"o","\tcol1\tcol2\bX\r\n"]`,
			`[63,"o","\u001b[?2004l\r\r\nlogout\r\n"]`,
		),
		"kubernetes-exec": castLines(
			`{"version":2,"width":80,"height":24,"timestamp":1793527300,"srcNode":"ws.tail0.ts.net","srcNodeID":"nWS","srcNodeUser":"carol@example.com","env":{},"sshUser":"","localUser":"","connectionID":"","kubernetes":{"PodName":"web-0","Namespace":"prod","Container":"app","SessionType":"exec"}}`,
			`[0.1,"o","# "]`,
			`[0.5,"r","40x132"]`,
			`[30,"o","cat /etc/os-release\r\nNAME=\"Debian GNU/Linux\"\r\n# "]`,
			`[31,"o","exit\r\n"]`,
		),
		"many-events": castLines(many...),
	}
}

// TestAsciinemaPlaysStoredRecordings: what reel serve stores plays in the
// real asciinema (Debian's 2.2.0), both "asciinema play" and "asciinema cat",
// and shows exactly the text "reel cat" and "reel play" show.
func TestAsciinemaPlaysStoredRecordings(t *testing.T) {
	asciinema := testutil.NeedTool(t, "asciinema")
	script := testutil.NeedTool(t, "script")

	dst := t.TempDir()
	p := startServe(t, dst)
	ap := netip.MustParseAddrPort(p.addr)
	var d net.Dialer
	casts := asciinemaCasts()
	keyOf := map[string]string{}
	for name, body := range casts {
		if err := sendcast(ap, d.DialContext, []byte(body)); err != nil {
			t.Fatalf("sending %s: %v", name, err)
		}
		files, _ := filepath.Glob(filepath.Join(dst, "*", "*.cast"))
		keyOf[name] = files[len(files)-1] // the newest, on the one node
	}
	// And recordings the store closed out itself: one interrupted (cut at
	// its last complete line), one complete.
	ts := newTestStore(t)
	keyOf["store-interrupted"] = filepath.Join(ts.dir, ts.keys["root"])
	keyOf["store-ssh"] = filepath.Join(ts.dir, ts.keys["ssh"])

	for name, file := range keyOf {
		t.Run(name, func(t *testing.T) {
			if body, ok := casts[name]; ok {
				if stored := readFile(t, file); stored != body {
					t.Fatalf("stored bytes differ from what was sent")
				}
			}
			want := reviewRun(t, nil, nil, "cat", file)
			if want.Code != 0 || want.Stdout == "" {
				t.Fatalf("reel cat: %+v", want)
			}
			played := reviewRun(t, nil, nil, "play", "-n", file)
			if diff := cmp.Diff(want.Stdout, played.Stdout); diff != "" {
				t.Errorf("reel play -n differs from reel cat (-cat +play)\n%s", diff)
			}

			start := time.Now()
			out, stderr, err := runTool(asciinema, "play", "-i", "0.1", file)
			if err != nil {
				t.Fatalf("asciinema play: %v\n%s", err, stderr)
			}
			if diff := cmp.Diff(want.Stdout, out); diff != "" {
				t.Errorf("asciinema play differs from reel cat (-reel +asciinema)\n%s", diff)
			}
			t.Logf("asciinema play took %v", time.Since(start).Round(time.Millisecond))

			// asciinema cat insists on a terminal: script(1) gives it one.
			out, stderr, err = runTool(script, "-qc", "asciinema cat "+shellQuote(file), "/dev/null")
			if err != nil {
				t.Fatalf("asciinema cat: %v\n%s", err, stderr)
			}
			if diff := cmp.Diff(want.Stdout, out); diff != "" {
				t.Errorf("asciinema cat differs from reel cat (-reel +asciinema)\n%s", diff)
			}
		})
	}
}

func runTool(name string, args ...string) (stdout, stderr string, err error) {
	cmd := exec.Command(name, args...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	// A config directory of its own: asciinema makes an install ID in its
	// config directory on first use, and parallel runs racing to make the
	// first one failed ("no install ID found").
	cfg, err := os.MkdirTemp("", "asciinema-config-")
	if err != nil {
		return "", "", err
	}
	defer os.RemoveAll(cfg)
	cmd.Env = append(os.Environ(), "TERM=xterm-256color", "LANG=C.UTF-8", "LC_ALL=C.UTF-8", "ASCIINEMA_CONFIG_HOME="+cfg)
	err = cmd.Run()
	return o.String(), e.String(), err
}

// shellQuote quotes s for sh.
func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
