# vaxgate — developer and CI entry points (GNU make).
#
#   make run    install the PostgreSQL server if missing, build, start a private PostgreSQL under
#               ./data, serve with a demo site
#   make test   install what the tests need if missing, lint, run every test against a real PostgreSQL
#
# Nothing but Go needs to be installed by hand. When missing, as root with apt-get: `make run`
# installs only the PostgreSQL server binaries (deps-postgres); `make deps` (and so `make test`)
# also installs Chromium for the portal's browser tests (deps-chromium) and promtool for deploy/'s
# alert rules (deps-promtool). Tests and `vaxgate serve` start their own PostgreSQL, the portal's
# browser tests their own headless Chromium.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := build

# Go from PATH, else the standard tarball location (CI shells often lack /usr/local/go/bin in PATH).
ifeq ($(origin GO),undefined)
GO := $(shell command -v go 2>/dev/null || echo /usr/local/go/bin/go)
endif
ifneq ($(filter /%,$(GO)),)
export PATH := $(patsubst %/,%,$(dir $(GO))):$(PATH)
endif
ifeq ($(origin GOFMT),undefined)
GOFMT := $(shell $(GO) env GOROOT)/bin/gofmt
endif
# The race detector needs cgo (a C compiler); without one, go reports CGO_ENABLED=0 and the tests
# run without it rather than not at all.
ifeq ($(origin RACE),undefined)
RACE := $(shell [ "$$($(GO) env CGO_ENABLED 2>/dev/null)" = 1 ] && echo -race)
endif

PKGS      ?= ./...
TESTFLAGS ?=
BENCHTIME ?= 1s
FUZZTIME  ?= 10s
FUZZDIRS  ?=
PG_CONFIG ?= pg_config
PG_LIBDIR ?= /usr/lib/postgresql

.PHONY: all build run test test-short bench bench-long bench-go fuzz lint fmt deps deps-postgres deps-chromium deps-promtool node-deps generate clean

all: lint test build

build:
	$(GO) build -o bin/vaxgate ./cmd/vaxgate

# `serve --demo`: private database, demo site, printed credentials. Running needs only PostgreSQL.
run: deps-postgres build
	./bin/vaxgate serve --demo --log-format console

test: deps node-deps lint
	@[ -n "$(RACE)" ] || echo "test: no C compiler (CGO_ENABLED=0): running without the race detector"
	$(GO) test $(RACE) -count=1 $(TESTFLAGS) $(PKGS)
	cd bench/parser && $(GO) test -mod=mod -count=1 ./...

# Quick inner loop: no deps/lint, no race detector, cached results allowed.
test-short:
	$(GO) test -short $(TESTFLAGS) $(PKGS)

# End to end throughput against PostgreSQL's own ceiling, in one run on this machine (scripts/bench.sh:
# a private PostgreSQL, pgbench, vaxgate serve, vaxgate bench at 1/16/64 connections; ~3 minutes).
# BENCH_MESSAGES, BENCH_CONNS, ... tune it (see the script); BENCH_STATEMENTS=1 adds PostgreSQL's time
# by statement, BENCH_PROFILE=1 serve's CPU by area.
bench:
	GO="$(GO)" scripts/bench.sh

# A long run (1,000,000 messages over 64 connections, BENCH_MESSAGES to change): serve's RSS every 30 s
# with its trend after the first minute, every acknowledged message stored (--verify-db), and 1,000
# patient records read back and compared field by field with what was sent (--verify-records).
bench-long:
	GO="$(GO)" BENCH_LONG=1 scripts/bench.sh

# vaxgate preload of a 1,000,000-message file on a private durable PostgreSQL (scripts/bench-preload.sh;
# PRELOAD_MESSAGES=200000 for a shorter run).
bench-preload:
	GO="$(GO)" scripts/bench-preload.sh

# Every Go benchmark of the module, then the parser against github.com/lenaten/hl7 (SPEC §5), a
# module of its own (bench/parser) that reaches the baseline in ../shared/baselines by replace.
bench-go:
	$(GO) test -run='^$$' -bench=. -benchmem -benchtime=$(BENCHTIME) $(PKGS)
	cd bench/parser && $(GO) test -mod=mod -run='^$$' -bench=Parse -benchmem -benchtime=$(BENCHTIME) ./...

