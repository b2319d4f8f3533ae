#!/usr/bin/env bash
# Re-vendors uPlot (MIT; Grafana's own chart library) into the HTML report:
# airis/app/html_report/vendor/. The report inlines these files into each page it writes, so a
# report opens without any network. Fetches the pinned version's tarball from the npm registry,
# checks it against the registry's sha512 integrity, and copies the minified build, its CSS and
# its licence. Run it to move to another version (change VERSION and INTEGRITY together).
set -euo pipefail
VERSION=1.6.32
INTEGRITY=sha512-KIMVnG68zvu5XXUbC4LQEPnhwOxBuLyW1AHtpm6IKTXImkbLgkMy+jabjLgSLMasNuGGzQm/ep3tOkyTxpiQIw==
HERE=$(cd "$(dirname "$0")" && pwd)
DEST=$HERE/../airis/app/html_report/vendor
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
curl -fsSL "https://registry.npmjs.org/uplot/-/uplot-$VERSION.tgz" -o "$work/uplot.tgz"
got="sha512-$(openssl dgst -sha512 -binary "$work/uplot.tgz" | base64 -w0)"
if [ "$got" != "$INTEGRITY" ]; then
  echo "vendor-uplot: integrity mismatch: got $got, want $INTEGRITY" >&2
  exit 1
fi
tar -xzf "$work/uplot.tgz" -C "$work"
mkdir -p "$DEST"
cp "$work/package/dist/uPlot.iife.min.js" "$work/package/dist/uPlot.min.css" "$DEST/"
cp "$work/package/LICENSE" "$DEST/uPlot.LICENSE"
echo "uplot $VERSION" > "$DEST/VERSION"
echo "vendor-uplot: uPlot $VERSION → $DEST" >&2
