#!/usr/bin/env bash
# Two replicas on one national database (seeded by bench/national.sh), as production runs
# them: wrk sends single `submitActivity` to the first (16 keep-alive connections, teams of
# province 19, a 3 s warm-up discarded, then DURATION seconds timed) while a second wrk asks
# the other for the province-wide indicator table (CNS01-CNS10, every commune of province 19,
# by month of 2024; one keep-alive connection, a dashboard's backend, its rate limit off) at the same time. Reports req/s, p50 and p99 of
# both, checks every submission was stored without a user error, and that both replicas then
# answer the indicator table alike.
# Usage: bench/replicas.sh [ACTIVITIES]   (default 1000000: the database
#        cnscd_bench_national_ACTIVITIES; PostgreSQL at BENCH_DATABASE; needs wrk)
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-1000000}"
duration="${DURATION:-20}"
admin_url="${BENCH_DATABASE:-postgres://postgres@127.0.0.1:5432/postgres}"
db="cnscd_bench_national_${n}"
url="${admin_url%/*}/$db?sslmode=disable"
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)"; exit 1; }
psql "$admin_url" -qAtc "SELECT 1 FROM pg_database WHERE datname = '$db'" | grep -q 1 ||
    { echo "no database $db: run bench/national.sh $n first"; exit 1; }
cargo build --release -p cnscd-api -p cnscd-bench
work=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; rm -rf "$work"' EXIT
secret=cnscd-bench-secret-0123456789

start_replica() {
    CNSCD_JWT_SECRET="$secret" CNSCD_LISTEN=127.0.0.1:0 CNSCD_LOG=warn,cnscd_api=info CNSCD_RATE_LIMIT_PER_ROLE=VIEWER=0 \
        CNSCD_LOG_FORMAT=json CNSCD_DATABASE_URL="$url" ./target/release/cnscd serve 2>"$work/$1.log" &
    pids+=($!)
}
address_of() {
    for _ in $(seq 1 600); do
        a=$(grep -o '"address":"[^"]*"' "$work/$1.log" | head -1 | cut -d'"' -f4 || true)
        [ -n "$a" ] && { echo "$a"; return; }
        sleep 0.1
    done
    echo "replica $1 did not start" >&2
    cat "$work/$1.log" >&2
    exit 1
}
start=$(date +%s.%N)
start_replica a
start_replica b
a=$(address_of a)
b=$(address_of b)

reporter=$(CNSCD_JWT_SECRET="$secret" ./target/release/cnscd token --role REPORTER --unit 19 \
    --client bench --sub bench-app --ttl 1h)
viewer=$(CNSCD_JWT_SECRET="$secret" ./target/release/cnscd token --role VIEWER --unit 19 --ttl 1h)
codes='[\"CNS01\",\"CNS02\",\"CNS03\",\"CNS04\",\"CNS05\",\"CNS06\",\"CNS07\",\"CNS08\",\"CNS09\",\"CNS10\"]'
table="{\"query\":\"{ indicatorTable(codes: $codes, unitCodes: [\\\"19\\\"], from: \\\"2024-01-01\\\", to: \\\"2024-12-31\\\", granularity: MONTH, breakdown: LEVEL, level: COMMUNE) { codes units periods values numerators denominators statuses } }\"}"
ask() {
    curl -fsS -H "Authorization: Bearer $2" -H 'Content-Type: application/json' -d "$3" "http://$1/graphql"
}
# Both replicas loaded (the first answer waits for the copy).
ask "$a" "$viewer" "$table" >/dev/null
ask "$b" "$viewer" "$table" >/dev/null
echo "two replicas on $db: both answered $(echo "$(date +%s.%N) - $start" | bc) s after start"

# Teams of province 19 that stand all of 2026, as global ids.
psql "$url" -qAtc "SELECT t.id FROM team t JOIN admin_unit_closure c ON c.descendant_code = t.unit_code \
    AND c.ancestor_code = '19' AND c.valid_from <= DATE '2026-01-01' AND c.valid_to > DATE '2026-12-31' \
    WHERE t.dissolved_on IS NULL AND t.founded_on <= DATE '2026-01-01' ORDER BY t.id LIMIT 1000" |
    while read -r id; do
        printf '"%s",\n' "$(printf 'Team:%s' "$id" | base64 -w0 | tr '+/' '-_' | tr -d '=')"
    done >"$work/teams.lua.part"
