#!/usr/bin/env bash
# Local service stack without Docker: KRaft Kafka run straight from Maven jars (one
# broker, or three), and Redis. State lives in $REPO/.stack (git-ignored), or in STACK_DIR.
#
#   deploy/stack.sh up            start what is not running, wait until it all really answers
#   deploy/stack.sh down [--wipe] stop what we started (--wipe: also delete Kafka/Redis data)
#   deploy/stack.sh status        one line per service and broker; exit 0 only if all answer
#   deploy/stack.sh kill-broker N   SIGKILL broker N (1..3) of the running stack
#   deploy/stack.sh start-broker N  start broker N again, wait until the cluster has it back
#   deploy/stack.sh leader TOPIC [PARTITION]  node id(s) leading the topic's partitions
#   deploy/stack.sh config        print the broker configs 'up' would write; starts nothing
#
# Env: PROFILE_STREAM_KAFKA_PORT (9092), PROFILE_STREAM_KAFKA_CONTROLLER_PORT (port+1),
#      PROFILE_STREAM_KAFKA_SASL_SSL_PORT (port+2; SSL with client certificate on +1 from
#      it, SASL_PLAINTEXT on +2), PROFILE_STREAM_REDIS_PORT (6379), STACK_WAIT_S (90; 180 for 3),
#      STACK_BROKERS (1 or 3), STACK_SECURE (1: add the TLS/SASL listeners; SASL takes
#      SCRAM-SHA-256/512 and PLAIN with one user, and OAUTHBEARER with unsigned test JWTs),
#      STACK_KAFKA_VERSION (the pom's <kafka.version>, 3.9.1), STACK_PYTHON (the Python with
#      aiokafka for the health check; $REPO/.venv/bin/python), STACK_DIR (the state dir,
#      $REPO/.stack: another dir and other ports make a second stack beside the first),
#      STACK_REDIS (1; 0: Kafka only, Redis neither started, stopped nor checked).
# Broker N of three listens on broker 1's ports + 10*(N-1). A knob left unset accepts
# the stack already running; one that is set and differs from it is refused.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# A second stack (the three-broker fault tests) runs beside `make up`'s in a dir of its own.
STACK="$(realpath -m -- "${STACK_DIR:-$REPO/.stack}")"
KDIR="$STACK/kafka"
RDIR="$STACK/redis"
TLS="$KDIR/tls"
POM="$REPO/deploy/kafka/pom.xml"
PY="${STACK_PYTHON:-$REPO/.venv/bin/python}"  # STACK_PYTHON: another venv's (a git worktree)
KAFKA_PORT="${PROFILE_STREAM_KAFKA_PORT:-9092}"
CONTROLLER_PORT="${PROFILE_STREAM_KAFKA_CONTROLLER_PORT:-$((KAFKA_PORT + 1))}"
SASL_SSL_PORT="${PROFILE_STREAM_KAFKA_SASL_SSL_PORT:-$((KAFKA_PORT + 2))}"
REDIS_PORT="${PROFILE_STREAM_REDIS_PORT:-6379}"
NODE_STEP=10                   # broker N's ports: broker 1's + NODE_STEP*(N-1)
SASL_USER=profile_stream       # one user for SCRAM-SHA-256, SCRAM-SHA-512 and PLAIN
# The pom is the single place the default version is pinned.
POM_VERSION="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$POM")"
# What this call asks for; empty means "whatever runs, else the default".
REQ_VERSION="${STACK_KAFKA_VERSION:-}"
REQ_BROKERS="${STACK_BROKERS:-}"
REQ_SECURE="${STACK_SECURE:-}"
WITH_REDIS="${STACK_REDIS:-1}"

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
usage_error() { echo "[stack] $*" >&2; exit 2; }

[[ -z $REQ_BROKERS || $REQ_BROKERS == 1 || $REQ_BROKERS == 3 ]] ||
  usage_error "STACK_BROKERS (make BROKERS=) must be 1 or 3, not '$REQ_BROKERS'"
[[ -z $REQ_SECURE || $REQ_SECURE == 0 || $REQ_SECURE == 1 ]] ||
  usage_error "STACK_SECURE (make SECURE=) must be 0 or 1, not '$REQ_SECURE'"
[[ $WITH_REDIS == 0 || $WITH_REDIS == 1 ]] ||
  usage_error "STACK_REDIS must be 0 (Kafka only) or 1, not '$WITH_REDIS'"
[[ -z $REQ_VERSION || $REQ_VERSION =~ ^[0-9]+\.[0-9]+\.[0-9]+[A-Za-z0-9.-]*$ ]] ||
  usage_error "STACK_KAFKA_VERSION (make KAFKA_VERSION=) must look like 4.1.1, not '$REQ_VERSION'"

