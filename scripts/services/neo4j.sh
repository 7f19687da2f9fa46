# shellcheck shell=bash
# Neo4j 5.26 LTS (community, embedded) for tests: Bolt on 127.0.0.1:$NEO4J_TEST_BOLT_PORT, auth
# disabled, no HTTP, data in $SERVICES_DIR/neo4j. There is no Neo4j tarball or Docker here, so
# scripts/services/neo4j/ holds a tiny Java launcher whose classpath comes from Maven Central.
# Sourced by run.sh (needs lib.sh).

NEO4J_TEST_BOLT_PORT="${NEO4J_TEST_BOLT_PORT:-17687}"
NEO4J_SRC="$SERVICES_SCRIPT_DIR/neo4j"
NEO4J_BUILD="$SERVICES_DIR/neo4j-build"
NEO4J_DIR="$SERVICES_DIR/neo4j"
NEO4J_HOME="$NEO4J_DIR/home"
NEO4J_PIDFILE="$NEO4J_DIR/neo4j.pid"
NEO4J_LOG="$NEO4J_DIR/neo4j.log"
NEO4J_MAIN=sidecar.services.Neo4jTestServer
# Heap stays modest; override or extend with NEO4J_JAVA_OPTS.
NEO4J_JAVA_OPTS="${NEO4J_JAVA_OPTS:--Xms256m -Xmx1g}"

neo4j_java() {
  if [[ -n "${JAVA_HOME:-}" && -x "$JAVA_HOME/bin/java" ]]; then
    printf '%s\n' "$JAVA_HOME/bin"
  else
    dirname "$(readlink -f "$(command -v java)")"
  fi
}

neo4j_install_tools() {
  if ! command -v java >/dev/null 2>&1 || ! command -v javac >/dev/null 2>&1; then
    log "neo4j: no JDK found; installing one from Debian"
    apt_install openjdk-17-jdk-headless
  fi
  if ! command -v mvn >/dev/null 2>&1; then
    log "neo4j: no Maven found; installing it from Debian"
    apt_install maven
  fi
  local major
  major="$("$(neo4j_java)/java" -XshowSettings:properties -version 2>&1 |
    sed -n 's/^ *java\.specification\.version = //p')"
  if [[ -z "$major" || "${major%%.*}" -lt 17 ]]; then
    die "neo4j: needs Java 17 or newer (found '${major:-unknown}'); set JAVA_HOME"
  fi
}

# Fingerprint of everything the build depends on; the build is skipped when it is unchanged.
neo4j_build_stamp() {
  {
    cat "$NEO4J_SRC/pom.xml"
    find "$NEO4J_SRC/src" -type f -name '*.java' -print0 | sort -z | xargs -0 cat
    "$(neo4j_java)/java" -version 2>&1
    echo "cds=${NEO4J_CDS:-1}"
  } | sha256sum | cut -d' ' -f1
}

neo4j_build_is_current() {
  [[ -f "$NEO4J_BUILD/stamp" && -f "$NEO4J_BUILD/classpath.txt" && -f "$NEO4J_BUILD/launcher.jar" ]] ||
    return 1
  [[ "$(cat "$NEO4J_BUILD/stamp")" == "$(neo4j_build_stamp)" ]] || return 1
  # Every jar still in the local Maven repository?
  local jar
  local -a jars
  IFS=: read -r -a jars <"$NEO4J_BUILD/classpath.txt"
  for jar in "${jars[@]}"; do
    [[ -f "$jar" ]] || return 1
  done
}