[ -s "$work/teams.lua.part" ] || { echo "no teams in province 19"; exit 1; }
run=$(date +%s%N)
# Both scripts count the answers that are not what they should be (`answered`), per thread.
counting=$(cat <<'LUA'
function response(status, headers, body)
    if status ~= 200 or not answered(body) then
        failures = failures + 1
        if failures == 1 then io.stderr:write(status .. " " .. body .. "\n") end
    end
end
function done(summary, latency, requests)
    local failed = 0
    for _, t in ipairs(threads) do failed = failed + t:get("failures") end
    io.write(string.format("FAILED %d\n", failed))
end
LUA
)
cat >"$work/intake.lua" <<EOF
local teams = { $(cat "$work/teams.lua.part") }
counter = 0
failures = 0
local thread_id = 0
local threads = {}
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $reporter"
function setup(thread)
    thread_id = thread_id + 1
    thread:set("id", thread_id)
    table.insert(threads, thread)
end
function request()
    counter = counter + 1
    local key = "$run-" .. (phase or "t") .. "-" .. id .. "-" .. counter
    local team = teams[(counter % #teams) + 1]
    local day = os.date("!%Y-%m-%d", 1767225600 + (counter % 300) * 86400)
    local body = '{"query":"mutation(\$i: SubmitActivityInput!) { submitActivity(input: \$i) { replayed activity { id } userErrors { code message } } }",'
        .. '"variables":{"i":{"idempotencyKey":"' .. key .. '","teamId":"' .. team
        .. '","kind":"DOOR_TO_DOOR","occurredOn":"' .. day
        .. '","title":"Hướng dẫn kích hoạt VNeID mức 2","participants":12,"householdsReached":8,'
        .. '"outcomes":[{"service":"VNEID","people":9,"households":7},{"service":"UTILITY_BILL_PAYMENT","people":3}]}}}'
    return wrk.format(nil, nil, nil, body)
end
function answered(body) return string.find(body, '"userErrors":[]', 1, true) end
$counting
EOF
cat >"$work/table.lua" <<EOF
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $viewer"
wrk.body = [==[$table]==]
failures = 0
local threads = {}
function setup(thread) table.insert(threads, thread) end
function answered(body) return not string.find(body, '"errors"', 1, true) end
$counting
EOF
count() { psql "$url" -qAtc "SELECT count(*) FROM activity"; }
before=$(count)
# Warm-up, discarded (the phase names the idempotency keys apart).
wrk -t2 -c16 -d3s -s "$work/intake.lua" "http://$a/graphql" >/dev/null
sed -i 's/(phase or "t")/"timed"/' "$work/intake.lua"
after_warmup=$(count)
wrk -t1 -c1 -d"${duration}s" --latency -s "$work/table.lua" "http://$b/graphql" >"$work/table.out" &
reader=$!
wrk -t2 -c16 -d"${duration}s" --latency -s "$work/intake.lua" "http://$a/graphql" >"$work/intake.out"
wait $reader
after=$(count)
summary() {
    awk '/Requests\/sec/ {rps=$2} /^ +50%/ {p50=$2} /^ +99%/ {p99=$2} /Non-2xx/ {bad=$NF}
         /^FAILED/ {failed=$2} / requests in / {total=$1}
         END {printf "%s requests, %s req/s, p50 %s, p99 %s, non-2xx %s, failed %s", total, rps, p50, p99, bad+0, failed+0}' "$1"
}
echo "intake on replica A (wrk, 16 connections, ${duration} s after a 3 s warm-up): $(summary "$work/intake.out")"
echo "  activities stored: $((after - after_warmup)) in the timed run ($((after_warmup - before)) in the warm-up); $after in all"
echo "indicator table on replica B meanwhile (wrk, one connection): $(summary "$work/table.out")"
grep -q "^FAILED 0" "$work/intake.out" || { echo "some submissions failed"; exit 1; }
grep -q "^FAILED 0" "$work/table.out" || { echo "some indicator answers failed"; exit 1; }
ask "$a" "$viewer" "$table" >"$work/a.json"
ask "$b" "$viewer" "$table" >"$work/b.json"
if cmp -s <(jq -S .data "$work/a.json") <(jq -S .data "$work/b.json"); then
    echo "both replicas answer the indicator table alike after the intake"
else
    echo "the replicas answer differently"
    exit 1
fi