# set_mode VERSION BROKERS SECURE: the stack this call works on.
set_mode() {
  KAFKA_VERSION=$1 BROKERS=$2 SECURE=$3
  LIB="$KDIR/lib-$KAFKA_VERSION"
  NODES=(1); ((BROKERS == 1)) || NODES=(1 2 3)
  # Three JVMs starting on 2 shared cores: 77-87 s measured under a load of 15-19.
  WAIT_S="${STACK_WAIT_S:-$((BROKERS == 1 ? 90 : 180))}"
}
set_mode "${REQ_VERSION:-$POM_VERSION}" "${REQ_BROKERS:-1}" "${REQ_SECURE:-0}"

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

# ---------------------------------------------------------------- kafka: layout

# One broker keeps the layout of old (.stack/kafka/{server.properties,data,pid,kafka.log});
# broker N of three lives in .stack/kafka/cluster/nodeN.
node_dir() { if ((BROKERS == 1)); then echo "$KDIR"; else echo "$KDIR/cluster/node$1"; fi; }
ALL_NODE_DIRS=("$KDIR" "$KDIR/cluster/node1" "$KDIR/cluster/node2" "$KDIR/cluster/node3")
plain_port() { echo $((KAFKA_PORT + NODE_STEP * ($1 - 1))); }
controller_port() { echo $((CONTROLLER_PORT + NODE_STEP * ($1 - 1))); }
sasl_ssl_port() { echo $((SASL_SSL_PORT + NODE_STEP * ($1 - 1))); }
ssl_port() { echo $((SASL_SSL_PORT + 1 + NODE_STEP * ($1 - 1))); }
sasl_plaintext_port() { echo $((SASL_SSL_PORT + 2 + NODE_STEP * ($1 - 1))); }
bootstrap() { # bootstrap PORT_FUNCTION: host:port of every broker, comma-separated
  local n out=()
  for n in "${NODES[@]}"; do out+=("127.0.0.1:$("$1" "$n")"); done
  (IFS=,; echo "${out[*]}")
}

java_cmd() { # java_cmd DIR: the JVM for a broker (or a tool) whose files are in DIR
  # Small heaps: the machine has 2 cores and the brokers share it with tests.
  local heap=(-Xmx512m -Xms256m)
  ((BROKERS == 1)) || heap=(-Xmx256m -Xms128m)
  JAVA=(java "${heap[@]}" -Djava.awt.headless=true
    "-Dlog4j.configuration=file:$1/log4j.properties" "-Dkafka.logs.dir=$1" -cp "$LIB/*")
  # Kafka 4 also loads log4j 2, which finds no config of its own and says so at ERROR;
  # the broker's logging goes through slf4j to reload4j and log4j.properties either way.
  if [[ ${KAFKA_VERSION%%.*} -ge 4 ]]; then JAVA+=(-Dlog4j2.statusLoggerLevel=OFF); fi
}

# The pid file alone can go stale or be lost; the exact config path on the command
# line identifies our broker and nobody else's.
dir_pid() { # dir_pid DIR: pid of the broker started with DIR/server.properties
  local p dir=$1
  if [[ -s $dir/pid ]] && p=$(<"$dir/pid") &&
    tr '\0' ' ' 2>/dev/null <"/proc/$p/cmdline" | grep -qF "kafka.Kafka $dir/server.properties"; then
    echo "$p"
  else
    pgrep -f "kafka\.Kafka $dir/server\.properties\$" | head -n1 || true
  fi
}
node_pid() { dir_pid "$(node_dir "$1")"; }
kafka_pid() { node_pid 1; } # the single broker, or broker 1

# ---------------------------------------------------------------- kafka: files

kafka_jars() {
  local stamp
  stamp="kafka $KAFKA_VERSION pom $(sha256sum "$POM" | cut -c1-16)"
  if [[ -f $LIB/.stamp && "$(<"$LIB/.stamp")" == "$stamp" ]]; then
    say "kafka jars: reusing $LIB ($stamp)"
    return
  fi
  command -v mvn >/dev/null || apt_install maven
  say "kafka jars: resolving kafka $KAFKA_VERSION with Maven into $LIB (cached in ~/.m2)"
  rm -rf "$LIB.tmp"
  local out
  # No ANSI colour codes in the output we may have to show. -D overrides the pom's pin.
  if ! out=$(mvn -B -q -Dstyle.color=never -f "$POM" -Dkafka.version="$KAFKA_VERSION" \
    dependency:copy-dependencies -DoutputDirectory="$LIB.tmp" 2>&1); then
    echo "$out" >&2
    fail kafka /dev/null "Maven could not fetch the Kafka $KAFKA_VERSION jars (Maven's error above)"
  fi
  rm -rf "$LIB"
  mv "$LIB.tmp" "$LIB"
  echo "$stamp" >"$LIB/.stamp"
}

# The SASL password: made once, kept beside the certificates.
sasl_password() {
  if [[ -s $TLS/password ]]; then cat "$TLS/password"; else echo "<made by up>"; fi
}

