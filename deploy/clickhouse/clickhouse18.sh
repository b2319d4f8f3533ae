#!/usr/bin/env bash
# A throwaway ClickHouse 18.16 server (Debian 12's clickhouse-server package), run without root.
#
#   clickhouse18.sh fetch
#       Download clickhouse-server, clickhouse-client and the libraries this machine lacks
#       (`apt-get download`, no root) and unpack them (`dpkg-deb -x`) under $CLICKHOUSE18_HOME
#       (default: deploy/clickhouse/cache, git-ignored). Does nothing if already unpacked.
#   clickhouse18.sh up --port P --dir D [--timeout S] [--owner-pid PID]
#       Write D/config.xml and D/users.xml (native protocol on 127.0.0.1:P, no HTTP port, user
#       `default` without password, data and logs under D), start the server in the background
#       (pid in D/clickhouse-server.pid) and wait until `SELECT 1` answers (default 60 s).
#       With --owner-pid the server is stopped when that process ends (a killed test run
#       leaves no server behind). Fetches first if needed.
#   clickhouse18.sh down --dir D
#       Stop the server started in D (TERM, then KILL after 30 s). Harmless if none runs.
#   clickhouse18.sh client --port P [clickhouse-client arguments...]
#       The matching clickhouse-client, e.g. `client --port P --query 'SELECT version()'`.
#
# Debian's binaries are dynamically linked against Poco, re2, capnp, ... : they run with
# LD_LIBRARY_PATH pointing into the unpacked tree. The package list comes from
# `apt-get -s install` (what apt would install here), so libraries already present are used
# from the system. ClickHouse 18.16 (2018) speaks today's native protocol but predates most of
# the AIRIS-MON schema (DateTime64, Map, TTL, LowCardinality by default): it is a test double
# for the protocol and for 18.x-compatible DDL, not a supported server.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
HOME_DIR="${CLICKHOUSE18_HOME:-$SCRIPT_DIR/cache}"
DEBS="$HOME_DIR/debs"
ROOT="$HOME_DIR/root"
STAMP="$ROOT/.complete"
SERVER_BIN="$ROOT/usr/sbin/clickhouse-server"
CLIENT_BIN="$ROOT/usr/bin/clickhouse-client"
PACKAGES=(clickhouse-server clickhouse-client)

die() {
    echo "clickhouse18: $*" >&2
    exit 1
}

log() {
    echo "clickhouse18: $*" >&2
}

usage() {
    sed -n '2,17p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
    exit "${1:-2}"
}

lib_path() {
    # Every directory of the unpacked tree that holds shared libraries.
    local dirs
    dirs="$(find "$ROOT" -name '*.so*' -printf '%h\n' 2>/dev/null | sort -u | paste -sd: -)"
    echo "${dirs}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
}

is_root() {
    [[ "$(id -u)" == 0 ]]
}

# Packages apt would install here for PACKAGES (missing dependencies included), plus PACKAGES;
# on failure, apt's last error line.
package_list() {
    local sim
    if ! sim="$(apt-get -s -o Debug::NoLocking=1 install --no-install-recommends \
        "${PACKAGES[@]}" 2>&1)"; then
        grep '^E:' <<<"$sim" | tail -n 1
        return 1
    fi
    { printf '%s\n' "${PACKAGES[@]}" clickhouse-common
      awk '$1 == "Inst" { print $2 }' <<<"$sim"; } | sort -u
}

apt_update_or_die() {
    local why="$1"
    if is_root; then
        log "$why; running apt-get update"
        apt-get update -qq || die "apt-get update failed"
    else
        die "$why. The apt package lists are missing or stale on this machine and only root can" \
            "refresh them: run 'sudo apt-get update' once, then retry" \
            "(clickhouse-server comes from Debian 12's main archive)."
    fi
}

