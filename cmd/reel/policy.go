package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"

	"github.com/reel-rec/reel/internal/policy"
)

func init() {
	register(&command{
		name:    "policy",
		summary: "check a policy file, or explain the decision it makes",
		run:     runPolicy,
		subs:    []string{"check", "explain"},
	})
}

const policyUsage = `
Usage:
  reel policy check FILE...
  reel policy explain FILE --user USER [--from ADDR] [--local-user NAME] [--host NAME] [--tag tag:NAME]...
  reel policy explain FILE --kube --user USER [--from ADDR] [--namespace NS]
  reel policy explain FILE --view USER [--node NODE [--tag tag:NAME]... [--action view|download]]

A policy file is HuJSON (JSON with comments and trailing commas) with
"groups", "recorders", "recording", and "ssh", "kubernetes" and "viewers"
rules. Only the ssh rules are enforced today (by reel ssh); kubernetes
rules (reel kube-proxy) and viewers rules (the web UI) are planned, and
check and explain handle them already. See docs/policy.md for the format and examples/policy.hujson for a
full example.

check validates each FILE: syntax, unknown or misspelt fields, undefined
groups or recorder tags, bad addresses, groups that contain themselves. It
prints "FILE: ok (...)" for a good file, or every problem as
FILE:LINE:COL: message on stderr, and exits 1 if any file is bad.

explain prints the decision the policy makes for one request, then the
reasons, one per line:
  SSH (the default)   accept or reject, and how the session is recorded
  --kube              whether a Kubernetes session is recorded, and events
  --view USER         what USER may see in the web UI: whether USER is an
                      admin, and the nodes whose recordings USER may view
                      and download; with --node, the decision for NODE's
                      recordings
explain exits 0 whatever the decision; it exits 1 only if FILE is bad.

Run 'reel policy check --help' or 'reel policy explain --help' for flags.
`

func runPolicy(ctx context.Context, env *cmdEnv, args []string) error {
	if len(args) == 0 {
		return usagef("missing subcommand: check or explain")
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		fmt.Fprintln(env.stdout, strings.TrimSpace(policyUsage))
		return flag.ErrHelp
	case "check":
		return policyCheck(env, args[1:])
	case "explain":
		return policyExplain(env, args[1:])
	}
	return usagef("unknown subcommand %q: want check or explain", args[0])
}

