# Targets a newcomer guesses. Everything that loads BPF needs root.
MODE ?= native
GO ?= go

.PHONY: build demo test generate lint bench bench-go clean install package

build:
	@echo "building xdplb (go build ./cmd/xdplb; the BPF object is committed, no clang needed)"
	$(GO) build -ldflags "-X github.com/xdplb/xdplb/internal/buildinfo.Version=$(VERSION)" -o xdplb ./cmd/xdplb

demo: build
	@echo "running the reference scenario (xdp_mode $(MODE)); KEEP=1 keeps it up until Ctrl-C"
	./xdplb demo --mode $(MODE) $(if $(KEEP),--keep)

# The owner of the daemon's state is tested under the race detector too:
# concurrent edits, reloads and health flips.
test:
	$(GO) test -count=1 -timeout 40m ./...
	$(GO) test -race -count=1 -timeout 15m ./internal/daemon/ ./internal/lb/ ./internal/health/ ./internal/api/

generate:
	$(GO) generate ./internal/datapath/ ./internal/toa/ ./internal/decap/

lint:
	gofmt -l $$(git ls-files '*.go')
	$(GO) vet ./...

# The harness: datapath cost, packet rate, end to end against HAProxy and
# nftables, scale (bench/README.md). bench-go: the Go micro-benchmarks.
bench:
	$(GO) run ./bench/cmd/xdplb-bench

bench-go:
	$(GO) test -run '^$$' -bench . -benchmem ./...

# install puts the binary, the systemd unit, the bash completion and the
# manual pages in
# place (as root); `systemctl enable --now xdplb` then starts it.
PREFIX ?= /usr/local
install: build
	install -D -m 0755 xdplb $(DESTDIR)$(PREFIX)/sbin/xdplb
	install -D -m 0644 dist/xdplb.service $(DESTDIR)/etc/systemd/system/xdplb.service
	install -d $(DESTDIR)/etc/bash_completion.d
	./xdplb completion bash > $(DESTDIR)/etc/bash_completion.d/xdplb
	./xdplb man $(DESTDIR)$(PREFIX)/share/man/man1

# package builds xdplb_$(VERSION)_amd64.deb with nfpm (a Go packager: no
# Debian tools needed); dpkg -i installs it, systemctl enable --now starts it.
VERSION ?= $(shell git describe --tags --always 2>/dev/null | sed 's/^v//' | grep '^[0-9]' || echo 0.0.0~dev)
package: build
	$(GO) run ./cmd/xdplb-package -binary ./xdplb -version $(VERSION)

clean:
	rm -f xdplb xdplb_*.deb
