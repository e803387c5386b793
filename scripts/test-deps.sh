#!/usr/bin/env bash
# Installs what reel's test suite needs and is not a Go module dependency:
# Debian packages (asciinema, OpenSSH server, sftp, Chromium) and the S3
# servers the storage tests run against, and the web UI's npm packages.
# Idempotent and quick when all is present.
#
# Packages are installed without starting their services: the tests run
# their own sshd on a loopback port they pick, and an sshd on port 22 that
# "make test" started would be a surprise. During apt-get, a temporary
# /usr/sbin/policy-rc.d answers 101 ("not allowed"), which Debian's
# maintainer scripts (invoke-rc.d, deb-systemd-invoke) obey; afterwards the
# units of a newly installed openssh-server are disabled on a systemd
# machine, so that it does not start at the next boot either.
set -euo pipefail

# One run at a time: two "make test" started together would otherwise both
# run apt-get (the second fails on dpkg's lock) and npm ci into the same
# cache directory. The second waits, then finds everything installed.
lockdir=$(go env GOPATH)/reel-cache
mkdir -p "$lockdir"
exec 9>"$lockdir/test-deps.lock"
if ! flock -n 9; then
  echo "test-deps: another run is installing; waiting for it" >&2
  flock 9
fi
cd "$(dirname "$0")/.."

need_pkgs=()
command -v asciinema >/dev/null || need_pkgs+=(asciinema)
[ -x /usr/sbin/sshd ] || need_pkgs+=(openssh-server)
[ -x /usr/lib/openssh/sftp-server ] || need_pkgs+=(openssh-sftp-server)
command -v ssh >/dev/null || need_pkgs+=(openssh-client)
command -v script >/dev/null || need_pkgs+=(bsdutils)
command -v useradd >/dev/null || need_pkgs+=(passwd)   # reel ssh's run-as-user test (root only)
command -v unshare >/dev/null || need_pkgs+=(util-linux)   # tailnet e2e: a loopback-only netns; runuser for PostgreSQL as root
# The index's PostgreSQL tests start their own cluster with initdb/pg_ctl (pg_trgm ships with the server).
command -v initdb >/dev/null || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need_pkgs+=(postgresql)
command -v chromium >/dev/null || need_pkgs+=(chromium)   # the web UI's browser tests (internal/web)
command -v npm >/dev/null || need_pkgs+=(npm)             # the web UI's pinned npm packages (scripts/install-web-deps.sh)
# reel vnc: a VNC server and X clients, a real VNC viewer, noVNC's browser,
# ffprobe for exported videos, xwd for server-side screenshots.
command -v Xvnc >/dev/null || need_pkgs+=(tigervnc-standalone-server)
command -v Xvfb >/dev/null || need_pkgs+=(xvfb)
command -v vncviewer >/dev/null || need_pkgs+=(tigervnc-viewer)
command -v xdotool >/dev/null || need_pkgs+=(xdotool)
command -v xterm >/dev/null || need_pkgs+=(xterm)
command -v xwd >/dev/null || need_pkgs+=(x11-apps)
command -v ffprobe >/dev/null || need_pkgs+=(ffmpeg)

if [ ${#need_pkgs[@]} -gt 0 ]; then
  echo "test-deps: installing Debian packages (their services are not started): ${need_pkgs[*]}"
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  policy_rc=/usr/sbin/policy-rc.d
  if [ ! -e "$policy_rc" ]; then
    printf '#!/bin/sh\n# installed by reel scripts/test-deps.sh during apt-get\nexit 101\n' | $sudo tee "$policy_rc" >/dev/null
    $sudo chmod 755 "$policy_rc"
    trap '$sudo rm -f "$policy_rc"' EXIT
  else
    echo "test-deps: $policy_rc exists; leaving it as it is" >&2
  fi
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
  if [ -e "$policy_rc" ] && grep -q 'reel scripts/test-deps.sh' "$policy_rc"; then
    $sudo rm -f "$policy_rc"
    trap - EXIT
  fi
  if [[ " ${need_pkgs[*]} " == *" openssh-server "* ]] && [ -d /run/systemd/system ]; then
    $sudo systemctl disable --now --quiet ssh.service ssh.socket 2>/dev/null || true
  fi
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
for script in scripts/install-s3-servers.sh scripts/install-tailscale-tools.sh scripts/install-web-deps.sh; do
  if [ -f "$script" ]; then
    sh "$script"
  fi
done
echo "test-deps: ok"
