package main

import (
	"bytes"
	"context"
	"encoding/json"
	"image"
	"image/png"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/reel-rec/reel/internal/desktop"
	"github.com/reel-rec/reel/internal/testutil"
)

// writeDesktop writes a 10 s, 320×240 desktop recording: a square moves
// every 500 ms, the pointer follows it.
func writeDesktop(t *testing.T, path string) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc, err := desktop.NewEncoder(&buf, desktop.Header{Width: 320, Height: 240, Start: time.Unix(1700000000, 0), User: "alice"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	enc.KeyframeInterval = 3 * time.Second
	img := desktop.NewImage(320, 240)
	for i := range img.Pix {
		x, y := i%320, i/320
		img.Pix[i] = uint32(x*255/319)<<8 | uint32(y)
	}
	enc.Keyframe(0, img)
	enc.Cursor(0, &desktop.Cursor{W: 3, H: 3, Pix: []uint32{0xFFFF0000, 0xFFFF0000, 0xFFFF0000, 0xFFFF0000, 0, 0xFFFF0000, 0xFFFF0000, 0xFFFF0000, 0xFFFF0000}})
	for i := 1; i <= 20; i++ {
		at := time.Duration(i) * 500 * time.Millisecond
		r := desktop.Rect{X: 10 * i, Y: 5 * i, W: 40, H: 40}
		for y := r.Y; y < r.Y+r.H; y++ {
			for x := r.X; x < r.X+r.W; x++ {
				img.Pix[y*320+x] = uint32(i*12)<<16 | 0x3050
			}
		}
		if enc.NeedKeyframe(at) {
			enc.Keyframe(at, img)
		} else {
			enc.Region(at, img, r)
		}
		enc.Pointer(at, r.X, r.Y, 0)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

type probe struct {
	Streams []struct {
		CodecName    string `json:"codec_name"`
		Width        int    `json:"width"`
		Height       int    `json:"height"`
		NbReadFrames string `json:"nb_read_frames"`
	} `json:"streams"`
	Format struct {
		Duration string `json:"duration"`
	} `json:"format"`
}

func ffprobe(t *testing.T, file string) probe {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0",
		"-show_entries", "stream=codec_name,width,height,nb_read_frames", "-show_entries", "format=duration", "-of", "json", file).Output()
	if err != nil {
		t.Fatalf("ffprobe: %v", err)
	}
	var p probe
	if err := json.Unmarshal(out, &p); err != nil || len(p.Streams) != 1 {
		t.Fatalf("ffprobe output %s: %v", out, err)
	}
	return p
}

// reel export writes a video that ffprobe reads with the expected size,
// frame count and duration, whose frames ffmpeg decodes to the recorded
// screen (within JPEG's loss); --frame writes the exact screen as PNG.
func TestExportDesktop(t *testing.T) {
	testutil.NeedTool(t, "ffprobe")
	testutil.NeedTool(t, "ffmpeg")
	dir := t.TempDir()
	rec := filepath.Join(dir, "session.desk")
	data := writeDesktop(t, rec)
	ix, err := desktop.Scan(bytes.NewReader(data))
	if err != nil || len(ix.Keyframes) < 3 {
		t.Fatalf("scan: %v, %d keyframes", err, len(ix.Keyframes))
	}

	for _, tc := range []struct {
		name     string
		args     []string
		frames   int
		duration float64
	}{
		{"whole", nil, 101, 10.1},
		{"part", []string{"--from", "2s", "--to", "4.5"}, 26, 2.6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out.avi")
			args := append([]string{"export", "--fps", "10"}, tc.args...)
			res := reviewRun(t, nil, nil, append(args, rec, "--video", out)...)
			if res.Code != 0 {
				t.Fatalf("export: %+v", res)
			}
			if !strings.Contains(res.Stderr, "100% frame") {
				t.Errorf("no progress bar on stderr: %q", res.Stderr)
			}
			p := ffprobe(t, out)
			s := p.Streams[0]
			if s.CodecName != "mjpeg" || s.Width != 320 || s.Height != 240 || s.NbReadFrames != strconv.Itoa(tc.frames) {
				t.Errorf("stream %+v, want mjpeg 320x240 with %d frames", s, tc.frames)
			}
			if d, _ := strconv.ParseFloat(p.Format.Duration, 64); d < tc.duration-0.15 || d > tc.duration+0.15 {
				t.Errorf("duration %s, want %.1f", p.Format.Duration, tc.duration)
			}
			// Frame 7 of the video is the screen at from + 700 ms.
			from := map[string]time.Duration{"whole": 0, "part": 2 * time.Second}[tc.name]
			png := filepath.Join(t.TempDir(), "f.png")
			if out, err := exec.Command("ffmpeg", "-v", "error", "-i", out, "-vf", `select=eq(n\,7)`, "-frames:v", "1", png).CombinedOutput(); err != nil {
				t.Fatalf("ffmpeg: %v\n%s", err, out)
			}
			want, err := desktop.FrameAt(bytes.NewReader(data), ix, from+700*time.Millisecond)
			if err != nil {
				t.Fatal(err)
			}
			// JPEG (4:2:0) blurs colour edges: the tolerance is a mean
			// channel error of 2.5 and at most 1% of channels off by more
			// than 48.
			_, mean, far := channelDiff(t, readPNG(t, png), want.Composite())
			if mean > 2.5 || far > 0.01 {
				t.Errorf("video frame differs from the recording: mean channel error %.2f, %.2f%% far off", mean, 100*far)
			}
		})
	}

	t.Run("frame", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "f.png")
		if res := reviewRun(t, nil, nil, "export", "--frame", "3.2", "--png", out, rec); res.Code != 0 {
			t.Fatalf("export: %+v", res)
		}
		want, _ := desktop.FrameAt(bytes.NewReader(data), ix, 3200*time.Millisecond)
		if worst, _, _ := channelDiff(t, readPNG(t, out), want.Composite()); worst != 0 {
			t.Errorf("PNG frame differs from the recording (worst channel difference %d)", worst)
		}
		// The pointer is drawn: red at its position (60, 30 since 3 s).
		if c := want.Composite().Pix[30*320+60]; c != 0xFF0000 {
			t.Errorf("pointer not drawn: %06x", c)
		}
	})
	t.Run("errors", func(t *testing.T) {
		for _, args := range [][]string{
			{"export", rec},
			{"export", "--frame", "1", rec},
			{"export", "--video", "x.avi", "--fps", "0", rec},
			{"export", "--from", "5s", "--to", "2s", "--video", "x.avi", rec},
		} {
			if res := reviewRun(t, nil, nil, args...); res.Code != 2 {
				t.Errorf("%v: %+v, want usage error", args, res)
			}
		}
	})
}

