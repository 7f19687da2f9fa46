# shellcheck shell=bash
# Redis for tests: 127.0.0.1:$REDIS_TEST_PORT, no persistence, state in $SERVICES_DIR/redis.
# Sourced by run.sh (needs lib.sh).

REDIS_TEST_PORT="${REDIS_TEST_PORT:-16379}"
REDIS_DIR="$SERVICES_DIR/redis"
REDIS_CONF="$REDIS_DIR/redis.conf"
REDIS_PIDFILE="$REDIS_DIR/redis.pid"
REDIS_LOG="$REDIS_DIR/redis.log"

redis_cli() {
  redis-cli -h "$SERVICES_HOST" -p "$REDIS_TEST_PORT" "$@"
}

redis_ping() {
  [[ "$(redis_cli ping 2>/dev/null)" == PONG ]]
}

redis_install() {
  if ! command -v redis-server >/dev/null 2>&1 || ! command -v redis-cli >/dev/null 2>&1; then
    log "redis-server not found; installing it from Debian"
    apt_install redis-server redis-tools
  fi
}

redis_write_conf() {
  mkdir -p "$REDIS_DIR"
  cat >"$REDIS_CONF" <<EOF
# Written by scripts/services/redis.sh; rewritten on every start.
bind $SERVICES_HOST
port $REDIS_TEST_PORT
protected-mode yes
daemonize yes
pidfile $REDIS_PIDFILE
logfile $REDIS_LOG
dir $REDIS_DIR
save ""
appendonly no
databases 16
EOF
}

redis_start() {
  if redis_ping; then
    log "redis: already running on $SERVICES_HOST:$REDIS_TEST_PORT"
    return 0
  fi
  if port_open "$REDIS_TEST_PORT"; then
    die "redis: port $REDIS_TEST_PORT is taken by something that does not answer PING; free it or set REDIS_TEST_PORT"
  fi
  redis_install
  redis_write_conf
  log "redis: starting on $SERVICES_HOST:$REDIS_TEST_PORT (dir $REDIS_DIR)"
  : >"$REDIS_LOG"
  # fd 9 is run.sh's lock: the daemon must not inherit it.
  if ! redis-server "$REDIS_CONF" </dev/null >>"$REDIS_LOG" 2>&1 9>&-; then
    show_log_tail "$REDIS_LOG"
    die "redis: redis-server failed to start"
  fi
  wait_until redis "$SERVICES_TIMEOUT" redis_ping "$REDIS_LOG"
  log "redis: ready"
}

redis_stop() {
  if redis_ping; then
    log "redis: stopping"
    redis_cli shutdown nosave >/dev/null 2>&1 || true
  fi
  local pid
  pid="$(read_pid "$REDIS_PIDFILE")"
  local deadline=$((SECONDS + 20))
  while pid_alive "$pid" && ((SECONDS < deadline)); do sleep 0.2; done
  if pid_alive "$pid"; then
    warn "redis: pid $pid still alive; sending SIGKILL"
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$REDIS_PIDFILE"
  log "redis: stopped"
}

redis_status() {
  if redis_ping; then
    echo "redis: running on $SERVICES_HOST:$REDIS_TEST_PORT (pid $(read_pid "$REDIS_PIDFILE"))"
  else
    echo "redis: stopped"
    return 1
  fi
}

redis_env() {
  printf 'export REDIS_URL=%q\n' "redis://$SERVICES_HOST:$REDIS_TEST_PORT/0"
}
