# shellcheck shell=bash
# Shared helpers for scripts/services/*.sh. Sourced by run.sh; not meant to be run directly.

SERVICES_SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SERVICES_SCRIPT_DIR/../.." && pwd)"
SERVICES_DIR="${SERVICES_DIR:-$REPO_ROOT/.services}"
# Seconds to wait for a service to answer after starting it.
SERVICES_TIMEOUT="${SERVICES_TIMEOUT:-60}"
SERVICES_HOST=127.0.0.1

log() { printf '[services] %s\n' "$*" >&2; }
warn() { printf '[services] WARNING: %s\n' "$*" >&2; }
die() {
  printf '[services] ERROR: %s\n' "$*" >&2
  exit 1
}

# Print the last lines of each existing log file given, to stderr.
show_log_tail() {
  local f
  for f in "$@"; do
    [[ -f "$f" ]] || continue
    printf '[services] ----- last 40 lines of %s -----\n' "$f" >&2
    tail -n 40 "$f" >&2 || true
    printf '[services] ----- end of %s -----\n' "$f" >&2
  done
}

# Is something accepting TCP connections on 127.0.0.1:$1?
port_open() {
  (exec 3<>"/dev/tcp/$SERVICES_HOST/$1") 2>/dev/null
}

# wait_until NAME TIMEOUT_S CHECK_FN [LOG...]: poll CHECK_FN every 0.25 s until it succeeds or
# TIMEOUT_S passes; on timeout print the logs' tails and die.
wait_until() {
  local name="$1" timeout="$2" check="$3"
  shift 3
  local deadline=$((SECONDS + timeout))
  until "$check"; do
    if ((SECONDS >= deadline)); then
      show_log_tail "$@"
      die "$name did not become ready within ${timeout}s (logs above)"
    fi
    sleep 0.25
  done
}

# Is $1 a live process id?
pid_alive() {
  [[ -n "${1:-}" ]] && kill -0 "$1" 2>/dev/null
}

read_pid() {
  if [[ -f "$1" ]]; then tr -dc '0-9' <"$1"; fi
}

# Run a command as root: directly when we are root, else through sudo when there is one.
as_root() {
  if ((EUID == 0)); then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo "$@"
  else
    die "need root to run: $* (no sudo found); install it by hand and retry"
  fi
}

# apt_install PKG...: install Debian packages, refreshing the package lists first when a package
# is not known yet. Never starts the packaged system service (we run our own instance).
apt_install() {
  command -v apt-get >/dev/null 2>&1 || die "apt-get not found; install $* by hand"
  local pkg missing=0
  for pkg in "$@"; do
    apt-cache show "$pkg" >/dev/null 2>&1 || missing=1
  done
  if ((missing)); then
    log "apt-get update"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 ||
      die "apt-get update failed"
  fi
  log "apt-get install -y $*"
  # policy-rc.d exit 101 = "do not start services from maintainer scripts".
  local policy=/usr/sbin/policy-rc.d created_policy=0
  if [[ ! -e "$policy" ]]; then
    as_root sh -c "printf '#!/bin/sh\nexit 101\n' > $policy && chmod 755 $policy"
    created_policy=1
  fi
  local rc=0
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >&2 ||
    rc=$?
  if ((created_policy)); then as_root rm -f "$policy"; fi
  ((rc == 0)) || die "apt-get install $* failed (exit $rc)"
}

# Python that has the project's drivers (used for readiness checks); empty when none.
venv_python() {
  local py="$REPO_ROOT/.venv/bin/python"
  if [[ -x "$py" ]]; then
    printf '%s\n' "$py"
  elif command -v python3 >/dev/null 2>&1; then
    command -v python3
  fi
}
