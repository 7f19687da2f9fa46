# shellcheck shell=bash
# PostgreSQL for tests: 127.0.0.1:$POSTGRES_TEST_PORT, trust auth on loopback, database and role
# "behavior", cluster in $SERVICES_DIR/postgres. Sourced by run.sh (needs lib.sh).
#
# The server refuses to run as root, so when we are root it runs as the OS user
# $POSTGRES_OS_USER (default "postgres", created as a system user when missing).

POSTGRES_TEST_PORT="${POSTGRES_TEST_PORT:-15432}"
POSTGRES_DB_NAME=behavior
POSTGRES_ROLE=behavior
POSTGRES_PASSWORD=behavior # ignored by trust auth; there so the URL also works with md5/scram
POSTGRES_OS_USER="${POSTGRES_OS_USER:-postgres}"
PG_DIR="" PG_DATA="" PG_LOG="" PG_BIN=""

# Where the cluster lives: $SERVICES_DIR/postgres, unless we are root and the server's OS user
# cannot reach $SERVICES_DIR (e.g. a checkout under /root): then a fixed directory under
# /var/tmp derived from $SERVICES_DIR.
pg_resolve_dir() {
  PG_DIR="$SERVICES_DIR/postgres"
  if ((EUID == 0)) && id -u "$POSTGRES_OS_USER" >/dev/null 2>&1 &&
    ! as_pg test -x "$SERVICES_DIR" 2>/dev/null; then
    PG_DIR="/var/tmp/sidecar-services-$(printf '%s' "$SERVICES_DIR" | sha256sum | cut -c1-12)/postgres"
  fi
  PG_DATA="$PG_DIR/data"
  PG_LOG="$PG_DIR/postgres.log"
}

# Run a command as the cluster's owner.
as_pg() {
  if ((EUID == 0)); then
    (cd / && runuser -u "$POSTGRES_OS_USER" -- "$@")
  else
    "$@"
  fi
}

pg_find_bin() {
  local d
  # Newest Debian-packaged server first, then whatever is on PATH.
  for d in $(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V -r); do
    if [[ -x "$d/initdb" && -x "$d/pg_ctl" && -x "$d/postgres" ]]; then
      PG_BIN="$d"
      return 0
    fi
  done
  if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
    PG_BIN="$(dirname "$(readlink -f "$(command -v pg_ctl)")")"
    return 0
  fi
  return 1
}

pg_install() {
  pg_find_bin && return 0
  log "postgres: server binaries not found; installing them from Debian"
  # Keep the Debian package from creating (and starting) its own "main" cluster on 5432.
  as_root mkdir -p /etc/postgresql-common/createcluster.d
  as_root sh -c "echo 'create_main_cluster = false' > /etc/postgresql-common/createcluster.d/90-sidecar-no-main.conf"
  apt_install postgresql postgresql-client
  pg_find_bin || die "postgres: installed the Debian package but found no initdb/pg_ctl"
}

pg_ensure_os_user() {
  ((EUID == 0)) || return 0
  if ! id -u "$POSTGRES_OS_USER" >/dev/null 2>&1; then
    log "postgres: creating system user $POSTGRES_OS_USER"
    useradd --system --user-group --home-dir /nonexistent --no-create-home \
      --shell /usr/sbin/nologin "$POSTGRES_OS_USER"
  fi
}

pg_isready_local() {
  "$PG_BIN/pg_isready" -q -h "$SERVICES_HOST" -p "$POSTGRES_TEST_PORT" -d postgres -U postgres \
    >/dev/null 2>&1
}

pg_psql() {
  "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$SERVICES_HOST" -p "$POSTGRES_TEST_PORT" \
    -U postgres "$@"
}

pg_running() {
  [[ -f "$PG_DATA/PG_VERSION" ]] && as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" status >/dev/null 2>&1
}

