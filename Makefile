# keystone-rs developer commands. Needs only a Rust toolchain and python3.
#   make run    build, initialise ./data on first start, serve on http://127.0.0.1:5000
#   make test   the whole test suite (format, lint, Rust tests, Python end-to-end tests)

CARGO   ?= cargo
PYTHON  ?= python3
CONFIG  ?= etc/keystone.dev.conf
RELEASE := target/release/keystone-rs
DEBUG   := target/debug/keystone-rs
VENV    := .venv
E2E_REQ := tests/e2e/requirements.txt
PUBLIC_URL := http://127.0.0.1:5000/v3
PYTEST_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help build run test e2e bench bench-import fuzz fmt clippy clean

help:
	@echo "make run     build, set up ./data (database, Fernet keys, admin user) and serve on 127.0.0.1:5000"
	@echo "make test    cargo fmt --check, clippy, cargo test, then the Python end-to-end tests"
	@echo "make build   release build ($(RELEASE))"
	@echo "make e2e     only the Python end-to-end tests (tests/e2e; builds $(DEBUG) first; PYTEST_ARGS='-k NAME' selects)"
	@echo "make fuzz    cargo-fuzz targets (fuzz/), FUZZ_SECONDS each (default 60)"
	@echo "make fmt | clippy | clean"

build:
	$(CARGO) build --release

# db sync, fernet setup and bootstrap are idempotent, so they run on every start;
# the admin password is generated once, into data/admin-password (mode 0600).
run: build
	@mkdir -p -m 0700 data
	$(RELEASE) --config-file $(CONFIG) db sync
	$(RELEASE) --config-file $(CONFIG) fernet setup
	$(RELEASE) --config-file $(CONFIG) credential setup
	@if [ ! -s data/admin-password ]; then \
		( umask 077 && $(PYTHON) -c 'import secrets; print(secrets.token_urlsafe(24))' > data/admin-password ) && \
		echo "generated the admin password in data/admin-password"; \
	fi
	@chmod 600 data/admin-password
	OS_BOOTSTRAP_PASSWORD="$$(cat data/admin-password)" $(RELEASE) --config-file $(CONFIG) bootstrap \
		--bootstrap-username admin --bootstrap-project-name admin --bootstrap-role-name admin \
		--bootstrap-region-id RegionOne \
		--bootstrap-admin-url $(PUBLIC_URL) \
		--bootstrap-public-url $(PUBLIC_URL) \
		--bootstrap-internal-url $(PUBLIC_URL)
	@echo
	@echo "keystone-rs is starting on http://127.0.0.1:5000 (Ctrl-C stops it). Get an admin token with:"
	@echo
	@echo "  curl -si http://127.0.0.1:5000/v3/auth/tokens -H 'Content-Type: application/json' -d '{\"auth\": {\"identity\": {\"methods\": [\"password\"], \"password\": {\"user\": {\"name\": \"admin\", \"domain\": {\"id\": \"default\"}, \"password\": \"'\"\$$(cat data/admin-password)\"'\"}}}, \"scope\": {\"project\": {\"name\": \"admin\", \"domain\": {\"id\": \"default\"}}}}}'"
	@echo
	@echo "(the token is the X-Subject-Token response header)"
	@echo
	exec $(RELEASE) --config-file $(CONFIG) serve

test:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings
	$(CARGO) test
	$(MAKE) --no-print-directory e2e

$(VENV)/.installed: $(E2E_REQ)
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r $(E2E_REQ)
	@touch $@

# pytest exits 5 when it collected no test: that is a failure too.
e2e: $(VENV)/.installed
	$(CARGO) build
	@rc=0; KEYSTONE_RS_BIN="$${KEYSTONE_RS_BIN:-$(DEBUG)}" \
		$(VENV)/bin/python -m pytest -p no:cacheprovider -v tests/e2e $(PYTEST_ARGS) || rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "e2e: pytest collected no tests: failing" >&2; exit 1; fi; \
	exit $$rc

# Performance claims live here, never in timed tests: see docs/performance.md.
bench:
	bash bench/run.sh

# db import of a 100,000-user / 10,000-project Keystone database: time and memory.
bench-import:
	bash bench/import_scale.sh

FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= fernet_token auth_request
# Needs `cargo install cargo-fuzz`; stable toolchain, no sanitizer (see fuzz/README.md).
fuzz:
	@for t in $(FUZZ_TARGETS); do \
		(cd fuzz && $(CARGO) fuzz run --sanitizer none $$t -- -max_total_time=$(FUZZ_SECONDS)) || exit 1; \
	done

fmt:
	$(CARGO) fmt --all

clippy:
	$(CARGO) clippy --all-targets -- -D warnings

clean:
	$(CARGO) clean
	rm -rf $(VENV)
	@echo "data/ (database, Fernet keys, admin password) is kept: rm -rf data to start over"
