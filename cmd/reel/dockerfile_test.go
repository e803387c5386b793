package main

import (
	"bufio"
	"context"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestDockerfile checks the image definition without a Docker engine
// (none runs here): BuildKit's own Dockerfile parser and build checks
// pass (deploy/dockerlint), and the exact build command of the image's
// build stage makes a static binary that runs as reel and, linked as
// /tsrecorder is, as "reel serve --tailnet".
func TestDockerfile(t *testing.T) {
	if testing.Short() {
		t.Skip("builds reel and BuildKit's linter")
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	dockerfile := filepath.Join(root, "Dockerfile")

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	lint := exec.CommandContext(ctx, "go", "run", ".", dockerfile)
	lint.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	lint.Dir = filepath.Join(root, "deploy", "dockerlint")
	if out, err := lint.CombinedOutput(); err != nil {
		t.Errorf("dockerlint: %v\n%s", err, out)
	}

	f, err := os.Open(dockerfile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var build string
	for sc := bufio.NewScanner(f); sc.Scan(); {
		if line := sc.Text(); strings.HasPrefix(line, "RUN ") && strings.Contains(line, "go build") {
			build = strings.TrimPrefix(line, "RUN ")
		}
	}
	const out = "/out/bin/reel"
	if !strings.Contains(build, "CGO_ENABLED=0") || !strings.Contains(build, "-o "+out) {
		t.Fatalf("the Dockerfile's build command %q: want CGO_ENABLED=0 and -o %s", build, out)
	}
	bin := filepath.Join(t.TempDir(), "reel")
	words := shellWords(strings.Replace(build, "-o "+out, "-o "+bin, 1))
	var env []string
	for len(words) > 0 && strings.Contains(words[0], "=") {
		env, words = append(env, words[0]), words[1:]
	}
	cmd := exec.Command(words[0], words[1:]...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Dir = root
	// The build goes with the test if it is killed (a timeout).
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", build, err, b)
	}
	ef, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ef.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("the binary is not static: it has a %v program header", p.Type)
		}
	}
	ef.Close()
	if b, err := exec.Command(bin, "version").CombinedOutput(); err != nil || !strings.HasPrefix(string(b), "reel ") {
		t.Errorf("reel version: %v %q", err, b)
	}
	tsr := filepath.Join(filepath.Dir(bin), "tsrecorder")
	if err := os.Symlink("reel", tsr); err != nil {
		t.Fatal(err)
	}
	b, err := exec.Command(tsr, "--help").CombinedOutput()
	if err != nil || !strings.Contains(string(b), "Usage: reel serve") {
		t.Errorf("tsrecorder --help: %v\n%s", err, b)
	}
}

// shellWords splits a simple shell command line: words separated by
// spaces, double quotes grouping (and removed).
func shellWords(s string) []string {
	var words []string
	var cur strings.Builder
	in, quoted := false, false
	for _, r := range s {
		switch {
		case r == '"':
			quoted, in = !quoted, true
		case r == ' ' && !quoted:
			if in {
				words = append(words, cur.String())
				cur.Reset()
				in = false
			}
		default:
			cur.WriteRune(r)
			in = true
		}
	}
	if in {
		words = append(words, cur.String())
	}
	return words
}
