# framesend's front door: `make` builds, `make run` shows it working on the
# built-in pty fake, `make test` runs everything CI runs.
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
BIN     := bin/framesend

FUZZTIME ?= 5s
FUZZ    := FuzzParseHexLine FuzzHexRoundTrip FuzzSenderFraming FuzzFramer

.PHONY: all build run test fuzz bench lint clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/framesend

# The demo: counter frames through the whole data path to a pseudo-terminal,
# read back, printed in hex and verified. No hardware needed.
run: build
	$(BIN) demo

test: lint
	$(GO) test -race -count=1 ./...
	$(MAKE) fuzz

# A short fuzzing run of each target (the seed corpus runs in every go test);
# FUZZTIME=10m make fuzz for a long one.
fuzz:
	@log=$$(mktemp); for f in $(FUZZ); do \
		echo "fuzz $$f for $(FUZZTIME)"; \
		$(GO) test -run '^$$' -fuzz "^$$f\$$" -fuzztime $(FUZZTIME) ./pipeline >$$log 2>&1 \
			|| { cat $$log; rm -f $$log; exit 1; }; \
	done; rm -f $$log

# Go benchmarks of the pipeline, then framesend against a raw write(2) loop
# on the same pty, each as its own process, medians of interleaved runs.
bench: build
	$(GO) test -run '^$$' -bench . -benchmem -count 3 ./pipeline/
	$(GO) run ./bench -framesend $(BIN) -out bench-results.md

lint:
	$(GO) vet ./...
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

clean:
	rm -rf bin dist bench-results.md
