#!/usr/bin/env bash
# Property-based run of schemathesis against the REST endpoints' OpenAPI document: a demo server
# (SQLite, a temp file) with saved endpoints (queries by GET with scalar, list and enum variables,
# a mutation by POST); every generated request must get no 5xx and an answer that keeps to the
# document's schemas. Run by .ci/run after the tests.
# Usage: tests/schemathesis.sh [SERVER_BINARY]   (default ./target/debug/cnscd; MAX_EXAMPLES, default 30)
set -euo pipefail
cd "$(dirname "$0")/.."
server="${1:-./target/debug/cnscd}"
dir="$(mktemp -d)"
secret="cnscd-schemathesis-$(date +%s)-0123456789"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
CNSCD_JWT_SECRET="$secret" CNSCD_LISTEN="127.0.0.1:$port" CNSCD_LOG=warn \
    CNSCD_DATABASE_URL="sqlite://$dir/st.db?mode=rwc" "$server" serve --demo --data-dir ./data \
    >"$dir/server.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; rm -rf "$dir"' EXIT
for _ in $(seq 1 300); do
    curl -fs "http://127.0.0.1:$port/readyz" >/dev/null && break
    sleep 0.2
done
curl -fs "http://127.0.0.1:$port/readyz" >/dev/null || { cat "$dir/server.log"; exit 1; }
token=$(CNSCD_JWT_SECRET="$secret" "$server" token --role ADMIN --ttl 1h)
save() {
    python3 - "$@" <<'PY' | curl -fsS -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
        "http://127.0.0.1:$port/graphql" -d @- | python3 -c 'import json, sys; r = json.load(sys.stdin); e = r["data"]["saveRestEndpoint"]["userErrors"]; sys.exit(f"not saved: {e}" if e else 0)'
import json, sys
name, method, document = sys.argv[1:4]
print(json.dumps({"query": "mutation($i: SaveRestEndpointInput!) { saveRestEndpoint(input: $i) { userErrors { message } } }",
                  "variables": {"i": {"name": name, "method": method, "document": document}}}))
PY
}
save unit GET 'query($code: String!, $on: Date) { adminUnit(code: $code, on: $on) { code name level } }'
save teams GET 'query($under: String, $first: Int, $status: TeamStatus, $search: String) { teams(under: $under, first: $first, status: $status, search: $search) { totalCount nodes { code name memberCount } } }'
save indicators GET 'query($codes: [String!]!, $units: [String!]!, $from: Date!, $to: Date!) { indicators(codes: $codes, unitCodes: $units, from: $from, to: $to, granularity: YEAR) { indicator { code } unit { code } value status } }'
save submit-activity POST 'mutation($i: SubmitActivityInput!) { submitActivity(input: $i) { replayed activity { id } userErrors { field code message } } }'
curl -fsS -H "Authorization: Bearer $token" "http://127.0.0.1:$port/api/openapi.json" -o "$dir/openapi.json"
schemathesis run "$dir/openapi.json" --url "http://127.0.0.1:$port" -H "Authorization: Bearer $token" \
    --checks not_a_server_error,response_schema_conformance -n "${MAX_EXAMPLES:-30}" --seed 1
