#!/usr/bin/env bash
# The service at a nation's size, on PostgreSQL: seeds `cnscd seed national --activities N`
# into a fresh database (time, activities/s, database size), starts a replica (the release
# binary) and times its first indicator answer and its resident memory, then runs
# `cnscd-bench indicators` without the reference: the province-wide request (every commune of
# province 19 by month) and the nation-wide one (CNS01-CNS10 x 34 provinces x 12 months), each
# on one keep-alive connection past the fifth request, and the province-wide one again for
# UNDER_CHANGE seconds while 4 routine changes a second arrive.
# Usage: bench/national.sh [ACTIVITIES]   (default 1000000; PostgreSQL at BENCH_DATABASE,
#        default postgres://postgres@127.0.0.1:5432/postgres; KEEP=1 reuses a seeded database)
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-1000000}"
admin_url="${BENCH_DATABASE:-postgres://postgres@127.0.0.1:5432/postgres}"
db="cnscd_bench_national_${n}"
url="${admin_url%/*}/$db?sslmode=disable"
cargo build --release -p cnscd-api -p cnscd-bench
if [ -z "${KEEP:-}" ] || ! psql "$admin_url" -qAtc "SELECT 1 FROM pg_database WHERE datname = '$db'" | grep -q 1; then
    psql "$admin_url" -qc "DROP DATABASE IF EXISTS $db" \
        -c "CREATE DATABASE $db LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0"
    CNSCD_LOG=warn ./target/release/cnscd migrate up --database-url "$url" >/dev/null
    start=$(date +%s.%N)
    CNSCD_LOG=warn ./target/release/cnscd seed national --activities "$n" --database-url "$url" >/dev/null
    end=$(date +%s.%N)
    psql "$url" -qc "ANALYZE"
    echo "seed national --activities $n: $(echo "$end - $start" | bc) s, $(echo "$n / ($end - $start)" | bc) activities/s"
fi
echo "database size: $(psql "$admin_url" -qAtc "SELECT pg_size_pretty(pg_database_size('$db'))")"

# A replica from its start to its first indicator answer, and its memory.
secret=cnscd-bench-secret-0123456789
log=$(mktemp)
start=$(date +%s.%N)
CNSCD_JWT_SECRET="$secret" CNSCD_LISTEN=127.0.0.1:0 CNSCD_LOG=info CNSCD_LOG_FORMAT=json \
    CNSCD_DATABASE_URL="$url" ./target/release/cnscd serve 2>"$log" &
pid=$!
trap 'kill $pid 2>/dev/null || true; rm -f "$log"' EXIT
address=""
for _ in $(seq 1 600); do
    address=$(grep -o '"address":"[^"]*"' "$log" | head -1 | cut -d'"' -f4 || true)
    [ -n "$address" ] && break
    sleep 0.1
done
[ -n "$address" ] || { echo "the replica did not start"; cat "$log"; exit 1; }
token=$(CNSCD_JWT_SECRET="$secret" ./target/release/cnscd token --role VIEWER --unit 19 --ttl 1h)
query='{"query":"{ indicators(codes: [\"CNS02\"], unitCodes: [\"19\"], from: \"2024-01-01\", to: \"2024-12-31\", granularity: YEAR) { value } }"}'
until curl -fsS -o /dev/null -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
    -d "$query" "http://$address/graphql"; do sleep 0.1; done
end=$(date +%s.%N)
rss=$(awk '/VmRSS/ {print $2}' /proc/$pid/status)
hwm=$(awk '/VmHWM/ {print $2}' /proc/$pid/status)
echo "replica: first indicator answer $(echo "$end - $start" | bc) s after start; RSS $((rss / 1024)) MB (peak $((hwm / 1024)) MB)"
kill $pid
wait $pid 2>/dev/null || true

CNSCD_LOG=warn ./target/release/cnscd-bench indicators --database-url "$url" --service-only \
    --runs "${RUNS:-5}" --nation --under-change "${UNDER_CHANGE:-60}"
