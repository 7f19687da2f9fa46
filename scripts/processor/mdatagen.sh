#!/usr/bin/env bash
# (Re)generate the behaviorcorrelation processor's mdatagen output from its metadata.yaml.
#
#   scripts/processor/mdatagen.sh
#
# Writes processor/behaviorcorrelationprocessor/internal/metadata/..., documentation.md and
# generated_*_test.go. Idempotent: a second run changes nothing.
#
# mdatagen is pinned to the collector release the processor is built against (v0.161.0) by
# the tool module beside this script (scripts/processor/mdatagen/go.mod) and installed into
# .tools/bin. That module replaces go.opentelemetry.io/collector/internal/schemagen with
# v0.159.0 because the module proxy serves no source for v0.160.0 and later; schemagen only
# builds config JSON schemas, which this processor's metadata.yaml does not ask for.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
TOOLS="$ROOT/.tools/bin"
TOOL_MODULE="$ROOT/scripts/processor/mdatagen"
VERSION="$(awk '$1 == "require" && $2 == "go.opentelemetry.io/collector/cmd/mdatagen" {print $3}' "$TOOL_MODULE/go.mod")"
STAMP="$TOOLS/.mdatagen-$VERSION"
export GOPROXY="${GOPROXY:-https://proxy.golang.org}"
[[ "$GOPROXY" == *proxy.golang.org* ]] || export GOPROXY=https://proxy.golang.org

if [[ ! -x "$TOOLS/mdatagen" || ! -f "$STAMP" ]]; then
  mkdir -p "$TOOLS"
  (cd "$TOOL_MODULE" && GOBIN="$TOOLS" GOFLAGS=-mod=mod go install go.opentelemetry.io/collector/cmd/mdatagen)
  rm -f "$TOOLS"/.mdatagen-*
  touch "$STAMP"
fi

cd "$ROOT/processor/behaviorcorrelationprocessor"
"$TOOLS/mdatagen" metadata.yaml
gofmt -w internal/metadata generated_*.go
