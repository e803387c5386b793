package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// prompt is a Debian-style bash prompt: window title (OSC 0), colours.
const prompt = `\[\e]0;\u@reelhost: \w\a\]\[\e[01;32m\]\u@reelhost\[\e[00m\]:\[\e[01;34m\]\w\[\e[00m\]\$ `

// titleMark appears once per prompt.
const titleMark = "\x1b]0;"

func runShell(s *session) error {
	if err := makeRepo(s.dir); err != nil {
		return err
	}
	if err := s.startCmd([]string{"bash", "--norc", "--noprofile", "-i"}, "PS1="+prompt, "HISTFILE=/dev/null"); err != nil {
		return err
	}
	prompts := 1
	if err := s.waitCount(titleMark, prompts); err != nil {
		return err
	}
	services := "/etc/services"
	if _, err := os.Stat(services); err != nil {
		services = "/etc/passwd"
	}
	commands := []string{
		"ls -la --color=always /usr/bin | head -70",
		"cat " + services + " | head -150",
		"grep -n --color=always -E 'tcp|udp' " + services + " | head -60",
		"cd repo && git --no-pager log --stat --color=always -n 12; cd ..",
		"ps aux | head -40",
		"df -h",
		"echo $(seq 1 400)",
		"for i in $(seq 0 4 100); do printf '\\rdownloading package-1.2.3.tar.gz %3d%%' $i; sleep 0.002; done; echo",
		"printf 'h\\303\\251llo w\\303\\266rld \\342\\234\\223 \\346\\227\\245\\346\\234\\254\\350\\252\\236\\n'",
		"RESIZE 120 35",
		"ls --color=always -l /etc | head -50",
		"dmesg 2>/dev/null | tail -20; uname -a; id; date -u -d @1767225600",
		"clear",
		"env | sort | head -30",
		"cat /etc/os-release",
	}
	for round := 0; round < 3; round++ {
		for _, c := range commands {
			if strings.HasPrefix(c, "RESIZE ") {
				var cols, rows int
				fmt.Sscanf(c, "RESIZE %d %d", &cols, &rows)
				if round%2 == 1 {
					cols, rows = cols-20, rows-5
				}
				if err := s.resize(cols, rows); err != nil {
					return err
				}
				continue
			}
			s.think(1 + 4*s.rnd.Float64())
			if err := s.typeText(c + "\r"); err != nil {
				return err
			}
			prompts++
			if err := s.waitCount(titleMark, prompts); err != nil {
				return fmt.Errorf("after %q: %w", c, err)
			}
		}
	}
	return s.typeText("exit\r")
}

// makeRepo makes a git repository with a history to show.
func makeRepo(dir string) error {
	repo := filepath.Join(dir, "repo")
	run := func(args ...string) error {
		cmd := exec.Command("git", args...)
		cmd.Dir = repo
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=Alice Example", "GIT_AUTHOR_EMAIL=alice@example.com",
			"GIT_COMMITTER_NAME=Alice Example", "GIT_COMMITTER_EMAIL=alice@example.com",
			"GIT_AUTHOR_DATE=2026-01-01T00:00:00Z", "GIT_COMMITTER_DATE=2026-01-01T00:00:00Z", "HOME="+dir)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("git %s: %v: %s", strings.Join(args, " "), err, out)
		}
		return nil
	}
	if err := os.MkdirAll(repo, 0o755); err != nil {
		return err
	}
	if _, err := exec.LookPath("git"); err != nil {
		return nil // the log command prints an error instead: still output
	}
	if err := run("init", "-q"); err != nil {
		return err
	}
	subjects := []string{"recorder: ack every 5 s while idle", "store: fsync the directory after rename",
		"policy: explain which rule matched", "ssh: refuse sessions when no recorder answers",
		"asciicast: accept the Kubernetes resize quirk", "ui: keyset pagination of the list",
		"index: rebuild from the store with a progress bar", "docs: storage layout"}
	for i := range 16 {
		name := fmt.Sprintf("pkg%d/file%d.go", i%4, i)
		os.MkdirAll(filepath.Join(repo, filepath.Dir(name)), 0o755)
		body := strings.Repeat(fmt.Sprintf("// line of change %d\n", i), 5+i*3)
		if err := os.WriteFile(filepath.Join(repo, name), []byte(body), 0o644); err != nil {
			return err
		}
		if err := run("add", "."); err != nil {
			return err
		}
		if err := run("commit", "-q", "-m", subjects[i%len(subjects)]+fmt.Sprintf(" (#%d)", 100+i)); err != nil {
			return err
		}
	}
	return nil
}

