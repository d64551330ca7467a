# mews-keyd — see README.md. The two commands a newcomer needs:
#   make demo   run the daemon against the built-in Mews simulator
#   make test   everything CI checks
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
BIN     := bin/mews-keyd

.PHONY: all build test test-windows vet lint demo dist dist-check test-systemd clean bench torture fuzz

all: build

build:
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN) .

# Both platforms must compile and pass vet.
vet:
	$(GO) vet ./...
	GOOS=windows $(GO) vet ./...

# Everything CI checks: vet on both platforms, the Windows build, and every
# test (fuzz seed corpora included) with the race detector.
test: vet
	GOOS=windows $(GO) build ./...
	$(GO) test -race -timeout 15m ./...

# Every package's tests and the demo as Windows binaries under wine, in a
# Debian 13 chroot kept in WINE_CACHE (root, debootstrap, about 2.5 GB; see
# README). PKGS narrows it to some packages, without the demo:
# make test-windows PKGS=./daemon/journal
PKGS ?=
test-windows:
	bash install/wine/test-windows.sh $(PKGS)

# Static analysis beyond vet (unused code, simplifications), pinned.
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
lint:
	GOBIN=$(CURDIR)/bin $(GO) install $(STATICCHECK)
	bin/staticcheck ./...
	GOOS=windows bin/staticcheck ./...

demo:
	$(GO) run -ldflags '$(LDFLAGS)' . demo

# Release artifacts in dist/: binaries for linux/amd64, linux/arm64,
# windows/amd64, .deb packages and a Windows zip.
dist:
	bash install/dist.sh $(VERSION)

# Builds the release into a temporary folder and inspects it
# (needs dpkg-deb, unzip and systemd-analyze).
dist-check:
	bash install/dist_test.sh

# The .deb installed in a Debian 12 container booted with systemd, checked
# from outside as an operator would use it (install/systemdtest). Needs root,
# systemd-nspawn and nsenter (systemd-container), debootstrap and network
# the first time (the image is cached in /var/cache/mews-keyd-test).
test-systemd:
	$(GO) test -tags systemd -count=1 -timeout 10m -v ./install/systemdtest/

clean:
	rm -rf bin dist

# SPEC §7 measured: whole-pipeline and micro benchmarks against the
# loopback simulators. Prints a table with the bars and writes
# bench-results.json; BENCH_IDLE is how long the idle footprint is watched.
BENCH_IDLE ?= 30s
bench:
	$(GO) test -run '^$$' -bench . -benchtime 3s -timeout 15m ./daemon/tools/bench/ \
		-bench.json=$(CURDIR)/bench-results.json -bench.idle=$(BENCH_IDLE)

# Randomized, seeded soak of the real binary under injected faults; a
# failing run prints the seed that replays it (TORTURE_SEED=N).
TORTURE_DURATION ?= 60s
TORTURE_SEED ?= 0
torture:
	$(GO) run ./daemon/tools/torture -duration $(TORTURE_DURATION) -seed $(TORTURE_SEED)

# Each fuzz target for FUZZTIME (go test -fuzz takes one target at a time).
# `make test` already runs the committed seed corpora.
FUZZTIME ?= 10s
FUZZ_TARGETS := ./mews/:FuzzDecodeFrame ./mews/:FuzzAPIResponse ./keys/fias/:FuzzFrameReader \
	./keys/fias/:FuzzDecodeRecord ./daemon/config/:FuzzParse ./daemon/journal/:FuzzSalvage \
	./keys/salto/:FuzzReader ./keys/salto/:FuzzDecodeMessage ./daemon/journal/:FuzzDecodeStart
fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; name=$${t##*:}; \
		echo "fuzz $$name in $$pkg for $(FUZZTIME)"; \
		$(GO) test -run='^$$' -fuzz="^$$name$$" -fuzztime=$(FUZZTIME) $$pkg; \
	done
