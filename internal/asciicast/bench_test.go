package asciicast

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"testing"
)

// benchStreams returns event-heavy streams shaped like what Tailscale's
// senders write (json.Marshal of []any{seconds, "o", string(chunk)}), about
// 8 MiB each.
func benchStreams() []struct {
	name string
	data []byte
} {
	build := func(chunks []string) []byte {
		h, _ := json.Marshal(map[string]any{"version": 2, "width": 80, "height": 24, "timestamp": 1700000000,
			"srcNode": "laptop.tail-scale.ts.net", "srcNodeID": "nX1", "env": map[string]string{"TERM": "xterm"},
			"sshUser": "root", "localUser": "root", "connectionID": "c1"})
		b := append(h, '\n')
		t := 12.345678
		for i := 0; len(b) < 8<<20; i++ {
			t += 0.000731
			ev, _ := json.Marshal([]any{t, "o", chunks[i%len(chunks)]})
			b = append(b, ev...)
			b = append(b, '\n')
		}
		return b
	}
	small := []string{"\x1b[1mhello\r\n", "l", "s", "\r\n", "$ ", "\x1b[K", "\x1b[32mok\x1b[0m\r\n"}
	mixed := []string{
		"\x1b[1mhello\r\n", "$ ", "l", "s", "\r\n",
		"total 48\r\ndrwxr-xr-x  5 root root 4096 Jan  1 12:00 \x1b[01;34m.\x1b[0m\r\n-rw-r--r--  1 root root  220 Jan  1 12:00 .bash_logout\r\n",
		"\x1b[?2004h\x1b]0;root@host: ~\x07root@host:~# ",
		"\x1b[H\x1b[2J  PID USER      PR  NI    VIRT    RES  %CPU %MEM     TIME+ COMMAND\r\n    1 root      20   0  167404  11904   0.0  0.3   0:02.10 systemd\r\n",
		"┌──────────┬──────────┐\r\n│ héllo    │ wörld    │\r\n└──────────┴──────────┘\r\n",
	}
	var large []string
	for i := range 4 {
		var sb strings.Builder
		for sb.Len() < 4000 {
			fmt.Fprintf(&sb, "\x1b[%d;1H\x1b[36m%6d\x1b[0m some log line with <html> & \"quotes\" and text %d\r\n", i, sb.Len(), i)
		}
		large = append(large, sb.String())
	}
	// bulk is `cat` of a log through a pty: 4 KiB reads of plain lines,
	// "\n" turned into "\r\n".
	var bulk []string
	var sb strings.Builder
	for i := 0; len(bulk) < 8; i++ {
		fmt.Fprintf(&sb, "Jan 12 10:%02d:%02d host sshd[%d]: Accepted publickey for user%d from 10.0.%d.%d port %d ssh2\r\n",
			i/60%60, i%60, 1000+i, i%7, i%256, i*7%256, 40000+i)
		if sb.Len() > 4000 {
			bulk = append(bulk, sb.String())
			sb.Reset()
		}
	}
	return []struct {
		name string
		data []byte
	}{
		{"small", build(small)},
		{"mixed", build(mixed)},
		{"large", build(large)},
		{"bulk", build(bulk)},
	}
}

// BenchmarkChecker measures the Checker on event-heavy streams written in
// 16 KiB pieces, as an HTTP/2 request body arrives (one DATA frame per
// read), and in 2 KiB pieces, where most long lines cross writes and take
// the streaming path.
func BenchmarkChecker(b *testing.B) {
	for _, s := range benchStreams() {
		for _, piece := range []int{16 << 10, 2 << 10} {
			b.Run(fmt.Sprintf("%s/%dKiB", s.name, piece>>10), func(b *testing.B) {
				b.SetBytes(int64(len(s.data)))
				b.ReportAllocs()
				cpu0, ok := cpuTime()
				for b.Loop() {
					var c Checker
					for p := s.data; len(p) > 0; {
						n := min(len(p), piece)
						c.Write(p[:n])
						p = p[n:]
					}
					if err := c.Finish(); err != nil {
						b.Fatal(err)
					}
				}
				// MB/s is wall time: on a shared machine, CPU time is the
				// steadier measure.
				if cpu1, _ := cpuTime(); ok && cpu1 > cpu0 {
					b.ReportMetric(float64(len(s.data))*float64(b.N)/(cpu1-cpu0).Seconds()/1e6, "cpu-MB/s")
				}
			})
		}
	}
}

func BenchmarkScanLine(b *testing.B) {
	for _, s := range benchStreams() {
		b.Run(s.name, func(b *testing.B) {
			lines := strings.Split(strings.TrimSuffix(string(s.data), "\n"), "\n")[1:]
			bl := make([][]byte, len(lines))
			n := 0
			for i, l := range lines {
				bl[i] = []byte(l)
				n += len(l) + 1
			}
			b.SetBytes(int64(n))
			for b.Loop() {
				for _, l := range bl {
					if sp, ok := scanLine(l, true); !ok || timeProblem(l[sp.time0:sp.time1], nil) != nil {
						b.Fatal("bad line")
					}
				}
			}
		})
	}
}

// BenchmarkAppendEvent is the encoder's cost per byte of event data, for
// the chunks of benchStreams: what a sender (reel ssh) spends per byte
// of terminal output.
func BenchmarkAppendEvent(b *testing.B) {
	for _, s := range benchStreams() {
		b.Run(s.name, func(b *testing.B) {
			var evs []Event
			n := 0
			d := NewDecoder(strings.NewReader(string(s.data)))
			if _, err := d.Header(); err != nil {
				b.Fatal(err)
			}
			for len(evs) < 2000 {
				e, err := d.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					b.Fatal(err)
				}
				evs = append(evs, e)
				n += len(e.Data)
			}
			b.SetBytes(int64(n))
			buf := make([]byte, 0, 64<<10)
			cpu0, ok := cpuTime()
			for b.Loop() {
				for _, e := range evs {
					buf = AppendEvent(buf[:0], e)
				}
			}
			// CPU time is the steadier measure on a shared machine.
			if cpu1, _ := cpuTime(); ok && cpu1 > cpu0 {
				b.ReportMetric(float64(n)*float64(b.N)/(cpu1-cpu0).Seconds()/1e6, "cpu-MB/s")
			}
		})
	}
}
