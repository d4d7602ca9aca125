# framesend's front door: `make` builds, `make run` shows it working on the
# built-in pty fake, `make test` runs everything CI runs.
GO      ?= go
# The version is also the Debian package's: see packaging/version.sh.
VERSION ?= $(shell sh packaging/version.sh 2>/dev/null || echo 0.0.0~unknown)
LDFLAGS := -s -w -X main.version=$(VERSION)
BIN     := bin/framesend

# Install locations; DESTDIR stages the whole tree elsewhere (packaging).
PREFIX  ?= /usr/local
BINDIR  ?= $(PREFIX)/bin
MANDIR  ?= $(PREFIX)/share/man/man1
UDEVDIR ?= /etc/udev/rules.d
UNITDIR ?= /etc/systemd/system
BASHDIR ?= $(PREFIX)/share/bash-completion/completions
ZSHDIR  ?= $(PREFIX)/share/zsh/site-functions

# Raspberry Pi builds: GOARM=6 for the Zero and 1 (a GOARM=7 build dies there
# with SIGILL), GOARM=7 for the 2 and 3, arm64 for the 3, 4 and 5.
CROSS   := linux-amd64 linux-armv6 linux-armv7 linux-arm64

FUZZTIME ?= 5s
FUZZ    := source:FuzzParseHexLine source:FuzzHexRoundTrip pipeline:FuzzSenderFraming

.PHONY: all build run test fuzz soak bench bench-batch1 fleet-sim lint clean cross man install uninstall deb hil

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/framesend

# The demo: counter frames through the whole data path to a pseudo-terminal,
# read back, printed in hex and verified. No hardware needed.
run: build
	$(BIN) demo

# Every package's result and the output of any failing test as they come,
# then the list of tests that skipped and why.
test: lint
	@rc=$$(mktemp); \
	{ $(GO) test -race -count=1 -json ./... 2>&1; echo $$? > $$rc; } | $(GO) run ./internal/testreport; \
	report=$$?; code=$$(cat $$rc); rm -f $$rc; [ "$$report" = 0 ] && [ "$$code" = 0 ]
	$(MAKE) fuzz

