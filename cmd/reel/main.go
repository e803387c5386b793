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
	// subs are the subcommands ("policy check"), if the command has them.
	subs []string
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

// subUsageError is a usageError about a subcommand ("policy check"), whose
// name the message and hint use.
type subUsageError struct {
	usageError
	cmd string
}

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

// errSilent is returned by a command that has already told the user what
// went wrong; main exits 1 without printing more.
var errSilent = errors.New("silent failure")

func main() {
	os.Exit(run(asTsrecorder(os.Args[0], os.Args[1:])))
}

// run runs the command args name. SIGINT (Ctrl-C) and SIGTERM cancel the
// command's context: every command stops on them (the servers after their
// graceful shutdown) and, if that cut it short, exits 128 + the signal's
// number, as a shell reports a process the signal ended (130, 143).
func run(args []string) int {
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	sigc := make(chan os.Signal, 1)
	signal.Notify(sigc, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigc)
	go func() {
		select {
		case sig := <-sigc:
			cancel(signalError{sig.(syscall.Signal)})
		case <-ctx.Done():
		}
	}()
	env := &cmdEnv{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv}
	return dispatch(ctx, env, args)
}

// signalError is the cause of a context a signal cancelled.
type signalError struct{ sig syscall.Signal }

func (e signalError) Error() string { return "interrupted by " + e.sig.String() }

// interrupted returns the signal that cancelled ctx, if one did.
func interrupted(ctx context.Context) (syscall.Signal, bool) {
	var se signalError
	if errors.As(context.Cause(ctx), &se) {
		return se.sig, true
	}
	return 0, false
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
				return exitCode(ctx, env, c.name, c.run(ctx, env, []string{"--help"}))
			}
		}
		printHelp(env.stdout)
		return 0
	case "--version":
		name = "version"
	}
	c := commands[name]
	if c == nil {
		fmt.Fprintf(env.stderr, "reel: unknown command %q\n\n", name)
		printHelp(env.stderr)
		return 2
	}
	return exitCode(ctx, env, name, c.run(ctx, env, args[1:]))
}

// exitCode reports err and returns the exit code for it.
func exitCode(ctx context.Context, env *cmdEnv, name string, err error) int {
	var ue usageError
	var sue subUsageError
	sig, sigOK := interrupted(ctx)
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case sigOK:
		// The user stopped the command: saying so again is noise, but an
		// error of its own (a server's failed shutdown) is shown.
		if !errors.Is(err, context.Canceled) && !errors.Is(err, errSilent) {
			fmt.Fprintf(env.stderr, "reel %s: %v\n", name, err)
		}
		return 128 + int(sig)
	case errors.Is(err, errSilent):
		return 1
	case errors.As(err, &ue) || errors.As(err, &sue):
		if sue.cmd != "" {
			name, ue = sue.cmd, sue.usageError
		}
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
