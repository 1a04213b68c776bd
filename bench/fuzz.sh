#!/usr/bin/env bash
# Fuzzes the GraphQL endpoint with requests generated from the schema's introspection (valid
# and invalid, deeply nested ones among them, with a token of each role and without one) and
# fails on any 5xx, panic, dropped connection or INTERNAL error; then /graphql/ws with
# generated frames (protocol messages in any order, generated subscriptions, noise, deep and
# oversized JSON; a fifth as many sockets as requests). The test suite runs both briefly.
# Usage: bench/fuzz.sh [ITERATIONS] [SEED]      (default: 20000 iterations, seed 1)
# Set CNSCD_TEST_DATABASE=postgres://postgres@127.0.0.1:5432/postgres to fuzz on PostgreSQL.
# A failure prints the request, its variables, the role and the response; the seed
# reproduces it.
set -euo pipefail
cd "$(dirname "$0")/.."
export CNSCD_FUZZ_ITERATIONS="${1:-20000}"
export CNSCD_FUZZ_SEED="${2:-1}"
exec cargo test -p cnscd-tests --test api fuzz:: -- --nocapture --test-threads 1
