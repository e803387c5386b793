package export

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
)

// HTMLInfo is what the page says about the recording, above the player.
type HTMLInfo struct {
	Title string
	// Facts are shown as a table: key, sender, start, status, the seal's
	// head, the file's SHA-256...
	Facts [][2]string
	// Poster is the time (seconds) whose screen shows before playing; <0
	// shows the end.
	Poster float64
	// AutoPlay starts playing at once.
	AutoPlay bool
	// PlayerJS and PlayerCSS are asciinema-player's script and style
	// sheet (the web UI's copies: web.Player), inlined in the page.
	PlayerJS, PlayerCSS []byte
}

var page = template.Must(template.New("page").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; script-src {{.ScriptSrc}} 'wasm-unsafe-eval'; style-src 'unsafe-inline'; img-src data:; font-src data:; worker-src blob:; connect-src data: blob:">
<meta name="referrer" content="no-referrer">
<title>{{.Info.Title}}</title>
<style>{{.CSS}}</style>
<style>
body { font-family: sans-serif; margin: 1.5em; background: #fafafa; color: #222; }
table.facts { border-collapse: collapse; margin-bottom: 1em; font-size: 90%; }
table.facts td { padding: 0.15em 0.8em 0.15em 0; vertical-align: top; }
table.facts td:first-child { color: #666; white-space: nowrap; }
table.facts td:last-child { font-family: monospace; word-break: break-all; }
</style>
</head>
<body>
<h1>{{.Info.Title}}</h1>
<table class="facts">
{{range .Info.Facts}}<tr><td>{{index . 0}}</td><td>{{index . 1}}</td></tr>
{{end}}</table>
<div id="player"></div>
<script>{{.JS}}</script>
<script>{{.Init}}</script>
</body>
</html>
`))

// HTML writes a self-contained page: the player (script and styles
// inline, nothing loaded from anywhere, a strict Content-Security-Policy)
// with cast embedded as data. The recorded bytes are data, never markup:
// they reach the page only as a JSON string.
func HTML(w io.Writer, cast []byte, info HTMLInfo) error {
	js, css := info.PlayerJS, info.PlayerCSS
	if len(js) == 0 || len(css) == 0 {
		return errors.New("export: no player to put in the page")
	}
	data, err := json.Marshal(string(cast)) // escapes <, > and & too
	if err != nil {
		return err
	}
	opts := map[string]any{"fit": "width", "autoPlay": info.AutoPlay, "preload": true}
	if info.Poster < 0 {
		opts["poster"] = "npt:99999999"
	} else if info.Poster > 0 {
		opts["poster"] = fmt.Sprintf("npt:%g", info.Poster)
	}
	o, _ := json.Marshal(opts)
	init := fmt.Sprintf("AsciinemaPlayer.create({data: %s}, document.getElementById(\"player\"), %s);", data, o)
	hash := func(s string) string {
		sum := sha256.Sum256([]byte(s))
		return "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
	}
	var b bytes.Buffer
	err = page.Execute(&b, map[string]any{
		"Info": info,
		// Trusted: the player and the init script are ours; the cast is
		// inside a JSON string that cannot end the script element.
		"JS":        template.JS(js),
		"Init":      template.JS(init),
		"CSS":       template.CSS(css),
		"ScriptSrc": hash(string(js)) + " " + hash(init),
	})
	if err != nil {
		return err
	}
	_, err = w.Write(b.Bytes())
	return err
}
