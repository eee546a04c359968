#!/usr/bin/env bash
# Runs leadroute's whole test suite against real PostgreSQL and NATS.
#
# Installs what is missing (PostgreSQL, nats-server, Chromium and ChromeDriver with axe-core
# for the browser tests; a Rust toolchain is assumed), uses the
# servers already running on 127.0.0.1:5432 / :4222 when they let it in, and otherwise starts
# its own under .leadroute/test (stopped again when the run ends). Exits non-zero when any
# test fails. Override the servers with LEADROUTE_TEST_DATABASE_URL (an admin connection)
# and LEADROUTE_TEST_NATS_URL.
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=deploy/local/lib.sh
source deploy/local/lib.sh

ensure_packages
ensure_browser_tools
state="$PWD/.leadroute/test"
started=()
cleanup() {
  for part in "${started[@]}"; do
    case $part in
      pg) stop_own_postgres "$state/pg" ;;
      nats) stop_own_nats "$state/nats" ;;
    esac
  done
}
trap cleanup EXIT

if [ -z "${LEADROUTE_TEST_DATABASE_URL:-}" ]; then
  if port_open 5432 && pg_trusts 5432; then
    port=5432
  else
    # Our own cluster: on 5432 when free, else on 55433 (up.sh may use 55432).
    port=5432; port_open 5432 && port=55433
    [ -f "$state/pg/postmaster.pid" ] && stop_own_postgres "$state/pg"
    start_own_postgres "$state/pg" "$port"
    started+=(pg)
  fi
  export LEADROUTE_TEST_DATABASE_URL="postgres://postgres@127.0.0.1:$port/postgres"
fi

if [ -z "${LEADROUTE_TEST_NATS_URL:-}" ]; then
  port=4222
  if ! port_open 4222; then
    start_own_nats "$state/nats" "$port"
    started+=(nats)
  fi
  export LEADROUTE_TEST_NATS_URL="nats://127.0.0.1:$port"
fi

log "PostgreSQL: $LEADROUTE_TEST_DATABASE_URL  NATS: $LEADROUTE_TEST_NATS_URL"
mkdir -p "$state"
rm -f "$state/summary"
set +e
cargo test --workspace --all-targets --locked --no-fail-fast 2>&1 | tee "$state/cargo-test.log"
status=${PIPESTATUS[0]}
set -e
# One closing line over every test binary (cargo prints one "test result" per binary).
awk '/^test result:/ { p += $4; f += $6; i += $8 } END { printf "tests: %d passed, %d failed, %d skipped\n", p, f, i }' \
  "$state/cargo-test.log" | tee "$state/summary"
[ "$status" = 0 ] || { log "cargo test failed (exit $status)"; exit "$status"; }

# The domain stays free of I/O crates.
domain_deps=$(cargo tree -p leadroute-domain -e normal --prefix none --locked)
if grep -E '^(sqlx|sqlx-[a-z-]+|async-nats|axum) ' <<<"$domain_deps"; then
  log "leadroute-domain must not depend on sqlx, async-nats or axum"
  exit 1
fi
log "leadroute-domain depends on no sqlx, async-nats or axum"

# No file imports a file that imports it back, in any crate.
python3 deploy/local/import-cycles.py

# SQL naming the events table lives only in the store crate.
if grep -rnE "(FROM|INTO|UPDATE|JOIN) +events\b|EVENTS_TABLE" --include='*.rs' \
     domain/src projections/src app/src api/src workers/src leadroute/src bench/src; then
  log "only leadroute-store may write SQL against the events table"
  exit 1
fi
log "only leadroute-store writes SQL against the events table"
