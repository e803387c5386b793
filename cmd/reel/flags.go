package main

// The flag set every subcommand uses: --help prints the command's usage to
// stdout; a mistake prints one line about it, in --flag spelling, and a
// hint to stderr (exitCode adds the hint), never the whole usage.

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"regexp"
	"strings"
)

// newFlagSet returns a FlagSet for "reel name" whose --help prints usage
// (the text, then the flags) to env.stdout. Parse it with parseFlags.
func newFlagSet(env *cmdEnv, name, usage string) *flag.FlagSet {
	fs := flag.NewFlagSet("reel "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // the flag package's own messages: parseFlags reports
	fs.Usage = func() {
		fmt.Fprintln(env.stdout, strings.TrimSpace(usage))
		if hasFlags(fs) {
			fmt.Fprintln(env.stdout, "\nFlags:")
			printFlags(env.stdout, fs)
		}
	}
	return fs
}

// parseFlags parses args. --help (or -h) prints the usage and yields
// flag.ErrHelp; any other mistake becomes a usageError that names the flag
// as the user typed it (--port, not -port), and nothing else is printed.
func parseFlags(fs *flag.FlagSet, args []string) error {
	usage := fs.Usage
	fs.Usage = func() {} // the flag package calls it on errors too
	err := fs.Parse(args)
	fs.Usage = usage
	if errors.Is(err, flag.ErrHelp) {
		usage()
		return err
	}
	if err != nil {
		return subUsageError{usageError{flagError(err)}, strings.TrimPrefix(fs.Name(), "reel ")}
	}
	return nil
}

// The flag package's messages, which spell flags with one dash.
var flagErrors = []struct {
	re   *regexp.Regexp
	repl string
}{
	{regexp.MustCompile(`^flag provided but not defined: -+(.*)$`), "unknown flag --$1"},
	{regexp.MustCompile(`^flag needs an argument: -+(.*)$`), "flag --$1 needs a value"},
	{regexp.MustCompile(`^invalid (?:boolean )?value (".*") for (?:flag )?-+([^:]+): (?s)(.*)$`), "invalid value $1 for --$2: $3"},
}

func flagError(err error) string {
	msg := err.Error()
	for _, fe := range flagErrors {
		if fe.re.MatchString(msg) {
			return fe.re.ReplaceAllString(msg, fe.repl)
		}
	}
	return msg
}

func hasFlags(fs *flag.FlagSet) bool {
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	return n > 0
}

// placeholders name a flag's value in --help the same way in every
// command. A `backquoted` word in a flag's usage overrides it.
var placeholders = map[string]string{
	"dst":              "DIR-or-URL",
	"listen":           "ADDR",
	"debug-listen":     "ADDR",
	"statedir":         "DIR",
	"state-dir":        "DIR",
	"state":            "FILE",
	"policy":           "FILE",
	"tls-cert":         "FILE",
	"tls-key":          "FILE",
	"ui-listen":        "ADDR",
	"ui-tls-cert":      "FILE",
	"ui-tls-key":       "FILE",
	"client-ca":        "FILE",
	"authorized-keys":  "FILE",
	"secret-key-file":  "FILE",
	"sftp-server":      "PATH",
	"allow-from":       "CIDRS",
	"min-free":         "SIZE",
	"max-line":         "BYTES",
	"record-buffer":    "SIZE",
	"s3-spool-max":     "SIZE",
	"hostname":         "NAME",
	"node":             "NODE",
	"user":             "USER",
	"since":            "TIME",
	"until":            "TIME",
	"status":           "STATUS,...",
	"tag":              "tag:NAME",
	"advertise-tags":   "tag:NAME,...",
	"log-format":       "text|json",
	"log-level":        "LEVEL",
	"bucket":           "BUCKET",
	"access-key":       "KEY-ID",
	"secret-key":       "KEY",
	"s3-prefix":        "PREFIX",
	"s3-region":        "REGION",
	"s3-addressing":    "auto|path|virtual",
	"login-server":     "URL",
	"speed":            "FACTOR",
	"from":             "ADDR",
	"host":             "NAME",
	"local-user":       "NAME",
	"namespace":        "NS",
	"view":             "NODE",
	"action":           "view|download",
	"role":             "viewer|admin",
	"result":           "ok|denied|failed",
	"ui-trusted-proxy": "CIDRS",
	"ui-proxy-header":  "NAME",
}

// printFlags lists fs's flags as "--name PLACEHOLDER", the usage indented
// below, with the default when it is not the zero value.
func printFlags(w io.Writer, fs *flag.FlagSet) {
	fs.VisitAll(func(f *flag.Flag) {
		name, usage := flag.UnquoteUsage(f)
		if !strings.Contains(f.Usage, "`") {
			if p, ok := placeholders[f.Name]; ok {
				name = p
			} else {
				name = typePlaceholder(name)
			}
		}
		line := "  --" + f.Name
		if name != "" {
			line += " " + name
		}
		if def := f.DefValue; def != "" && def != "false" && def != "0" && def != "0s" {
			usage += " (default " + def + ")"
		}
		fmt.Fprintf(w, "%s\n      %s\n", line, strings.ReplaceAll(usage, "\n", "\n      "))
	})
}

// typePlaceholder names a value by its type when the flag has no
// placeholder of its own; "" for a boolean.
func typePlaceholder(t string) string {
	switch t {
	case "":
		return ""
	case "duration":
		return "DURATION"
	case "int", "uint", "int64", "uint64", "float":
		return "N"
	}
	return "VALUE"
}
