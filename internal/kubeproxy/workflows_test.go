package kubeproxy_test

import (
	"archive/tar"
	"bytes"
	"crypto/rand"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/reel-rec/reel/internal/kubeproxy"
	"github.com/reel-rec/reel/internal/kubetest"
)

// TestAttachRunDebug: "kubectl attach", "kubectl run -i" and "kubectl
// debug -i" are attach sessions, recorded as such.
func TestAttachRunDebug(t *testing.T) {
	e := newEnv(t, envOptions{})
	rec := startRecorder(t)
	e.setPolicy(recordAll, rec.addr)
	kc := e.kubeconfig(kubeproxy.KubeconfigUser{Name: "bob", Token: bobToken})

	steps := []struct {
		name      string
		stdin     string
		args      []string
		want      string // in kubectl's output and in the recording
		container string
	}{
		{"attach", "echo attached-$((6*7))\nexit\n", []string{"attach", "-i", "test", "-c", "main"}, "attached-42", "main"},
		{"run", "", []string{"run", "-i", "--rm", "--restart=Never", "--image=busybox", "r1", "--", "sh", "-c", "echo ran-$((6*7))"}, "ran-42", "r1"},
		{"debug", "", []string{"debug", "-i", "test", "--image=busybox", "--", "sh", "-c", "echo debugged-$((6*7))"}, "debugged-42", "debugger-"},
	}
	for i, st := range steps {
		out, err := e.run(kc, kubetest.Options{WebSocket: true, Stdin: st.stdin}, st.args...)
		if err != nil || !strings.Contains(out, st.want) {
			t.Fatalf("%s: %v\n%s", st.name, err, out)
		}
		casts := rec.waitCasts(t, i+1)
		var c *cast
		for j := range casts {
			if strings.Contains(casts[j].output(t), st.want) {
				c = &casts[j]
			}
		}
		if c == nil {
			t.Fatalf("%s: no recording holds %q", st.name, st.want)
		}
		k := c.header.Kubernetes
		if k.SessionType != "attach" || !strings.HasPrefix(k.Container, st.container) || c.header.SrcNodeUser != "bob" {
			t.Errorf("%s: header %+v user %q", st.name, k, c.header.SrcNodeUser)
		}
		if strings.Contains(string(c.raw), "exit\\n") {
			t.Errorf("%s: stdin in the recording:\n%s", st.name, c.raw)
		}
	}
}

// TestCopyBinary: "kubectl cp" runs tar over exec; the recording keeps
// the tar stream byte for byte (invalid UTF-8 in "b" events), the
// recording stays valid asciicast, and the file arrives intact.
func TestCopyBinary(t *testing.T) {
	e := newEnv(t, envOptions{})
	rec := startRecorder(t)
	e.setPolicy(recordAll, rec.addr)
	kc := e.kubeconfig(kubeproxy.KubeconfigUser{Name: "alice", Token: aliceToken})
	data := make([]byte, 300<<10)
	rand.Read(data)
	copy(data, "text first: é € \n") // some valid UTF-8 too
	if err := os.WriteFile(filepath.Join(e.dir, "blob.bin"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	local := filepath.Join(t.TempDir(), "copy.bin")
	out, err := e.run(kc, kubetest.Options{WebSocket: true}, "cp", "test:blob.bin", local)
	if err != nil {
		t.Fatalf("kubectl cp: %v\n%s", err, out)
	}
	got, err := os.ReadFile(local)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("copied file differs (%d bytes, %v)", len(got), err)
	}
	c := rec.waitCasts(t, 1)[0]
	binary := 0
	for _, ev := range c.events {
		if ev.Code == "b" {
			binary++
		}
	}
	if binary == 0 {
		t.Errorf("no binary events in the recording of a binary copy")
	}
	tr := tar.NewReader(strings.NewReader(c.output(t)))
	h, err := tr.Next()
	if err != nil {
		t.Fatalf("the recorded output is not the tar stream: %v", err)
	}
	body, err := io.ReadAll(tr)
	if err != nil || h.Name != "blob.bin" || !bytes.Equal(body, data) {
		t.Errorf("recorded tar entry %q: %d bytes (%v), want blob.bin with the file's %d bytes", h.Name, len(body), err, len(data))
	}
}
