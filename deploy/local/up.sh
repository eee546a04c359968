#!/usr/bin/env bash
# Runs leadroute with demo data on the embedded default.
#
# Installs what is missing (PostgreSQL, nats-server; a Rust toolchain is assumed), then runs
# `leadroute up --demo`: it uses DATABASE_URL / NATS_URL when set, else the servers on
# 127.0.0.1:5432 / :4222 when they answer, else starts local ones with their data under
# .leadroute/ and stops them on Ctrl-C. Extra arguments go to `leadroute up`.
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=deploy/local/lib.sh
source deploy/local/lib.sh

ensure_packages
if [ -z "${DATABASE_URL:-}" ] && [ -z "${LEADROUTE_PG_PORT:-}" ] && port_open 5432 && ! pg_trusts 5432; then
  # A PostgreSQL that wants a password (e.g. the distribution's cluster): run our own beside it.
  log "PostgreSQL on 5432 asks for a password; starting leadroute's own on 55432 (set DATABASE_URL to use another)"
  export LEADROUTE_PG_PORT=55432
fi
exec cargo run --locked --bin leadroute -- up --demo "$@"
