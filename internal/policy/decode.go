package policy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/tailscale/hujson"
)

// Error is one problem found in a policy file, at a position in the
// original HuJSON text (comments and trailing commas included). Parse
// returns every problem it finds, joined with errors.Join; use errors.As
// on the joined error's Unwrap() []error to inspect them one by one.
type Error struct {
	File string // the name given to Parse
	Line int    // 1-based
	Col  int    // 1-based, in bytes
	Msg  string

	off int // byte offset, for sorting
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s:%d:%d: %s", e.File, e.Line, e.Col, e.Msg)
}

// lineCol converts a byte offset in src into a 1-based line and column.
func lineCol(src []byte, off int) (line, col int) {
	off = max(0, min(off, len(src)))
	line = 1 + bytes.Count(src[:off], []byte("\n"))
	col = 1 + off - (bytes.LastIndexByte(src[:off], '\n') + 1)
	return line, col
}

// decoder walks a hujson.Value tree and reports errors at the source
// offsets the tree records. It never stops at the first error.
type decoder struct {
	name string
	src  []byte
	errs []*Error
}

func (d *decoder) errorf(off int, format string, args ...any) {
	line, col := lineCol(d.src, off)
	d.errs = append(d.errs, &Error{File: d.name, Line: line, Col: col, Msg: fmt.Sprintf(format, args...), off: off})
}

// pstr is a string with the offset of its literal in the source.
type pstr struct {
	s   string
	off int
}

// pbool is a boolean with the offset of its literal; set reports whether
// the field was present.
type pbool struct {
	v   bool
	off int
	set bool
}

// kindName describes a JSON kind for error messages.
func kindName(v hujson.ValueTrimmed) string {
	switch v.Kind() {
	case 'n':
		return "null"
	case 't', 'f':
		return "a boolean"
	case '"':
		return "a string"
	case '0':
		return "a number"
	case '{':
		return "an object"
	case '[':
		return "an array"
	}
	return "an invalid value"
}

// str decodes a string literal.
func (d *decoder) str(v *hujson.Value, what string) (pstr, bool) {
	lit, ok := v.Value.(hujson.Literal)
	if !ok || lit.Kind() != '"' {
		d.errorf(v.StartOffset, "%s: want a string, got %s", what, kindName(v.Value))
		return pstr{}, false
	}
	if !utf8.Valid(lit) {
		d.errorf(v.StartOffset, "%s: string is not valid UTF-8", what)
		return pstr{}, false
	}
	var s string
	if err := json.Unmarshal(lit, &s); err != nil {
		d.errorf(v.StartOffset, "%s: bad string: %v", what, err)
		return pstr{}, false
	}
	return pstr{s: s, off: v.StartOffset}, true
}

// boolean decodes true or false.
func (d *decoder) boolean(v *hujson.Value, what string) (pbool, bool) {
	lit, ok := v.Value.(hujson.Literal)
	if !ok || (lit.Kind() != 't' && lit.Kind() != 'f') {
		d.errorf(v.StartOffset, "%s: want true or false, got %s", what, kindName(v.Value))
		return pbool{}, false
	}
	return pbool{v: lit.Bool(), off: v.StartOffset, set: true}, true
}

// plist is a list of strings with the offset of its opening bracket; set
// reports whether the field was present and a list.
type plist struct {
	items []pstr
	off   int
	set   bool
}

// strList decodes an array of strings. It reports each bad element and
// keeps the good ones; set is false when v is not an array at all.
func (d *decoder) strList(v *hujson.Value, what string) plist {
	arr, isArr := v.Value.(*hujson.Array)
	if !isArr {
		d.errorf(v.StartOffset, "%s: want a list of strings, got %s", what, kindName(v.Value))
		return plist{}
	}
	l := plist{items: make([]pstr, 0, len(arr.Elements)), off: v.StartOffset, set: true}
	for i := range arr.Elements {
		if s, ok := d.str(&arr.Elements[i], what); ok {
			l.items = append(l.items, s)
		}
	}
	return l
}

