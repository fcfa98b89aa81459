# One image with both server-side binaries: tkeha-webhook (the entrypoint, run by the chart's
# Deployment) and tkeha-provisioner (run by `kubectl tkeha provision NAME --in-cluster` Jobs).
#
#   docker build -t REGISTRY/tkeha:0.1.0 .
#   docker push REGISTRY/tkeha:0.1.0
#   helm install tkeha charts/tkeha -n tkeha-system --create-namespace \
#     --set image.repository=REGISTRY/tkeha --set image.tag=0.1.0

# ---- build ---------------------------------------------------------------------------------
FROM rust:1.95-bookworm AS build
# ssh2 links libssh2 against OpenSSL; pkg-config finds it.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libssl-dev pkg-config \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p tkeha-webhook -p tkeha-provisioner \
 && install -D -m 0755 target/release/tkeha-webhook /out/tkeha-webhook \
 && install -D -m 0755 target/release/tkeha-provisioner /out/tkeha-provisioner

# ---- runtime -------------------------------------------------------------------------------
FROM debian:bookworm-slim
# libssl3 for ssh2's OpenSSL backend; ca-certificates for HTTPS to the API server.
# No ssh client: the provisioner speaks SSH through the ssh2 library.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libssl3 ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --gid 65532 tkeha \
 && useradd --uid 65532 --gid 65532 --no-create-home --home-dir /tmp --shell /usr/sbin/nologin tkeha
COPY --from=build /out/ /usr/local/bin/
USER 65532:65532
ENV HOME=/tmp
# mimalloc returns freed pages to the system at once instead of after a delay: after a review
# of a large object the webhook's RSS drops right away (see the webhook under attack in
# BENCHMARKS.md); no measurable cost on normal reviews.
ENV MIMALLOC_PURGE_DELAY=0
EXPOSE 8443 8080
ENTRYPOINT ["/usr/local/bin/tkeha-webhook"]
