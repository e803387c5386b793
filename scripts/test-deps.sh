#!/usr/bin/env bash
# Installs what reel's test suite needs and is not a Go module dependency:
# Debian packages (asciinema, OpenSSH server, sftp) and the S3 servers the
# storage tests run against. Idempotent and quick when all is present.
set -euo pipefail
cd "$(dirname "$0")/.."

need_pkgs=()
command -v asciinema >/dev/null || need_pkgs+=(asciinema)
[ -x /usr/sbin/sshd ] || need_pkgs+=(openssh-server)
[ -x /usr/lib/openssh/sftp-server ] || need_pkgs+=(openssh-sftp-server)
command -v ssh >/dev/null || need_pkgs+=(openssh-client)
command -v script >/dev/null || need_pkgs+=(bsdutils)
command -v useradd >/dev/null || need_pkgs+=(passwd)   # reel ssh's run-as-user test (root only)
command -v unshare >/dev/null || need_pkgs+=(util-linux)   # tailnet e2e: a loopback-only netns
# reel vnc: a VNC server and X clients, a real VNC viewer, noVNC's browser,
# ffprobe for exported videos, xwd for server-side screenshots.
command -v Xvnc >/dev/null || need_pkgs+=(tigervnc-standalone-server)
command -v Xvfb >/dev/null || need_pkgs+=(xvfb)
command -v vncviewer >/dev/null || need_pkgs+=(tigervnc-viewer)
command -v xdotool >/dev/null || need_pkgs+=(xdotool)
command -v xterm >/dev/null || need_pkgs+=(xterm)
command -v xwd >/dev/null || need_pkgs+=(x11-apps)
command -v ffprobe >/dev/null || need_pkgs+=(ffmpeg)
command -v chromium >/dev/null || need_pkgs+=(chromium)
command -v npm >/dev/null || need_pkgs+=(npm)

if [ ${#need_pkgs[@]} -gt 0 ]; then
  echo "test-deps: installing Debian packages: ${need_pkgs[*]}"
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
fi

# noVNC and playwright-core for internal/rfb's browser test, installed
# from the committed lockfile into a cache directory (REEL_NOVNC_DIR).
novnc_src=internal/rfb/testdata/novnc
novnc_dir=${REEL_NOVNC_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/reel-test/novnc}
if ! cmp -s "$novnc_src/package-lock.json" "$novnc_dir/package-lock.json" || [ ! -d "$novnc_dir/node_modules/@novnc/novnc" ]; then
  echo "test-deps: installing noVNC into $novnc_dir"
  mkdir -p "$novnc_dir"
  cp "$novnc_src/package.json" "$novnc_src/package-lock.json" "$novnc_dir/"
  (cd "$novnc_dir" && npm ci --no-audit --no-fund --silent)
fi

# Test peers built from Go modules, cached by version between runs.
for script in scripts/install-s3-servers.sh scripts/install-tailscale-tools.sh; do
  if [ -f "$script" ]; then
    sh "$script"
  fi
done
echo "test-deps: ok"