pg_init_cluster() {
  [[ -f "$PG_DATA/PG_VERSION" ]] && return 0
  mkdir -p "$PG_DIR"
  if ((EUID == 0)); then
    chown "$POSTGRES_OS_USER:" "$PG_DIR"
    as_pg test -w "$PG_DIR" || die "postgres: user $POSTGRES_OS_USER cannot write $PG_DIR"
  fi
  if [[ "$PG_DIR" != "$SERVICES_DIR/postgres" ]]; then
    log "postgres: $POSTGRES_OS_USER cannot reach $SERVICES_DIR; the cluster lives in $PG_DIR"
  fi
  rm -rf "$PG_DATA"
  log "postgres: initdb $PG_DATA"
  if ! as_pg "$PG_BIN/initdb" -D "$PG_DATA" -U postgres --auth-local=trust --auth-host=trust \
    -E UTF8 --locale=C.UTF-8 --no-sync >"$PG_DIR/initdb.log" 2>&1; then
    show_log_tail "$PG_DIR/initdb.log"
    rm -rf "$PG_DATA"
    die "postgres: initdb failed"
  fi
  # Test-only settings: loopback TCP only, no Unix socket, durability traded for speed.
  cat >>"$PG_DATA/postgresql.conf" <<EOF

# ---- scripts/services/postgres.sh (test instance) ----
listen_addresses = '$SERVICES_HOST'
port = $POSTGRES_TEST_PORT
unix_socket_directories = ''
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 100
shared_buffers = 128MB
EOF
}

pg_bootstrap_db() {
  # Idempotent: create the role and the database only when missing.
  pg_psql -d postgres <<EOF >/dev/null
SELECT 'CREATE ROLE $POSTGRES_ROLE LOGIN CREATEDB PASSWORD ''$POSTGRES_PASSWORD'''
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$POSTGRES_ROLE')\gexec
SELECT 'CREATE DATABASE $POSTGRES_DB_NAME OWNER $POSTGRES_ROLE'
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '$POSTGRES_DB_NAME')\gexec
EOF
}

postgres_start() {
  pg_install
  pg_ensure_os_user
  pg_resolve_dir
  if pg_running && pg_isready_local; then
    log "postgres: already running on $SERVICES_HOST:$POSTGRES_TEST_PORT"
    pg_bootstrap_db
    return 0
  fi
  if port_open "$POSTGRES_TEST_PORT"; then
    die "postgres: port $POSTGRES_TEST_PORT is taken by another process; free it or set POSTGRES_TEST_PORT"
  fi
  pg_init_cluster
  log "postgres: starting on $SERVICES_HOST:$POSTGRES_TEST_PORT (data $PG_DATA)"
  # pg_ctl -l appends; the server detaches (its own session) and outlives this script.
  # fd 9 is run.sh's lock: the daemon must not inherit it.
  if ! as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_LOG" -w -t "$SERVICES_TIMEOUT" start \
    </dev/null >/dev/null 2>"$PG_DIR/pg_ctl.err" 9>&-; then
    show_log_tail "$PG_DIR/pg_ctl.err" "$PG_LOG"
    die "postgres: pg_ctl start failed"
  fi
  wait_until postgres "$SERVICES_TIMEOUT" pg_isready_local "$PG_LOG"
  pg_bootstrap_db || {
    show_log_tail "$PG_LOG"
    die "postgres: could not create role/database $POSTGRES_DB_NAME"
  }
  log "postgres: ready"
}

postgres_stop() {
  pg_find_bin || {
    log "postgres: not installed; nothing to stop"
    return 0
  }
  pg_resolve_dir
  if pg_running; then
    log "postgres: stopping"
    as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w -t 60 stop >/dev/null 2>&1 ||
      die "postgres: pg_ctl stop failed (see $PG_LOG)"
  fi
  log "postgres: stopped"
}

postgres_status() {
  pg_resolve_dir
  if pg_find_bin && pg_running && pg_isready_local; then
    echo "postgres: running on $SERVICES_HOST:$POSTGRES_TEST_PORT (pid $(head -n1 "$PG_DATA/postmaster.pid"))"
  else
    echo "postgres: stopped"
    return 1
  fi
}

postgres_env() {
  printf 'export POSTGRES_URL=%q\n' \
    "postgresql://$POSTGRES_ROLE:$POSTGRES_PASSWORD@$SERVICES_HOST:$POSTGRES_TEST_PORT/$POSTGRES_DB_NAME"
}
