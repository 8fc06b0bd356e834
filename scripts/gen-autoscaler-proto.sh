#!/usr/bin/env bash
# Regenerates the Go code for the Nomad Autoscaler plugin protocol from
# autoscaler/proto/*/*.proto.
#
#   scripts/gen-autoscaler-proto.sh            # rewrite the committed files
#   scripts/gen-autoscaler-proto.sh OUTDIR     # write into OUTDIR/autoscaler/proto/... (drift test)
#
# Needs protoc (Debian protobuf-compiler, with libprotobuf-dev for the
# well-known types) and the pinned plugins from `make tools`:
# protoc-gen-go v1.36.12 and protoc-gen-go-grpc v1.6.2.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
out="${1:-$root}"
want_go="v1.36.12"
want_grpc="1.6.2"

PATH="$PATH:$(go env GOPATH)/bin"
for tool in protoc protoc-gen-go protoc-gen-go-grpc; do
  command -v "$tool" >/dev/null || { echo "gen-autoscaler-proto: $tool not found (see make tools / apt-get install protobuf-compiler)" >&2; exit 2; }
done
got_go="$(protoc-gen-go --version | awk '{print $2}')"
got_grpc="$(protoc-gen-go-grpc --version | awk '{print $2}')"
if [ "$got_go" != "$want_go" ] || [ "$got_grpc" != "$want_grpc" ]; then
  echo "gen-autoscaler-proto: need protoc-gen-go $want_go and protoc-gen-go-grpc $want_grpc, have $got_go and $got_grpc (run make tools)" >&2
  exit 2
fi

cd "$root"
mkdir -p "$out"
protoc \
  --proto_path=. \
  --go_out="$out" --go_opt=module=github.com/nimbus-fn/nimbus \
  --go-grpc_out="$out" --go-grpc_opt=module=github.com/nimbus-fn/nimbus \
  autoscaler/proto/sharedpb/shared.proto \
  autoscaler/proto/basepb/base.proto \
  autoscaler/proto/apmpb/apm.proto \
  autoscaler/proto/strategypb/strategy.proto
