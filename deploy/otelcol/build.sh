#!/usr/bin/env bash
# Builds the OpenTelemetry Collector the integration tests put in front of AIRIS-MON:
# OTLP receiver, batch processor and Kafka exporter (builder.yaml), with the Collector's own
# builder (ocb) from the Go module proxy. Packaging a Collector for deployment is not this.
#
#   deploy/otelcol/build.sh          build once per builder.yaml change; print the binary's path
#
# Uses the machine's Go if it is 1.26 or newer (what the Collector's modules ask for), else
# fetches Go 1.26.8 from the Go module proxy (golang.org/toolchain, what Go's own toolchain
# switching downloads). The binary, the builder and a fetched Go go to var/otelcol/
# (git-ignored); the first build downloads about 1.5 GB of Go modules into Go's caches and
# takes minutes on 2 cores.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
BUILDER_VERSION=v0.165.0
WORK=$REPO/var/otelcol
BIN=$WORK/otelcol-airis
STAMP=$WORK/.builder.sha256

log() { echo "otelcol: $*" >&2; }
die() { log "error: $*"; exit 1; }
# shellcheck source=../go-toolchain.sh
source "$REPO/deploy/go-toolchain.sh"

want=$( (sha256sum "$HERE/builder.yaml"; echo "$BUILDER_VERSION") | sha256sum | cut -d' ' -f1)
if [ -x "$BIN" ] && [ "$(cat "$STAMP" 2>/dev/null)" = "$want" ]; then
  echo "$BIN"
  exit 0
fi
mkdir -p "$WORK"
# A test run and a developer building at once must not interleave.
exec 9>"$WORK/lock"
command -v flock >/dev/null 2>&1 && flock 9
if [ -x "$BIN" ] && [ "$(cat "$STAMP" 2>/dev/null)" = "$want" ]; then
  echo "$BIN"
  exit 0
fi
GO=$(go_command "$WORK") || exit 1
export PATH="$(dirname "$GO"):$PATH" GOTOOLCHAIN=local  # the builder runs `go` from PATH
out=$WORK/build.log
log "building the Collector (builder $BUILDER_VERSION; once per builder.yaml change, minutes the first time)"
if ! GOBIN="$WORK/bin" "$GO" install "go.opentelemetry.io/collector/cmd/builder@$BUILDER_VERSION" > "$out" 2>&1; then
  tail -n 40 "$out" >&2
  die "go install of the Collector builder failed (full output: $out)"
fi
src=$WORK/src
rm -rf "$src"
mkdir -p "$src"
# The builder writes its sources and binary next to output_path, relative to the working dir.
if ! (cd "$src" && "$WORK/bin/builder" --config "$HERE/builder.yaml") >> "$out" 2>&1; then
  tail -n 40 "$out" >&2
  die "the Collector build failed (full output: $out)"
fi
mv "$src/_build/otelcol-airis" "$BIN"
rm -rf "$src" "$out"
echo "$want" > "$STAMP"
log "built $BIN"
echo "$BIN"
