#!/usr/bin/env bash
# Sets AIRIS-MON up in ./.venv (Python 3.11 or 3.12) and runs one task in it:
#   deploy/bootstrap.sh demo [airis demo options]   the main job, on embedded defaults
#   deploy/bootstrap.sh test [pytest options]       the whole test suite
#   deploy/bootstrap.sh setup                       only the environment
# Re-running is cheap: the install is skipped while pyproject.toml is unchanged.
# `test` also fetches what the integration tests start (once, cached): the Apache Kafka broker's
# jars through Maven (deploy/kafka), Debian's clickhouse-server 18.16 (deploy/clickhouse), and
# built with Go from the Go module proxy an OpenTelemetry Collector (deploy/otelcol) and the
# dashboards' schema checker (deploy/grafana/checker), and Debian's chromium for the report's
# screenshot test (deploy/chromium.sh; apt-get, as root).
set -euo pipefail
cd "$(dirname "$0")/.."

pick_python() {
  for py in "${AIRIS_PYTHON:-}" python3.11 python3.12 python3; do
    [ -n "$py" ] || continue
    command -v "$py" >/dev/null 2>&1 || continue
    if "$py" -c 'import sys; sys.exit(not ((3, 11) <= sys.version_info[:2] <= (3, 12)))'; then
      echo "$py"; return 0
    fi
  done
  echo "bootstrap: need Python 3.11 or 3.12 (bytewax 0.21.1 has no wheels for newer); set AIRIS_PYTHON" >&2
  return 1
}

setup() {
  local stamp=.venv/.airis-installed want
  want=$(sha256sum pyproject.toml | cut -d' ' -f1)
  if [ -x .venv/bin/airis ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
    return 0
  fi
  local py; py=$(pick_python)
  echo "bootstrap: creating .venv with $($py --version)" >&2
  [ -d .venv ] || "$py" -m venv .venv
  .venv/bin/python -m pip install --quiet --upgrade pip
  # The build backend's deprecation notices are for us, not for whoever sets the project up.
  PYTHONWARNINGS=ignore .venv/bin/python -m pip install --quiet -e '.[dev]'
  echo "$want" > "$stamp"
}

fetch_test_services() {
  bash deploy/kafka/kafka.sh fetch
  bash deploy/clickhouse/clickhouse18.sh fetch
  bash deploy/otelcol/build.sh >/dev/null
  bash deploy/grafana/build-checker.sh >/dev/null
  bash deploy/chromium.sh >/dev/null
}

task=${1:-setup}
shift || true
setup
case "$task" in
  setup) ;;
  demo) exec .venv/bin/airis demo "$@" ;;
  test) fetch_test_services; exec .venv/bin/just test "$@" ;;
  *) echo "usage: deploy/bootstrap.sh [setup|demo|test] [options]" >&2; exit 2 ;;
esac
