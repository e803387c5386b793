package asciicast

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"unicode/utf8"
)

// Header is line 1 of a recording: the asciicast v2 header fields, the extra
// fields Tailscale's senders write (see tailscale.com/sessionrecording's
// CastHeader), and every other field as raw JSON in Extra.
//
// JSON names match case exactly; a field spelled differently (such as
// "SrcNode") is kept in Extra.
type Header struct {
	Version       int     `json:"version"`
	Width         int     `json:"width"`
	Height        int     `json:"height"`
	Timestamp     int64   `json:"timestamp"`
	Duration      float64 `json:"duration,omitempty"`
	IdleTimeLimit float64 `json:"idle_time_limit,omitempty"`

	Command string `json:"command,omitempty"`
	Title   string `json:"title,omitempty"`

	Env   map[string]string `json:"env"`
	Theme json.RawMessage   `json:"theme,omitempty"`

	// Tailscale's fields.
	SrcNode       string   `json:"srcNode"`
	SrcNodeID     string   `json:"srcNodeID"`
	SrcNodeTags   []string `json:"srcNodeTags,omitempty"`
	SrcNodeUserID int64    `json:"srcNodeUserID,omitempty"`
	SrcNodeUser   string   `json:"srcNodeUser,omitempty"`
	SSHUser       string   `json:"sshUser"`
	LocalUser     string   `json:"localUser"`
	ConnectionID  string   `json:"connectionID"`

	// Kubernetes is set for sessions recorded by a Kubernetes API proxy.
	Kubernetes *Kubernetes `json:"kubernetes,omitempty"`

	// Extra holds every other field of the header, compact, by name.
	Extra map[string]json.RawMessage `json:"-"`
}

// Kubernetes describes the session of a recording made by a Kubernetes API
// server proxy. Its JSON names are the Go names, as Tailscale writes them.
type Kubernetes struct {
	PodName     string
	Namespace   string
	Container   string
	SessionType string // "exec" or "attach"

	// Extra holds every other field, compact, by name.
	Extra map[string]json.RawMessage `json:"-"`
}

// IsKubernetes reports whether the recording comes from a Kubernetes API
// proxy. Such recordings write resize events as "HEIGHTxWIDTH"; see
// ParseResize.
func (h *Header) IsKubernetes() bool { return h.Kubernetes != nil }

// ResizeRowsFirst reports whether the recording's resize events are
// written "ROWSxCOLS": those of Tailscale's Kubernetes API proxy, which
// have a kubernetes object in the header. reel's own senders mark their
// headers with a "sender" field ("reel kube-proxy") and write "COLSxROWS"
// as asciicast says. Pass it to ParseResize.
func (h *Header) ResizeRowsFirst() bool {
	if h.Kubernetes == nil {
		return false
	}
	s, ok := h.Extra["sender"]
	return !ok || !bytes.HasPrefix(s, []byte(`"reel`))
}

// tailscaleForm reports whether h carries any of Tailscale's fields. Only
// then does MarshalJSON write the fields Tailscale writes even when empty.
func (h *Header) tailscaleForm() bool {
	return h.SrcNode != "" || h.SrcNodeID != "" || len(h.SrcNodeTags) > 0 ||
		h.SrcNodeUserID != 0 || h.SrcNodeUser != "" || h.SSHUser != "" ||
		h.LocalUser != "" || h.ConnectionID != "" || h.Kubernetes != nil
}

