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
command -v unshare >/dev/null || need_pkgs+=(util-linux)   # tailnet e2e: a loopback-only netns; runuser for PostgreSQL as root
# The index's PostgreSQL tests start their own cluster with initdb/pg_ctl (pg_trgm ships with the server).
command -v initdb >/dev/null || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need_pkgs+=(postgresql)

if [ ${#need_pkgs[@]} -gt 0 ]; then
  echo "test-deps: installing Debian packages: ${need_pkgs[*]}"
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
fi

# Test peers built from Go modules, cached by version between runs.
for script in scripts/install-s3-servers.sh scripts/install-tailscale-tools.sh; do
  if [ -f "$script" ]; then
    sh "$script"
  fi
done
echo "test-deps: ok"
