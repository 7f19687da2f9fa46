#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Real Redis / PostgreSQL / Neo4j for tests, without Docker. See docs/services.md.
#
#   scripts/services/run.sh start  [redis] [postgres] [neo4j]   # install if needed, start, wait
#   scripts/services/run.sh stop   [redis] [postgres] [neo4j]
#   scripts/services/run.sh status [redis] [postgres] [neo4j]   # exit 1 if any is stopped
#   scripts/services/run.sh env    [redis] [postgres] [neo4j]   # eval "$(... env)"
#
# No names = all three. State lives in $SERVICES_DIR (default <repo>/.services).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
source "$here/lib.sh"
# shellcheck source=redis.sh
source "$here/redis.sh"
# shellcheck source=postgres.sh
source "$here/postgres.sh"
# shellcheck source=neo4j.sh
source "$here/neo4j.sh"

ALL_SERVICES=(redis postgres neo4j)

usage() {
  echo "usage: $0 {start|stop|status|env} [redis] [postgres] [neo4j]   (no names = all)" >&2
  exit 2
}

(($# >= 1)) || usage
action="$1"
shift
case "$action" in
start | stop | status | env) ;;
*) usage ;;
esac

services=("$@")
((${#services[@]})) || services=("${ALL_SERVICES[@]}")
for s in "${services[@]}"; do
  case "$s" in
  redis | postgres | neo4j) ;;
  *)
    echo "unknown service '$s' (expected: ${ALL_SERVICES[*]})" >&2
    exit 2
    ;;
  esac
done

mkdir -p "$SERVICES_DIR"
# One start/stop at a time per SERVICES_DIR (e.g. two pytest sessions starting services at once).
if [[ "$action" == start || "$action" == stop ]]; then
  exec 9>"$SERVICES_DIR/.lock"
  if ! flock -w 900 9; then
    die "another run.sh holds $SERVICES_DIR/.lock for more than 900 s"
  fi
fi

rc=0
for s in "${services[@]}"; do
  case "$action" in
  start) "${s}_start" ;;
  stop) "${s}_stop" ;;
  status) "${s}_status" || rc=1 ;;
  env) "${s}_env" ;;
  esac
done
exit "$rc"
