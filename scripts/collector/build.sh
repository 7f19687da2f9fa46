#!/usr/bin/env bash
# Build bin/otelcol-behavior with ocb from builder-config.yaml (idempotent).
#
#   scripts/collector/build.sh            build if builder-config.yaml, the processor sources,
#                                         this script or the Go toolchain changed; else say so
#   scripts/collector/build.sh --force    rebuild regardless of the stamp
#
# ocb is installed into .tools/bin (go install, pinned version). Generated sources (main.go,
# go.mod, ...) go to build/otelcol-behavior/ (gitignored); the binary is copied to bin/.
# Env: GOPROXY (default https://proxy.golang.org: no direct VCS fallback, so a refused module
# fails with the proxy's own message), OCB_VERSION (default v0.161.0, keep it equal to the
# collector release in builder-config.yaml).
set -euo pipefail

SELF="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")"
ROOT="$(cd "$(dirname "$SELF")/../.." && pwd)"
cd "$ROOT" # ocb resolves output_path and module paths against the current directory

OCB_VERSION="${OCB_VERSION:-v0.161.0}"
CONFIG="builder-config.yaml"
TOOLS_BIN="$ROOT/.tools/bin"
OCB="$TOOLS_BIN/builder"
OUT_DIR="build/otelcol-behavior"
BIN="bin/otelcol-behavior"
PROCESSOR_DIR="processor/behaviorcorrelationprocessor"
STAMP="$OUT_DIR/.build-stamp"
export GOPROXY="${GOPROXY:-https://proxy.golang.org}"

force=0
for arg in "$@"; do
  case "$arg" in
    --force) force=1 ;;
    -h | --help) sed -n '2,12p' "$SELF" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "build.sh: unknown argument: $arg" >&2; exit 2 ;;
  esac
done

log() { printf '[collector] %s\n' "$*"; }

command -v go >/dev/null || { echo "build.sh: 'go' is not on PATH (Go >= 1.25 is needed)" >&2; exit 1; }
mkdir -p "$OUT_DIR" bin "$TOOLS_BIN"

# Two builds at once (e.g. two test sessions) would race on the generated go.mod.
exec 9>"build/.otelcol-behavior.lock"
flock 9

# What the binary depends on in this repository, plus the tool versions.
compute_stamp() {
  {
    echo "ocb=$OCB_VERSION"
    go version
    sha256sum "$CONFIG" "$SELF"
    find "$PROCESSOR_DIR" -type f \( -name '*.go' -o -name 'go.mod' -o -name 'go.sum' \) \
      ! -name '*_test.go' ! -path '*/testdata/*' -print0 | LC_ALL=C sort -z | xargs -0 sha256sum
  } | sha256sum | cut -d' ' -f1
}

stamp="$(compute_stamp)"
if [[ $force -eq 0 && -x "$BIN" && -f "$STAMP" && "$(cat "$STAMP")" == "$stamp" ]]; then
  log "$BIN is up to date (stamp ${stamp:0:12}); --force rebuilds"
  exit 0
fi

if [[ ! -x "$OCB" ]] || ! "$OCB" version 2>&1 | grep -qF "$OCB_VERSION"; then
  log "installing ocb (go.opentelemetry.io/collector/cmd/builder@$OCB_VERSION) into .tools/bin"
  GOBIN="$TOOLS_BIN" go install "go.opentelemetry.io/collector/cmd/builder@$OCB_VERSION"
fi

log "generating and compiling with $("$OCB" version 2>&1) (GOPROXY=$GOPROXY); a cold build takes minutes"
start=$(date +%s)
rm -f "$STAMP"
if ! "$OCB" --config "$CONFIG" >"$OUT_DIR.log" 2>&1; then
  tail -n 40 "$OUT_DIR.log" >&2
  echo "build.sh: ocb failed; full log: $OUT_DIR.log" >&2
  exit 1
fi
grep -E 'Sources created|Getting go modules|Compiling|Compiled' "$OUT_DIR.log" \
  | sed -E 's/^.*(Sources created|Getting go modules|Compiling|Compiled).*$/[collector]   ocb: \1/' || true

install -m 0755 "$OUT_DIR/otelcol-behavior" "$BIN.tmp"
mv -f "$BIN.tmp" "$BIN"
echo "$stamp" >"$STAMP"
log "built $BIN in $(($(date +%s) - start))s"
"$BIN" --version
