#!/bin/sh
# install-web-deps.sh installs the web UI's npm packages, exactly as
# web/package-lock.json pins them (npm ci), into a cache directory keyed by
# the lockfile's hash, so that a second run returns at once. "make assets"
# copies the player's files from there into internal/web/assets/player;
# internal/web's TestAssetsMatchNPM checks that the committed copies are
# byte for byte the package's.
#
#   scripts/install-web-deps.sh          # prints the directory
#
# The cache lives in $REEL_WEB_NPM_DIR (default:
# $(go env GOPATH)/reel-cache/web-npm-<first 16 hex digits of the
# lockfile's SHA-256>); the test looks in the same place.
set -eu
cd "$(dirname "$0")/.."

sum=$(sha256sum web/package-lock.json | cut -c1-16)
dir=${REEL_WEB_NPM_DIR:-$(go env GOPATH)/reel-cache/web-npm-$sum}

if [ -f "$dir/node_modules/.package-lock.json" ]; then
	echo "$dir"
	exit 0
fi
command -v npm >/dev/null || { echo "install-web-deps: npm is needed (apt-get install npm)" >&2; exit 1; }
mkdir -p "$(dirname "$dir")"
tmp=$(mktemp -d "$(dirname "$dir")/.web-npm.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
cp web/package.json web/package-lock.json "$tmp/"
(cd "$tmp" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >&2)
rm -rf "$dir"
mv "$tmp" "$dir"
trap - EXIT
echo "$dir"