func readPNG(t *testing.T, path string) image.Image {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// channelDiff compares colour channels: the worst difference, the mean,
// and the fraction that differ by more than 48.
func channelDiff(t *testing.T, got image.Image, want *desktop.Image) (int, float64, float64) {
	t.Helper()
	b := got.Bounds()
	if b.Dx() != want.W || b.Dy() != want.H {
		t.Fatalf("image %v, want %dx%d", b, want.W, want.H)
	}
	worst, sum, far := 0, 0, 0
	for y := 0; y < want.H; y++ {
		for x := 0; x < want.W; x++ {
			r, g, bl, _ := got.At(b.Min.X+x, b.Min.Y+y).RGBA()
			w := want.Pix[y*want.W+x]
			for _, d := range []int{int(r>>8) - int(w>>16&255), int(g>>8) - int(w>>8&255), int(bl>>8) - int(w&255)} {
				d = max(d, -d)
				worst = max(worst, d)
				sum += d
				if d > 48 {
					far++
				}
			}
		}
	}
	n := float64(3 * want.W * want.H)
	return worst, float64(sum) / n, float64(far) / n
}

// TestPlayCatDesktop: reel play and reel cat, given a desktop recording
// (by key, by path, renamed to .cast, or on standard input), say what to
// use instead of failing as asciicast would; they still play a terminal
// recording, from standard input too.
func TestPlayCatDesktop(t *testing.T) {
	dst := t.TempDir()
	os.MkdirAll(filepath.Join(dst, "node1"), 0o755)
	const key = "node1/2026-12-03T14-00-00.000000000Z.desk"
	path := filepath.Join(dst, filepath.FromSlash(key))
	data := writeDesktop(t, path)
	renamed := filepath.Join(t.TempDir(), "screen.cast")
	os.WriteFile(renamed, data, 0o644)
	for _, cmd := range []string{"play", "cat"} {
		for _, tc := range []struct {
			arg   string
			stdin []byte
		}{{key, nil}, {path, nil}, {renamed, nil}, {"-", data}} {
			args := []string{cmd, "--dst", dst, tc.arg}
			if cmd == "play" {
				args = []string{cmd, "-n", "--dst", dst, tc.arg}
			}
			res := reviewRun(t, bytes.NewReader(tc.stdin), nil, args...)
			want := "is a desktop recording: use reel export " + tc.arg + " --video FILE or the web UI"
			if res.Code != 1 || !strings.Contains(res.Stderr, want) || res.Stdout != "" || strings.Contains(res.Stderr, "asciicast") {
				t.Errorf("reel %s %s: %+v; want exit 1 and %q", cmd, tc.arg, res, want)
			}
		}
		cast := `{"version":2,"width":80,"height":24}` + "\n" + `[0.5,"o","hello from a pipe\r\n"]` + "\n"
		args := []string{cmd, "-"}
		if cmd == "play" {
			args = []string{cmd, "-n", "-"}
		}
		if res := reviewRun(t, strings.NewReader(cast), nil, args...); res.Code != 0 || !strings.Contains(res.Stdout, "hello from a pipe") {
			t.Errorf("reel %s - of a terminal recording: %+v", cmd, res)
		}
	}
}

// TestRecordingSeeks: a recording opened from a file or from the store
// can be seeked (reel export reads a desktop recording from a keyframe
// on, not whole into memory); standard input cannot.
func TestRecordingSeeks(t *testing.T) {
	dst := t.TempDir()
	os.MkdirAll(filepath.Join(dst, "node1"), 0o755)
	const key = "node1/2026-12-03T14-00-00.000000000Z.desk"
	path := filepath.Join(dst, filepath.FromSlash(key))
	data := writeDesktop(t, path)
	env := &cmdEnv{stdin: bytes.NewReader(data), stdout: io.Discard, stderr: io.Discard, getenv: func(string) string { return "" }}
	sf := &storeFlags{dst: dst, env: env}
	for _, arg := range []string{key, path, "-"} {
		rec, err := openRecording(context.Background(), env, sf, arg)
		if err != nil {
			t.Fatal(err)
		}
		rs, ok := rec.r.(io.Seeker)
		var end int64 = -1
		if ok {
			end, err = rs.Seek(0, io.SeekEnd)
		}
		switch {
		case arg == "-" && ok && err == nil:
			t.Errorf("standard input seeked to %d", end)
		case arg != "-" && end != int64(len(data)):
			t.Errorf("%s: seek to the end: %d, %v; want %d", arg, end, err, len(data))
		}
		rec.Close()
	}
}
