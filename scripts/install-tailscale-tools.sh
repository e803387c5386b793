#!/bin/sh
# install-tailscale-tools.sh builds the real Tailscale daemon and CLI
# (tailscaled, tailscale) that reel's tailnet end-to-end tests run against,
# with `go install`, into a cache directory keyed by version, so that a
# second run returns at once. The binaries are built from the released
# tailscale.com module with its own go.mod, exactly as Tailscale ships them,
# not from reel's dependency graph.
#
#   scripts/install-tailscale-tools.sh
#
# The cache lives in $REEL_TAILSCALE_DIR (default:
# $(go env GOPATH)/reel-cache/tailscale@<version>); the tests in
# internal/tailnet/e2e look in the same place. Keep the version here in step
# with internal/tailnet/e2e/tools_test.go and go.mod.
set -eu

TAILSCALE_VERSION=v1.102.5

dir=${REEL_TAILSCALE_DIR:-$(go env GOPATH)/reel-cache/tailscale@$TAILSCALE_VERSION}

if [ -x "$dir/tailscaled" ] && [ -x "$dir/tailscale" ]; then
	echo "tailscale $TAILSCALE_VERSION: cached in $dir"
	exit 0
fi
echo "tailscale $TAILSCALE_VERSION: building tailscaled and tailscale (takes a few minutes)..."
mkdir -p "$dir"
# Build into a temporary directory and rename, so an interrupted build never
# leaves a half-written binary in the cache.
tmp=$(mktemp -d "$dir/.build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
GOBIN="$tmp" GOFLAGS=-buildvcs=false GOTOOLCHAIN=local \
	go install "tailscale.com/cmd/tailscaled@$TAILSCALE_VERSION" "tailscale.com/cmd/tailscale@$TAILSCALE_VERSION"
mv "$tmp/tailscale" "$dir/tailscale"
mv "$tmp/tailscaled" "$dir/tailscaled"
echo "tailscale $TAILSCALE_VERSION: installed in $dir"
