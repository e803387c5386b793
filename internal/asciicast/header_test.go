package asciicast

import (
	"encoding/json"
	"math"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"tailscale.com/sessionrecording"
	"tailscale.com/tailcfg"
)

// TestHeaderTailscale round-trips headers that Tailscale's own CastHeader
// writes: every field decodes, and our encoding is byte for byte theirs and
// decodes back into the same CastHeader.
func TestHeaderTailscale(t *testing.T) {
	tests := []struct {
		name string
		ts   sessionrecording.CastHeader
		want Header
	}{
		{
			name: "ssh, user node",
			ts: sessionrecording.CastHeader{Version: 2, Width: 120, Height: 40, Timestamp: 1700000000, Command: "htop",
				SrcNode: "laptop.tail-scale.ts.net", SrcNodeID: "nABC123CNTRL", SrcNodeUserID: 12345, SrcNodeUser: "alice@example.com",
				Env: map[string]string{"TERM": "xterm-256color"}, SSHUser: "alice", LocalUser: "ubuntu", ConnectionID: "ssh-conn-1"},
			want: Header{Version: 2, Width: 120, Height: 40, Timestamp: 1700000000, Command: "htop",
				SrcNode: "laptop.tail-scale.ts.net", SrcNodeID: "nABC123CNTRL", SrcNodeUserID: 12345, SrcNodeUser: "alice@example.com",
				Env: map[string]string{"TERM": "xterm-256color"}, SSHUser: "alice", LocalUser: "ubuntu", ConnectionID: "ssh-conn-1"},
		},
		{
			name: "ssh, tagged node, html in command",
			ts: sessionrecording.CastHeader{Version: 2, Width: 80, Height: 24, Timestamp: 1, Command: "echo '<a&b>'",
				SrcNode: "ci.tail-scale.ts.net", SrcNodeID: "nT1", SrcNodeTags: []string{"tag:ci", "tag:prod"},
				SSHUser: "root", LocalUser: "root", ConnectionID: "c2"},
			want: Header{Version: 2, Width: 80, Height: 24, Timestamp: 1, Command: "echo '<a&b>'",
				SrcNode: "ci.tail-scale.ts.net", SrcNodeID: "nT1", SrcNodeTags: []string{"tag:ci", "tag:prod"},
				SSHUser: "root", LocalUser: "root", ConnectionID: "c2"},
		},
		{
			name: "kubernetes exec",
			ts: sessionrecording.CastHeader{Version: 2, Width: 100, Height: 30, Timestamp: 1700000001, Command: "sh -c ls",
				SrcNode: "op.tail-scale.ts.net", SrcNodeID: "nK8S", SrcNodeUserID: tailcfg.UserID(7), SrcNodeUser: "bob@example.com",
				Kubernetes: &sessionrecording.Kubernetes{PodName: "web-0", Namespace: "prod", Container: "app", SessionType: "exec"}},
			want: Header{Version: 2, Width: 100, Height: 30, Timestamp: 1700000001, Command: "sh -c ls",
				SrcNode: "op.tail-scale.ts.net", SrcNodeID: "nK8S", SrcNodeUserID: 7, SrcNodeUser: "bob@example.com",
				Kubernetes: &Kubernetes{PodName: "web-0", Namespace: "prod", Container: "app", SessionType: "exec"}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			theirs, err := json.Marshal(tc.ts)
			if err != nil {
				t.Fatal(err)
			}
			var h Header
			if err := json.Unmarshal(theirs, &h); err != nil {
				t.Fatalf("decode %s: %v", theirs, err)
			}
			if diff := cmp.Diff(tc.want, h); diff != "" {
				t.Errorf("decoded (-want +got):\n%s", diff)
			}
			ours, err := json.Marshal(h)
			if err != nil {
				t.Fatal(err)
			}
			if string(ours) != string(theirs) {
				t.Errorf("encoding differs from Tailscale's:\nours   %s\ntheirs %s", ours, theirs)
			}
			var back sessionrecording.CastHeader
			if err := json.Unmarshal(ours, &back); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.ts, back); diff != "" {
				t.Errorf("CastHeader after our round trip (-want +got):\n%s", diff)
			}
			if got := h.IsKubernetes(); got != (tc.ts.Kubernetes != nil) {
				t.Errorf("IsKubernetes() = %v", got)
			}
		})
	}
}

