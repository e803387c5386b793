// Package load holds what reel's load tools share: the recording they
// upload, split into lines once (senders write one event line per write,
// as Tailscale's do, without scanning for newlines on the hot path), and
// small helpers for ports, statistics and process memory.
package load

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
)

// Header is the first line of every generated recording.
const Header = `{"version":2,"width":200,"height":50,"timestamp":1700000000,"srcNode":"bench","srcNodeID":"nBENCH","sshUser":"alice","localUser":"root","connectionID":"c","env":{"TERM":"xterm"}}` + "\n"

// Lines builds one recording of about mib MiB: the header, then output
// events of 40 to 4,040 random letters with some newlines, each line ending
// in '\n'. The same seed gives the same recording.
func Lines(mib int, seed uint64) [][]byte {
	r := rand.New(rand.NewPCG(seed, 1))
	lines := [][]byte{[]byte(Header)}
	size, at := len(Header), 0.0
	for size < mib<<20 {
		at += r.Float64() / 100
		text := make([]byte, 40+r.IntN(4000))
		for i := range text {
			text[i] = 'a' + byte(r.IntN(26))
			if r.IntN(60) == 0 {
				text[i] = '\n'
			}
		}
		ev, _ := json.Marshal([]any{float64(int(at*1e6)) / 1e6, "o", string(text)})
		lines = append(lines, append(ev, '\n'))
		size += len(ev) + 1
	}
	return lines
}

// Size is the total length of lines.
func Size(lines [][]byte) int {
	n := 0
	for _, l := range lines {
		n += len(l)
	}
	return n
}

// FreeAddr returns a loopback address nobody listens on right now.
func FreeAddr() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// Dial is a plain TCP dialer in the shape sessionrecording wants.
func Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, network, addr)
}

// Median of v (the upper one for an even count).
func Median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

// RSS is a process's resident set size in bytes, from /proc.
func RSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.Fields(v)[0], 10, 64)
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("no VmRSS for pid %d", pid)
}