# A short fuzzing run of each target (the seed corpus runs in every go test);
# FUZZTIME=10m make fuzz for a long one.
fuzz:
	@log=$$(mktemp); for pf in $(FUZZ); do \
		p=$${pf%%:*}; f=$${pf#*:}; \
		echo "fuzz $$p $$f for $(FUZZTIME)"; \
		$(GO) test -run '^$$' -fuzz "^$$f\$$" -fuzztime $(FUZZTIME) ./$$p >$$log 2>&1 \
			|| { cat $$log; rm -f $$log; exit 1; }; \
	done; rm -f $$log

# The long run: 10,000,000 frames on the pty fake, every byte checked, peak
# RSS under 32 MiB, the goroutine count constant (make test runs 3,000,000).
soak:
	FRAMESEND_SOAK_FRAMES=10000000 $(GO) test -count=1 -run '^TestSoak$$' -v -timeout 20m ./cmd/framesend

# One table: framesend against raw write(2) loops on the same pty (each its
# own process, medians of interleaved runs), line rate on slow fakes, pacing,
# UDP against socat and MQTT against mosquitto_sub (side by side), footprint,
# the Pi builds under qemu, and the pipeline's Go benchmarks.
# Also saved to bench-results.md. About five minutes.
bench: build
	$(GO) run ./bench -framesend $(BIN) -out bench-results.md

# --batch 1 alone: CPU per frame against a raw write(2) loop (user and
# system, net of start-up), and under perf, if installed, user-space and
# kernel CPU from samples, syscalls of each kind, and instructions where
# the machine has hardware counters. AGAINST=REV also measures framesend
# built from git revision REV (such as 12d74d6, before the port layer).
AGAINST ?=
bench-batch1: build
	@set -e; against=; \
	if [ -n "$(AGAINST)" ]; then \
		d=$$(mktemp -d); trap 'git worktree remove --force "$$d/src"; rm -rf "$$d"' EXIT; \
		git worktree add -q --detach "$$d/src" "$(AGAINST)"; \
		(cd "$$d/src" && CGO_ENABLED=0 $(GO) build -trimpath -o "$$d/framesend-$(AGAINST)" ./cmd/framesend); \
		against="-against $$d/framesend-$(AGAINST)"; \
	fi; \
	$(GO) run ./bench -framesend $(BIN) -only batch1 -runs 11 $$against

# Hardware in the loop: Debian's stock kernel in QEMU (TCG) with the real
# ftdi_sio, 8250 and amba-pl011 drivers and real udev; one line per check.
# Packages are fetched once into $${FRAMESEND_HIL_CACHE:-/var/cache/framesend-hil}
# (see hil/README.md). HIL_RUN=REGEXP runs some scenarios only.
HIL_RUN ?=
hil:
	@mkdir -p bin/hil
	CGO_ENABLED=0 GOARCH=amd64 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/hil/framesend-amd64 ./cmd/framesend
	CGO_ENABLED=0 GOARCH=arm64 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/hil/framesend-arm64 ./cmd/framesend
	CGO_ENABLED=0 GOARCH=amd64 $(GO) build -trimpath -o bin/hil/modemlines-amd64 ./hil/guest/modemlines
	CGO_ENABLED=0 GOARCH=amd64 $(GO) build -trimpath -o bin/hil/smoketest-amd64 ./hil/smoketest
	@# The systemd guest installs the amd64 package.
	rm -rf bin/hil/deb && $(MAKE) --no-print-directory deb DEB_ARCHES=amd64 DEBDIR=bin/hil/deb
	$(GO) run ./hil/cmd/hil -framesend-amd64 bin/hil/framesend-amd64 -framesend-arm64 bin/hil/framesend-arm64 \
		-modemlines bin/hil/modemlines-amd64 -smoketest bin/hil/smoketest-amd64 \
		-deb-amd64 "$$(ls bin/hil/deb/framesend_*_amd64.deb)" -run '$(HIL_RUN)'

# A fleet on one machine: one Mosquitto, N senders on pty fakes, a thousand
# QoS 1 messages to each, ten senders killed mid-stream and restarted; one
# table of what arrived. make test runs it with N=20.
N ?= 100
fleet-sim: build
	$(GO) run ./bench/fleet -framesend $(BIN) -n $(N)

lint:
	$(GO) vet ./...
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

cross:
	@mkdir -p dist
	CGO_ENABLED=0 GOOS=linux GOARCH=amd64 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o dist/framesend-linux-amd64 ./cmd/framesend
	CGO_ENABLED=0 GOOS=linux GOARCH=arm GOARM=6 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o dist/framesend-linux-armv6 ./cmd/framesend
	CGO_ENABLED=0 GOOS=linux GOARCH=arm GOARM=7 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o dist/framesend-linux-armv7 ./cmd/framesend
	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o dist/framesend-linux-arm64 ./cmd/framesend
	@ls -l dist/

# The man page and completion scripts come from the command definitions.
man: build
	@mkdir -p dist
	$(BIN) man > dist/framesend.1
	$(BIN) completion bash > dist/framesend.bash
	$(BIN) completion zsh > dist/_framesend

install: build man
	install -Dm755 $(BIN) $(DESTDIR)$(BINDIR)/framesend
	install -Dm644 udev/99-framesend.rules $(DESTDIR)$(UDEVDIR)/99-framesend.rules
	@mkdir -p $(DESTDIR)$(UNITDIR)
	sed 's|@BINDIR@|$(BINDIR)|g' udev/framesend@.service > $(DESTDIR)$(UNITDIR)/framesend@.service
	chmod 644 $(DESTDIR)$(UNITDIR)/framesend@.service
	@# Settings are the admin's: never overwrite them.
	[ -e $(DESTDIR)/etc/default/framesend ] || install -Dm644 udev/framesend.default $(DESTDIR)/etc/default/framesend
	install -Dm644 dist/framesend.1 $(DESTDIR)$(MANDIR)/framesend.1
	install -Dm644 dist/framesend.bash $(DESTDIR)$(BASHDIR)/framesend
	install -Dm644 dist/_framesend $(DESTDIR)$(ZSHDIR)/_framesend
	@if [ -z "$(DESTDIR)" ]; then \
		if command -v udevadm >/dev/null; then udevadm control --reload-rules && udevadm trigger --subsystem-match=tty || true; fi; \
		if command -v systemctl >/dev/null; then systemctl daemon-reload || true; fi; \
	fi

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/framesend $(DESTDIR)$(UDEVDIR)/99-framesend.rules \
		$(DESTDIR)$(UNITDIR)/framesend@.service $(DESTDIR)$(MANDIR)/framesend.1 \
		$(DESTDIR)$(BASHDIR)/framesend $(DESTDIR)$(ZSHDIR)/_framesend
	@echo "left /etc/default/framesend in place (your settings); remove it by hand if you wish"
	@if [ -z "$(DESTDIR)" ]; then \
		if command -v udevadm >/dev/null; then udevadm control --reload-rules || true; fi; \
		if command -v systemctl >/dev/null; then systemctl daemon-reload || true; fi; \
	fi

# Debian packages for the PC and the Pi, built with dpkg-deb (see
# packaging/deb/build.sh): dist/framesend_VERSION_{amd64,armhf,arm64}.deb.
# armhf is GOARM=6, so it also runs on a Pi Zero and 1. DEBDIR=… writes them
# elsewhere; DEB_ARCHES=amd64 builds one.
DEBDIR     ?= dist
DEB_ARCHES ?= amd64 armhf arm64
deb:
	@for a in $(DEB_ARCHES); do GO='$(GO)' sh packaging/deb/build.sh $$a '$(VERSION)' '$(DEBDIR)' || exit 1; done

clean:
	rm -rf bin dist bench-results.md
