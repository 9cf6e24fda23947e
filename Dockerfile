# The image of our mock components (aigw, webui, ollama: `mtls-e2e serve ...`),
# built inside Docker. `mtls-e2e image` uses it when this machine's own binary
# cannot run in the kind node: on macOS (a Mach-O binary), or when the node's
# CPU architecture differs (Apple silicon runs arm64 nodes). On Linux with a
# node of the same architecture the host binary is imported instead, pulling
# nothing. Build by hand: docker build -t mtls-e2e:e2e .
#
# Stage 1: a static binary (musl), for the architecture Docker builds for.
FROM rust:1.89-alpine AS build
RUN apk add --no-cache build-base cmake perl
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY harness harness
COPY manifests manifests
RUN cargo build --release --locked -p mtls-e2e --bin mtls-e2e \
 && mkdir -p /rootfs/tmp \
 && chmod 1777 /rootfs/tmp \
 && cp target/release/mtls-e2e /rootfs/mtls-e2e

# Stage 2: that binary and an empty /tmp; no shell, no package manager.
FROM scratch
COPY --from=build /rootfs/ /
USER 65534:65534
ENTRYPOINT ["/mtls-e2e"]