cmd_fetch() {
    [[ $# -eq 0 ]] || usage
    if [[ -f "$STAMP" && -x "$SERVER_BIN" && -x "$CLIENT_BIN" ]]; then
        return 0
    fi
    command -v apt-get >/dev/null || die "apt-get not found: fetch needs a Debian-like system"
    command -v dpkg-deb >/dev/null || die "dpkg-deb not found: fetch needs a Debian-like system"
    mkdir -p "$HOME_DIR"
    # Two test runs may fetch at once: one does the work, the other waits and then finds it done.
    # A subshell holds the lock, so that the server started later does not inherit it.
    (
        flock 9
        if [[ -f "$STAMP" && -x "$SERVER_BIN" && -x "$CLIENT_BIN" ]]; then
            exit 0
        fi
        fetch_locked
    ) 9>"$HOME_DIR/.fetch.lock"
}

fetch_locked() {
    local started=$SECONDS pkgs
    if ! pkgs="$(package_list)"; then
        apt_update_or_die "apt cannot resolve ${PACKAGES[*]} ($pkgs)"
        pkgs="$(package_list)" || die "apt cannot resolve ${PACKAGES[*]} after apt-get update: $pkgs"
    fi
    # shellcheck disable=SC2086  # one package name per word
    set -- $pkgs
    log "downloading $# packages into $DEBS"
    rm -rf "$DEBS.tmp"
    mkdir -p "$DEBS.tmp"
    if ! (cd "$DEBS.tmp" && apt-get download -q "$@" >download.log 2>&1); then
        if is_root; then
            apt_update_or_die "apt-get download failed ($(tail -n 1 "$DEBS.tmp/download.log"))"
            (cd "$DEBS.tmp" && apt-get download -q "$@" >download.log 2>&1) \
                || die "apt-get download failed: $(tail -n 3 "$DEBS.tmp/download.log")"
        else
            apt_update_or_die "apt-get download failed: $(tail -n 3 "$DEBS.tmp/download.log")"
        fi
    fi
    rm -rf "$DEBS" "$ROOT.tmp"
    mv "$DEBS.tmp" "$DEBS"
    mkdir -p "$ROOT.tmp"
    local deb
    for deb in "$DEBS"/*.deb; do
        dpkg-deb -x "$deb" "$ROOT.tmp"
    done
    rm -rf "$ROOT"
    mv "$ROOT.tmp" "$ROOT"
    [[ -x "$SERVER_BIN" ]] || die "no $SERVER_BIN in the downloaded packages"
    local missing
    missing="$(LD_LIBRARY_PATH="$(lib_path)" ldd "$SERVER_BIN" "$CLIENT_BIN" | grep 'not found' \
        | sort -u || true)"
    [[ -z "$missing" ]] || die "libraries still missing after unpacking:"$'\n'"$missing"
    touch "$STAMP"
    log "fetched and unpacked into $ROOT in $((SECONDS - started)) s" \
        "($(du -sh "$DEBS" | cut -f1) of packages)"
}

write_config() {
    local dir="$1" port="$2"
    cat >"$dir/config.xml" <<EOF
<?xml version="1.0"?>
<!-- Written by deploy/clickhouse/clickhouse18.sh: a throwaway ClickHouse 18.16 for tests. -->
<yandex>
    <logger>
        <level>information</level>
        <log>$dir/log/clickhouse-server.log</log>
        <errorlog>$dir/log/clickhouse-server.err.log</errorlog>
        <size>10M</size>
        <count>1</count>
    </logger>
    <!-- Native protocol only: no http_port, no interserver port. -->
    <tcp_port>$port</tcp_port>
    <listen_host>127.0.0.1</listen_host>
    <path>$dir/data/</path>
    <tmp_path>$dir/tmp/</tmp_path>
    <user_files_path>$dir/user_files/</user_files_path>
    <format_schema_path>$dir/format_schemas/</format_schema_path>
    <users_config>$dir/users.xml</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <timezone>UTC</timezone>
    <!-- 18.16 has no max_server_memory_usage: keep caches small, cap queries in users.xml. -->
    <mark_cache_size>67108864</mark_cache_size>
    <uncompressed_cache_size>67108864</uncompressed_cache_size>
    <max_concurrent_queries>64</max_concurrent_queries>
    <max_connections>256</max_connections>
    <mlock_executable>false</mlock_executable>
</yandex>
EOF
    cat >"$dir/users.xml" <<'EOF'
<?xml version="1.0"?>
<yandex>
    <profiles>
        <default>
            <max_memory_usage>2000000000</max_memory_usage>
        </default>
    </profiles>
    <users>
        <default>
            <password></password>
            <networks>
                <ip>127.0.0.1</ip>
                <ip>::1</ip>
            </networks>
            <profile>default</profile>
            <quota>default</quota>
        </default>
    </users>
    <quotas>
        <default></default>
    </quotas>
</yandex>
EOF
}

# The pid in DIR's pid file if that process is our server for DIR, else nothing.
running_pid() {
    local dir="$1" pid
    [[ -f "$dir/clickhouse-server.pid" ]] || return 0
    pid="$(cat "$dir/clickhouse-server.pid")"
    if [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null \
        && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$dir/config.xml"; then
        echo "$pid"
    fi
}

cmd_up() {
    local port="" dir="" timeout=60 owner=""
    while [[ $# -gt 0 ]]; do
        case "$1" in
            --port) port="${2:-}"; shift 2 ;;
            --dir) dir="${2:-}"; shift 2 ;;
            --timeout) timeout="${2:-}"; shift 2 ;;
            --owner-pid) owner="${2:-}"; shift 2 ;;
            *) usage ;;
        esac
    done
    [[ "$port" =~ ^[0-9]+$ && -n "$dir" && "$timeout" =~ ^[0-9]+$ ]] || usage
    [[ -z "$owner" || "$owner" =~ ^[0-9]+$ ]] || usage
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        die "port $port on 127.0.0.1 is already in use"
    fi
    cmd_fetch
    mkdir -p "$dir"
    dir="$(cd "$dir" && pwd)"
    [[ -z "$(running_pid "$dir")" ]] || die "a server already runs in $dir (pid $(running_pid "$dir"))"
    mkdir -p "$dir/data" "$dir/tmp" "$dir/user_files" "$dir/format_schemas" "$dir/log"
    write_config "$dir" "$port"
    local started=$SECONDS pid libs
    libs="$(lib_path)"
    # setsid: the server outlives this script and ignores the caller's terminal signals.
    LD_LIBRARY_PATH="$libs" setsid "$SERVER_BIN" --config-file="$dir/config.xml" \
        </dev/null >"$dir/log/stdout.log" 2>&1 &
    pid=$!
    echo "$pid" >"$dir/clickhouse-server.pid"
    if [[ -n "$owner" ]]; then
        # Stop the server once its owner (e.g. a pytest process) is gone, however it ended.
        (
            while kill -0 "$owner" 2>/dev/null && kill -0 "$pid" 2>/dev/null; do sleep 1; done
            kill "$pid" 2>/dev/null || true
        ) </dev/null >/dev/null 2>&1 &
        echo "$!" >"$dir/watchdog.pid"
    fi
    while true; do
        if ! kill -0 "$pid" 2>/dev/null; then
            rm -f "$dir/clickhouse-server.pid"
            die "server exited during startup; last log lines:"$'\n'"$(tail -n 20 \
                "$dir/log/clickhouse-server.err.log" "$dir/log/stdout.log" 2>/dev/null)"
        fi
        if LD_LIBRARY_PATH="$libs" "$CLIENT_BIN" --host 127.0.0.1 --port "$port" \
            --query 'SELECT 1' >/dev/null 2>&1 && kill -0 "$pid" 2>/dev/null; then
            break
        fi
        if ((SECONDS - started >= timeout)); then
            kill "$pid" 2>/dev/null || true
            die "server not answering SELECT 1 on 127.0.0.1:$port after $timeout s; see $dir/log"
        fi
        sleep 0.1
    done
    log "ClickHouse $(LD_LIBRARY_PATH="$libs" "$CLIENT_BIN" --port "$port" \
        --query 'SELECT version()') up on 127.0.0.1:$port (pid $pid, dir $dir)" \
        "in $((SECONDS - started)) s"
}

cmd_down() {
    local dir=""
    while [[ $# -gt 0 ]]; do
        case "$1" in
            --dir) dir="${2:-}"; shift 2 ;;
            *) usage ;;
        esac
    done
    [[ -n "$dir" ]] || usage
    [[ -d "$dir" ]] || return 0
    dir="$(cd "$dir" && pwd)"
    local pid waited=0
    pid="$(running_pid "$dir")"
    if [[ -n "$pid" ]]; then
        kill "$pid" 2>/dev/null || true
        while kill -0 "$pid" 2>/dev/null; do
            if ((waited >= 300)); then
                log "server $pid still running after 30 s: killing it"
                kill -KILL "$pid" 2>/dev/null || true
                break
            fi
            sleep 0.1
            waited=$((waited + 1))
        done
        log "server $pid in $dir stopped"
    fi
    if [[ -f "$dir/watchdog.pid" ]]; then
        local watchdog
        watchdog="$(cat "$dir/watchdog.pid")"
        [[ ! "$watchdog" =~ ^[0-9]+$ ]] || kill "$watchdog" 2>/dev/null || true
    fi
    rm -f "$dir/clickhouse-server.pid" "$dir/watchdog.pid"
}

cmd_client() {
    cmd_fetch
    LD_LIBRARY_PATH="$(lib_path)" exec "$CLIENT_BIN" --host 127.0.0.1 "$@"
}

main() {
    [[ $# -ge 1 ]] || usage
    local cmd="$1"
    shift
    case "$cmd" in
        fetch) cmd_fetch "$@" ;;
        up) cmd_up "$@" ;;
        down) cmd_down "$@" ;;
        client) cmd_client "$@" ;;
        -h | --help | help) usage 0 ;;
        *) usage ;;
    esac
}

main "$@"