neo4j_build() {
  neo4j_install_tools
  if neo4j_build_is_current; then
    return 0
  fi
  local start=$SECONDS
  log "neo4j: building the launcher (first time: resolves ~150 MB of jars from Maven Central into ~/.m2)"
  rm -rf "$NEO4J_BUILD"
  mkdir -p "$NEO4J_BUILD/classes"
  if ! mvn -B -q -ntp -f "$NEO4J_SRC/pom.xml" dependency:build-classpath \
    -Dmdep.includeScope=runtime -Dmdep.outputFile="$NEO4J_BUILD/classpath.txt" \
    >"$NEO4J_BUILD/build.log" 2>&1; then
    show_log_tail "$NEO4J_BUILD/build.log"
    die "neo4j: Maven could not resolve the Neo4j classpath (log above)"
  fi
  local -a sources
  mapfile -t sources < <(find "$NEO4J_SRC/src" -type f -name '*.java')
  if ! "$(neo4j_java)/javac" --release 17 -nowarn -d "$NEO4J_BUILD/classes" \
    -cp "$(cat "$NEO4J_BUILD/classpath.txt")" "${sources[@]}" >>"$NEO4J_BUILD/build.log" 2>&1; then
    show_log_tail "$NEO4J_BUILD/build.log"
    die "neo4j: javac failed (log above)"
  fi
  # CDS wants jars only on the classpath, so package the classes.
  "$(neo4j_java)/jar" cf "$NEO4J_BUILD/launcher.jar" -C "$NEO4J_BUILD/classes" . ||
    die "neo4j: could not package the launcher jar"
  neo4j_build_cds_archive
  neo4j_build_stamp >"$NEO4J_BUILD/stamp"
  log "neo4j: launcher built in $((SECONDS - start))s"
}

# Record a class-data-sharing archive with one warm-up start/stop: later starts take ~7 s
# instead of ~15 s on 2 cores. Best effort: without it the server just starts slower.
neo4j_build_cds_archive() {
  [[ "${NEO4J_CDS:-1}" == 1 ]] || return 0
  log "neo4j: recording a class-data-sharing archive (one warm-up start and stop, ~15-30 s)"
  local warm_home="$NEO4J_BUILD/warmup-home"
  rm -rf "$warm_home"
  local -a cmd
  neo4j_java_cmd cmd -XX:ArchiveClassesAtExit="$NEO4J_BUILD/neo4j.jsa"
  if ! timeout 300 "${cmd[@]}" --warmup "$warm_home" "$SERVICES_HOST" "$NEO4J_TEST_BOLT_PORT" \
    </dev/null >>"$NEO4J_BUILD/cds.log" 2>&1 9>&- || [[ ! -s "$NEO4J_BUILD/neo4j.jsa" ]]; then
    warn "neo4j: no class-data-sharing archive (see $NEO4J_BUILD/cds.log); starts will be slower"
    rm -f "$NEO4J_BUILD/neo4j.jsa"
  fi
  rm -rf "$warm_home"
}

# neo4j_java_cmd ARRAY_NAME [EXTRA_JVM_OPTS...]: the JVM command line up to the main class.
neo4j_java_cmd() {
  local -n _cmd="$1"
  shift
  local -a opts
  read -r -a opts <<<"$NEO4J_JAVA_OPTS"
  _cmd=(
    "$(neo4j_java)/java" "${opts[@]}" "$@"
    -XX:+ExitOnOutOfMemoryError -XX:+UseG1GC
    -Djdk.nio.maxCachedBufferSize=1024 -Dio.netty.tryReflectionSetAccessible=true
    -Dlog4j2.disable.jmx=true
    --add-opens=java.base/java.nio=ALL-UNNAMED --add-opens=java.base/java.io=ALL-UNNAMED
    --add-opens=java.base/sun.nio.ch=ALL-UNNAMED
    -cp "$NEO4J_BUILD/launcher.jar:$(cat "$NEO4J_BUILD/classpath.txt")"
    "$NEO4J_MAIN"
  )
}

neo4j_url() { printf 'bolt://%s:%s\n' "$SERVICES_HOST" "$NEO4J_TEST_BOLT_PORT"; }

# RETURN 1 through the Python driver (what the tests use); port check only when no driver.
neo4j_query_ok() {
  local py
  py="$(venv_python)"
  if [[ -n "$py" ]] && "$py" -c 'import neo4j' >/dev/null 2>&1; then
    "$py" - "$(neo4j_url)" >/dev/null 2>&1 <<'EOF'
import sys
from neo4j import GraphDatabase
with GraphDatabase.driver(sys.argv[1], auth=None, connection_timeout=5) as driver:
    records, _, _ = driver.execute_query("RETURN 1 AS one")
    assert records[0]["one"] == 1
EOF
  else
    port_open "$NEO4J_TEST_BOLT_PORT"
  fi
}

