#!/usr/bin/env bash
# Local service stack without Docker: a single-node KRaft Kafka run straight from
# Maven jars, and Redis. State lives in $REPO/.stack (git-ignored).
#
#   deploy/stack.sh up            start what is not running, wait until both really answer
#   deploy/stack.sh down [--wipe] stop what we started (--wipe: also delete Kafka/Redis data)
#   deploy/stack.sh status        one line per service; exit 0 only if both answer
#
# Env: PROFILE_STREAM_KAFKA_PORT (9092), PROFILE_STREAM_KAFKA_CONTROLLER_PORT (port+1),
#      PROFILE_STREAM_REDIS_PORT (6379), STACK_WAIT_S (90).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STACK="$REPO/.stack"
KDIR="$STACK/kafka"
RDIR="$STACK/redis"
POM="$REPO/deploy/kafka/pom.xml"
PY="$REPO/.venv/bin/python"
KAFKA_PORT="${PROFILE_STREAM_KAFKA_PORT:-9092}"
CONTROLLER_PORT="${PROFILE_STREAM_KAFKA_CONTROLLER_PORT:-$((KAFKA_PORT + 1))}"
REDIS_PORT="${PROFILE_STREAM_REDIS_PORT:-6379}"
WAIT_S="${STACK_WAIT_S:-90}"
# Small heap: the machine has 2 cores and the broker shares it with tests.
KAFKA_JAVA=(java -Xmx512m -Xms256m -Djava.awt.headless=true
  "-Dlog4j.configuration=file:$KDIR/log4j.properties" "-Dkafka.logs.dir=$KDIR" -cp "$KDIR/lib/*")
# The pom is the single place the version is pinned.
KAFKA_VERSION="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$POM")"

say() { echo "[stack] $*"; }
fail() { # fail SERVICE LOGFILE MESSAGE...
  local svc=$1 log=$2; shift 2
  echo "[stack] ERROR: $svc: $*" >&2
  if [[ -s $log ]]; then
    echo "[stack] last 30 lines of $log:" >&2
    tail -n 30 "$log" >&2
  fi
  exit 1
}

