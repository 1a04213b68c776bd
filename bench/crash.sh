#!/usr/bin/env bash
# Exactly-once intake through crashes: concurrent clients submit single and batched activities
# while the server is killed with SIGKILL and restarted; every unacknowledged request is
# retried; then every item must be stored once, and the rollups and indicators must equal a
# recount from the raw rows (see `cnscd-bench crash --help`). Runs on SQLite (a temp file) and,
# when BENCH_DATABASE=postgres://... is set, on a fresh PostgreSQL database beside it.
# Usage: bench/crash.sh   (ITEMS, KILLS, CLIENTS to change the defaults: 2000, 3, 8)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p cnscd-api -p cnscd-bench
args=(--server ./target/release/cnscd --items "${ITEMS:-2000}" --kills "${KILLS:-3}" --clients "${CLIENTS:-8}")

db="$(mktemp -d)/cnscd-crash.db"
trap 'rm -rf "$(dirname "$db")"' EXIT
echo "== SQLite"
./target/release/cnscd-bench crash --database-url "sqlite://${db}?mode=rwc" "${args[@]}"

if [[ "${BENCH_DATABASE:-}" == postgres* ]]; then
    echo "== PostgreSQL"
    psql "$BENCH_DATABASE" -qc "DROP DATABASE IF EXISTS cnscd_bench_crash" -c "CREATE DATABASE cnscd_bench_crash"
    ./target/release/cnscd-bench crash --database-url "${BENCH_DATABASE%/*}/cnscd_bench_crash" "${args[@]}"
    psql "$BENCH_DATABASE" -qc "DROP DATABASE cnscd_bench_crash"
fi
