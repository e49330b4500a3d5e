# FlexiLib in a container: the server and its two runtime libraries
# (Cloudflare Workers, WebAssembly) on Debian slim, run as a non-root user.
#
#   docker build -t flexilib .
#   docker run -p 8069:8069 -v "$PWD/proxy.ini:/etc/flexilib/proxy.ini:ro" flexilib
#
# Your own handler libraries go in through a volume or an image built FROM
# this one. Lambda functions need their runtime in the image too (python3,
# node, or a `bootstrap`): add it in an image built FROM this one.

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p flexilib -p flexilib-workers -p flexilib-wasm \
 && mkdir -p /out \
 && cp target/release/flexilib target/release/libflexilib_workers.so \
       target/release/libflexilib_wasm.so /out/

FROM debian:bookworm-slim
# The runtime libraries are found beside the server binary.
COPY --from=build /out/ /opt/flexilib/
RUN useradd --system --uid 10001 --gid 0 --home-dir /srv --create-home flexilib
USER 10001
# Working directory: relative paths, and state (Workers KV, D1, R2) that a
# route keeps beside its project unless given `state=`.
WORKDIR /srv
ENV FLEXILIB_CONFIG=/etc/flexilib/proxy.ini \
    LISTEN_ADDRESS=0.0.0.0 \
    PORT=8069
EXPOSE 8069
ENTRYPOINT ["/opt/flexilib/flexilib"]
