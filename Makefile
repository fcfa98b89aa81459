# tkeha: `make demo` runs the whole flow on a network-namespace lab, `make test` runs every check.
SHELL := /bin/bash
CARGO ?= cargo
export PATH := $(CURDIR)/target/debug:$(PATH)

.PHONY: all deps build test lint fmt clippy nextest doctest helm-lint demo bench clean

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

# nextest does not run doc tests; the API's examples must compile and pass.
doctest:
	$(CARGO) test --workspace --doc

helm-lint:
	bash scripts/helm-lint.sh

test: deps fmt clippy nextest doctest helm-lint

demo: deps
	$(CARGO) build --release --workspace
	bash scripts/demo.sh

bench: deps
	$(CARGO) build --release --workspace
	bash scripts/bench.sh

clean:
	$(CARGO) clean
