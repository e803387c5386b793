package recorder

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestCheckEvent(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		want       string // in the error; "" for accepted
	}{
		{"ok", `{"type":"kubernetes-api-request","request":{"method":"GET"}}`, ""},
		{"ok spaced", " {\n \"type\" : \"x\" }\n", ""},
		{"escaped non-ASCII", `{"type":"x","user":"J\u00fcrgen \ud83d\ude00"}`, ""},
		{"raw UTF-8", `{"type":"x","user":"Jürgen 😀"}`, ""},
		{"invalid UTF-8", "{\"type\":\"x\",\"user\":\"J\xfcrgen\"}", "not valid UTF-8 (first bad byte at offset 21)"},
		{"truncated rune", "{\"type\":\"x\",\"a\":\"\xe2\x82\"}", "not valid UTF-8"},
		{"surrogate bytes", "{\"type\":\"x\",\"a\":\"\xed\xa0\x80\"}", "not valid UTF-8"},
		{"not json", "hello", "not a JSON object"},
		{"array", "[1,2]", "not a JSON object"},
		{"null", "null", "not a JSON object"},
		{"no type", `{"id":"x"}`, `missing "type"`},
		{"type case", `{"Type":"x"}`, `missing "type"`},
		{"empty type", `{"type":""}`, `non-empty string`},
		{"number type", `{"type":5}`, `non-empty string`},
		{"two types", `{"type":"a","type":"b"}`, `more than one "type"`},
		{"truncated", `{"type":"kubernetes-api-request"`, "not a JSON object"},
		{"trailing", `{"type":"x"} {"type":"y"}`, "data after the JSON object"},
		{"trailing garbage", `{"type":"x"}]`, "data after the JSON object"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checkEvent([]byte(tc.body))
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("err = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// FuzzCheckEvent: whatever checkEvent accepts is one valid JSON object in
// valid UTF-8 with exactly one non-empty string "type", and stays valid
// JSON on one line when a store wraps it as fsstore and s3store do.
func FuzzCheckEvent(f *testing.F) {
	for _, s := range []string{
		`{"type":"kubernetes-api-request","request":{"method":"GET","body":"aGk="}}`,
		`{"type":"x","a":[1,2,{"b":null}],"c":"\u00e9\n"}`,
		"{\"type\":\"x\",\"a\":\"\xff\"}",
		`{"type":"a","type":"b"}`, `{"Type":"x"}`, `[]`, `{"type":"x"}{}`, "{\n\"type\":\n\"x\"\n}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if checkEvent(b) != nil {
			return
		}
		if !utf8.Valid(b) || !json.Valid(b) {
			t.Fatalf("accepted %q: not valid UTF-8 JSON", b)
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("accepted %q: not an object: %v", b, err)
		}
		var typ string
		if err := json.Unmarshal(m["type"], &typ); err != nil || typ == "" {
			t.Fatalf("accepted %q: no non-empty string type", b)
		}
		line, err := json.Marshal(struct {
			Event json.RawMessage `json:"event"`
		}{b})
		if err != nil || !utf8.Valid(line) || !json.Valid(line) || strings.Contains(string(line), "\n") {
			t.Fatalf("accepted %q: stored as %q (%v), not one valid JSON line", b, line, err)
		}
	})
}
