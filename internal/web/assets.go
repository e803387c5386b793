package web

import (
	"embed"
	"io/fs"
	"net/http"
	"strings"
)

// assets are the UI's static files: app.js and app.css (reel's own), and
// under player/ the asciinema-player files copied from the npm package
// pinned in web/package-lock.json by "make assets" (a test checks they are
// byte for byte the package's).
//
//go:embed assets
var assetFS embed.FS

// Player returns the asciinema-player's script and style sheet, for pages
// made elsewhere (reel export --format html).
func Player() (js, css []byte, err error) {
	if js, err = assetFS.ReadFile("assets/player/asciinema-player.min.js"); err != nil {
		return nil, nil, err
	}
	css, err = assetFS.ReadFile("assets/player/asciinema-player.css")
	return js, css, err
}

func assetHandler() http.Handler {
	sub, err := fs.Sub(assetFS, "assets")
	if err != nil {
		panic(err)
	}
	files := http.FileServerFS(sub)
	return http.StripPrefix("/assets/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "" || strings.HasSuffix(r.URL.Path, "/") {
			http.NotFound(w, r) // no directory listings
			return
		}
		w.Header().Set("Cache-Control", "public, max-age=3600")
		files.ServeHTTP(w, r)
	}))
}
