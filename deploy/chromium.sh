#!/usr/bin/env bash
# Prints the path of a headless-capable Chromium for the report's screenshot test, installing
# Debian's `chromium` package with apt-get when it is missing and we are root (what CI is).
# Elsewhere it says how to install it and fails.
set -euo pipefail
for name in chromium chromium-browser; do
  if command -v "$name" >/dev/null 2>&1; then
    command -v "$name"
    exit 0
  fi
done
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "chromium: installing Debian's chromium package (once)" >&2
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -y -qq chromium >/dev/null 2>&1; then
    apt-get update -qq >/dev/null 2>&1
    apt-get install -y -qq chromium >/dev/null
  fi
  command -v chromium
  exit 0
fi
echo "chromium: not found; install it (Debian: sudo apt-get install chromium)" >&2
exit 1