// parseInterspersed parses flags that may come before, between or after
// the positional arguments ("explain FILE --user alice"), which
// flag.FlagSet alone does not allow. It returns the positional arguments.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := parseFlags(fs, args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if used := len(args) - len(rest); used > 0 && args[used-1] == "--" {
			return append(pos, rest...), nil
		}
		if len(rest) == 0 {
			return pos, nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

func policyCheck(env *cmdEnv, args []string) error {
	fs := newFlagSet(env, "policy check", `
Usage: reel policy check FILE...

Validates each policy FILE. A good file prints
  FILE: ok (N ssh rules, N kubernetes rules, N viewers rules, N groups, N recorder tags)
on stdout. A bad one prints every problem on stderr as
  FILE:LINE:COL: message
with positions in the file as written (comments included), and the command
exits 1.`)
	files, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(files) == 0 {
		return usagef("check: missing FILE")
	}
	failed := false
	for _, name := range files {
		p, err := loadPolicyFile(env, name)
		if err != nil {
			failed = true
			continue
		}
		fmt.Fprintf(env.stdout, "%s: ok (%s, %s, %s, %s, %s)\n", name,
			plural(len(p.SSHRules), "ssh rule"), plural(len(p.KubeRules), "kubernetes rule"),
			plural(len(p.ViewerRules), "viewers rule"), plural(len(p.Groups), "group"),
			plural(len(p.Recorders), "recorder tag"))
	}
	if failed {
		return errSilent
	}
	return nil
}

// loadPolicyFile reads and parses a policy file, printing every problem
// to stderr.
func loadPolicyFile(env *cmdEnv, name string) (*policy.Policy, error) {
	src, err := os.ReadFile(name)
	if err != nil {
		fmt.Fprintf(env.stderr, "reel policy: %v\n", err)
		return nil, err
	}
	p, err := policy.Parse(name, src)
	if err != nil {
		var j interface{ Unwrap() []error }
		if errors.As(err, &j) {
			for _, e := range j.Unwrap() {
				fmt.Fprintln(env.stderr, e)
			}
		} else {
			fmt.Fprintln(env.stderr, err)
		}
		return nil, err
	}
	return p, nil
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// listFlag is a flag that may be given more than once.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }

// tags reads a repeatable --tag flag whose values may also be
// comma-separated: each must be "tag:NAME".
func (l listFlag) tags() ([]string, error) {
	var out []string
	for _, t := range l {
		for _, tag := range strings.Split(t, ",") {
			if tag = strings.TrimSpace(tag); tag != "" {
				if !strings.HasPrefix(tag, "tag:") {
					return nil, usagef("--tag %q: want tag:NAME", tag)
				}
				out = append(out, tag)
			}
		}
	}
	return out, nil
}

func policyExplain(env *cmdEnv, args []string) error {
	fs := newFlagSet(env, "policy explain", `
Usage:
  reel policy explain FILE --user USER [--from ADDR] [--local-user NAME] [--host NAME] [--tag tag:NAME]...
  reel policy explain FILE --kube --user USER [--from ADDR] [--namespace NS]
  reel policy explain FILE --view USER [--node NODE [--tag tag:NAME]... [--action view|download]]

Prints the decision FILE makes for one request, then the reasons, one per
line. Without --kube or --view it explains an SSH session: USER connecting
from ADDR to this host (--host, --tag) as local user NAME (default: the
same name as USER, without any "@domain").

--view USER shows what USER may see in the web UI: whether the policy
makes USER an admin (who sees everything), and the nodes, by id and by
tag, whose recordings USER may view and download. With --node it decides
for the recordings of NODE, which carries the --tag tags. (The older form
--view NODE --user USER still works.)

  reel policy explain policy.hujson --user alice --from 10.0.0.5 --local-user root
  reel policy explain policy.hujson --kube --user alice --namespace prod
  reel policy explain policy.hujson --view erin
  reel policy explain policy.hujson --view erin --node web1 --tag tag:prod --action download`)
	var (
		user      = fs.String("user", "", "the connecting user's identity, as authenticated (e.g. alice or alice@example.com)")
		from      = fs.String("from", "", "the client's IP address")
		localUser = fs.String("local-user", "", "SSH: the local account the session asks for (default: USER's name)")
		host      = fs.String("host", "", "SSH: this host's name")
		kube      = fs.Bool("kube", false, "explain a Kubernetes API-proxy session instead of SSH")
		namespace = fs.String("namespace", "", "with --kube: the namespace (empty for cluster-scoped requests)")
		view      = fs.String("view", "", "explain what this `USER` may see in the web UI")
		node      = fs.String("node", "", "with --view: decide for the recordings of this node (a node id)")
		action    = fs.String("action", policy.ActionView, "with --view and --node: view or download")
		tags      listFlag
	)
	fs.Var(&tags, "tag", "SSH: a tag of this host; --view --node: a tag of NODE (repeatable)")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	switch {
	case len(pos) == 0:
		return usagef("explain: missing FILE")
	case len(pos) > 1:
		return usagef("explain: one FILE, got %d arguments: %s", len(pos), strings.Join(pos, " "))
	case *kube && *view != "":
		return usagef("explain: --kube and --view do not go together")
	}
	var addr netip.Addr
	if *from != "" {
		if addr, err = netip.ParseAddr(*from); err != nil {
			return usagef("explain: --from: %v", err)
		}
	}
	p, err := loadPolicyFile(env, pos[0])
	if err != nil {
		return errSilent
	}
	out := env.stdout
	var why []string
	switch {
	case *view != "":
		viewer, nodeID := *view, *node
		if *user != "" { // the older form: --view NODE --user USER
			if nodeID != "" {
				return usagef("explain: --view USER --node NODE, or the older --view NODE --user USER, not both")
			}
			viewer, nodeID = *user, *view
		}
		if *action != policy.ActionView && *action != policy.ActionDownload {
			return usagef("explain: --action %q: want view or download", *action)
		}
		if nodeID == "" {
			explainViewer(out, p, viewer)
			return nil
		}
		if admin, w := p.IsAdmin(viewer); admin {
			fmt.Fprintln(out, "decision: allow")
			why = []string{w, fmt.Sprintf("allow: an admin may %s every recording", *action)}
			break
		}
		ok, w := p.CanView(viewer, nodeID, tags, *action)
		fmt.Fprintf(out, "decision: %s\n", map[bool]string{true: "allow", false: "deny"}[ok])
		why = w
	case *kube:
		if *user == "" && !addr.IsValid() {
			return usagef("explain: --kube needs --user or --from")
		}
		d := p.Kubernetes(policy.KubeRequest{User: *user, Src: addr, Namespace: *namespace})
		if d.Record {
			fmt.Fprintln(out, "decision: record")
			fmt.Fprintf(out, "recorders: %s%s\n", addrList(d.Recorders), failMode(d.EnforceRecorder))
			fmt.Fprintf(out, "events: %s\n", onOff(d.EnableEvents))
		} else {
			fmt.Fprintln(out, "decision: do not record")
		}
		why = d.Why
	default:
		local := *localUser
		if local == "" {
			local = *user
			if i := strings.LastIndexByte(local, '@'); i > 0 {
				local = local[:i]
			}
		}
		if local == "" {
			return usagef("explain: needs --user or --local-user")
		}
		d := p.SSH(policy.SSHRequest{User: *user, Src: addr, LocalUser: local, Host: *host, HostTags: tags})
		fmt.Fprintf(out, "decision: %s\n", d.Action)
		if d.Action == policy.Accept {
			fmt.Fprintf(out, "local user: %s\n", d.LocalUser)
			if d.Record {
				fmt.Fprintf(out, "recorders: %s%s\n", addrList(d.Recorders), failMode(d.EnforceRecorder))
				fmt.Fprintf(out, "input recording: %s\n", onOff(d.RecordInput))
			} else {
				fmt.Fprintln(out, "recorders: none (not recorded)")
			}
		}
		why = d.Why
	}
	fmt.Fprintln(out, "why:")
	for _, w := range why {
		fmt.Fprintf(out, "  %s\n", w)
	}
	return nil
}

// explainViewer prints what viewer may see: admin or not, and the scope
// of each action.
func explainViewer(out io.Writer, p *policy.Policy, viewer string) {
	fmt.Fprintf(out, "viewer: %s\n", viewer)
	admin, adminWhy := p.IsAdmin(viewer)
	why := []string{adminWhy}
	if admin {
		fmt.Fprintln(out, "admin: yes")
		fmt.Fprintln(out, "view: every recording")
		fmt.Fprintln(out, "download: every recording")
	} else {
		fmt.Fprintln(out, "admin: no")
		for _, action := range []string{policy.ActionView, policy.ActionDownload} {
			s := p.ViewerScope(viewer, action)
			fmt.Fprintf(out, "%s: %s\n", action, describeScope(&s))
			for _, w := range s.Why {
				why = append(why, action+": "+w)
			}
		}
	}
	fmt.Fprintln(out, "why:")
	for _, w := range why {
		fmt.Fprintf(out, "  %s\n", w)
	}
}

func describeScope(s *policy.ViewerScope) string {
	if s.All {
		return "every recording"
	}
	var parts []string
	if len(s.Nodes) > 0 {
		parts = append(parts, "nodes "+strings.Join(s.Nodes, ", "))
	}
	if len(s.Tags) > 0 {
		parts = append(parts, "nodes tagged "+strings.Join(s.Tags, ", "))
	}
	if len(parts) == 0 {
		return "nothing"
	}
	return strings.Join(parts, "; ")
}

func addrList(addrs []netip.AddrPort) string {
	s := make([]string, len(addrs))
	for i, a := range addrs {
		s[i] = a.String()
	}
	return strings.Join(s, ", ")
}

func failMode(enforce bool) string {
	if enforce {
		return " (enforceRecorder: refused if none is reachable)"
	}
	return " (fail open: runs unrecorded if none is reachable)"
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}
