package web

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/reel-rec/reel/internal/testutil"
)

// TestDesktopInflateJS: the player's own DEFLATE decoder (desktop.js,
// run by node) inflates what Go's compress/flate makes at every level,
// for pixel-like and random data of many sizes, and damaged data makes it
// throw a "pixel data" error or give the expected length (never hang,
// never overrun: the CRC-32C of the record catches the rest).
func TestDesktopInflateJS(t *testing.T) {
	testutil.NeedTool(t, "node")
	rng := rand.New(rand.NewPCG(3, 4))
	var samples bytes.Buffer
	add := func(raw, comp []byte, bad bool) {
		samples.Write(binary.LittleEndian.AppendUint32(nil, uint32(len(raw))))
		samples.Write(binary.LittleEndian.AppendUint32(nil, uint32(len(comp))))
		if bad {
			samples.WriteByte(1)
		} else {
			samples.WriteByte(0)
		}
		samples.Write(raw)
		samples.Write(comp)
	}
	for i := 0; i < 120; i++ {
		n := []int{0, 1, 3, 384, 1 << 12, 70000, 300000}[i%7] + rng.IntN(50)
		raw := make([]byte, n)
		for j := range raw {
			switch i % 3 {
			case 0: // screen-like: runs and repeats
				if j >= 3 && rng.IntN(8) != 0 {
					raw[j] = raw[j-3]
				} else {
					raw[j] = byte(rng.IntN(4) * 60)
				}
			case 1:
				raw[j] = byte(rng.Uint32())
			default:
				raw[j] = byte(j / 97)
			}
		}
		for _, level := range []int{flate.HuffmanOnly, flate.NoCompression, flate.BestSpeed, 6, flate.BestCompression} {
			var c bytes.Buffer
			zw, _ := flate.NewWriter(&c, level)
			zw.Write(raw)
			zw.Close()
			add(raw, c.Bytes(), false)
			if c.Len() > 0 {
				bad := bytes.Clone(c.Bytes())
				bad[rng.IntN(len(bad))] ^= byte(1 << rng.IntN(8))
				add(raw, bad, true)
				add(raw, c.Bytes()[:rng.IntN(c.Len())], true)
			}
		}
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "samples.bin")
	if err := os.WriteFile(file, samples.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("node", "testdata/inflate.js", "assets/desktop.js", file).CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "good ") {
		t.Fatalf("node: %v\n%s", err, out)
	}
	t.Log(strings.TrimSpace(string(out)))
}