// field describes one allowed member of an object.
type field struct {
	name     string
	required bool
	decode   func(*hujson.Value)
}

// object decodes v as an object with the given fields. Unknown and
// duplicate member names are errors; so is a missing required field.
// It reports whether v was an object.
func (d *decoder) object(v *hujson.Value, what string, fields []field) bool {
	obj, ok := v.Value.(*hujson.Object)
	if !ok {
		d.errorf(v.StartOffset, "%s: want an object, got %s", what, kindName(v.Value))
		return false
	}
	seen := map[string]int{}
	for i := range obj.Members {
		m := &obj.Members[i]
		name, ok := d.str(&m.Name, what+": field name")
		if !ok {
			continue
		}
		if first, dup := seen[name.s]; dup {
			line, _ := lineCol(d.src, first)
			d.errorf(name.off, "%s: duplicate field %q (first at line %d)", what, name.s, line)
			continue
		}
		seen[name.s] = name.off
		j := slices.IndexFunc(fields, func(f field) bool { return f.name == name.s })
		if j < 0 {
			d.errorf(name.off, "%s: unknown field %q%s", what, name.s, suggest(name.s, fieldNames(fields)))
			continue
		}
		fields[j].decode(&m.Value)
	}
	for _, f := range fields {
		if _, ok := seen[f.name]; f.required && !ok {
			d.errorf(v.StartOffset, "%s: missing field %q", what, f.name)
		}
	}
	return true
}

// members decodes v as an object whose member names are data (group
// names, recorder tags), calling fn for each member in file order.
// Duplicate names are errors.
func (d *decoder) members(v *hujson.Value, what string, fn func(name pstr, v *hujson.Value)) {
	obj, ok := v.Value.(*hujson.Object)
	if !ok {
		d.errorf(v.StartOffset, "%s: want an object, got %s", what, kindName(v.Value))
		return
	}
	seen := map[string]int{}
	for i := range obj.Members {
		m := &obj.Members[i]
		name, ok := d.str(&m.Name, what+": name")
		if !ok {
			continue
		}
		if first, dup := seen[name.s]; dup {
			line, _ := lineCol(d.src, first)
			d.errorf(name.off, "%s: duplicate %q (first at line %d)", what, name.s, line)
			continue
		}
		seen[name.s] = name.off
		fn(name, &m.Value)
	}
}

// elements calls fn for each element of the array v.
func (d *decoder) elements(v *hujson.Value, what string, fn func(i int, v *hujson.Value)) {
	arr, ok := v.Value.(*hujson.Array)
	if !ok {
		d.errorf(v.StartOffset, "%s: want a list, got %s", what, kindName(v.Value))
		return
	}
	for i := range arr.Elements {
		fn(i, &arr.Elements[i])
	}
}

func fieldNames(fields []field) []string {
	names := make([]string, len(fields))
	for i, f := range fields {
		names[i] = f.name
	}
	return names
}

