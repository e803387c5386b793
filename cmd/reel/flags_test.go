package main

import (
	"regexp"
	"slices"
	"strings"
	"testing"
)

// commandPaths are the commands to call, with their subcommands.
func commandPaths() [][]string {
	var paths [][]string
	for name, c := range commands {
		if len(c.subs) > 0 {
			for _, sub := range c.subs {
				paths = append(paths, []string{name, sub})
			}
			continue
		}
		paths = append(paths, []string{name})
	}
	slices.SortFunc(paths, func(a, b []string) int { return strings.Compare(strings.Join(a, " "), strings.Join(b, " ")) })
	return paths
}

// TestFlagMistakes: every command answers a mistyped flag with one line in
// --flag spelling and a hint, on stderr, and exit status 2; never the whole
// usage, never on stdout.
func TestFlagMistakes(t *testing.T) {
	for _, path := range commandPaths() {
		name := strings.Join(path, " ")
		t.Run(name, func(t *testing.T) {
			got := reviewRun(t, nil, nil, append(path, "--port", "8080")...)
			want := reviewResult{Code: 2, Stderr: "reel " + name + ": unknown flag --port\nRun 'reel " + name + " --help' for usage.\n"}
			if got != want {
				t.Errorf("reel %s --port 8080:\n got %+v\nwant %+v", name, got, want)
			}
			got = reviewRun(t, nil, nil, append(path, "-x")...)
			if got.Code != 2 || got.Stdout != "" || !strings.HasPrefix(got.Stderr, "reel "+name+": unknown flag --x\n") {
				t.Errorf("reel %s -x: %+v", name, got)
			}
		})
	}
}

// TestHelp: every command's --help goes to stdout, exits 0, and spells its
// flags --flag with a placeholder.
func TestHelp(t *testing.T) {
	singleDash := regexp.MustCompile(`(?m)^\s+-[a-z]`)
	for _, path := range commandPaths() {
		name := strings.Join(path, " ")
		t.Run(name, func(t *testing.T) {
			got := reviewRun(t, nil, nil, append(path, "--help")...)
			if got.Code != 0 || got.Stderr != "" || !strings.Contains(got.Stdout, "Usage:") {
				t.Fatalf("reel %s --help: %+v", name, got)
			}
			if m := singleDash.FindString(got.Stdout); m != "" {
				t.Errorf("reel %s --help spells a flag with one dash: %q\n%s", name, m, got.Stdout)
			}
			if strings.Contains(got.Stdout, " string\n") || strings.Contains(got.Stdout, " value\n") {
				t.Errorf("reel %s --help names a value by its Go type:\n%s", name, got.Stdout)
			}
		})
	}
}

// TestReadOnlyFlags: the reviewer commands offer the S3 flags that reading
// needs, not the recorder's spool and upload flags.
func TestReadOnlyFlags(t *testing.T) {
	for _, cmd := range []string{"ls", "play", "cat"} {
		got := reviewRun(t, nil, nil, cmd, "--help")
		for _, f := range []string{"--bucket", "--s3-region", "--s3-prefix"} {
			if !strings.Contains(got.Stdout, "\n  "+f+" ") {
				t.Errorf("reel %s --help does not offer %s", cmd, f)
			}
		}
		for _, f := range []string{"--s3-spool-max", "--s3-uploaders", "--s3-create-bucket"} {
			if strings.Contains(got.Stdout, f) {
				t.Errorf("reel %s --help offers the recorder's %s", cmd, f)
			}
		}
		if got := reviewRun(t, nil, nil, cmd, "--s3-spool-max", "1GiB", "x"); got.Code != 2 || !strings.Contains(got.Stderr, "unknown flag --s3-spool-max") {
			t.Errorf("reel %s --s3-spool-max: %+v", cmd, got)
		}
	}
}

func TestHelpListsVersion(t *testing.T) {
	got := reviewRun(t, nil, nil, "help")
	if !regexp.MustCompile(`(?m)^  version +print reel's version$`).MatchString(got.Stdout) {
		t.Errorf("reel help does not list version:\n%s", got.Stdout)
	}
	for _, args := range [][]string{{"version"}, {"--version"}} {
		if got := reviewRun(t, nil, nil, args...); got.Code != 0 || !strings.HasPrefix(got.Stdout, "reel ") {
			t.Errorf("reel %v: %+v", args, got)
		}
	}
}