# Our JVM's pid, or nothing (no pidfile, or the pid now belongs to another process).
neo4j_pid() {
  local pid
  pid="$(read_pid "$NEO4J_PIDFILE")"
  if [[ -n "$pid" ]] && grep -qa "$NEO4J_MAIN" "/proc/$pid/cmdline" 2>/dev/null; then
    printf '%s\n' "$pid"
  fi
}

neo4j_running() {
  pid_alive "$(neo4j_pid)" && port_open "$NEO4J_TEST_BOLT_PORT" && neo4j_query_ok
}

# Readiness poll: READY line in the log, port open, query answers. Fails fast if the JVM died.
neo4j_ready_check() {
  if ! pid_alive "$(neo4j_pid)"; then
    show_log_tail "$NEO4J_LOG" "$NEO4J_HOME/logs/debug.log"
    die "neo4j: the JVM exited during startup (logs above)"
  fi
  grep -q '^READY' "$NEO4J_LOG" 2>/dev/null && port_open "$NEO4J_TEST_BOLT_PORT" && neo4j_query_ok
}

neo4j_start() {
  local pid
  pid="$(neo4j_pid)"
  if pid_alive "$pid"; then
    if neo4j_running; then
      log "neo4j: already running on $(neo4j_url)"
      return 0
    fi
    log "neo4j: pid $pid is alive but not answering yet; waiting"
    wait_until neo4j "$((SERVICES_TIMEOUT * 2))" neo4j_ready_check "$NEO4J_LOG" "$NEO4J_HOME/logs/debug.log"
    log "neo4j: ready"
    return 0
  fi
  if port_open "$NEO4J_TEST_BOLT_PORT"; then
    die "neo4j: port $NEO4J_TEST_BOLT_PORT is taken by another process; free it or set NEO4J_TEST_BOLT_PORT"
  fi
  neo4j_build
  mkdir -p "$NEO4J_HOME"
  log "neo4j: starting on $(neo4j_url) (home $NEO4J_HOME)"
  local -a cmd cds=()
  [[ -s "$NEO4J_BUILD/neo4j.jsa" ]] && cds=(-XX:SharedArchiveFile="$NEO4J_BUILD/neo4j.jsa")
  neo4j_java_cmd cmd "${cds[@]}" -Dsidecar.pidfile="$NEO4J_PIDFILE"
  : >"$NEO4J_LOG"
  # setsid + nohup + no inherited fds (fd 9 is run.sh's lock): a daemon that outlives this
  # script and its caller.
  setsid nohup "${cmd[@]}" "$NEO4J_HOME" "$SERVICES_HOST" "$NEO4J_TEST_BOLT_PORT" \
    </dev/null >>"$NEO4J_LOG" 2>&1 9>&- &
  echo "$!" >"$NEO4J_PIDFILE"
  # The JVM needs longer than the other two on a small machine; allow twice the timeout.
  wait_until neo4j "$((SERVICES_TIMEOUT * 2))" neo4j_ready_check "$NEO4J_LOG" "$NEO4J_HOME/logs/debug.log"
  log "neo4j: ready (pid $(neo4j_pid))"
}

neo4j_stop() {
  local pid
  pid="$(neo4j_pid)"
  if pid_alive "$pid"; then
    log "neo4j: stopping (SIGTERM to pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + 60))
    while pid_alive "$pid" && ((SECONDS < deadline)); do sleep 0.25; done
    if pid_alive "$pid"; then
      warn "neo4j: pid $pid did not exit within 60s; sending SIGKILL"
      kill -9 "$pid" 2>/dev/null || true
    fi
  fi
  rm -f "$NEO4J_PIDFILE"
  log "neo4j: stopped"
}

neo4j_status() {
  if neo4j_running; then
    echo "neo4j: running on $(neo4j_url) (pid $(neo4j_pid))"
  elif [[ -n "$(neo4j_pid)" ]]; then
    echo "neo4j: starting or unhealthy (pid $(neo4j_pid) alive, $(neo4j_url) not answering)"
    return 1
  else
    echo "neo4j: stopped"
    return 1
  fi
}

neo4j_env() {
  # Auth is disabled on this server, so no NEO4J_USER / NEO4J_PASSWORD.
  printf 'export NEO4J_URL=%q\n' "$(neo4j_url)"
}
