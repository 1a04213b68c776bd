#!/usr/bin/env bash
# The province-wide indicator request (CNS01-CNS10, every commune, 12 months) in process and
# through HTTP, against grouped statements over the raw rows, at several sizes; then 40 requests
# one after another on one keep-alive connection (requests 1, 5, 6, 40, p50, p99), past
# PostgreSQL's switch to generic plans at a statement's sixth run on a connection.
# Usage: bench/indicators.sh [SCALE...]   (default: 1 25; scale 1 is 15,519 activities, scale 25 1,040,458)
# Set BENCH_DATABASE to a postgres admin URL (postgres://postgres@127.0.0.1:5432/postgres) to
# run on PostgreSQL; otherwise a SQLite file under /tmp is used.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p cnscd-api -p cnscd-bench
scales=("$@")
[ ${#scales[@]} -gt 0 ] || scales=(1 25)
for scale in "${scales[@]}"; do
    if [[ "${BENCH_DATABASE:-}" == postgres* ]]; then
        name="cnscd_bench_${scale}"
        psql "$BENCH_DATABASE" -qc "DROP DATABASE IF EXISTS ${name}" -c "CREATE DATABASE ${name}"
        url="${BENCH_DATABASE%/*}/${name}"
    else
        rm -f "/tmp/cnscd-bench-${scale}.db"*
        url="sqlite:///tmp/cnscd-bench-${scale}.db?mode=rwc"
    fi
    CNSCD_LOG=warn ./target/release/cnscd seed demo --scale "$scale" --database-url "$url" >/dev/null
    ./target/release/cnscd-bench indicators --database-url "$url"
done
