# syntax=docker/dockerfile:1
# cnscd: the GraphQL service as a small image.
#   docker build -t cnscd .
#   docker run --rm -e CNSCD_JWT_SECRET=... -e CNSCD_DATABASE_URL=postgres://... -p 8080:8080 cnscd
# Needs BuildKit (the default since Docker 23) for the cache mounts below.

# ---- build ---------------------------------------------------------------------------------
FROM rust:1.95-bookworm AS builder

WORKDIR /src
COPY . .

# The registry and target caches survive between builds on the same machine; the binary is
# copied out of the cached target folder in the same step, since the cache is not in the layer.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target \
    cargo build --release -p cnscd-api --locked \
    && install -D -m 0755 target/release/cnscd /out/cnscd

# ---- run -----------------------------------------------------------------------------------
FROM debian:bookworm-slim

# ca-certificates: TLS to a JWKS endpoint or a remote database; curl: the health check.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/*

RUN groupadd --gid 10001 cnscd \
    && useradd --uid 10001 --gid cnscd --home-dir /app --no-create-home \
        --shell /usr/sbin/nologin cnscd \
    && mkdir -p /app \
    && chown cnscd:cnscd /app

COPY --from=builder /out/cnscd /usr/local/bin/cnscd
# The administrative-unit catalogues, read-only; /app itself stays writable for a SQLite file.
COPY data/ /app/data/

WORKDIR /app
USER 10001:10001

ENV CNSCD_LISTEN=0.0.0.0:8080
EXPOSE 8080

# /healthz on the port CNSCD_LISTEN names (8080 unless overridden at run time).
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["sh", "-c", "curl -fsS -o /dev/null \"http://127.0.0.1:${CNSCD_LISTEN##*:}/healthz\" || exit 1"]

ENTRYPOINT ["cnscd"]
CMD ["serve"]
