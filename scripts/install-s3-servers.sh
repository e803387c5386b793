#!/bin/sh
# install-s3-servers.sh builds the S3-compatible servers that reel's storage
# tests run against (versitygw and MinIO) with `go install`, into a cache
# directory keyed by version, so that a second run returns at once.
#
#   scripts/install-s3-servers.sh            # both
#   scripts/install-s3-servers.sh versitygw  # one
#
# The cache lives in $REEL_S3_SERVERS_DIR (default: $(go env GOPATH)/reel-s3-servers);
# the tests in internal/store/s3store look in the same place. Keep the versions
# here in step with internal/store/s3store/s3test/servers.go.
#
# MinIO is AGPL-licensed: it is only ever run as an external test peer, never
# linked into reel.
set -eu

VERSITYGW_VERSION=v1.8.0
MINIO_VERSION=v0.0.0-20260212201848-7aac2a2c5b7c

dir=${REEL_S3_SERVERS_DIR:-$(go env GOPATH)/reel-s3-servers}

install() { # name module version
	bin="$dir/$1@$3/$1"
	if [ -x "$bin" ]; then
		echo "$1 $3: cached at $bin"
		return
	fi
	echo "$1 $3: building (takes a few minutes)..."
	mkdir -p "$dir/$1@$3"
	# Build into a temporary directory and rename, so an interrupted build never
	# leaves a half-written binary in the cache.
	tmp=$(mktemp -d "$dir/.build.XXXXXX")
	GOBIN="$tmp" GOFLAGS=-buildvcs=false go install "$2@$3"
	mv "$tmp/$1" "$bin"
	rmdir "$tmp"
	echo "$1 $3: installed at $bin"
}

want=${*:-versitygw minio}
for name in $want; do
	case $name in
	versitygw) install versitygw github.com/versity/versitygw/cmd/versitygw "$VERSITYGW_VERSION" ;;
	minio) install minio github.com/minio/minio "$MINIO_VERSION" ;;
	*) echo "unknown server $name (want versitygw or minio)" >&2; exit 2 ;;
	esac
done