// MarshalJSON writes the header as one compact JSON object: version, width,
// height and timestamp always; duration, idle_time_limit, command, title and
// theme when set; then Tailscale's fields; then Extra, sorted by name.
//
// When any Tailscale field is set, the Tailscale fields are written exactly
// as Tailscale's CastHeader writes them (srcNode, srcNodeID, env, sshUser,
// localUser and connectionID even when empty), so a header from a Tailscale
// sender comes out byte for byte as it went in when it has no other fields.
// Otherwise they are left out, and env is written only when not nil, so a
// plain asciicast header stays plain.
func (h Header) MarshalJSON() ([]byte, error) {
	w := objWriter{buf: make([]byte, 0, 256)}
	w.buf = append(w.buf, '{')
	w.field("version", h.Version)
	w.field("width", h.Width)
	w.field("height", h.Height)
	w.field("timestamp", h.Timestamp)
	if h.Duration != 0 {
		w.field("duration", h.Duration)
	}
	if h.IdleTimeLimit != 0 {
		w.field("idle_time_limit", h.IdleTimeLimit)
	}
	if h.Command != "" {
		w.field("command", h.Command)
	}
	if h.Title != "" {
		w.field("title", h.Title)
	}
	ts := h.tailscaleForm()
	if ts {
		w.field("srcNode", h.SrcNode)
		w.field("srcNodeID", h.SrcNodeID)
		if len(h.SrcNodeTags) > 0 {
			w.field("srcNodeTags", h.SrcNodeTags)
		}
		if h.SrcNodeUserID != 0 {
			w.field("srcNodeUserID", h.SrcNodeUserID)
		}
		if h.SrcNodeUser != "" {
			w.field("srcNodeUser", h.SrcNodeUser)
		}
	}
	if ts || h.Env != nil {
		w.field("env", h.Env)
	}
	if ts {
		w.field("sshUser", h.SSHUser)
		w.field("localUser", h.LocalUser)
		w.field("connectionID", h.ConnectionID)
	}
	if h.Kubernetes != nil {
		w.field("kubernetes", h.Kubernetes)
	}
	if len(h.Theme) > 0 {
		w.raw("theme", h.Theme)
	}
	for _, k := range slices.Sorted(maps.Keys(h.Extra)) {
		if _, known := headerFields[k]; known {
			w.fail(fmt.Errorf("extra field %q is a known field", k))
			continue
		}
		w.raw(k, h.Extra[k])
	}
	w.buf = append(w.buf, '}')
	if w.err != nil {
		return nil, fmt.Errorf("asciicast: header: %w", w.err)
	}
	return w.buf, nil
}

// headerFields names the fields Header holds outside Extra.
var headerFields = map[string]struct{}{
	"version": {}, "width": {}, "height": {}, "timestamp": {}, "duration": {},
	"idle_time_limit": {}, "command": {}, "title": {}, "env": {}, "theme": {},
	"srcNode": {}, "srcNodeID": {}, "srcNodeTags": {}, "srcNodeUserID": {},
	"srcNodeUser": {}, "sshUser": {}, "localUser": {}, "connectionID": {},
	"kubernetes": {},
}

// UnmarshalJSON reads a header object. Fields it does not know go to Extra,
// compacted; a known field of the wrong JSON type is an error.
func (h *Header) UnmarshalJSON(b []byte) error {
	if err := h.decode(b); err != nil {
		return fmt.Errorf("asciicast: header: %w", err)
	}
	return nil
}

// decode is UnmarshalJSON without the "asciicast: header:" prefix on errors.
func (h *Header) decode(b []byte) error {
	m, err := decodeObject(b)
	if err != nil {
		return err
	}
	*h = Header{}
	for _, k := range slices.Sorted(maps.Keys(m)) {
		v := m[k]
		var err error
		switch k {
		case "version":
			err = json.Unmarshal(v, &h.Version)
		case "width":
			err = json.Unmarshal(v, &h.Width)
		case "height":
			err = json.Unmarshal(v, &h.Height)
		case "timestamp":
			err = json.Unmarshal(v, &h.Timestamp)
		case "duration":
			err = json.Unmarshal(v, &h.Duration)
		case "idle_time_limit":
			err = json.Unmarshal(v, &h.IdleTimeLimit)
		case "command":
			err = json.Unmarshal(v, &h.Command)
		case "title":
			err = json.Unmarshal(v, &h.Title)
		case "env":
			err = json.Unmarshal(v, &h.Env)
		case "theme":
			h.Theme = v
		case "srcNode":
			err = json.Unmarshal(v, &h.SrcNode)
		case "srcNodeID":
			err = json.Unmarshal(v, &h.SrcNodeID)
		case "srcNodeTags":
			err = json.Unmarshal(v, &h.SrcNodeTags)
		case "srcNodeUserID":
			err = json.Unmarshal(v, &h.SrcNodeUserID)
		case "srcNodeUser":
			err = json.Unmarshal(v, &h.SrcNodeUser)
		case "sshUser":
			err = json.Unmarshal(v, &h.SSHUser)
		case "localUser":
			err = json.Unmarshal(v, &h.LocalUser)
		case "connectionID":
			err = json.Unmarshal(v, &h.ConnectionID)
		case "kubernetes":
			if string(v) != "null" {
				h.Kubernetes = new(Kubernetes)
				err = h.Kubernetes.decode(v)
			}
		default:
			if h.Extra == nil {
				h.Extra = make(map[string]json.RawMessage)
			}
			h.Extra[k] = v
		}
		if err != nil {
			return fmt.Errorf("%s: %w", k, err)
		}
	}
	return nil
}

