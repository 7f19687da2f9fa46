#!/usr/bin/env bash
# Regenerate the processor <-> sidecar stubs from proto/behavior/v1/correlation.proto.
#
#   scripts/proto/generate.sh [OUT_ROOT]
#
# Writes the Python stubs to OUT_ROOT/sidecar/protocol/ and the Go stubs to
# OUT_ROOT/processor/behaviorcorrelationprocessor/internal/behaviorpb/ (OUT_ROOT defaults to
# the repository; the staleness tests pass a temporary directory and compare).
#
# One protoc for both languages: the one bundled with the pinned grpcio-tools (pyproject.toml),
# so the output does not depend on what the machine has. The Go plugins are pinned below and
# installed into .tools/bin with `go install` (idempotent).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
OUT="${1:-$ROOT}"
PY="${PY:-$ROOT/.venv/bin/python}"
TOOLS="$ROOT/.tools/bin"
PROTOC_GEN_GO_VERSION=v1.36.12
PROTOC_GEN_GO_GRPC_VERSION=v1.6.1
GO_MODULE=github.com/behavior-correlation/otelcol-behavior

install_plugin() { # name package version
  local stamp="$TOOLS/.$1-$3"
  if [[ ! -x "$TOOLS/$1" || ! -f "$stamp" ]]; then
    GOBIN="$TOOLS" GOFLAGS=-mod=mod go install "$2@$3"
    touch "$stamp"
  fi
}
mkdir -p "$TOOLS"
install_plugin protoc-gen-go google.golang.org/protobuf/cmd/protoc-gen-go "$PROTOC_GEN_GO_VERSION"
install_plugin protoc-gen-go-grpc google.golang.org/grpc/cmd/protoc-gen-go-grpc "$PROTOC_GEN_GO_GRPC_VERSION"

cd "$ROOT"
# Python: map the file to the package path so the generated imports are absolute
# (`from sidecar.protocol import correlation_pb2`).
mkdir -p "$OUT/sidecar/protocol"
"$PY" -m grpc_tools.protoc -Isidecar/protocol=proto/behavior/v1 \
  --python_out="$OUT" --pyi_out="$OUT" --grpc_python_out="$OUT" \
  sidecar/protocol/correlation.proto

# Go: the go_package option decides the directory, relative to the repository's module path.
mkdir -p "$OUT/processor"
"$PY" -m grpc_tools.protoc -Iproto \
  --plugin=protoc-gen-go="$TOOLS/protoc-gen-go" --plugin=protoc-gen-go-grpc="$TOOLS/protoc-gen-go-grpc" \
  --go_out="$OUT" --go_opt=module="$GO_MODULE" \
  --go-grpc_out="$OUT" --go-grpc_opt=module="$GO_MODULE" \
  behavior/v1/correlation.proto
