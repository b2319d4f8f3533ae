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

GO_VERSION=1.26.8
GO_MINIMUM=1.26

log() { echo "otelcol: $*" >&2; }
die() { log "error: $*"; exit 1; }

# The machine's go if it is new enough, else one fetched once from the Go module proxy.
go_command() {
  if command -v go >/dev/null 2>&1; then
    local have
    have=$(go env GOVERSION 2>/dev/null | sed 's/^go//')
    if [ -n "$have" ] && [ "$(printf '%s\n%s\n' "$GO_MINIMUM" "$have" | sort -V | head -n 1)" = "$GO_MINIMUM" ]; then
      command -v go
      return 0
    fi
  fi
  local root=$WORK/go$GO_VERSION arch
  if [ ! -x "$root/bin/go" ]; then
    case $(uname -m) in
      x86_64) arch=amd64 ;;
      aarch64 | arm64) arch=arm64 ;;
      *) die "no Go $GO_MINIMUM+ on PATH and no toolchain to fetch for $(uname -m)" ;;
    esac
    local module="golang.org/toolchain@v0.0.1-go$GO_VERSION.linux-$arch"
    log "no Go $GO_MINIMUM+ on PATH: fetching go$GO_VERSION from the Go module proxy (once)"
    python3 - "https://proxy.golang.org/golang.org/toolchain/@v/v0.0.1-go$GO_VERSION.linux-$arch.zip" \
        "$module" "$root" <<'PY' || die "fetching go$GO_VERSION from the Go module proxy failed"
import io, os, shutil, sys, urllib.request, zipfile
url, module, root = sys.argv[1:]
data = urllib.request.urlopen(url, timeout=600).read()
staging = root + ".partial"
shutil.rmtree(staging, ignore_errors=True)
with zipfile.ZipFile(io.BytesIO(data)) as archive:
    for info in archive.infolist():
        target = os.path.join(staging, info.filename.removeprefix(module + "/"))
        if info.is_dir():
            continue
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with archive.open(info) as src, open(target, "wb") as dst:
            shutil.copyfileobj(src, dst)
        # Module zips keep no file modes: Go's own toolchain switch marks these executable.
        name = info.filename.removeprefix(module + "/")
        executable = name.startswith("bin/") or name.startswith("pkg/tool/")
        os.chmod(target, 0o755 if executable else 0o644)
os.rename(staging, root)
PY
  fi
  echo "$root/bin/go"
}

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
GO=$(go_command) || exit 1
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
