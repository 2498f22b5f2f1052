# volops: `make test` runs every check CI runs; `make crds` regenerates the CRDs; `make image`
# builds the chart's two images.
SHELL := /bin/bash
export CARGO_TARGET_DIR ?= $(CURDIR)/target
CARGO ?= cargo
PYTHON ?= python3

.PHONY: test fmt-check clippy rust-test chart-test python-deps crds build bench bench-smoke demo image

test: fmt-check clippy rust-test chart-test

fmt-check:
	$(CARGO) fmt --all -- --check

clippy:
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

rust-test: python-deps
	$(CARGO) test --workspace --locked

build:
	$(CARGO) build --workspace --locked --bins

chart-test: build python-deps
	VOLOPS_CRDGEN=$(CARGO_TARGET_DIR)/debug/volops-crdgen $(PYTHON) -m pytest tests/chart -q

crds:
	$(CARGO) run -q -p volops-shared --bin volops-crdgen

# The Helm engine (PyPI's helm-python-sdk) renders the chart for its tests, and for the e2e
# tests and the demo, which deploy the chart's RBAC.
python-deps:
	$(PYTHON) -m pip install -q --disable-pip-version-check -r tests/chart/requirements.txt

demo: python-deps
	$(CARGO) run --release -p volops-e2e --bin volops-demo

# docs/PERFORMANCE.md: the benchmarks at full size (release build, a few minutes each).
bench:
	$(CARGO) build --release --locked -p volops-bench
	$(CARGO_TARGET_DIR)/release/volops-bench webhook
	$(CARGO_TARGET_DIR)/release/volops-bench webhook-flood
	$(CARGO_TARGET_DIR)/release/volops-bench controller
	$(CARGO_TARGET_DIR)/release/volops-bench autoscaler
	$(CARGO_TARGET_DIR)/release/volops-bench chaos
	$(CARGO_TARGET_DIR)/release/volops-bench scale

# CI smoke test: each benchmark in its tiny configuration on the debug build (no timing check).
bench-smoke:
	$(CARGO) build --locked -p volops-bench
	$(CARGO_TARGET_DIR)/debug/volops-bench webhook --tiny
	$(CARGO_TARGET_DIR)/debug/volops-bench webhook-flood --tiny
	$(CARGO_TARGET_DIR)/debug/volops-bench controller --tiny
	$(CARGO_TARGET_DIR)/debug/volops-bench autoscaler --tiny
	$(CARGO_TARGET_DIR)/debug/volops-bench chaos --tiny
	$(CARGO_TARGET_DIR)/debug/volops-bench scale --tiny

# The images the chart runs (Dockerfile), tagged <registry>/volops-{webhook,controller}:<the
# chart's appVersion>. Docker or Podman, whichever is installed (CONTAINER_ENGINE=... to choose).
IMAGE_REGISTRY ?= ghcr.io/volops
IMAGE_TAG ?= $(shell sed -n 's/^appVersion: *"*\([^"]*\)"*$$/\1/p' charts/volops/Chart.yaml)
CONTAINER_ENGINE ?= $(shell command -v docker 2>/dev/null || command -v podman 2>/dev/null)

image:
	@test -n "$(CONTAINER_ENGINE)" || { echo "make image: neither docker nor podman is installed (or set CONTAINER_ENGINE)" >&2; exit 1; }
	@$(CONTAINER_ENGINE) info >/dev/null 2>&1 || { echo "make image: $(CONTAINER_ENGINE) is installed but its engine does not answer ($(CONTAINER_ENGINE) info fails)" >&2; exit 1; }
	$(CONTAINER_ENGINE) build --target webhook -t $(IMAGE_REGISTRY)/volops-webhook:$(IMAGE_TAG) .
	$(CONTAINER_ENGINE) build --target controller -t $(IMAGE_REGISTRY)/volops-controller:$(IMAGE_TAG) .
