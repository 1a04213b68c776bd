#!/usr/bin/env bash
# What a stranger's requests cost the server, measured on the release binary from outside:
# resident memory under three 60 MiB connection_init messages without a token, the growth of
# /metrics under 400 requests with invented methods and operation names, and the CPU of an
# unauthenticated 1 MiB POST. See bench/edge.py.
# Usage: bench/edge.sh      (CNSCD_BIN=target/debug/cnscd to measure another build)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${CNSCD_BIN:-}" ]; then
    cargo build --release -p cnscd-api --bin cnscd
fi
exec python3 bench/edge.py