# Every Fuzz target under ./... (or FUZZDIRS), FUZZTIME each: go test -fuzz takes one target of
# one package at a time.
fuzz:
	GO="$(GO)" FUZZTIME="$(FUZZTIME)" scripts/fuzz.sh $(FUZZDIRS)

# gofmt -l must list nothing; go vet must pass.
lint:
	@out="$$($(GOFMT) -l $$(find . -name '*.go' -not -path './vendor/*' -not -path './.git/*'))"; \
	if [ -n "$$out" ]; then echo "lint: gofmt needed on (run make fmt):"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	cd bench/parser && $(GO) vet -mod=mod ./...

fmt:
	$(GOFMT) -w $$(find . -name '*.go' -not -path './vendor/*' -not -path './.git/*')

# Everything `make test` needs.
deps: deps-postgres deps-chromium deps-promtool

# PostgreSQL server binaries (initdb, postgres), found the way store/pgembed finds them.
deps-postgres:
	@if [ -n "$${VAXGATE_TEST_DATABASE_URL:-}" ]; then exit 0; fi; \
	if [ -n "$${VAXGATE_PG_BINDIR:-}" ] && [ -x "$$VAXGATE_PG_BINDIR/initdb" ]; then exit 0; fi; \
	bindir="$$($(PG_CONFIG) --bindir 2>/dev/null || true)"; \
	if [ -n "$$bindir" ] && [ -x "$$bindir/initdb" ] && [ -x "$$bindir/postgres" ]; then exit 0; fi; \
	for d in $(PG_LIBDIR)/*/bin; do \
		if [ -x "$$d/initdb" ] && [ -x "$$d/postgres" ]; then exit 0; fi; \
	done; \
	if command -v initdb >/dev/null 2>&1; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "deps: installing the PostgreSQL server (apt-get install postgresql)"; \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get update -q && apt-get install -y -q --no-install-recommends postgresql </dev/null; \
	else \
		echo 'PostgreSQL server binaries not found: install them with "apt-get install postgresql" (or set VAXGATE_PG_BINDIR)' >&2; \
		exit 1; \
	fi

# Headless Chromium for the portal's browser tests (portal/browser_test.go finds it the same way).
deps-chromium:
	@if [ -n "$${VAXGATE_CHROMIUM:-}" ] && [ -x "$$VAXGATE_CHROMIUM" ]; then exit 0; fi; \
	for b in chromium chromium-browser google-chrome google-chrome-stable; do \
		if command -v $$b >/dev/null 2>&1; then exit 0; fi; \
	done; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "deps: installing headless Chromium for the portal's browser tests (apt-get install chromium)"; \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get update -q && apt-get install -y -q --no-install-recommends chromium </dev/null; \
	elif [ "$${CI:-}" = true ]; then \
		echo 'Chromium not found: install it with "apt-get install chromium" (or set VAXGATE_CHROMIUM): CI runs the browser tests' >&2; \
		exit 1; \
	else \
		echo 'deps: Chromium not found ("apt-get install chromium" as root): the portal browser tests will be skipped' >&2; \
	fi

# promtool, Prometheus' own checker, for deploy/'s alert rules (deploy/deploy_test.go).
deps-promtool:
	@if command -v promtool >/dev/null 2>&1; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "deps: installing promtool (apt-get install prometheus) to check deploy/prometheus"; \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get update -q && apt-get install -y -q --no-install-recommends prometheus </dev/null; \
	elif [ "$${CI:-}" = true ]; then \
		echo 'promtool not found: install it with "apt-get install prometheus": CI checks the alert rules' >&2; \
		exit 1; \
	else \
		echo 'deps: promtool not found ("apt-get install prometheus" as root): the alert-rule checks will be skipped' >&2; \
	fi

# The third-party SOAP client used by ingest/soap's tests (npm soap, pinned in package-lock.json).
# TestNodeSOAPClient runs npm ci itself when node_modules is missing; this only does it ahead of time.
node-deps:
	@if command -v npm >/dev/null 2>&1; then npm ci --prefix ingest/soap/testdata/nodeclient --no-audit --no-fund --loglevel=error; \
	else echo "node-deps: npm not found: TestNodeSOAPClient will be skipped"; fi

generate:
	$(GO) generate $(PKGS)

# Leaves ./data (the private database of `make run`) alone: it holds data. rm -rf data to reset it.
clean:
	rm -rf bin/ coverage.out coverage.html *.coverprofile *.test *.prof
	$(GO) clean -testcache
