// Command reel records terminal sessions: it receives recordings from
// Tailscale nodes and reel's own senders, stores them, and lets reviewers
// list and replay them. Run "reel help" for the subcommands.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
)

// A command is one subcommand. Each lives in its own file and registers
// itself from an init function.
type command struct {
	name    string // as typed: "serve", "ls"
	summary string // one line for "reel help"
	// run executes the command. args excludes the subcommand name. It
	// returns a usageError for bad arguments (exit 2), any other error for
	// failure (exit 1).
	run func(ctx context.Context, env *cmdEnv, args []string) error
}

// cmdEnv is what a command may touch, so tests can run commands in process.
type cmdEnv struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
}

var commands = map[string]*command{}

func register(c *command) {
	if _, dup := commands[c.name]; dup {
		panic("reel: command registered twice: " + c.name)
	}
	commands[c.name] = c
}

// usageError is a mistake in how the command was called; it exits 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

// errSilent is returned by a command that has already told the user what
// went wrong; main exits 1 without printing more.
var errSilent = errors.New("silent failure")

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	env := &cmdEnv{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv}
	return dispatch(ctx, env, args)
}

func dispatch(ctx context.Context, env *cmdEnv, args []string) int {
	if len(args) == 0 {
		printHelp(env.stderr)
		return 2
	}
	name := args[0]
	switch name {
	case "help", "-h", "-help", "--help":
		if len(args) > 1 {
			if c := commands[args[1]]; c != nil {
				return exitCode(env, c.name, c.run(ctx, env, []string{"--help"}))
			}
		}
		printHelp(env.stdout)
		return 0
	case "version", "--version":
		fmt.Fprintln(env.stdout, "reel", version())
		return 0
	}
	c := commands[name]
	if c == nil {
		fmt.Fprintf(env.stderr, "reel: unknown command %q\n\n", name)
		printHelp(env.stderr)
		return 2
	}
	return exitCode(env, name, c.run(ctx, env, args[1:]))
}

func exitCode(env *cmdEnv, name string, err error) int {
	var ue usageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errSilent):
		return 1
	case errors.As(err, &ue):
		fmt.Fprintf(env.stderr, "reel %s: %s\nRun 'reel %s --help' for usage.\n", name, ue.msg, name)
		return 2
	default:
		fmt.Fprintf(env.stderr, "reel %s: %v\n", name, err)
		return 1
	}
}

func printHelp(w io.Writer) {
	fmt.Fprint(w, `reel records terminal sessions (SSH, kubectl exec) and replays them.

Usage: reel <command> [flags] [args]

Commands:
`)
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-12s %s\n", n, commands[n].summary)
	}
	fmt.Fprint(w, `
Run 'reel <command> --help' for a command's flags.
`)
}

// newFlagSet returns a FlagSet that prints usage (the text, then flags) to
// env.stdout on --help and reports parse errors as usage errors.
func newFlagSet(env *cmdEnv, name, usage string) *flag.FlagSet {
	fs := flag.NewFlagSet("reel "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {
		fs.SetOutput(env.stdout)
		fmt.Fprintln(env.stdout, strings.TrimSpace(usage))
		fmt.Fprintln(env.stdout, "\nFlags:")
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
	}
	return fs
}

// parseFlags parses args; --help prints usage and yields flag.ErrHelp,
// anything else wrong becomes a usageError.
func parseFlags(fs *flag.FlagSet, args []string) error {
	err := fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		return err // fs.Parse has printed the usage
	}
	if err != nil {
		return usageError{err.Error()}
	}
	return nil
}

// envOr returns the value of the first set environment variable in names,
// or def.
func envOr(env *cmdEnv, def string, names ...string) string {
	for _, n := range names {
		if v := env.getenv(n); v != "" {
			return v
		}
	}
	return def
}
