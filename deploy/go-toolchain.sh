# Sourced by the scripts that build Go tools (deploy/otelcol/build.sh,
# deploy/grafana/build-checker.sh); they define log and die first.
#
# go_command DIR prints the go to build with: the machine's if it is Go $GO_MINIMUM or newer,
# else Go $GO_VERSION fetched once into DIR from the Go module proxy (golang.org/toolchain,
# what Go's own toolchain switching downloads).

GO_VERSION=1.26.8
GO_MINIMUM=1.26

# The machine's go if it is new enough, else one fetched once from the Go module proxy.
go_command() {
  local cache=$1
  if command -v go >/dev/null 2>&1; then
    local have
    have=$(go env GOVERSION 2>/dev/null | sed 's/^go//')
    if [ -n "$have" ] && [ "$(printf '%s\n%s\n' "$GO_MINIMUM" "$have" | sort -V | head -n 1)" = "$GO_MINIMUM" ]; then
      command -v go
      return 0
    fi
  fi
  local root=$cache/go$GO_VERSION arch
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