func runTop(s *session) error {
	// Frames 0.2 s apart, recorded 3 s apart (scale 15).
	if err := s.startCmd([]string{"top", "-d", "0.2", "-n", "60", "-w", "200"}); err != nil {
		return err
	}
	return nil // finish waits for the 60 frames
}

func runVim(s *session) error {
	file := filepath.Join(s.dir, "notes.txt")
	var b strings.Builder
	for i := range 80 {
		fmt.Fprintf(&b, "%03d incident notes: restarted the ingest worker on node-%d after the disk filled up\n", i, i%7)
	}
	if err := os.WriteFile(file, []byte(b.String()), 0o644); err != nil {
		return err
	}
	args := []string{s.prog, "-u", "NONE", "-N", "-i", "NONE", "-n", "notes.txt"}
	if err := s.startCmd(args); err != nil {
		return err
	}
	if err := s.waitCount("notes.txt", 1); err != nil {
		return err
	}
	keys := []string{
		":set number\r", "G", "o", "The fix: rotate logs hourly and alert at 80% disk usage.\r",
		"Follow-up: add a runbook entry for the ingest worker.", "\x1b",
		"gg", "/node-3\r", "n", "n", "dd", "u", ":%s/disk/volume/g\r",
		"\x06", "\x06", "\x02", "50G", "A  (checked)\x1b", ":wq\r",
	}
	for _, k := range keys {
		s.think(0.5 + s.rnd.Float64())
		if err := s.typeText(k); err != nil {
			return err
		}
		time.Sleep(20 * time.Millisecond) // let vim draw between commands
	}
	return nil
}

func runLogs(s *session) error {
	logFile := filepath.Join(s.dir, "app.log")
	if err := os.WriteFile(logFile, nil, 0o644); err != nil {
		return err
	}
	if err := s.startCmd([]string{"tail", "-n", "0", "-F", "app.log"}); err != nil {
		return err
	}
	f, err := os.OpenFile(logFile, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	levels := []string{"INFO", "INFO", "INFO", "DEBUG", "WARN", "ERROR"}
	paths := []string{"/api/v1/recordings", "/api/v1/search", "/v2/record", "/healthz", "/api/v1/users/42"}
	const total = 12000
	for i := 0; i < total; {
		var b strings.Builder
		burst := 1 + s.rnd.IntN(60)
		for j := 0; j < burst && i < total; j, i = j+1, i+1 {
			lvl := levels[s.rnd.IntN(len(levels))]
			fmt.Fprintf(&b, "2026-01-01T%02d:%02d:%02d.%03dZ %-5s reel[%d]: request id=%08x method=GET path=%s status=%d dur=%dms bytes=%d\n",
				i/3600%24, i/60%60, i%60, s.rnd.IntN(1000), lvl, 1000+s.rnd.IntN(50), s.rnd.Uint32(),
				paths[s.rnd.IntN(len(paths))], []int{200, 200, 200, 304, 404, 500}[s.rnd.IntN(6)], s.rnd.IntN(900), s.rnd.IntN(1<<16))
			if lvl == "ERROR" {
				fmt.Fprintf(&b, "goroutine %d [running]:\n\tgithub.com/reel-rec/reel/internal/recorder.(*Server).handle(0x%x)\n", s.rnd.IntN(900), s.rnd.Uint32())
			}
		}
		if _, err := f.WriteString(b.String()); err != nil {
			return err
		}
		time.Sleep(2 * time.Millisecond)
	}
	if _, err := f.WriteString("2026-01-01T23:59:59.999Z INFO  reel[1]: END OF LOG\n"); err != nil {
		return err
	}
	if err := s.waitCount("END OF LOG", 1); err != nil {
		return err
	}
	return s.typeText("\x03")
}

func runBulk(s *session) error {
	script := "seq 1 120000; yes 'the quick brown fox jumps over the lazy dog' | head -n 20000; " +
		"for f in /usr/share/common-licenses/*; do head -c 60000 \"$f\"; done 2>/dev/null"
	return s.startCmd([]string{"bash", "--norc", "--noprofile", "-c", script})
}
