package web

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/reel-rec/reel/internal/testutil"
)

// TestAssetsMatchNPM: the player files the binary embeds are byte for byte
// those of the asciinema-player package that web/package-lock.json pins,
// as npm ci installed it (scripts/install-web-deps.sh, run by
// scripts/test-deps.sh): provenance checked, never pasted in.
func TestAssetsMatchNPM(t *testing.T) {
	lock, err := os.ReadFile("../../web/package-lock.json")
	if err != nil {
		t.Fatal(err)
	}
	var pl struct {
		Packages map[string]struct {
			Version, Resolved, Integrity string
		} `json:"packages"`
	}
	if err := json.Unmarshal(lock, &pl); err != nil {
		t.Fatal(err)
	}
	p := pl.Packages["node_modules/asciinema-player"]
	if p.Version != "3.17.0" || !strings.HasPrefix(p.Integrity, "sha512-") {
		t.Fatalf("lockfile pins asciinema-player %+v, want 3.17.0 with an integrity hash", p)
	}
	sum := sha256.Sum256(lock)
	dir := os.Getenv("REEL_WEB_NPM_DIR")
	if dir == "" {
		gopath, err := exec.Command("go", "env", "GOPATH").Output()
		if err != nil {
			t.Fatal(err)
		}
		dir = filepath.Join(strings.TrimSpace(string(gopath)), "reel-cache", "web-npm-"+hex.EncodeToString(sum[:])[:16])
	}
	pkg := filepath.Join(dir, "node_modules", "asciinema-player")
	if _, err := os.Stat(filepath.Join(pkg, "package.json")); err != nil {
		testutil.SkipOrFail(t, "the npm packages are not installed in %s: run scripts/install-web-deps.sh", dir)
	}
	var pj struct{ Version string }
	b, _ := os.ReadFile(filepath.Join(pkg, "package.json"))
	if err := json.Unmarshal(b, &pj); err != nil || pj.Version != p.Version {
		t.Fatalf("installed asciinema-player %q, lockfile %q (%v)", pj.Version, p.Version, err)
	}
	files := map[string]string{
		"assets/player/asciinema-player.min.js": "dist/bundle/asciinema-player.min.js",
		"assets/player/asciinema-player.css":    "dist/bundle/asciinema-player.css",
		"assets/player/LICENSE":                 "LICENSE",
	}
	ents, err := assetFS.ReadDir("assets/player")
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != len(files) {
		t.Errorf("assets/player holds %d files, want exactly %d: %v", len(ents), len(files), ents)
	}
	for embedded, inPkg := range files {
		got, err := assetFS.ReadFile(embedded)
		if err != nil {
			t.Fatal(err)
		}
		want, err := os.ReadFile(filepath.Join(pkg, inPkg))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from the npm package's %s: run make assets", embedded, inPkg)
		}
	}
}
