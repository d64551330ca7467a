# mews-keyd — see README.md. The two commands a newcomer needs:
#   make demo   run the daemon against the built-in Mews simulator
#   make test   everything CI checks
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
BIN     := bin/mews-keyd

.PHONY: all build test vet demo dist dist-check clean

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

clean:
	rm -rf bin dist
