# syntax=docker/dockerfile:1
# The two images the chart runs (charts/volops/values.yaml), built by `make image` or:
#   docker build --target webhook    -t ghcr.io/volops/volops-webhook:<appVersion> .
#   docker build --target controller -t ghcr.io/volops/volops-controller:<appVersion> .
# tests/chart/test_images.py checks this file against the workspace and the chart: the Rust
# version is the workspace's rust-version, the binaries are its bins, and the users, ports and
# entrypoints are what the chart's Deployments expect.

# Build: both binaries at once, from the committed Cargo.lock.
FROM docker.io/library/rust:1.89-slim-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p volops-webhook -p volops-controller \
    && mkdir -p /out \
    && cp target/release/volops-webhook target/release/volops-controller /out/

# Run: distroless with glibc (mimalloc is linked in), no shell, non-root.
FROM gcr.io/distroless/cc-debian12:nonroot AS webhook
COPY --from=build /out/volops-webhook /usr/local/bin/volops-webhook
USER 65532:65532
# HTTPS admission, probes, metrics (charts/volops/templates/webhook-deployment.yaml).
EXPOSE 8443 8080 9090
ENTRYPOINT ["/usr/local/bin/volops-webhook"]

FROM gcr.io/distroless/cc-debian12:nonroot AS controller
COPY --from=build /out/volops-controller /usr/local/bin/volops-controller
USER 65532:65532
# Probes, metrics (charts/volops/templates/controller-deployment.yaml).
EXPOSE 8080 9090
ENTRYPOINT ["/usr/local/bin/volops-controller"]
