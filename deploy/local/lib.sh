# Shared helpers of deploy/local/up.sh and deploy/local/test.sh (sourced, not run).
# They install what is missing through the package manager and find or start local servers.

log() { printf '==> %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo "$@"
  else log "need root to run: $*"; return 1
  fi
}

pg_bindir() {
  local dir
  dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  if [ -n "$dir" ] && [ -x "$dir/initdb" ]; then echo "$dir"; return 0; fi
  command -v initdb >/dev/null 2>&1 && dirname "$(command -v initdb)"
}

nats_server_bin() {
  command -v nats-server 2>/dev/null || { [ -x /usr/sbin/nats-server ] && echo /usr/sbin/nats-server; }
}

# Install PostgreSQL, nats-server and a C compiler when missing (Debian/Ubuntu).
ensure_packages() {
  local missing=()
  pg_bindir >/dev/null || missing+=(postgresql)
  command -v psql >/dev/null 2>&1 || missing+=(postgresql-client)
  nats_server_bin >/dev/null || missing+=(nats-server)
  command -v cc >/dev/null 2>&1 || missing+=(build-essential)
  command -v pkill >/dev/null 2>&1 || missing+=(procps)
  if [ ${#missing[@]} -gt 0 ]; then
    command -v apt-get >/dev/null 2>&1 || { log "please install: ${missing[*]}"; return 1; }
    log "installing ${missing[*]}"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
  command -v cargo >/dev/null 2>&1 || { log "a Rust toolchain (cargo) is required: https://rustup.rs"; return 1; }
}

# The browser tests' tools: Debian's Chromium and ChromeDriver, and axe-core (the
# accessibility checker they inject into pages), fetched once with npm into .leadroute/tools.
AXE_CORE_VERSION=4.14.1
ensure_browser_tools() {
  local missing=() tools="$PWD/.leadroute/tools" work
  [ -x /usr/bin/chromium ] || command -v chromium >/dev/null 2>&1 || missing+=(chromium)
  [ -x /usr/bin/chromedriver ] || command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
  [ -f "$tools/axe.min.js" ] || command -v npm >/dev/null 2>&1 || missing+=(npm)
  if [ ${#missing[@]} -gt 0 ]; then
    command -v apt-get >/dev/null 2>&1 || { log "please install: ${missing[*]}"; return 1; }
    log "installing ${missing[*]}"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
  if [ ! -f "$tools/axe.min.js" ]; then
    log "fetching axe-core $AXE_CORE_VERSION"
    mkdir -p "$tools"
    work=$(mktemp -d)
    (cd "$work" && npm pack --silent "axe-core@$AXE_CORE_VERSION" >/dev/null)
    tar -xzf "$work/axe-core-$AXE_CORE_VERSION.tgz" -C "$work" package/axe.min.js
    mv "$work/package/axe.min.js" "$tools/axe.min.js"
    rm -rf "$work"
  fi
  export LEADROUTE_AXE_JS="$tools/axe.min.js"
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Does PostgreSQL on port $1 let the postgres role in without a password?
pg_trusts() { psql "postgres://postgres@127.0.0.1:$1/postgres" -tAc 'SELECT 1' >/dev/null 2>&1; }

# The real data directory for a cluster meant to live at $1. As root the cluster runs as
# the postgres user; when that user cannot reach $1 (a checkout under /root, mode 0700) the
# cluster lives under /var/lib/leadroute and $1 becomes a link to it.
pg_data_dir() {
  local dir=$1 outside
  if [ "$(id -u)" != 0 ]; then mkdir -p "$dir"; echo "$dir"; return; fi
  [ -L "$dir" ] && dir=$(readlink -f "$dir")
  mkdir -p "$dir"; chown -R postgres:postgres "$dir"
  if runuser -u postgres -- test -w "$dir"; then echo "$dir"; return; fi
  outside=/var/lib/leadroute/test-$(printf '%s' "$1" | md5sum | cut -c1-16)
  mkdir -p "$outside"; chown -R postgres:postgres "$outside"
  rmdir "$1" && ln -s "$outside" "$1"
  echo "$outside"
}

# Start a local cluster meant to live at $1 on port $2, as the postgres user when root
# (PostgreSQL refuses to run as root).
start_own_postgres() {
  local dir port=$2 bin run=()
  bin=$(pg_bindir)
  dir=$(pg_data_dir "$1")
  [ "$(id -u)" = 0 ] && run=(runuser -u postgres --)
  if [ ! -f "$dir/PG_VERSION" ]; then
    "${run[@]}" "$bin/initdb" -D "$dir" -U postgres --auth=trust -E UTF8 --locale=C >/dev/null
  fi
  log "starting PostgreSQL on 127.0.0.1:$port ($dir)"
  "${run[@]}" "$bin/pg_ctl" -D "$dir" -l "$dir/server.log" -w -t 60 \
    -o "-p $port -c listen_addresses=127.0.0.1 -c unix_socket_directories='' -c max_connections=300" start >/dev/null
}

stop_own_postgres() {
  local dir bin run=()
  dir=$(readlink -f "$1")
  bin=$(pg_bindir)
  [ "$(id -u)" = 0 ] && run=(runuser -u postgres --)
  "${run[@]}" "$bin/pg_ctl" -D "$dir" -m fast -w stop >/dev/null || true
}

start_own_nats() {
  local dir=$1 port=$2
  mkdir -p "$dir"
  log "starting nats-server with JetStream on 127.0.0.1:$port ($dir)"
  "$(nats_server_bin)" -a 127.0.0.1 -p "$port" -js -sd "$dir/store" -l "$dir/nats.log" </dev/null >/dev/null 2>&1 &
  echo $! >"$dir/pid"
  for _ in $(seq 1 100); do port_open "$port" && return 0; sleep 0.2; done
  log "nats-server did not start; see $dir/nats.log"; return 1
}

stop_own_nats() {
  local dir=$1
  [ -f "$dir/pid" ] && kill "$(cat "$dir/pid")" 2>/dev/null || true
  rm -f "$dir/pid"
}