# kafka_config N: broker N's server.properties on stdout
kafka_config() {
  local n=$1 dir voters="" v
  dir=$(node_dir "$n")
  for v in "${NODES[@]}"; do voters+="${voters:+,}$v@127.0.0.1:$(controller_port "$v")"; done
  local listeners advertised protocols more
  listeners="PLAINTEXT://127.0.0.1:$(plain_port "$n"),CONTROLLER://127.0.0.1:$(controller_port "$n")"
  advertised="PLAINTEXT://127.0.0.1:$(plain_port "$n")"
  protocols="CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT"
  if ((SECURE)); then
    more="SASL_SSL://127.0.0.1:$(sasl_ssl_port "$n"),SSL://127.0.0.1:$(ssl_port "$n"),SASL_PLAINTEXT://127.0.0.1:$(sasl_plaintext_port "$n")"
    listeners+=",$more" advertised+=",$more"
    protocols+=",SASL_SSL:SASL_SSL,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT"
  fi
  local rf=1 isr=1
  ((BROKERS == 1)) || rf=3 isr=2
  cat <<EOF
# Written by deploy/stack.sh on every 'up'; edit the script, not this file.
process.roles=broker,controller
node.id=$n
controller.quorum.voters=$voters
listeners=$listeners
advertised.listeners=$advertised
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=$protocols
log.dirs=$dir/data
num.partitions=8
default.replication.factor=$rf
min.insync.replicas=$isr
offsets.topic.replication.factor=$rf
transaction.state.log.replication.factor=$rf
transaction.state.log.min.isr=$isr
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=true
EOF
  # The log cleaner allocates its dedupe buffer (128 MB by default) at start: too much
  # for a 256 MB heap (an OutOfMemoryError, seen), and plenty at 32 MB for a local stack.
  if ((BROKERS > 1)); then echo "log.cleaner.dedupe.buffer.size=33554432"; fi
  ((SECURE)) || return 0
  # The brokers talk to each other over PLAINTEXT; the secure listeners are for clients.
  # PEM stores (Kafka 2.7+): the key is unencrypted PKCS#8, so no key password.
  local scram="org.apache.kafka.common.security.scram.ScramLoginModule required;"
  cat <<EOF
# STACK_SECURE=1: SASL_SSL (SCRAM-SHA-256/512, PLAIN, OAUTHBEARER), SSL with a client
# certificate required (mTLS), SASL_PLAINTEXT; certificates and password in $TLS.
sasl.enabled.mechanisms=SCRAM-SHA-256,SCRAM-SHA-512,PLAIN,OAUTHBEARER
ssl.keystore.type=PEM
ssl.keystore.location=$TLS/broker.pem
ssl.truststore.type=PEM
ssl.truststore.location=$TLS/ca.crt
listener.name.ssl.ssl.client.auth=required
listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config=$scram
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=$scram
listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_$SASL_USER="$(sasl_password)";
listener.name.sasl_plaintext.scram-sha-256.sasl.jaas.config=$scram
listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config=$scram
listener.name.sasl_plaintext.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_$SASL_USER="$(sasl_password)";
EOF
  # OAUTHBEARER for testing token-provider hooks: Kafka's unsecured validator accepts an
  # unsigned JWT (alg "none") with a sub and an exp still ahead, and refuses an expired or
  # malformed one. The login module is only the listener's own (unused: the brokers talk
  # over PLAINTEXT). Never for a real cluster: anyone can mint such a token.
  local l oauth="org.apache.kafka.common.security.oauthbearer"
  for l in sasl_ssl sasl_plaintext; do
    echo "listener.name.$l.oauthbearer.sasl.jaas.config=$oauth.OAuthBearerLoginModule required unsecuredLoginStringClaim_sub=\"admin\";"
    echo "listener.name.$l.oauthbearer.sasl.server.callback.handler.class=$oauth.internals.unsecured.OAuthBearerUnsecuredValidatorCallbackHandler"
  done
}

log4j_config() { # log4j_config DIR
  # Only a file appender: stdout/stderr of the JVM also go to kafka.log (crashes, bad classpath).
  cat >"$1/log4j.properties" <<EOF
log4j.rootLogger=INFO, file
log4j.appender.file=org.apache.log4j.RollingFileAppender
log4j.appender.file.File=$1/kafka.log
log4j.appender.file.MaxFileSize=100MB
log4j.appender.file.MaxBackupIndex=1
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
# Per-partition state changes and request logs drown everything else at INFO.
log4j.logger.state.change.logger=WARN
log4j.logger.kafka.request.logger=WARN
EOF
}

