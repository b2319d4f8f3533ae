#!/usr/bin/env bash
# Builds the dashboard schema checker (deploy/grafana/checker: the Grafana Foundation SDK's
# strict unmarshal and validation of dashboard JSON) with Go and the Go module proxy.
#
#   deploy/grafana/build-checker.sh     build once per change of the checker; print its path
#
# The binary (and a Go fetched when the machine has none new enough) goes to var/grafana/
# (git-ignored).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
WORK=$REPO/var/grafana
BIN=$WORK/dashboard-check
STAMP=$WORK/.checker.sha256

log() { echo "dashboard-check: $*" >&2; }
die() { log "error: $*"; exit 1; }
# shellcheck source=../go-toolchain.sh
source "$REPO/deploy/go-toolchain.sh"

want=$(cat "$HERE/checker/go.mod" "$HERE/checker/go.sum" "$HERE/checker/main.go" | sha256sum | cut -d' ' -f1)
if [ -x "$BIN" ] && [ "$(cat "$STAMP" 2>/dev/null)" = "$want" ]; then
  echo "$BIN"
  exit 0
fi
mkdir -p "$WORK"
exec 9>"$WORK/lock"  # a test run and a developer building at once must not interleave
command -v flock >/dev/null 2>&1 && flock 9
GO=$(go_command "$WORK") || exit 1
out=$WORK/build.log
log "building the dashboard checker (once per change of deploy/grafana/checker)"
if ! (cd "$HERE/checker" && GOTOOLCHAIN=local GOFLAGS=-mod=readonly "$GO" build -o "$BIN" .) > "$out" 2>&1; then
  tail -n 40 "$out" >&2
  die "go build failed (full output: $out)"
fi
rm -f "$out"
echo "$want" > "$STAMP"
echo "$BIN"
