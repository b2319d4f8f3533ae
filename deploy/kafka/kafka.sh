#!/usr/bin/env bash
# A local, single-node Apache Kafka (KRaft: broker and controller in one JVM) for development
# and the test suite. The jars come from Maven Central through deploy/kafka/pom.xml; no Docker.
#
#   deploy/kafka/kafka.sh fetch                        resolve the jars into deploy/kafka/lib/
#   deploy/kafka/kafka.sh up [--port P] [--dir D] [--owner-pid PID]
#                                                      format (first time) and start; waits
#                                                      (--owner-pid: stop it when PID exits)
#   deploy/kafka/kafka.sh down [--dir D]               stop (SIGTERM, SIGKILL after 30 s)
#   deploy/kafka/kafka.sh status [--dir D]             exit 0 when running, 3 when not
#
# Defaults: port $AIRIS_KAFKA_PORT or 9092, dir var/kafka (under the repository root).
# Environment: JAVA_HOME (java from $JAVA_HOME/bin, else `java` on PATH);
# AIRIS_KAFKA_HEAP (default -Xmx512m -Xms64m); AIRIS_KAFKA_JVM_OPTS (replaces the fast-start
# JIT/GC flags); AIRIS_KAFKA_START_TIMEOUT (seconds, default 60); AIRIS_PYTHON (interpreter
# with confluent_kafka for the readiness check, default .venv/bin/python).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
POM=$HERE/pom.xml
LIB=$HERE/lib
STAMP=$LIB/.pom.sha256

die() { echo "kafka.sh: $*" >&2; exit 1; }
log() { echo "kafka.sh: $*" >&2; }

java_bin() {
  if [ -n "${JAVA_HOME:-}" ]; then
    [ -x "$JAVA_HOME/bin/java" ] || die "JAVA_HOME=$JAVA_HOME has no bin/java"
    echo "$JAVA_HOME/bin/java"
  else
    command -v java >/dev/null 2>&1 || die "java not found: install Java 17+ or set JAVA_HOME"
    echo java
  fi
}

