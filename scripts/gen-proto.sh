#!/usr/bin/env bash
# Regenerates the Go code of the driver plugin's .proto files
# (driver/nomadplugin/proto/**) with the pinned generators.
#
#   scripts/gen-proto.sh          write next to the .proto files
#   scripts/gen-proto.sh OUTDIR   write the same tree under OUTDIR (drift test)
#
# Needs protoc (Debian: protobuf-compiler) and, on PATH or in $(go env
# GOPATH)/bin, the pinned plugins (`make tools` installs them).
set -euo pipefail

PROTOC_GEN_GO_VERSION=v1.36.12
PROTOC_GEN_GO_GRPC_VERSION=1.6.2
MODULE=github.com/nimbus-fn/nimbus

root="$(cd "$(dirname "$0")/.." && pwd)"
out="${1:-$root}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
PATH="$PATH:$(go env GOPATH)/bin"

command -v protoc >/dev/null || { echo "gen-proto: protoc not found (apt-get install protobuf-compiler)" >&2; exit 1; }
want() { # tool wanted-version-string
  local got
  got="$("$1" --version 2>/dev/null || true)"
  case "$got" in
    *"$2") ;;
    *) echo "gen-proto: $1 is '${got:-missing}', want $2 (run make tools)" >&2; exit 1 ;;
  esac
}
want protoc-gen-go "$PROTOC_GEN_GO_VERSION"
want protoc-gen-go-grpc "$PROTOC_GEN_GO_GRPC_VERSION"

cd "$root"
protos=$(find driver/nomadplugin/proto -name '*.proto' | LC_ALL=C sort)
# Paths are relative to the module root so that the registered file names
# (driver/nomadplugin/proto/...) cannot collide with other protos in a binary.
protoc -I . \
  --go_out="$out" --go_opt=module="$MODULE" \
  --go-grpc_out="$out" --go-grpc_opt=module="$MODULE" \
  $protos
