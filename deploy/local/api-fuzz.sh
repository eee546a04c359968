#!/usr/bin/env bash
# Schema-driven HTTP test: runs `leadroute up --demo` on a fresh database and NATS prefix,
# then schemathesis against its /openapi.json with the demo admin key, for at most
# API_FUZZ_SECONDS (default 120). Fails on any 5xx and on any answer outside the document
# (status, content type, body schema, headers). Installs schemathesis into
# .leadroute/venv when missing. Uses the servers on 127.0.0.1:5432 and :4222 (as test.sh).
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=deploy/local/lib.sh
source deploy/local/lib.sh

seconds=${API_FUZZ_SECONDS:-120}
venv="$PWD/.leadroute/venv"
if [ ! -x "$venv/bin/schemathesis" ]; then
  log "installing schemathesis into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q 'schemathesis>=4,<5'
fi
cargo build -q -p leadroute --bin leadroute
db="api_fuzz_$$"
admin="${LEADROUTE_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
psql "$admin" -qc "CREATE DATABASE $db"
url="${admin%/*}/$db"
port=$((20000 + RANDOM % 20000))
out=$(mktemp)
LEADROUTE_LOG=warn ./target/debug/leadroute up --demo --database-url "$url" \
  --nats-url "${LEADROUTE_TEST_NATS_URL:-nats://127.0.0.1:4222}" \
  --nats-prefix "fuzz$$" --nats-crm-prefix "fuzz$$-crm" \
  --listen "127.0.0.1:$port" --operator-token fuzz-operator >"$out" 2>"$out.err" &
up=$!
cleanup() {
  kill "$up" 2>/dev/null || true
  wait "$up" 2>/dev/null || true
  psql "$admin" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" || true
  rm -f "$out" "$out.err"
}
trap cleanup EXIT
for _ in $(seq 120); do
  grep -q "admin key:" "$out" 2>/dev/null && break
  kill -0 "$up" 2>/dev/null || { cat "$out.err" >&2; exit 1; }
  sleep 0.5
done
key=$(awk '/admin key:/ {print $3}' "$out")
log "schemathesis against 127.0.0.1:$port for at most ${seconds}s"
# Revoking keys would revoke the run's own; everything else is fair game.
"$venv/bin/schemathesis" run "http://127.0.0.1:$port/openapi.json" \
  -H "Authorization: Bearer $key" \
  --checks "${API_FUZZ_CHECKS:-not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance}" \
  --exclude-path '/v1/api-keys/{key_id}' \
  --max-time "$seconds" --max-examples 30 --no-color
