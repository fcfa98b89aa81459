# tkeha: `make demo` runs the whole flow on a network-namespace lab, `make test` runs every check.
SHELL := /bin/bash
CARGO ?= cargo
# .tools/bin (helm from scripts/deps.sh when none was on PATH) comes last: a user's own helm wins.
export PATH := $(CURDIR)/target/debug:$(PATH):$(CURDIR)/.tools/bin

.PHONY: all deps build test lint fmt clippy nextest doctest helm-lint chart demo demo-hosts bench clean install release

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

# The plugin on PATH as kubectl expects it: kubectl-tkeha and the completion shim
# kubectl_complete-tkeha in $(PREFIX)/bin (~/.local/bin by default). Running it from target/ instead
# makes `kubectl plugin list` warn and exit 1 (cargo's kubectl-tkeha.d there looks like a plugin).
PREFIX ?= $(HOME)/.local
KUBECTL_TKEHA ?= target/release/kubectl-tkeha
install:
	@if [ "$(KUBECTL_TKEHA)" = target/release/kubectl-tkeha ]; then $(CARGO) build --release -p kubectl-tkeha; fi
	install -d "$(DESTDIR)$(PREFIX)/bin"
	install -m 0755 "$(KUBECTL_TKEHA)" "$(DESTDIR)$(PREFIX)/bin/kubectl-tkeha"
	install -m 0755 kubectl-tkeha/kubectl_complete-tkeha "$(DESTDIR)$(PREFIX)/bin/kubectl_complete-tkeha"
	@case ":$$PATH:" in *":$(PREFIX)/bin:"*) ;; *) echo "note: $(PREFIX)/bin is not on PATH; add it so kubectl finds the plugin" >&2 ;; esac

# The krew archive and the filled-in manifest: dist/kubectl-tkeha_vVERSION_linux_amd64.tar.gz, dist/tkeha.yaml.
release:
	bash scripts/release.sh

clean:
	$(CARGO) clean
