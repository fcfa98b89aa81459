# tkeha: `make demo` runs the whole flow on a network-namespace lab, `make test` runs every check.
SHELL := /bin/bash
CARGO ?= cargo
# .tools/bin (helm from scripts/deps.sh when none was on PATH) comes last: a user's own helm wins.
export PATH := $(CURDIR)/target/debug:$(PATH):$(CURDIR)/.tools/bin

.PHONY: all deps build test lint fmt clippy nextest doctest helm-lint chart demo demo-hosts bench clean

all: build

deps:
	bash scripts/deps.sh

build:
	$(CARGO) build --workspace --all-targets

fmt:
	$(CARGO) fmt --all -- --check

clippy:
	$(CARGO) clippy --workspace --all-targets -- -D warnings

nextest: build
	$(CARGO) nextest run --workspace --no-fail-fast

# nextest does not run doctests; the documented entry points' examples must keep compiling and passing.
doctest:
	$(CARGO) test --workspace --doc

helm-lint:
	bash scripts/helm-lint.sh

# The chart as a package: dist/tkeha-VERSION.tgz (helm install tkeha ./dist/tkeha-VERSION.tgz ...).
chart: deps
	helm lint --strict charts/tkeha
	helm package charts/tkeha -d dist

test: deps fmt clippy nextest doctest helm-lint

demo: deps
	$(CARGO) build --release --workspace
	bash scripts/demo.sh

# The same story on booted Debian 12 machines (systemd, apt from a local mirror, reboots).
demo-hosts: deps
	$(CARGO) build --release --workspace
	bash scripts/demo-hosts.sh

bench: deps
	$(CARGO) build --release --workspace
	bash scripts/bench.sh

clean:
	$(CARGO) clean
