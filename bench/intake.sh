#!/usr/bin/env bash
# submitActivity over HTTP from 16 concurrent clients on the demo data set.
# Usage: bench/intake.sh   (BENCH_DATABASE=postgres://postgres@127.0.0.1:5432/postgres for PostgreSQL)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p cnscd-api --bins
if [[ "${BENCH_DATABASE:-}" == postgres* ]]; then
    psql "$BENCH_DATABASE" -qc "DROP DATABASE IF EXISTS cnscd_bench_intake" -c "CREATE DATABASE cnscd_bench_intake"
    url="${BENCH_DATABASE%/*}/cnscd_bench_intake"
else
    rm -f /tmp/cnscd-bench-intake.db*
    url="sqlite:///tmp/cnscd-bench-intake.db?mode=rwc"
fi
CNSCD_LOG=warn ./target/release/cnscd seed demo --database-url "$url" >/dev/null
CNSCD_LOG=warn ./target/release/cnscd-bench intake --database-url "$url" --clients "${CLIENTS:-16}" --requests "${REQUESTS:-4000}"