// TestHeaderKeepsUnknownFields: decode then encode keeps every field a
// sender sent, known or not, at both levels.
func TestHeaderKeepsUnknownFields(t *testing.T) {
	tests := []struct {
		name string
		in   string
	}{
		{"asciinema", `{"version":2,"width":80,"height":24,"timestamp":1504467315,"duration":123.45,"idle_time_limit":2,"command":"/bin/bash","title":"Demo","env":{"SHELL":"/bin/bash","TERM":"xterm-256color"},"theme":{"fg":"#d0d0d0","bg":"#212121","palette":"#151515:#ac4142"}}`},
		{"future fields", `{"version":2,"width":80,"height":24,"timestamp":1,"srcNode":"n","srcNodeID":"i","env":null,"sshUser":"u","localUser":"l","connectionID":"c","recorderVersion":"9.9","tags":["a", "b"],"nested":{"x":[1,{"y":null}]},"kubernetes":{"PodName":"p","Namespace":"n","Container":"c","SessionType":"attach","podUID":"1234","Labels":{"app":"web"}}}`},
		{"case variants kept apart", `{"version":2,"Width":1,"SrcNode":"x","kubernetes":{"podName":"lower","PodName":"upper"}}`},
		{"empty tailscale values", `{"version":2,"width":0,"height":0,"timestamp":0,"srcNode":"","srcNodeID":"","env":null,"sshUser":"","localUser":"","connectionID":"x"}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var h Header
			if err := json.Unmarshal([]byte(tc.in), &h); err != nil {
				t.Fatal(err)
			}
			out, err := json.Marshal(h)
			if err != nil {
				t.Fatal(err)
			}
			// Every field sent is kept with its value; encoding may add
			// known fields with zero values.
			var sent, kept map[string]any
			json.Unmarshal([]byte(tc.in), &sent)
			json.Unmarshal(out, &kept)
			keptAll(t, "", sent, kept)
			var again Header
			if err := json.Unmarshal(out, &again); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(h, again); diff != "" {
				t.Errorf("second decode (-first +second):\n%s", diff)
			}
		})
	}
}

// keptAll checks that kept has every field of sent, with its value;
// objects are compared field by field.
func keptAll(t *testing.T, path string, sent, kept map[string]any) {
	t.Helper()
	for k, v := range sent {
		if sub, ok := v.(map[string]any); ok {
			if ksub, ok := kept[k].(map[string]any); ok {
				keptAll(t, path+"."+k, sub, ksub)
				continue
			}
		}
		if diff := cmp.Diff(v, kept[k]); diff != "" {
			t.Errorf("field %s after decode and encode (-sent +kept):\n%s", path+"."+k, diff)
		}
	}
}

func TestHeaderMarshal(t *testing.T) {
	tests := []struct {
		name string
		h    Header
		want string
	}{
		{"plain stays plain", Header{Version: 2, Width: 80, Height: 24, Timestamp: 1},
			`{"version":2,"width":80,"height":24,"timestamp":1}`},
		{"asciinema fields", Header{Version: 2, Width: 80, Height: 24, Duration: 1.5, IdleTimeLimit: 2, Command: "sh", Title: "t",
			Env: map[string]string{"TERM": "xterm"}, Theme: json.RawMessage(`{ "fg" : "#fff" }`)},
			`{"version":2,"width":80,"height":24,"timestamp":0,"duration":1.5,"idle_time_limit":2,"command":"sh","title":"t","env":{"TERM":"xterm"},"theme":{"fg":"#fff"}}`},
		{"one tailscale field brings the others", Header{Version: 2, SSHUser: "root"},
			`{"version":2,"width":0,"height":0,"timestamp":0,"srcNode":"","srcNodeID":"","env":null,"sshUser":"root","localUser":"","connectionID":""}`},
		{"extra sorted and compacted", Header{Version: 2, Extra: map[string]json.RawMessage{"z": json.RawMessage("[1, 2]"), "a": json.RawMessage(`"x"`)}},
			`{"version":2,"width":0,"height":0,"timestamp":0,"a":"x","z":[1,2]}`},
		{"kubernetes", Header{Version: 2, Kubernetes: &Kubernetes{PodName: "p", Extra: map[string]json.RawMessage{"uid": json.RawMessage(`7`)}}},
			`{"version":2,"width":0,"height":0,"timestamp":0,"srcNode":"","srcNodeID":"","env":null,"sshUser":"","localUser":"","connectionID":"","kubernetes":{"PodName":"p","Namespace":"","Container":"","SessionType":"","uid":7}}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.h.MarshalJSON()
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Errorf("MarshalJSON:\ngot  %s\nwant %s", got, tc.want)
			}
		})
	}
}

