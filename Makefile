# mews-keyd — see README.md. The two commands a newcomer needs:
#   make demo   run the daemon against the built-in Mews simulator
#   make test   everything CI checks
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
BIN     := bin/mews-keyd

.PHONY: all build test vet cross demo bench fuzz clean

all: build

build:
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN) .

vet:
	$(GO) vet ./...
	GOOS=windows $(GO) vet ./...

# Both platforms must compile; the tests run with the race detector.
test: vet
	GOOS=windows $(GO) build ./...
	$(GO) test -race -timeout 15m ./...

demo:
	$(GO) run -ldflags '$(LDFLAGS)' . demo

clean:
	rm -rf bin dist