# A CA, a broker certificate for 127.0.0.1/localhost signed by it, a client certificate
# for the mTLS listener, a second CA that signed nothing (for "unknown CA" tests) and the
# SASL password. Made once; `down --wipe` keeps them, deleting .stack/kafka/tls remakes them.
tls_make() {
  [[ -s $TLS/ca.crt && -s $TLS/broker.pem && -s $TLS/client.key && -s $TLS/other-ca.crt && -s $TLS/password ]] && return
  command -v openssl >/dev/null || apt_install openssl
  say "kafka: making a CA, broker and client certificates and a SASL password in $TLS"
  local t="$TLS.tmp" out
  rm -rf "$t"; mkdir -p "$t"
  # shellcheck disable=SC2054 # the commas are openssl's
  local ca_ext=(-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign)
  # One && chain: `set -e` does not act inside a command whose status `||` tests.
  out=$(cd "$t" &&
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=profile-stream local stack CA" \
      "${ca_ext[@]}" -keyout ca.key -out ca.crt 2>&1 &&
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=profile-stream other CA" \
      "${ca_ext[@]}" -keyout other-ca.key -out other-ca.crt 2>&1 &&
    openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout broker.key -out broker.csr 2>&1 &&
    printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n' >broker.ext &&
    openssl x509 -req -in broker.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 \
      -extfile broker.ext -out broker.crt 2>&1 &&
    openssl req -newkey rsa:2048 -nodes -subj "/CN=$SASL_USER" -keyout client.key -out client.csr 2>&1 &&
    printf 'extendedKeyUsage=clientAuth\n' >client.ext &&
    openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 \
      -extfile client.ext -out client.crt 2>&1 &&
    cat broker.key broker.crt >broker.pem &&
    rm -f ./*.csr ./*.ext ./*.srl other-ca.key &&
    head -c 18 /dev/urandom | base64 | tr '+/' 'xy' >password &&
    chmod 600 ./*.key broker.pem password) ||
    { echo "$out" >&2; fail kafka /dev/null "could not make the certificates with openssl"; }
  rm -rf "$TLS"; mv "$t" "$TLS"
}

# The env file tests read: suggested PROFILE_STREAM_KAFKA_* settings, then the facts
# for tests that try other listeners. Plain KEY=value lines (no quotes).
secure_env() {
  cat <<EOF
# Written by deploy/stack.sh up with STACK_SECURE=1 (make up SECURE=1): the local
# stack's secure listeners. Plain KEY=value lines; in a shell: set -a; . FILE; set +a
# Settings for a client over SASL_SSL with SCRAM-SHA-256:
PROFILE_STREAM_KAFKA_BOOTSTRAP=$(bootstrap sasl_ssl_port)
PROFILE_STREAM_KAFKA_SECURITY_PROTOCOL=SASL_SSL
PROFILE_STREAM_KAFKA_SASL_MECHANISM=SCRAM-SHA-256
PROFILE_STREAM_KAFKA_SASL_USERNAME=$SASL_USER
PROFILE_STREAM_KAFKA_SASL_PASSWORD=$(sasl_password)
PROFILE_STREAM_KAFKA_SSL_CAFILE=$TLS/ca.crt
# Every mechanism takes the same user and password, on both SASL listeners.
STACK_KAFKA_SASL_MECHANISMS=SCRAM-SHA-256,SCRAM-SHA-512,PLAIN
# Both SASL listeners also take OAUTHBEARER (PROFILE_STREAM_KAFKA_OAUTH_TOKEN_PROVIDER), checked
# by Kafka's unsecured validator: an unsigned JWT (alg none) with sub and a future exp passes.
STACK_KAFKA_OAUTHBEARER=unsecured-jwt
STACK_KAFKA_PLAINTEXT_BOOTSTRAP=$(bootstrap plain_port)
STACK_KAFKA_SASL_SSL_BOOTSTRAP=$(bootstrap sasl_ssl_port)
STACK_KAFKA_SASL_PLAINTEXT_BOOTSTRAP=$(bootstrap sasl_plaintext_port)
# The SSL listener requires a client certificate signed by the CA (mTLS):
STACK_KAFKA_SSL_BOOTSTRAP=$(bootstrap ssl_port)
STACK_KAFKA_SSL_CERTFILE=$TLS/client.crt
STACK_KAFKA_SSL_KEYFILE=$TLS/client.key
# A CA that signed nothing here: a client trusting only it must fail.
STACK_KAFKA_SSL_OTHER_CAFILE=$TLS/other-ca.crt
# The broker's certificate (127.0.0.1, localhost) and key, for a test's own TLS server (Redis).
STACK_TLS_SERVER_CERTFILE=$TLS/broker.crt
STACK_TLS_SERVER_KEYFILE=$TLS/broker.key
EOF
}

# The state file: what runs, for `down`, `status`, the broker subcommands and tests.
stack_env() {
  cat <<EOF
# Written by deploy/stack.sh up: the running Kafka. Plain KEY=value lines.
STACK_KAFKA_VERSION=$KAFKA_VERSION
STACK_BROKERS=$BROKERS
STACK_SECURE=$SECURE
PROFILE_STREAM_KAFKA_BOOTSTRAP=$(bootstrap plain_port)
EOF
  local n
  for n in "${NODES[@]}"; do
    echo "STACK_KAFKA_NODE${n}_DIR=$(node_dir "$n")"
    echo "STACK_KAFKA_NODE${n}_PORT=$(plain_port "$n")"
  done
  if ((SECURE)); then echo "STACK_KAFKA_SECURE_ENV=$KDIR/secure.env"; fi
}

env_get() { sed -n "s/^$2=//p" "$1" 2>/dev/null | tail -n1; } # env_get FILE KEY

# ---------------------------------------------------------------- kafka: checks

kafka_check() { # kafka_check TIMEOUT_S [plain]: produce/consume round trip(s)
  port_open "$(plain_port 1)" || { echo "port $(plain_port 1) closed"; return 1; }
  local args=(--bootstrap "$(bootstrap plain_port)" --timeout "$1" --kafka-version "$KAFKA_VERSION")
  ((BROKERS == 1)) || args+=(--replication-factor 3 --expect-brokers "$BROKERS")
  if ((SECURE)) && [[ ${2:-} != plain ]]; then args+=(--secure-env "$KDIR/secure.env"); fi
  "$PY" "$REPO/deploy/roundtrip.py" "${args[@]}" 2>&1
}

kafka_wait() { # kafka_wait [plain]
  local deadline=$((SECONDS + WAIT_S)) out n
  until out=$(kafka_check 10 "${1:-}"); do
    for n in "${NODES[@]}"; do
      [[ -n $(node_pid "$n") ]] || fail kafka "$(node_dir "$n")/kafka.log" "broker $n exited during start"
    done
    ((SECONDS < deadline)) || fail kafka "$(node_dir 1)/kafka.log" \
      "no produce/consume round trip within ${WAIT_S}s (last: $out); still running, 'deploy/stack.sh down' stops it"
    sleep 1
  done
  [[ ${1:-} == plain ]] || say "kafka: $out"
}

# ---------------------------------------------------------------- kafka: start/stop

# The SCRAM users live in the cluster metadata: written at format time, or (data made
# without STACK_SECURE, or a new password) with kafka-configs once the broker runs.
scram_stamp() { echo "user $SASL_USER password $(sha256sum "$TLS/password" | cut -c1-16)"; }

scram_ensure() {
  local stampf out
  stampf="$(node_dir 1)/data/.stack-scram"
  [[ -f $stampf && "$(<"$stampf")" == "$(scram_stamp)" ]] && return
  kafka_wait plain
  say "kafka: adding SCRAM user $SASL_USER with kafka-configs"
  java_cmd "$(node_dir 1)"
  local mech
  # One mechanism per call: the broker refuses two credentials of a user in one request.
  for mech in SCRAM-SHA-256 SCRAM-SHA-512; do
    out=$("${JAVA[@]}" kafka.admin.ConfigCommand --bootstrap-server "127.0.0.1:$(plain_port 1)" \
      --alter --entity-type users --entity-name "$SASL_USER" \
      --add-config "$mech=[iterations=4096,password=$(sasl_password)]" 2>&1) ||
      { echo "$out" >&2; fail kafka /dev/null "kafka-configs could not add the $mech user"; }
  done
  scram_stamp >"$stampf"
}

# A data dir belongs to the version that formatted it (data made before this stamp
# existed: the pom's version, the only one the script could start then).
data_version() { # data_version DIR
  [[ -f $1/data/meta.properties ]] || return 0
  if [[ -f $1/data/.stack-format ]]; then cat "$1/data/.stack-format"; else echo "$POM_VERSION"; fi
}

kafka_format() { # format every node: one fresh cluster id; data of another version is wiped
  local n dir ok=1 cid out pids=() scram=()
  for n in "${NODES[@]}"; do
    [[ "$(data_version "$(node_dir "$n")")" == "$KAFKA_VERSION" ]] || ok=0
  done
  if ((ok)); then return; fi
  for n in "${NODES[@]}"; do
    dir=$(node_dir "$n")
    local was
    was=$(data_version "$dir")
    if [[ -n $was && $was != "$KAFKA_VERSION" ]]; then
      say "kafka: $dir/data was made by Kafka $was, not $KAFKA_VERSION: wiping it"
    elif [[ -n $was ]]; then
      say "kafka: $dir/data: another broker's data is missing or of another version: wiping it"
    fi
    rm -rf "$dir/data"; mkdir -p "$dir/data"
  done
  # A KRaft cluster id: 16 random bytes, URL-safe base64 without padding (as random-uuid).
  cid=-
  while [[ $cid == -* ]]; do cid=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n'); done
  if ((SECURE)); then
    local p; p=$(sasl_password)
    scram=(--add-scram "SCRAM-SHA-256=[name=$SASL_USER,iterations=4096,password=$p]"
      --add-scram "SCRAM-SHA-512=[name=$SASL_USER,iterations=4096,password=$p]")
  fi
  say "kafka: formatting KRaft storage for ${#NODES[@]} node(s) (cluster id $cid)"
  for n in "${NODES[@]}"; do
    dir=$(node_dir "$n")
    java_cmd "$dir"
    "${JAVA[@]}" kafka.tools.StorageTool format -t "$cid" -c "$dir/server.properties" \
      "${scram[@]}" >"$dir/format.log" 2>&1 &
    pids+=($!)
  done
  for n in "${!pids[@]}"; do
    dir=$(node_dir "${NODES[$n]}")
    wait "${pids[$n]}" || { cat "$dir/format.log" >&2; fail kafka /dev/null "storage format failed for $dir"; }
    echo "$KAFKA_VERSION" >"$dir/data/.stack-format"
    if ((SECURE)); then scram_stamp >"$dir/data/.stack-scram"; fi
  done
}

node_start() { # node_start N: start broker N (config and data already there)
  local n=$1 dir
  dir=$(node_dir "$n")
  java_cmd "$dir"
  mv -f "$dir/kafka.log" "$dir/kafka.log.prev" 2>/dev/null || true
  rm -f "$dir/pid"
  local ports
  ports="127.0.0.1:$(plain_port "$n"), controller :$(controller_port "$n")"
  if ((SECURE)); then ports+=", SASL_SSL :$(sasl_ssl_port "$n"), SSL :$(ssl_port "$n"), SASL_PLAINTEXT :$(sasl_plaintext_port "$n")"; fi
  if ((BROKERS == 1)); then
    say "kafka: starting $KAFKA_VERSION (KRaft broker+controller) on $ports, log $dir/kafka.log"
  else
    say "kafka: starting broker $n of $BROKERS, $KAFKA_VERSION (KRaft broker+controller) on $ports, log $dir/kafka.log"
  fi
  # setsid: own session, so Ctrl-C in a terminal or a job runner killing our process
  # group does not take the broker down with the script.
  # nohup and setsid exec in place (no fork: a background job of a script is not a
  # process-group leader), so $! is the JVM itself.
  nohup setsid "${JAVA[@]}" kafka.Kafka "$dir/server.properties" \
    >>"$dir/kafka.log" 2>&1 </dev/null 9>&- &
  echo $! >"$dir/pid"
}

write_files() { # configs, certificates, env files for the current mode
  local n dir
  mkdir -p "$KDIR"
  if ((SECURE)); then tls_make; secure_env >"$KDIR/secure.env"; fi
  for n in "${NODES[@]}"; do
    dir=$(node_dir "$n")
    mkdir -p "$dir/data"
    kafka_config "$n" >"$dir/server.properties"
    log4j_config "$dir"
  done
  stack_env >"$KDIR/stack.env"
}

# The mode of the Kafka we run now, as "VERSION BROKERS SECURE", or nothing.
running_mode() {
  local b v s n
  if [[ -f $KDIR/stack.env ]]; then
    v=$(env_get "$KDIR/stack.env" STACK_KAFKA_VERSION)
    b=$(env_get "$KDIR/stack.env" STACK_BROKERS)
    s=$(env_get "$KDIR/stack.env" STACK_SECURE)
    if [[ $b == 1 || $b == 3 ]]; then
      for n in 1 2 3; do
        ((n <= b)) || break
        if [[ -n $( (set_mode "$v" "$b" "$s"; node_pid "$n") ) ]]; then echo "$v $b $s"; return; fi
      done
    fi
  fi
  # A broker started before stack.env existed: single, plain, the version of its jars.
  if [[ -n $(dir_pid "$KDIR") ]]; then
    v=$(cut -d' ' -f2 "$KDIR/lib/.stamp" 2>/dev/null || true)
    echo "${v:-$POM_VERSION} 1 0"
  fi
}

describe_mode() { # describe_mode VERSION BROKERS SECURE
  echo "Kafka $1, $2 broker$( (($2 == 1)) || echo s)$( (($3)) && echo ", secure listeners")"
}

adopt_running() { # adopt_running "VERSION BROKERS SECURE": refuse if the call asks otherwise
  local v b s
  read -r v b s <<<"$1"
  if [[ (-n $REQ_VERSION && $REQ_VERSION != "$v") || (-n $REQ_BROKERS && $REQ_BROKERS != "$b") ||
    (-n $REQ_SECURE && $REQ_SECURE != "$s") ]]; then
    fail kafka /dev/null "the running stack is $(describe_mode "$v" "$b" "$s"); asked for" \
      "$(describe_mode "${REQ_VERSION:-$v}" "${REQ_BROKERS:-$b}" "${REQ_SECURE:-$s}")." \
      "Stop it first ('make down'), or leave out the knobs to use it as it is"
  fi
  set_mode "$v" "$b" "$s"
}

# A running broker keeps the config it started with (and secure.env stays as written then):
# say so when this script would now write another, e.g. after a pull that added a listener.
config_drift() {
  local n dir
  for n in "${NODES[@]}"; do
    dir=$(node_dir "$n")
    if ! kafka_config "$n" | cmp -s - "$dir/server.properties"; then
      say "kafka: NOTE: $dir/server.properties is not what this deploy/stack.sh writes (started by an older one?); 'deploy/stack.sh down' then 'up' applies the new config"
      return
    fi
  done
}

kafka_up() {
  local running out n missing=()
  running=$(running_mode)
  if [[ -n $running ]]; then
    adopt_running "$running"
    for n in "${NODES[@]}"; do [[ -n $(node_pid "$n") ]] || missing+=("$n"); done
    if ((${#missing[@]} == 0)) && out=$(kafka_check 10); then
      say "kafka already running ($(describe_mode "$KAFKA_VERSION" "$BROKERS" "$SECURE"), pid$( ((BROKERS == 1)) || echo s) $(for n in "${NODES[@]}"; do node_pid "$n"; done | xargs)) and healthy on 127.0.0.1:$KAFKA_PORT; nothing to do"
      config_drift
      return
    fi
    ((${#missing[@]} == 0)) || say "kafka: broker(s) ${missing[*]} not running; starting them"
    ((${#missing[@]} > 0)) || say "kafka running (pid $(kafka_pid)) but not answering yet; waiting up to ${WAIT_S}s"
  elif port_open "$KAFKA_PORT"; then
    [[ -z $REQ_BROKERS$REQ_SECURE$REQ_VERSION ]] ||
      fail kafka /dev/null "127.0.0.1:$KAFKA_PORT is taken by a Kafka we did not start; cannot make it $(describe_mode "$KAFKA_VERSION" "$BROKERS" "$SECURE")"
    out=$(kafka_check 10) || fail kafka /dev/null "127.0.0.1:$KAFKA_PORT is taken by a process we did not start and it is not a working Kafka: $out"
    say "kafka: something we did not start already works on 127.0.0.1:$KAFKA_PORT; using it ($out)"
    return
  else
    missing=("${NODES[@]}")
  fi
  if ((${#missing[@]} > 0)); then
    command -v java >/dev/null || apt_install openjdk-17-jre-headless
    kafka_jars
    write_files
    # Format only with every broker stopped; a restarted one keeps its data.
    if ((${#missing[@]} == ${#NODES[@]})); then kafka_format; fi
    for n in "${missing[@]}"; do node_start "$n"; done
  fi
  if ((SECURE)); then scram_ensure; fi
  kafka_wait
  # The broker logs its own version at start; prefer it over the pin.
  local version
  version=$(grep -ho 'Kafka version: [^ ]*' "$(node_dir 1)/kafka.log" 2>/dev/null | tail -n1 | cut -d' ' -f3)
  if ((BROKERS == 1)); then
    say "kafka ${version:-$KAFKA_VERSION} up on 127.0.0.1:$KAFKA_PORT (KRaft), pid $(kafka_pid)"
  else
    say "kafka ${version:-$KAFKA_VERSION} up: $BROKERS brokers on $(bootstrap plain_port) (KRaft), pids $(for n in "${NODES[@]}"; do node_pid "$n"; done | xargs)"
  fi
  if ((SECURE)); then
    say "kafka: secure listeners on $(bootstrap sasl_ssl_port) (SASL_SSL); settings for tests in $KDIR/secure.env"
  fi
}

stop_pids() { # stop_pids LABEL PID...: SIGTERM all, SIGKILL what is left after 30s
  local label=$1 p left; shift
  say "kafka: stopping $label pid$( (($# == 1)) || echo s) $* (SIGTERM, up to 30s)"
  kill -TERM "$@" 2>/dev/null || true
  for _ in $(seq 60); do
    left=0; for p in "$@"; do alive "$p" && left=1; done
    ((left)) || break; sleep 0.5
  done
  for p in "$@"; do
    if alive "$p"; then
      say "kafka: pid $p still alive after 30s, SIGKILL"
      kill -KILL "$p" 2>/dev/null || true
      while alive "$p"; do sleep 0.2; done
    fi
  done
  for p in "$@"; do wait_reaped "$p"; done
}

kafka_down() {
  local dir pid pids=() dirs=()
  # Every layout, whatever stack.env says: only brokers started with our config paths.
  for dir in "${ALL_NODE_DIRS[@]}"; do
    pid=$(dir_pid "$dir")
    if [[ -n $pid ]]; then pids+=("$pid"); dirs+=("$dir"); fi
  done
  if ((${#pids[@]} == 0)); then
    say "kafka: not running"
  else
    # All at once: stopped one by one, the last brokers of three lose their quorum and
    # hang in controlled shutdown.
    stop_pids "$( ((${#pids[@]} == 1)) && echo broker || echo "${#pids[@]} brokers")" "${pids[@]}"
    say "kafka: stopped"
  fi
  for dir in "${ALL_NODE_DIRS[@]}"; do rm -f "$dir/pid"; done
  rm -f "$KDIR/stack.env"
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
  [[ -n $POM_VERSION ]] || fail stack /dev/null "no <kafka.version> in $POM"
  "$PY" -c 'import aiokafka' 2>/dev/null ||
    fail stack /dev/null "$PY cannot import aiokafka (needed for the Kafka health check); run 'make install' first"
  if ((WITH_REDIS)); then redis_up; fi
  kafka_up
}

cmd_down() {
  kafka_down
  if ((WITH_REDIS)); then redis_down; fi
  if [[ ${1:-} == --wipe ]]; then
    say "wiping $KDIR/data, $KDIR/cluster$( ((WITH_REDIS)) && echo " and $RDIR/data") (jars and certificates kept)"
    rm -rf "$KDIR/data" "$KDIR/cluster"
    if ((WITH_REDIS)); then rm -rf "$RDIR/data"; fi
  fi
}

cmd_status() {
  local pid state rc=0 running n out
  running=$(running_mode)
  [[ -z $running ]] || { read -r KAFKA_VERSION BROKERS SECURE <<<"$running"; set_mode "$KAFKA_VERSION" "$BROKERS" "$SECURE"; }
  if ((BROKERS > 1)); then
    for n in "${NODES[@]}"; do
      pid=$(node_pid "$n")
      if [[ -n $pid ]]; then
        say "kafka broker $n: running, pid $pid, 127.0.0.1:$(plain_port "$n") (controller :$(controller_port "$n"))"
      else
        say "kafka broker $n: stopped, 127.0.0.1:$(plain_port "$n")"; rc=3
      fi
    done
  fi
  pid=$(kafka_pid); state=${pid:+running, pid $pid}
  ((BROKERS == 1)) || state="$BROKERS brokers"
  if out=$(kafka_check 5); then
    say "kafka: ${state:-running (not ours)}, $(bootstrap plain_port), answers (round trip ok)"
    say "kafka: ${out#kafka }"
  else
    say "kafka: ${state:-stopped}, $(bootstrap plain_port), does not answer${running:+ ($out)}"; rc=3
  fi
  ((WITH_REDIS)) || return $rc
  pid=$(redis_pid); state=${pid:+running, pid $pid}
  if redis_ping; then
    say "redis: ${state:-running (not ours)}, 127.0.0.1:$REDIS_PORT, answers PING"
  else
    say "redis: ${state:-stopped}, 127.0.0.1:$REDIS_PORT, does not answer"; rc=3
  fi
  return $rc
}

broker_arg() { # broker_arg N: check N against the running stack and take its mode
  local running
  running=$(running_mode)
  [[ -n $running ]] || fail kafka /dev/null "no stack of ours is running ('deploy/stack.sh up' first)"
  read -r KAFKA_VERSION BROKERS SECURE <<<"$running"
  set_mode "$KAFKA_VERSION" "$BROKERS" "$SECURE"
  if [[ ! ${1:-} =~ ^[0-9]+$ ]] || (($1 < 1 || $1 > BROKERS)); then
    usage_error "broker number must be 1..$BROKERS, not '${1:-}'"
  fi
}

cmd_kill_broker() {
  broker_arg "${1:-}"
  local pid
  pid=$(node_pid "$1")
  [[ -n $pid ]] || { say "kafka broker $1: not running"; return 0; }
  kill -KILL "$pid"
  while alive "$pid"; do sleep 0.1; done
  rm -f "$(node_dir "$1")/pid"
  say "kafka broker $1: killed (SIGKILL, pid $pid); 'deploy/stack.sh start-broker $1' brings it back"
}

cmd_start_broker() {
  broker_arg "${1:-}"
  local pid
  pid=$(node_pid "$1")
  if [[ -n $pid ]]; then
    say "kafka broker $1: already running (pid $pid)"
  else
    node_start "$1"
  fi
  kafka_wait
  say "kafka broker $1: back, pid $(node_pid "$1")"
}

cmd_leader() {
  [[ -n ${1:-} ]] || usage_error "usage: $0 leader TOPIC [PARTITION]"
  local running
  running=$(running_mode)
  [[ -z $running ]] || { read -r KAFKA_VERSION BROKERS SECURE <<<"$running"; set_mode "$KAFKA_VERSION" "$BROKERS" "$SECURE"; }
  "$PY" "$REPO/deploy/kafka/leader.py" --bootstrap "$(bootstrap plain_port)" "$@"
}

cmd_config() { # what 'up' would write for the asked mode; writes nothing
  local n
  for n in "${NODES[@]}"; do
    echo "# ---- $(node_dir "$n")/server.properties"
    kafka_config "$n"
  done
  echo "# ---- $KDIR/stack.env"
  stack_env
  if ((SECURE)); then
    echo "# ---- $KDIR/secure.env"
    secure_env
  fi
}

case "${1:-}" in
  up | down | kill-broker | start-broker)
    mkdir -p "$KDIR"
    if ((WITH_REDIS)); then mkdir -p "$RDIR"; fi
    # Two 'up'/'down' at once (e.g. parallel make targets) must not race. Every service
    # is started with fd 9 closed (`9>&-`): a daemon inheriting it would hold the lock forever.
    exec 9>"$STACK/lock"
    flock -w 180 9 || fail stack /dev/null "another deploy/stack.sh up/down holds $STACK/lock"
    ;;
esac

case "${1:-}" in
  up) cmd_up ;;
  down) cmd_down "${2:-}" ;;
  status) cmd_status ;;
  kill-broker) cmd_kill_broker "${2:-}" ;;
  start-broker) cmd_start_broker "${2:-}" ;;
  leader) shift; cmd_leader "$@" ;;
  config) cmd_config ;;
  *) echo "usage: $0 up | down [--wipe] | status | kill-broker N | start-broker N | leader TOPIC [PARTITION] | config" >&2; exit 2 ;;
esac