func TestHeaderErrors(t *testing.T) {
	t.Run("marshal", func(t *testing.T) {
		for name, h := range map[string]Header{
			"extra shadows a field":      {Extra: map[string]json.RawMessage{"width": json.RawMessage("1")}},
			"extra not JSON":             {Extra: map[string]json.RawMessage{"x": json.RawMessage("{")}},
			"extra empty":                {Extra: map[string]json.RawMessage{"x": nil}},
			"theme not JSON":             {Theme: json.RawMessage("nope")},
			"kubernetes extra shadows":   {Kubernetes: &Kubernetes{Extra: map[string]json.RawMessage{"PodName": json.RawMessage(`"p"`)}}},
			"kubernetes extra not JSON":  {Kubernetes: &Kubernetes{Extra: map[string]json.RawMessage{"x": json.RawMessage(`}`)}}},
			"duration not a JSON number": {Duration: math.Inf(1)},
		} {
			if b, err := h.MarshalJSON(); err == nil {
				t.Errorf("%s: MarshalJSON = %s, want an error", name, b)
			}
		}
	})
	tests := []struct {
		name, in, err string
	}{
		{"not JSON", `{"version":`, "asciicast: header: unexpected end of JSON input"},
		{"array", `[2]`, `asciicast: header: not a JSON object: "[2]"`},
		{"string version", `{"version":"2"}`, "asciicast: header: version: json: cannot unmarshal string into Go value of type int"},
		{"float timestamp", `{"timestamp":1.5}`, "asciicast: header: timestamp: json: cannot unmarshal number 1.5 into Go value of type int64"},
		{"env not strings", `{"env":{"A":1}}`, "asciicast: header: env: json: cannot unmarshal number into Go value of type string"},
		{"kubernetes not object", `{"kubernetes":"p"}`, `asciicast: header: kubernetes: not a JSON object: "\"p\""`},
		{"kubernetes bad field", `{"kubernetes":{"PodName":1}}`, "asciicast: header: kubernetes: PodName: json: cannot unmarshal number into Go value of type string"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var h Header
			err := h.UnmarshalJSON([]byte(tc.in))
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("error %v, want %s", err, tc.err)
			}
		})
	}
}

func TestHeaderNullKubernetes(t *testing.T) {
	var h Header
	if err := json.Unmarshal([]byte(`{"version":2,"kubernetes":null,"theme":null}`), &h); err != nil {
		t.Fatal(err)
	}
	if h.IsKubernetes() {
		t.Error("IsKubernetes() true for kubernetes: null")
	}
	if string(h.Theme) != "null" {
		t.Errorf("Theme = %q, want the null kept", h.Theme)
	}
}
