#!/usr/bin/env bash
# Intake over HTTP on the demo data set, on SQLite and then on PostgreSQL, in one run:
# single `submitActivity` from 16 concurrent keep-alive clients (req/s, p50, p99), then batched
# `submitActivities` of 100 items next to plain multi-row INSERTs of the same rows through the
# same driver (rows/s, ratio), and the process's peak RSS.
# With WEBHOOK=1, a webhook receives every activity submitted: delivery latency, commit to
# receiver (p50, p99), under the single-request load.
# Usage: bench/intake.sh   (PostgreSQL at BENCH_DATABASE, default postgres://postgres@127.0.0.1:5432/postgres;
#                           BENCH_DATABASE=none skips it)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p cnscd-api -p cnscd-bench
admin_url="${BENCH_DATABASE:-postgres://postgres@127.0.0.1:5432/postgres}"

rm -f /tmp/cnscd-bench-intake.db*
urls=("sqlite:///tmp/cnscd-bench-intake.db?mode=rwc")
if [[ "$admin_url" == postgres* ]]; then
    psql "$admin_url" -qc "DROP DATABASE IF EXISTS cnscd_bench_intake" -c "CREATE DATABASE cnscd_bench_intake"
    # Plain TCP on loopback, as a server next to its database would be configured.
    urls+=("${admin_url%/*}/cnscd_bench_intake?sslmode=disable")
fi
for url in "${urls[@]}"; do
    CNSCD_LOG=warn ./target/release/cnscd seed demo --database-url "$url" >/dev/null
    CNSCD_LOG=warn ./target/release/cnscd-bench intake --database-url "$url" \
        --clients "${CLIENTS:-16}" --requests "${REQUESTS:-4000}" --batches "${BATCHES:-60}" ${WEBHOOK:+--webhook}
done