# ---------------------------------------------------------------------------------- fetch
fetched() { [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$(sha256sum "$POM" | cut -d' ' -f1)" ]; }

fetch() {
  fetched && return 0
  command -v mvn >/dev/null 2>&1 || die "mvn not found: Maven resolves the Kafka jars (apt install maven)"
  # Lock, Maven log and staging directory live in var/ (git-ignored), next to nothing tracked.
  local work=$REPO/var/kafka-fetch
  mkdir -p "$work"
  # Two callers at once (a test run and a developer) must not interleave the copy.
  exec 9>"$work/lock"
  command -v flock >/dev/null 2>&1 && flock 9
  if fetched; then exec 9>&-; return 0; fi
  local tmp=$work/lib.$$
  rm -rf "$tmp"
  log "resolving the Kafka jars with Maven (once per pom.xml change)"
  local out=$work/mvn.log
  if ! mvn -B -Dstyle.color=never -f "$POM" dependency:copy-dependencies \
      -DoutputDirectory="$tmp" -DincludeScope=runtime > "$out" 2>&1; then
    tail -n 40 "$out" >&2
    rm -rf "$tmp"
    die "mvn dependency:copy-dependencies failed (full output: $out)"
  fi
  rm -f "$out"
  sha256sum "$POM" | cut -d' ' -f1 > "$tmp/.pom.sha256"
  rm -rf "$LIB"
  mv "$tmp" "$LIB"
  exec 9>&-
  log "$(find "$LIB" -name '*.jar' | wc -l) jars in $LIB"
}

# ------------------------------------------------------------------------------- helpers
PORT=${AIRIS_KAFKA_PORT:-9092}
DIR=$REPO/var/kafka
OWNER=

parse_args() {
  while [ $# -gt 0 ]; do
    case "$1" in
      --port) [ $# -ge 2 ] || die "--port needs a value"; PORT=$2; shift 2 ;;
      --port=*) PORT=${1#--port=}; shift ;;
      --dir) [ $# -ge 2 ] || die "--dir needs a value"; DIR=$2; shift 2 ;;
      --dir=*) DIR=${1#--dir=}; shift ;;
      --owner-pid) [ $# -ge 2 ] || die "--owner-pid needs a value"; OWNER=$2; shift 2 ;;
      --owner-pid=*) OWNER=${1#--owner-pid=}; shift ;;
      *) die "unknown argument: $1" ;;
    esac
  done
  [ -z "$OWNER" ] || [[ "$OWNER" =~ ^[0-9]+$ ]] || die "bad owner pid: $OWNER"
  [[ "$PORT" =~ ^[0-9]+$ ]] && [ "$PORT" -ge 1 ] && [ "$PORT" -le 65535 ] || die "bad port: $PORT"
  [ "$CMD" = up ] && mkdir -p "$DIR"
  if [ -d "$DIR" ]; then DIR=$(cd "$DIR" && pwd); else DIR=$(realpath -m "$DIR"); fi
  PIDFILE=$DIR/kafka.pid
  CONF=$DIR/server.properties
  LOGFILE=$DIR/server.log
}

# Is something accepting TCP connections on 127.0.0.1:$1?
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# The pid in the pid file when that process is alive and is our broker for $DIR.
running_pid() {
  [ -f "$PIDFILE" ] || return 1
  local pid; pid=$(cat "$PIDFILE" 2>/dev/null) || return 1
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  # Guard against a recycled pid: the command line must name this directory's config.
  if [ -r "/proc/$pid/cmdline" ]; then
    tr '\0' ' ' < "/proc/$pid/cmdline" | grep -qF "$CONF" || return 1
  fi
  echo "$pid"
}

free_port() {
  local py; py=$(command -v python3 || true)
  if [ -n "$py" ]; then
    "$py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
    return
  fi
  local p
  for _ in $(seq 100); do
    p=$((20000 + RANDOM % 40000))
    listening "$p" || { echo "$p"; return; }
  done
  die "no free port found"
}

python_with_kafka() {
  local py
  for py in "${AIRIS_PYTHON:-}" "$REPO/.venv/bin/python" python3; do
    [ -n "$py" ] || continue
    command -v "$py" >/dev/null 2>&1 || continue
    "$py" -c 'import confluent_kafka' 2>/dev/null && { echo "$py"; return 0; }
  done
  return 1
}

# Does the broker answer a metadata request? (confluent_kafka when there is a Python with it;
# otherwise the broker's own "started" line in its log.)
answers_metadata() {
  local py
  if py=$(python_with_kafka); then
    "$py" - "127.0.0.1:$PORT" <<'EOF' 2>/dev/null
import sys

from confluent_kafka.admin import AdminClient

admin = AdminClient({"bootstrap.servers": sys.argv[1], "log_level": 0})
md = admin.list_topics(timeout=2)
sys.exit(0 if md.brokers else 1)
EOF
  else
    grep -q "Kafka Server started" "$LOGFILE"
  fi
}

# SIGTERM, up to 30 s for a clean shutdown, then SIGKILL.
stop_pid() {
  local pid=$1
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 300); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  log "no exit 30 s after SIGTERM; sending SIGKILL to $pid"
  kill -KILL "$pid" 2>/dev/null || true
  sleep 0.2
}

write_config() {
  local cport=$1
  cat > "$CONF" <<EOF
# Written by deploy/kafka/kafka.sh on every \`up\`; edits are lost.
process.roles=broker,controller
node.id=1
listeners=PLAINTEXT://127.0.0.1:$PORT,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
controller.quorum.voters=1@127.0.0.1:$cport
log.dirs=$DIR/data

# One node: every internal topic has one replica.
num.partitions=1
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0

# Topics are created explicitly (AdminClient, the tests' kafka_topic fixture): a typo in a
# topic name fails instead of silently creating a new topic.
auto.create.topics.enable=false
delete.topic.enable=true

# Large-message tests: 16 MiB records (clients must raise message.max.bytes /
# fetch.max.bytes too).
message.max.bytes=16777216
replica.fetch.max.bytes=16777216
socket.request.max.bytes=104857600

# Development data: small segments, one day of retention.
log.retention.hours=24
log.segment.bytes=67108864
num.network.threads=2
num.io.threads=4
EOF
}

write_log_config() {
  cat > "$DIR/log4j2.properties" <<'EOF'
# Broker logging: everything to stdout, which kafka.sh appends to server.log.
status = warn
# Kafka's own shutdown hook still logs after the JVM starts exiting; keep log4j alive for it.
shutdownHook = disable
appender.out.type = Console
appender.out.name = OUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.out.ref = OUT
logger.kafka.name = kafka
logger.kafka.level = INFO
logger.request.name = kafka.request.logger
logger.request.level = WARN
logger.controller.name = org.apache.kafka.controller
logger.controller.level = INFO
logger.statechange.name = state.change.logger
logger.statechange.level = WARN
EOF
}

# ---------------------------------------------------------------------------------- up
up() {
  parse_args "$@"
  local java pid
  java=$(java_bin)

  if pid=$(running_pid); then
    local was; was=$(cat "$DIR/port" 2>/dev/null || echo "?")
    [ "$was" = "$PORT" ] || die "a broker from $DIR is already running on port $was (pid $pid)"
    log "already running (pid $pid)"
    echo "bootstrap=127.0.0.1:$PORT"
    return 0
  fi
  rm -f "$PIDFILE"
  listening "$PORT" && die "port $PORT is already in use (another broker? try --port)"

  fetch

  # The controller port is kept across restarts of the same directory when it is still free.
  local cport
  cport=$(cat "$DIR/controller.port" 2>/dev/null || true)
  if [ -z "$cport" ] || [ "$cport" = "$PORT" ] || listening "$cport"; then
    cport=$(free_port)
    while [ "$cport" = "$PORT" ]; do cport=$(free_port); done
  fi
  echo "$cport" > "$DIR/controller.port"
  echo "$PORT" > "$DIR/port"
  write_config "$cport"
  write_log_config

  local heap=${AIRIS_KAFKA_HEAP:--Xmx512m -Xms64m}
  # Fast start: C1 only and the serial collector; a dev broker never needs C2 peak throughput.
  local jvm=${AIRIS_KAFKA_JVM_OPTS:--XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Xshare:auto}
  local -a common
  # shellcheck disable=SC2206  # word splitting of the option strings is intended
  common=($heap $jvm -Djava.awt.headless=true
    "-Dlog4j2.configurationFile=$DIR/log4j2.properties" -cp "$LIB/*")

  if [ ! -f "$DIR/data/meta.properties" ]; then
    # Kafka's Uuid: 16 random bytes, base64url without padding; never starting with '-'.
    local cid=-
    while [ "${cid:0:1}" = "-" ]; do
      cid=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')
    done
    log "formatting $DIR/data (cluster id $cid)"
    "$java" "${common[@]}" kafka.tools.StorageTool format -t "$cid" -c "$CONF" \
      >> "$LOGFILE" 2>&1 || { tail -n 30 "$LOGFILE" >&2; die "storage format failed"; }
  fi

  local started; started=$(date +%s%N)
  echo "---- $(date -Is) start on 127.0.0.1:$PORT (controller $cport)" >> "$LOGFILE"
  # setsid: the broker outlives the shell (and the test runner's process group) that started it.
  setsid "$java" "${common[@]}" kafka.Kafka "$CONF" </dev/null >> "$LOGFILE" 2>&1 &
  pid=$!
  echo "$pid" > "$PIDFILE"

  local timeout=${AIRIS_KAFKA_START_TIMEOUT:-60} deadline
  deadline=$(( $(date +%s) + timeout ))
  while :; do
    if ! kill -0 "$pid" 2>/dev/null; then
      rm -f "$PIDFILE"
      tail -n 40 "$LOGFILE" >&2
      die "the broker exited during startup; log: $LOGFILE"
    fi
    if listening "$PORT" && answers_metadata; then break; fi
    if [ "$(date +%s)" -ge "$deadline" ]; then
      tail -n 40 "$LOGFILE" >&2
      stop_pid "$pid"
      rm -f "$PIDFILE"
      die "the broker did not answer on 127.0.0.1:$PORT within ${timeout}s; log: $LOGFILE"
    fi
    sleep 0.2
  done
  if [ -n "$OWNER" ]; then
    # Watchdog: when the owner (a test run) dies without calling `down`, stop the broker.
    setsid bash -c 'while kill -0 "$1" 2>/dev/null && kill -0 "$2" 2>/dev/null; do sleep 2; done
      if kill -0 "$2" 2>/dev/null; then echo "---- owner $1 gone: stopping"; exec bash "$3" down --dir "$4"; fi' \
      _ "$OWNER" "$pid" "$HERE/kafka.sh" "$DIR" </dev/null >> "$LOGFILE" 2>&1 &
  fi
  local ms=$(( ($(date +%s%N) - started) / 1000000 ))
  log "up in $((ms / 1000)).$(printf '%03d' $((ms % 1000)))s (pid $pid, log $LOGFILE)"
  echo "bootstrap=127.0.0.1:$PORT"
}

# -------------------------------------------------------------------------------- down
down() {
  parse_args "$@"
  local pid
  if ! pid=$(running_pid); then
    rm -f "$PIDFILE"
    log "not running ($DIR)"
    return 0
  fi
  stop_pid "$pid"
  rm -f "$PIDFILE"
  log "stopped (pid $pid)"
}

# ------------------------------------------------------------------------------ status
status() {
  parse_args "$@"
  local pid
  if pid=$(running_pid); then
    echo "running pid=$pid bootstrap=127.0.0.1:$(cat "$DIR/port" 2>/dev/null || echo '?') dir=$DIR"
  else
    echo "stopped dir=$DIR"
    return 3
  fi
}

CMD=${1:-}
[ $# -gt 0 ] && shift
case "$CMD" in
  fetch) [ $# -eq 0 ] || die "fetch takes no arguments"; fetch ;;
  up) up "$@" ;;
  down) down "$@" ;;
  status) status "$@" ;;
  *) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