apt_install() {
  say "installing $* with apt-get"
  local out
  out=$(apt-get update -qq 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" 2>&1) ||
    { echo "$out" >&2; fail apt-get /dev/null "could not install $*"; }
}

# Our daemons end up as children of PID 1, which here reaps them only after a moment:
# a zombie still passes `kill -0`, so look at the process state instead.
alive() { local st; st=$(ps -o stat= -p "$1" 2>/dev/null) && [[ $st != Z* ]]; }
# ...and give PID 1 a moment to reap it, so `pgrep` right after `down` shows nothing.
wait_reaped() { for _ in $(seq 50); do [[ -e /proc/$1 ]] || return 0; sleep 0.2; done; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# ---------------------------------------------------------------- kafka

# The pid file alone can go stale or be lost; the exact config path on the command
# line identifies our broker and nobody else's.
kafka_pid() {
  local p
  if [[ -s $KDIR/pid ]] && p=$(<"$KDIR/pid") && grep -qa kafka.Kafka "/proc/$p/cmdline" 2>/dev/null; then
    echo "$p"
  else
    pgrep -f "kafka.Kafka $KDIR/server.properties" | head -n1 || true
  fi
}

kafka_check() { # kafka_check TIMEOUT_S: one produce/consume round trip
  port_open "$KAFKA_PORT" || { echo "port $KAFKA_PORT closed"; return 1; }
  "$PY" "$REPO/deploy/roundtrip.py" --bootstrap "127.0.0.1:$KAFKA_PORT" \
    --timeout "$1" --kafka-version "$KAFKA_VERSION" 2>&1
}

kafka_jars() {
  local stamp
  stamp="kafka $KAFKA_VERSION pom $(sha256sum "$POM" | cut -c1-16)"
  if [[ -f $KDIR/lib/.stamp && "$(<"$KDIR/lib/.stamp")" == "$stamp" ]]; then
    say "kafka jars: reusing $KDIR/lib ($stamp)"
    return
  fi
  command -v mvn >/dev/null || apt_install maven
  say "kafka jars: resolving kafka $KAFKA_VERSION with Maven into $KDIR/lib (cached in ~/.m2)"
  rm -rf "$KDIR/lib.tmp"
  local out
  # No ANSI colour codes in the output we may have to show.
  if ! out=$(mvn -B -q -Dstyle.color=never -f "$POM" dependency:copy-dependencies -DoutputDirectory="$KDIR/lib.tmp" 2>&1); then
    echo "$out" >&2
    fail kafka /dev/null "Maven could not fetch the Kafka jars (Maven's error above)"
  fi
  rm -rf "$KDIR/lib"
  mv "$KDIR/lib.tmp" "$KDIR/lib"
  echo "$stamp" >"$KDIR/lib/.stamp"
}

kafka_config() {
  cat >"$KDIR/server.properties" <<EOF
# Written by deploy/stack.sh on every 'up'; edit the script, not this file.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$KDIR/data
num.partitions=8
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=true
EOF
  # Only a file appender: stdout/stderr of the JVM also go to kafka.log (crashes, bad classpath).
  cat >"$KDIR/log4j.properties" <<EOF
log4j.rootLogger=INFO, file
log4j.appender.file=org.apache.log4j.RollingFileAppender
log4j.appender.file.File=$KDIR/kafka.log
log4j.appender.file.MaxFileSize=100MB
log4j.appender.file.MaxBackupIndex=1
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
# Per-partition state changes and request logs drown everything else at INFO.
log4j.logger.state.change.logger=WARN
log4j.logger.kafka.request.logger=WARN
EOF
}

kafka_wait() {
  local deadline=$((SECONDS + WAIT_S)) out
  until out=$(kafka_check 10); do
    [[ -n $(kafka_pid) ]] || fail kafka "$KDIR/kafka.log" "broker process exited during start"
    ((SECONDS < deadline)) || fail kafka "$KDIR/kafka.log" \
      "no produce/consume round trip within ${WAIT_S}s (last: $out); still running, 'deploy/stack.sh down' stops it"
    sleep 1
  done
  say "kafka: $out"
}

kafka_up() {
  local pid out version
  pid=$(kafka_pid)
  if [[ -n $pid ]]; then
    if out=$(kafka_check 10); then
      say "kafka already running (pid $pid) and healthy on 127.0.0.1:$KAFKA_PORT; nothing to do"
      return
    fi
    say "kafka running (pid $pid) but not answering yet; waiting up to ${WAIT_S}s"
  elif port_open "$KAFKA_PORT"; then
    out=$(kafka_check 10) || fail kafka /dev/null "127.0.0.1:$KAFKA_PORT is taken by a process we did not start and it is not a working Kafka: $out"
    say "kafka: something we did not start already works on 127.0.0.1:$KAFKA_PORT; using it ($out)"
    return
  else
    command -v java >/dev/null || apt_install openjdk-17-jre-headless
    mkdir -p "$KDIR/data"
    kafka_jars
    kafka_config
    if [[ ! -f $KDIR/data/meta.properties ]]; then
      local cid
      cid=$("${KAFKA_JAVA[@]}" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n1)
      say "kafka: formatting KRaft storage in $KDIR/data (cluster id $cid)"
      out=$("${KAFKA_JAVA[@]}" kafka.tools.StorageTool format -t "$cid" -c "$KDIR/server.properties" 2>&1) ||
        { echo "$out" >&2; fail kafka /dev/null "storage format failed"; }
    fi
    mv -f "$KDIR/kafka.log" "$KDIR/kafka.log.prev" 2>/dev/null || true
    rm -f "$KDIR/pid"
    say "kafka: starting $KAFKA_VERSION (KRaft broker+controller) on 127.0.0.1:$KAFKA_PORT, controller :$CONTROLLER_PORT, log $KDIR/kafka.log"
    # setsid: own session, so Ctrl-C in a terminal or a job runner killing our process
    # group does not take the broker down with the script.
    # nohup and setsid exec in place (no fork: a background job of a script is not a
    # process-group leader), so $! is the JVM itself.
    nohup setsid "${KAFKA_JAVA[@]}" kafka.Kafka "$KDIR/server.properties" \
      >>"$KDIR/kafka.log" 2>&1 </dev/null 9>&- &
    echo $! >"$KDIR/pid"
  fi
  kafka_wait
  # The broker logs its own version at start; prefer it over the pin.
  version=$(grep -ho 'Kafka version: [^ ]*' "$KDIR/kafka.log" 2>/dev/null | tail -n1 | cut -d' ' -f3)
  say "kafka ${version:-$KAFKA_VERSION} up on 127.0.0.1:$KAFKA_PORT (KRaft), pid $(kafka_pid)"
}

kafka_down() {
  local pid
  pid=$(kafka_pid)
  if [[ -z $pid ]]; then
    say "kafka: not running"
  else
    say "kafka: stopping pid $pid (SIGTERM, up to 30s)"
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 60); do alive "$pid" || break; sleep 0.5; done
    if alive "$pid"; then
      say "kafka: still alive after 30s, SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      while alive "$pid"; do sleep 0.2; done
    fi
    wait_reaped "$pid"
    say "kafka: stopped"
  fi
  rm -f "$KDIR/pid"
}

# ---------------------------------------------------------------- redis

redis_ping() { # plain RESP over bash's /dev/tcp: works before redis-cli is installed
  (exec 3<>"/dev/tcp/127.0.0.1/$REDIS_PORT" && printf 'PING\r\n' >&3 &&
    read -r -t 2 line <&3 && [[ $line == +PONG* ]]) 2>/dev/null
}

# The pid file exists only for a Redis we started; anyone else's is left alone.
redis_pid() {
  local p
  if [[ -s $RDIR/pid ]] && p=$(<"$RDIR/pid") && grep -qa redis-server "/proc/$p/cmdline" 2>/dev/null; then
    echo "$p"
  fi
}

redis_up() {
  local pid
  pid=$(redis_pid)
  if [[ -n $pid ]] && redis_ping; then
    say "redis already running (pid $pid) and answers PING on 127.0.0.1:$REDIS_PORT; nothing to do"
    return
  elif [[ -z $pid ]] && redis_ping; then
    say "redis: something we did not start already answers PING on 127.0.0.1:$REDIS_PORT; using it (down will leave it)"
    return
  elif [[ -z $pid ]]; then
    rm -f "$RDIR/pid"
    command -v redis-server >/dev/null || apt_install redis-server
    redis_ping && { say "redis: answering on 127.0.0.1:$REDIS_PORT after install; using it (not ours)"; return; }
    mkdir -p "$RDIR/data"
    mv -f "$RDIR/redis.log" "$RDIR/redis.log.prev" 2>/dev/null || true
    say "redis: starting $(redis-server --version | grep -o 'v=[^ ]*') on 127.0.0.1:$REDIS_PORT (no persistence), log $RDIR/redis.log"
    # A fresh session for the same reason as Kafka; redis daemonizes itself afterwards.
    setsid redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --daemonize yes \
      --dir "$RDIR/data" --logfile "$RDIR/redis.log" --pidfile "$RDIR/pid" \
      --save "" --appendonly no </dev/null 9>&- ||
      fail redis "$RDIR/redis.log" "redis-server did not start"
  fi
  local deadline=$((SECONDS + 15))
  until redis_ping; do
    ((SECONDS < deadline)) || fail redis "$RDIR/redis.log" "no PONG on 127.0.0.1:$REDIS_PORT within 15s"
    sleep 0.2
  done
  say "redis up on 127.0.0.1:$REDIS_PORT, pid $(redis_pid)"
}

redis_down() {
  local pid
  pid=$(redis_pid)
  if [[ -z $pid ]]; then
    say "redis: none of ours running$(redis_ping && echo " (one we did not start answers on :$REDIS_PORT; left alone)")"
  else
    say "redis: stopping pid $pid"
    kill -TERM "$pid" 2>/dev/null || true # --save "" makes this a shutdown without saving
    for _ in $(seq 50); do alive "$pid" || break; sleep 0.2; done
    if alive "$pid"; then say "redis: SIGKILL"; kill -KILL "$pid" 2>/dev/null || true; fi
    wait_reaped "$pid"
    say "redis: stopped"
  fi
  rm -f "$RDIR/pid"
}

# ---------------------------------------------------------------- commands

cmd_up() {
  [[ -n $KAFKA_VERSION ]] || fail stack /dev/null "no <kafka.version> in $POM"
  "$PY" -c 'import aiokafka' 2>/dev/null ||
    fail stack /dev/null "$PY cannot import aiokafka (needed for the Kafka health check); run 'make install' first"
  redis_up
  kafka_up
}

cmd_down() {
  kafka_down
  redis_down
  if [[ ${1:-} == --wipe ]]; then
    say "wiping $KDIR/data and $RDIR/data (jars kept)"
    rm -rf "$KDIR/data" "$RDIR/data"
  fi
}

cmd_status() {
  local pid state rc=0
  pid=$(kafka_pid); state=${pid:+running, pid $pid}
  if kafka_check 5 >/dev/null; then
    say "kafka: ${state:-running (not ours)}, 127.0.0.1:$KAFKA_PORT, answers (round trip ok)"
  else
    say "kafka: ${state:-stopped}, 127.0.0.1:$KAFKA_PORT, does not answer"; rc=3
  fi
  pid=$(redis_pid); state=${pid:+running, pid $pid}
  if redis_ping; then
    say "redis: ${state:-running (not ours)}, 127.0.0.1:$REDIS_PORT, answers PING"
  else
    say "redis: ${state:-stopped}, 127.0.0.1:$REDIS_PORT, does not answer"; rc=3
  fi
  return $rc
}

mkdir -p "$KDIR" "$RDIR"
# Two 'up'/'down' at once (e.g. parallel make targets) must not race. Every service
# is started with fd 9 closed (`9>&-`): a daemon inheriting it would hold the lock forever.
if [[ ${1:-} == up || ${1:-} == down ]]; then
  exec 9>"$STACK/lock"
  flock -w 180 9 || fail stack /dev/null "another deploy/stack.sh up/down holds $STACK/lock"
fi

case "${1:-}" in
  up) cmd_up ;;
  down) cmd_down "${2:-}" ;;
  status) cmd_status ;;
  *) echo "usage: $0 up | down [--wipe] | status" >&2; exit 2 ;;
esac
