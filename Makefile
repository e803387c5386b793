# reel — make targets. "make test" is the one command that runs the whole
# suite, installing what it needs first (Debian packages, test servers).

GO ?= go
GOTESTFLAGS ?= -race -count=1 -timeout 40m

.PHONY: all build test test-deps vet fuzz bench assets clean

all: build

build:
	$(GO) build -o reel ./cmd/reel

# Everything CI runs: install peers, vet, then all tests with -race.
test: test-deps vet
	CI=$${CI:-true} $(GO) test $(GOTESTFLAGS) ./...

test-deps:
	bash scripts/test-deps.sh

vet:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed: $$unformatted"; exit 1; fi
	$(GO) vet ./...

# The web UI's player files: npm ci of web/package-lock.json (cached), then
# copied into internal/web/assets/player, which the binary embeds. Commit
# the result; TestAssetsMatchNPM checks the copies are the package's.
PLAYER_FILES = asciinema-player.min.js asciinema-player.css
assets:
	@dir=$$(bash scripts/install-web-deps.sh) && \
	for f in $(PLAYER_FILES); do cp "$$dir/node_modules/asciinema-player/dist/bundle/$$f" internal/web/assets/player/; done && \
	cp "$$dir/node_modules/asciinema-player/LICENSE" internal/web/assets/player/LICENSE && \
	echo "assets: copied asciinema-player $$(node -p "require('$$dir/node_modules/asciinema-player/package.json').version") into internal/web/assets/player"

# Run each fuzz target for FUZZTIME (not part of "make test").
FUZZTIME ?= 30s
fuzz:
	bash scripts/fuzz.sh $(FUZZTIME)

# Benchmarks and load tools (not part of "make test"); see docs/benchmarks.md.
bench:
	$(GO) run ./bench/ingest

clean:
	rm -f reel