// MarshalJSON writes the four known fields, always, then Extra sorted by
// name.
func (k Kubernetes) MarshalJSON() ([]byte, error) {
	w := objWriter{buf: make([]byte, 0, 128)}
	w.buf = append(w.buf, '{')
	w.field("PodName", k.PodName)
	w.field("Namespace", k.Namespace)
	w.field("Container", k.Container)
	w.field("SessionType", k.SessionType)
	for _, name := range slices.Sorted(maps.Keys(k.Extra)) {
		switch name {
		case "PodName", "Namespace", "Container", "SessionType":
			w.fail(fmt.Errorf("extra field %q is a known field", name))
			continue
		}
		w.raw(name, k.Extra[name])
	}
	w.buf = append(w.buf, '}')
	if w.err != nil {
		return nil, fmt.Errorf("asciicast: kubernetes: %w", w.err)
	}
	return w.buf, nil
}

// UnmarshalJSON reads the kubernetes object of a header, keeping fields it
// does not know in Extra.
func (k *Kubernetes) UnmarshalJSON(b []byte) error {
	if err := k.decode(b); err != nil {
		return fmt.Errorf("asciicast: kubernetes: %w", err)
	}
	return nil
}

func (k *Kubernetes) decode(b []byte) error {
	m, err := decodeObject(b)
	if err != nil {
		return err
	}
	*k = Kubernetes{}
	for _, name := range slices.Sorted(maps.Keys(m)) {
		v := m[name]
		var err error
		switch name {
		case "PodName":
			err = json.Unmarshal(v, &k.PodName)
		case "Namespace":
			err = json.Unmarshal(v, &k.Namespace)
		case "Container":
			err = json.Unmarshal(v, &k.Container)
		case "SessionType":
			err = json.Unmarshal(v, &k.SessionType)
		default:
			if k.Extra == nil {
				k.Extra = make(map[string]json.RawMessage)
			}
			k.Extra[name] = v
		}
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	return nil
}

// decodeObject splits a JSON object into its members, each compacted.
func decodeObject(b []byte) (map[string]json.RawMessage, error) {
	if t := bytes.TrimLeft(b, " \t\r\n"); len(t) > 0 && t[0] != '{' && json.Valid(b) {
		return nil, fmt.Errorf("not a JSON object: %.20q", t)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	if m == nil {
		return nil, errors.New("not a JSON object: null")
	}
	for k, v := range m {
		var c bytes.Buffer
		c.Grow(len(v))
		if err := json.Compact(&c, v); err != nil {
			return nil, fmt.Errorf("%s: %w", k, err) // cannot happen: Unmarshal validated v
		}
		m[k] = c.Bytes()
	}
	return m, nil
}

// objWriter appends the members of a JSON object, keeping the first error.
type objWriter struct {
	buf []byte
	err error
}

func (w *objWriter) fail(err error) {
	if w.err == nil {
		w.err = err
	}
}

func (w *objWriter) name(k string) {
	if w.buf[len(w.buf)-1] != '{' {
		w.buf = append(w.buf, ',')
	}
	w.buf = appendString(w.buf, k)
	w.buf = append(w.buf, ':')
}

// field writes v as encoding/json does, HTML escaping included, so that
// strings come out as Tailscale's json.Marshal writes them.
func (w *objWriter) field(k string, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		w.fail(fmt.Errorf("%s: %w", k, err))
		return
	}
	w.name(k)
	w.buf = append(w.buf, b...)
}

// raw writes v compacted. Invalid UTF-8 in its strings (a header read
// from a non-UTF-8 file keeps it) becomes U+FFFD, so that the line is valid
// UTF-8.
func (w *objWriter) raw(k string, v json.RawMessage) {
	var c bytes.Buffer
	if err := json.Compact(&c, v); err != nil {
		w.fail(fmt.Errorf("%s: %w", k, err))
		return
	}
	b := c.Bytes()
	if !utf8.Valid(b) {
		d := json.NewDecoder(bytes.NewReader(b))
		d.UseNumber()
		var x any
		if err := d.Decode(&x); err != nil {
			w.fail(fmt.Errorf("%s: %w", k, err))
			return
		}
		var err error
		if b, err = json.Marshal(x); err != nil {
			w.fail(fmt.Errorf("%s: %w", k, err))
			return
		}
	}
	w.name(k)
	w.buf = append(w.buf, b...)
}