// suggest returns ` (did you mean "x"?)` for the closest known name, or
// a list of the known names when none is close.
func suggest(got string, known []string) string {
	best, bestDist := "", 3
	for _, k := range known {
		if dist := editDistance(strings.ToLower(got), strings.ToLower(k)); dist < bestDist {
			best, bestDist = k, dist
		}
	}
	if best != "" {
		return fmt.Sprintf(" (did you mean %q?)", best)
	}
	q := make([]string, len(known))
	for i, k := range known {
		q[i] = strconv.Quote(k)
	}
	return "; want one of " + strings.Join(q, ", ")
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// rawPolicy is the decoded document with source positions, before the
// semantic checks.
type rawPolicy struct {
	groups    []rawGroup
	recorders []rawRecorder
	recording pstr
	ssh       []rawSSH
	kube      []rawKube
	viewers   []rawViewer
	admins    plist
	desktop   []rawDesktop
	retention []rawRetention
}

type rawGroup struct {
	name    pstr
	members plist
}

type rawRecorder struct {
	tag   pstr
	addrs plist
}

type rawSSH struct {
	off                             int
	action                          pstr
	src, dst, users, recorder       plist
	enforceRecorder, inputRecording pbool
}

type rawKube struct {
	off                             int
	action                          pstr
	src, namespaces, pods, recorder plist
	enforceRecorder, enableEvents   pbool
}

type rawViewer struct {
	off                 int
	src, nodes, actions plist
}

// decode turns the HuJSON tree into a rawPolicy, reporting structural
// errors: wrong types, unknown or duplicate fields, missing fields.
func (d *decoder) decode(root *hujson.Value) *rawPolicy {
	var p rawPolicy
	d.object(root, "policy", []field{
		{name: "groups", decode: func(v *hujson.Value) {
			d.members(v, "groups", func(name pstr, v *hujson.Value) {
				members := d.strList(v, "group "+strconv.Quote(name.s))
				p.groups = append(p.groups, rawGroup{name: name, members: members})
			})
		}},
		{name: "recorders", decode: func(v *hujson.Value) {
			d.members(v, "recorders", func(tag pstr, v *hujson.Value) {
				addrs := d.strList(v, "recorder "+strconv.Quote(tag.s))
				p.recorders = append(p.recorders, rawRecorder{tag: tag, addrs: addrs})
			})
		}},
		{name: "recording", decode: func(v *hujson.Value) {
			p.recording, _ = d.str(v, "recording")
		}},
		{name: "ssh", decode: func(v *hujson.Value) {
			d.elements(v, "ssh", func(i int, v *hujson.Value) {
				p.ssh = append(p.ssh, d.decodeSSH(i, v))
			})
		}},
		{name: "kubernetes", decode: func(v *hujson.Value) {
			d.elements(v, "kubernetes", func(i int, v *hujson.Value) {
				p.kube = append(p.kube, d.decodeKube(i, v))
			})
		}},
		{name: "viewers", decode: func(v *hujson.Value) {
			d.elements(v, "viewers", func(i int, v *hujson.Value) {
				p.viewers = append(p.viewers, d.decodeViewer(i, v))
			})
		}},
		{name: "admins", decode: func(v *hujson.Value) {
			p.admins = d.strList(v, "admins")
		}},
		{name: "desktop", decode: func(v *hujson.Value) {
			d.elements(v, "desktop", func(i int, v *hujson.Value) {
				p.desktop = append(p.desktop, d.decodeDesktop(i, v))
			})
		}},
		{name: "retention", decode: func(v *hujson.Value) {
			d.elements(v, "retention", func(i int, v *hujson.Value) {
				p.retention = append(p.retention, d.decodeRetention(i, v))
			})
		}},
	})
	return &p
}

func (d *decoder) decodeSSH(i int, v *hujson.Value) rawSSH {
	what := fmt.Sprintf("ssh rule #%d", i+1)
	r := rawSSH{off: v.StartOffset}
	d.object(v, what, []field{
		{name: "action", required: true, decode: func(v *hujson.Value) { r.action, _ = d.str(v, what+": action") }},
		{name: "src", required: true, decode: func(v *hujson.Value) { r.src = d.strList(v, what+": src") }},
		{name: "dst", required: true, decode: func(v *hujson.Value) { r.dst = d.strList(v, what+": dst") }},
		{name: "users", decode: func(v *hujson.Value) { r.users = d.strList(v, what+": users") }},
		{name: "recorder", decode: func(v *hujson.Value) { r.recorder = d.strList(v, what+": recorder") }},
		{name: "enforceRecorder", decode: func(v *hujson.Value) { r.enforceRecorder, _ = d.boolean(v, what+": enforceRecorder") }},
		{name: "inputRecording", decode: func(v *hujson.Value) { r.inputRecording, _ = d.boolean(v, what+": inputRecording") }},
	})
	return r
}

func (d *decoder) decodeKube(i int, v *hujson.Value) rawKube {
	what := fmt.Sprintf("kubernetes rule #%d", i+1)
	r := rawKube{off: v.StartOffset}
	d.object(v, what, []field{
		{name: "action", decode: func(v *hujson.Value) { r.action, _ = d.str(v, what+": action") }},
		{name: "src", required: true, decode: func(v *hujson.Value) { r.src = d.strList(v, what+": src") }},
		{name: "namespaces", required: true, decode: func(v *hujson.Value) { r.namespaces = d.strList(v, what+": namespaces") }},
		{name: "pods", decode: func(v *hujson.Value) { r.pods = d.strList(v, what+": pods") }},
		{name: "recorder", decode: func(v *hujson.Value) { r.recorder = d.strList(v, what+": recorder") }},
		{name: "enforceRecorder", decode: func(v *hujson.Value) { r.enforceRecorder, _ = d.boolean(v, what+": enforceRecorder") }},
		{name: "enableEvents", decode: func(v *hujson.Value) { r.enableEvents, _ = d.boolean(v, what+": enableEvents") }},
	})
	return r
}

func (d *decoder) decodeViewer(i int, v *hujson.Value) rawViewer {
	what := fmt.Sprintf("viewers rule #%d", i+1)
	r := rawViewer{off: v.StartOffset}
	d.object(v, what, []field{
		{name: "src", required: true, decode: func(v *hujson.Value) { r.src = d.strList(v, what+": src") }},
		{name: "nodes", required: true, decode: func(v *hujson.Value) { r.nodes = d.strList(v, what+": nodes") }},
		{name: "actions", decode: func(v *hujson.Value) { r.actions = d.strList(v, what+": actions") }},
	})
	return r
}

// syntaxError converts an error from hujson.Parse, which carries
// "line L, column C" in its text, into an *Error.
func (d *decoder) syntaxError(err error) {
	msg := err.Error()
	var line, col int
	if _, scanErr := fmt.Sscanf(msg, "hujson: line %d, column %d:", &line, &col); scanErr == nil {
		if i := strings.Index(msg, ": "); i >= 0 {
			if j := strings.Index(msg[i+2:], ": "); j >= 0 {
				msg = msg[i+2+j+2:]
			}
		}
		d.errs = append(d.errs, &Error{File: d.name, Line: line, Col: col, Msg: "syntax error: " + msg})
		return
	}
	d.errs = append(d.errs, &Error{File: d.name, Line: 1, Col: 1, Msg: "syntax error: " + msg})
}

var tagRE = regexp.MustCompile(`^tag:[A-Za-z][A-Za-z0-9-]*$`)

// Shapes of the names a policy holds. They are strict on purpose: a name
// that cannot be right is reported instead of never matching.
var (
	groupRE     = regexp.MustCompile(`^group:[A-Za-z0-9._-]+$`)
	namespaceRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`)
	// podPatternRE is a pod name (a DNS subdomain) in which '*' may stand
	// for any run of characters.
	podPatternRE = regexp.MustCompile(`^[a-z0-9*]([-a-z0-9.*]{0,251}[a-z0-9*])?$`)
	// kubeUserRE is a Kubernetes user name, which may hold ':'
	// ("system:serviceaccount:ns:name", "oidc:alice").
	kubeUserRE = regexp.MustCompile(`^[\p{L}\p{N}._+@:-]+$`)
	nodeRE     = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)
	// userRE is an identity: a login name or an email address.
	userRE = regexp.MustCompile(`^[\p{L}\p{N}._+@-]+$`)
	// localUserRE is a local account name (POSIX portable names, plus
	// '@' for directory-joined hosts and a trailing '$').
	localUserRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._@-]*\$?$`)
	hostRE      = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)
)
