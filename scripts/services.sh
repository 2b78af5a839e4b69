#!/usr/bin/env bash
# Ferry's local test services: Cassandra 5.0, PostgreSQL (YSQL stand-in), moto S3, with
# --azure Azurite (Azure Blob Storage, from npm), and with --pg-vector a PostgreSQL with pgvector
# (the pgserver wheel, from PyPI).
# Plain processes on loopback, state under ${FERRY_SERVICES_DIR:-/var/tmp/ferry-services}.
#
#   scripts/services.sh up [--cassandra-nodes N] [--pg-nodes N] [--pg-tls] [--pg-vector]
#                          [--cassandra-auth] [--cassandra-fault] [--azure] [--all]
#   scripts/services.sh down | status | env
#   scripts/services.sh cassandra-stop-node N | cassandra-start-node N | cassandra-restart-node N
#   scripts/services.sh pg-stop-node N|tls|vector | pg-start-node N|tls
#
# See docs/services.md.
set -euo pipefail

STATE="${FERRY_SERVICES_DIR:-/var/tmp/ferry-services}"
LOGS="$STATE/logs"
RUN="$STATE/run"
BIN="$STATE/bin"

CASS_DIR="$STATE/cassandra"
CASS_SERIES="${FERRY_CASSANDRA_SERIES:-5.0}"          # newest ${CASS_SERIES}.x from Maven Central
CASS_WAIT="${FERRY_CASSANDRA_WAIT:-180}"
CASS_QUARANTINE_S=65
CASS_RETRY_S=30
PG_WAIT="${FERRY_PG_WAIT:-60}"
MOTO_PORT=54340
AZURITE_PORT=54350
AZURITE_VERSION=3.37.0
AZURITE_DIR="$STATE/azurite"
# Azurite's one account and its key, published in Azure's documentation for the emulator.
AZURITE_ACCOUNT=devstoreaccount1
AZURITE_KEY='Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='
AZURITE_CONTAINER=ferry
PG_BASE_PORT=54320
PG_TLS_PORT=54330
# PostgreSQL 16 with the pgvector extension, from the pgserver wheel on PyPI (Debian's bookworm
# packages have no pgvector): a second server, only for tests of vector columns.
PG_VECTOR_PORT=54331
PGSERVER_VERSION=0.1.4
PG_VECTOR_DIR="$STATE/pgvector"
PG_VECTOR_BIN="$PG_VECTOR_DIR/pgserver/pginstall/bin"
VENV="$STATE/venv"
M2="$STATE/m2"
DEP_PLUGIN="org.apache.maven.plugins:maven-dependency-plugin:3.6.1"

log()  { printf '[services] %s\n' "$*" >&2; }
die()  { printf '[services] ERROR: %s\n' "$*" >&2; exit 1; }

# Print which service failed, its log path and the last lines of the log; exit 1.
fail_service() {
  local name="$1" logfile="$2" msg="$3"
  {
    printf '[services] ERROR: %s failed: %s\n' "$name" "$msg"
    printf '[services] log: %s\n' "$logfile"
    if [[ -f "$logfile" ]] && grep -qE '^(ERROR|WARN) |Exception' "$logfile"; then
      printf '[services] ---- first errors in %s ----\n' "$logfile"
      grep -E '^ERROR |Exception( \(|:)' "$logfile" | grep -v 'LEAK DETECTED' | head -n 8 | cut -c1-400
    fi
    if [[ -f "$logfile" ]]; then
      printf '[services] ---- last 30 lines of %s ----\n' "$logfile"
      tail -n 30 "$logfile" | cut -c1-400
      printf '[services] ----\n'
    fi
  } >&2
  exit 1
}

# ---------------------------------------------------------------------------
# process helpers
# ---------------------------------------------------------------------------

# pid_alive PID MARKER: the process exists and its command line contains MARKER.
pid_alive() {
  local pid="$1" marker="$2"
  [[ -n "$pid" && "$pid" =~ ^[0-9]+$ ]] || return 1
  [[ -r "/proc/$pid/cmdline" ]] || return 1
  # zombies have an empty cmdline
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$marker"
}

# find_by_marker MARKER: pids of processes whose cmdline contains MARKER (reads /proc only).
find_by_marker() {
  local marker="$1" p
  for p in /proc/[0-9]*; do
    [[ -r "$p/cmdline" ]] || continue
    if tr '\0' ' ' <"$p/cmdline" 2>/dev/null | grep -qF -- "$marker"; then
      echo "${p#/proc/}"
    fi
  done
}

# port_open HOST PORT
port_open() {
  timeout 2 bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null
}

# stop_pid PID MARKER NAME [TIMEOUT]: SIGTERM, wait, SIGKILL.
stop_pid() {
  local pid="$1" marker="$2" name="$3" t="${4:-60}" i
  pid_alive "$pid" "$marker" || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < t * 5; i++)); do
    pid_alive "$pid" "$marker" || return 0
    sleep 0.2
  done
  log "$name (pid $pid) did not stop in ${t}s, sending SIGKILL"
  kill -KILL "$pid" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do
    pid_alive "$pid" "$marker" || return 0
    sleep 0.2
  done
}

# rotate a log file so each start gets a fresh one (previous kept as .1)
rotate_log() {
  local f="$1"
  if [[ -s "$f" ]]; then mv -f "$f" "$f.1"; fi
  : >"$f"
}

# start_detached PIDFILE LOGFILE CMD...: run CMD in its own session, surviving this script.
start_detached() {
  local pidfile="$1" logfile="$2"
  shift 2
  # bash writes its own pid, then execs CMD, so the pid file holds CMD's pid.
  setsid bash -c 'echo $$ >"$0"; exec "$@"' "$pidfile" "$@" >>"$logfile" 2>&1 </dev/null &
  local i
  for ((i = 0; i < 50; i++)); do
    [[ -s "$pidfile" ]] && return 0
    sleep 0.1
  done
  return 1
}

ensure_dirs() {
  mkdir -p "$STATE" "$LOGS" "$RUN" "$BIN"
  chmod 755 "$STATE" "$LOGS" "$RUN" "$BIN" 2>/dev/null || true
}

# ---------------------------------------------------------------------------
# Python venv (moto server + cqlsh)
# ---------------------------------------------------------------------------

ensure_venv() {
  if [[ -x "$VENV/bin/moto_server" && -x "$VENV/bin/cqlsh" ]]; then
    return 0
  fi
  local py
  py="$(command -v python3 || true)"
  [[ -n "$py" ]] || die "python3 not found (needed for moto and cqlsh)"
  log "creating Python venv $VENV (moto[server], cqlsh) ..."
  if [[ ! -x "$VENV/bin/python" ]]; then
    "$py" -m venv "$VENV" >>"$LOGS/venv.log" 2>&1 ||
      fail_service "python venv" "$LOGS/venv.log" "python3 -m venv failed (apt-get install python3-venv?)"
  fi
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check \
    'moto[server]>=5,<6' 'cqlsh>=6.2,<6.3' >>"$LOGS/venv.log" 2>&1 ||
    fail_service "python venv" "$LOGS/venv.log" "pip install moto[server] cqlsh failed"
}

# ---------------------------------------------------------------------------
# Cassandra
# ---------------------------------------------------------------------------
# Apache publishes no 5.0.x bin tarball on Maven Central (the apache-cassandra
# artifact stops at 4.0-alpha2), so the server is assembled from
# org.apache.cassandra:cassandra-all:<v> and its runtime dependencies, with a
# cassandra.yaml and logback config written here, and run as
# org.apache.cassandra.service.CassandraDaemon -f with the Java 17 options of
# the distribution's conf/jvm17-server.options and jvm-server.options.

mvn_q() {
  mvn -B -q -Dmaven.repo.local="$M2" "$@"
}

# Newest ${CASS_SERIES}.x release of cassandra-all on Maven Central.
resolve_cassandra_version() {
  local d="$CASS_DIR/resolve" out v
  mkdir -p "$d"
  cat >"$d/pom.xml" <<EOF
<project xmlns="http://maven.apache.org/POM/4.0.0"><modelVersion>4.0.0</modelVersion>
<groupId>ferry</groupId><artifactId>cassandra-version</artifactId><version>1</version><packaging>pom</packaging>
<dependencies><dependency><groupId>org.apache.cassandra</groupId><artifactId>cassandra-all</artifactId>
<version>[${CASS_SERIES}.0,${CASS_SERIES}.99999]</version><type>pom</type></dependency></dependencies></project>
EOF
  out="$d/list.txt"
  rm -f "$out"
  if (cd "$d" && mvn_q -U "$DEP_PLUGIN:list" -DexcludeTransitive=true -DoutputFile="$out") >>"$LOGS/cassandra-install.log" 2>&1; then
    v="$(grep -o 'cassandra-all:pom:[^:]*' "$out" | head -n1 | cut -d: -f3 || true)"
    if [[ -n "$v" ]]; then echo "$v"; return 0; fi
  fi
  # Could not list versions: try candidates newest first.
  local c
  for c in 9 8 7 6 5 4 3 2 1 0; do
    if mvn_q "$DEP_PLUGIN:get" -Dartifact="org.apache.cassandra:cassandra-all:${CASS_SERIES}.$c:pom" \
      -Dtransitive=false >>"$LOGS/cassandra-install.log" 2>&1; then
      echo "${CASS_SERIES}.$c"
      return 0
    fi
  done
  return 1
}

cassandra_home() { cat "$CASS_DIR/CURRENT" 2>/dev/null || true; }

ensure_cassandra_installed() {
  local home
  home="$(cassandra_home)"
  if [[ -n "$home" && -f "$home/.complete" ]]; then
    return 0
  fi
  command -v mvn >/dev/null || die "mvn not found (apt-get install maven)"
  command -v java >/dev/null || die "java not found (need Java 17)"
  mkdir -p "$CASS_DIR"
  log "resolving newest Cassandra ${CASS_SERIES}.x on Maven Central ..."
  local v="${FERRY_CASSANDRA_VERSION:-}"
  if [[ -z "$v" ]]; then
    v="$(resolve_cassandra_version)" ||
      fail_service "cassandra install" "$LOGS/cassandra-install.log" "no cassandra-all ${CASS_SERIES}.x found on Maven Central"
  fi
  home="$CASS_DIR/apache-cassandra-$v"
  log "fetching cassandra-all $v and its runtime dependencies into $home/lib ..."
  rm -rf "$home"
  mkdir -p "$home/build"
  cat >"$home/build/pom.xml" <<EOF
<project xmlns="http://maven.apache.org/POM/4.0.0"><modelVersion>4.0.0</modelVersion>
<groupId>ferry</groupId><artifactId>cassandra-server</artifactId><version>1</version><packaging>pom</packaging>
<dependencies><dependency><groupId>org.apache.cassandra</groupId><artifactId>cassandra-all</artifactId>
<version>$v</version></dependency></dependencies></project>
EOF
  (cd "$home/build" && mvn_q "$DEP_PLUGIN:copy-dependencies" -DincludeScope=runtime \
    -DoutputDirectory="$home/lib") >>"$LOGS/cassandra-install.log" 2>&1 ||
    fail_service "cassandra install" "$LOGS/cassandra-install.log" "mvn copy-dependencies of cassandra-all:$v failed"
  [[ -f "$home/lib/cassandra-all-$v.jar" ]] ||
    fail_service "cassandra install" "$LOGS/cassandra-install.log" "cassandra-all-$v.jar missing after download"
  echo "$v" >"$home/VERSION"
  touch "$home/.complete"
  echo "$home" >"$CASS_DIR/CURRENT"
  write_cassandra_tools "$home"
}

# nodetool / cqlsh wrappers under $STATE/bin
write_cassandra_tools() {
  local home="$1"
  mkdir -p "$home/conf"
  cat >"$home/conf/logback-tools.xml" <<'EOF'
<configuration>
  <appender name="STDERR" class="ch.qos.logback.core.ConsoleAppender">
    <target>System.err</target>
    <encoder><pattern>%-5level %msg%n</pattern></encoder>
  </appender>
  <root level="WARN"><appender-ref ref="STDERR"/></root>
</configuration>
EOF
  # the --add-exports/--add-opens of the distribution's conf/jvm17-clients.options
  local NODETOOL_JAVA_OPTS="--add-exports java.base/jdk.internal.misc=ALL-UNNAMED \
--add-exports java.base/jdk.internal.ref=ALL-UNNAMED --add-exports java.base/sun.nio.ch=ALL-UNNAMED \
--add-exports java.management.rmi/com.sun.jmx.remote.internal.rmi=ALL-UNNAMED \
--add-exports java.rmi/sun.rmi.registry=ALL-UNNAMED --add-exports java.rmi/sun.rmi.server=ALL-UNNAMED \
--add-exports java.sql/java.sql=ALL-UNNAMED --add-opens java.base/java.lang.module=ALL-UNNAMED \
--add-opens java.base/jdk.internal.loader=ALL-UNNAMED --add-opens java.base/jdk.internal.ref=ALL-UNNAMED \
--add-opens java.base/jdk.internal.reflect=ALL-UNNAMED --add-opens java.base/jdk.internal.math=ALL-UNNAMED \
--add-opens java.base/jdk.internal.module=ALL-UNNAMED --add-opens java.base/jdk.internal.util.jar=ALL-UNNAMED \
--add-opens jdk.management/com.sun.management.internal=ALL-UNNAMED --add-opens java.base/sun.nio.ch=ALL-UNNAMED \
--add-opens java.base/java.io=ALL-UNNAMED --add-opens java.base/java.lang=ALL-UNNAMED \
--add-opens java.base/java.util=ALL-UNNAMED -Djdk.attach.allowAttachSelf=true"
  cat >"$BIN/nodetool" <<EOF
#!/usr/bin/env bash
# nodetool for Ferry's local Cassandra (default JMX 127.0.0.1:7199; node N uses 7N99: -p 7299, -p 7399).
exec java -Xmx256m -XX:+UseSerialGC -Dlogback.configurationFile="$home/conf/logback-tools.xml" \\
  $NODETOOL_JAVA_OPTS \\
  -Dcassandra.storagedir="$CASS_DIR/tools" \\
  -cp "$home/lib/*" org.apache.cassandra.tools.NodeTool "\$@"
EOF
  cat >"$BIN/cqlsh" <<EOF
#!/usr/bin/env bash
# cqlsh (PyPI cqlsh, the Cassandra distribution's bin/cqlsh packaged for pip) from Ferry's services venv.
# Non-interactive use drops its "cqlsh was built against 5.0.0, but this server is 5.0.x" line.
if [[ -t 1 ]]; then exec "$VENV/bin/cqlsh" "\$@"; fi
"$VENV/bin/cqlsh" "\$@" | sed -u '/^WARNING: cqlsh was built against/d'
exit "\${PIPESTATUS[0]}"
EOF
  chmod 755 "$BIN/nodetool" "$BIN/cqlsh"
}

# Node 4 is not part of the test cluster: a separate one-node cluster on 127.0.0.4 with
# PasswordAuthenticator (up --cassandra-auth), so password authentication can be tested without
# turning it on for everything that uses node 1.
CASS_AUTH_NODE=4
CASS_AUTH_USER=ferry
CASS_AUTH_PASSWORD=ferry-auth-test
# Node 5, likewise a one-node cluster of its own (127.0.0.5, no auth; up --cassandra-fault), is
# the one fault tests stop and start in the middle of a run: node 1 serves every other test.
CASS_FAULT_NODE=5
cass_ip()       { echo "127.0.0.$1"; }
cass_jmx()      { echo $((7099 + 100 * $1)); }
cass_node_dir() { echo "$CASS_DIR/node$1"; }
cass_pidfile()  { echo "$RUN/cassandra-node$1.pid"; }
cass_forgotten() { echo "$RUN/cassandra-node$1.forgotten"; }
cass_log()      { echo "$LOGS/cassandra-node$1.log"; }
cass_marker()   { echo "-Dferry.service=cassandra-node$1"; }

cass_pid() {
  local n="$1" pid=""
  pid="$(cat "$(cass_pidfile "$n")" 2>/dev/null || true)"
  if pid_alive "$pid" "$(cass_marker "$n")"; then echo "$pid"; return 0; fi
  return 1
}

write_cassandra_conf() {
  local n="$1" home="$2" dir conf ip
  dir="$(cass_node_dir "$n")"
  conf="$dir/conf"
  ip="$(cass_ip "$n")"
  local cluster=ferry-test seeds=127.0.0.1:7000 authenticator=AllowAllAuthenticator authorizer=AllowAllAuthorizer
  local client_auth=false
  if [[ "$n" == "$CASS_AUTH_NODE" ]]; then
    cluster=ferry-auth seeds="$ip:7000" authenticator=PasswordAuthenticator authorizer=CassandraAuthorizer
    client_auth=true
  elif [[ "$n" == "$CASS_FAULT_NODE" ]]; then
    cluster=ferry-fault seeds="$ip:7000"
  fi
  mkdir -p "$conf" "$conf/triggers" "$dir/data" "$dir/commitlog" "$dir/saved_caches" "$dir/hints" "$dir/cdc_raw" "$dir/logs"
  # Node 1 is the seed (seeds never bootstrap). Nodes 2/3 bootstrap, i.e. stream their token ranges
  # from the running nodes, so data written while the cluster had 1 node stays readable at 3.
  cat >"$conf/cassandra.yaml" <<EOF
# Written by scripts/services.sh for Ferry's tests. Regenerated on every start.
cluster_name: $cluster
num_tokens: 16
allocate_tokens_for_local_replication_factor: 3
partitioner: org.apache.cassandra.dht.Murmur3Partitioner
storage_compatibility_mode: CASSANDRA_4
auto_bootstrap: true
data_file_directories:
  - $dir/data
commitlog_directory: $dir/commitlog
saved_caches_directory: $dir/saved_caches
hints_directory: $dir/hints
cdc_raw_directory: $dir/cdc_raw
commitlog_sync: periodic
commitlog_sync_period: 10000ms
seed_provider:
  - class_name: org.apache.cassandra.locator.SimpleSeedProvider
    parameters:
      - seeds: "$seeds"
listen_address: $ip
rpc_address: $ip
storage_port: 7000
native_transport_port: 9042
start_native_transport: true
endpoint_snitch: SimpleSnitch
authenticator: $authenticator
authorizer: $authorizer
auto_snapshot: false
snapshot_before_compaction: false
hinted_handoff_enabled: true
read_request_timeout: 10000ms
range_request_timeout: 20000ms
write_request_timeout: 5000ms
request_timeout: 20000ms
# TLS on the same native port, optional: plaintext clients (cqlsh, most tests) and TLS clients
# (the [source.tls] tests) both connect to 9042. TLS clients must show a certificate signed by
# the test CA on the --cassandra-auth node only (mutual TLS), never on the test cluster.
client_encryption_options:
  enabled: true
  optional: true
  keystore: $STATE/tls/cassandra.p12
  keystore_password: $CASS_KEYSTORE_PASSWORD
  truststore: $STATE/tls/cassandra-truststore.p12
  truststore_password: $CASS_KEYSTORE_PASSWORD
  store_type: PKCS12
  require_client_auth: $client_auth
EOF
  cat >"$conf/logback.xml" <<'EOF'
<configuration scan="false">
  <appender name="STDOUT" class="ch.qos.logback.core.ConsoleAppender">
    <encoder><pattern>%-5level [%thread] %date{ISO8601} %F:%L - %msg%n</pattern></encoder>
  </appender>
  <logger name="org.apache.cassandra" level="INFO"/>
  <logger name="com.thinkaurelius.thrift" level="ERROR"/>
  <root level="INFO"><appender-ref ref="STDOUT"/></root>
</configuration>
EOF
}

# JVM options: conf/jvm-server.options + conf/jvm17-server.options of the 5.0 distribution
# (minus -XX:+AlwaysPreTouch, which only slows a test start), plus what cassandra-env.sh adds.
cassandra_jvm_opts() {
  local n="$1" home="$2" heap="$3" dir
  dir="$(cass_node_dir "$n")"
  local jamm
  jamm="$(ls "$home"/lib/jamm-*.jar 2>/dev/null | head -n1 || true)"
  JVM_OPTS=(
    # jvm-server.options
    -ea -da:net.openhft...
    -XX:+UseThreadPriorities -XX:+HeapDumpOnOutOfMemoryError -Xss256k
    -XX:+UseTLAB -XX:+ResizeTLAB -XX:+UseNUMA -XX:+PerfDisableSharedMem
    -Djava.net.preferIPv4Stack=true -XX:StringTableSize=1000003
    # jvm17-server.options
    -XX:+UseG1GC -XX:+ParallelRefProcEnabled -XX:MaxTenuringThreshold=1 -XX:G1HeapRegionSize=16m
    -XX:G1RSetUpdatingPauseTimePercent=5 -XX:MaxGCPauseMillis=300 -XX:InitiatingHeapOccupancyPercent=70
    -Djdk.attach.allowAttachSelf=true
    --add-exports java.base/jdk.internal.misc=ALL-UNNAMED
    --add-exports java.management.rmi/com.sun.jmx.remote.internal.rmi=ALL-UNNAMED
    --add-exports java.rmi/sun.rmi.registry=ALL-UNNAMED
    --add-exports java.rmi/sun.rmi.server=ALL-UNNAMED
    --add-exports java.sql/java.sql=ALL-UNNAMED
    --add-exports java.base/java.lang.ref=ALL-UNNAMED
    --add-exports jdk.unsupported/sun.misc=ALL-UNNAMED
    --add-exports jdk.compiler/com.sun.tools.javac.file=ALL-UNNAMED
    --add-exports jdk.attach/sun.tools.attach=ALL-UNNAMED
    --add-opens java.base/java.lang.module=ALL-UNNAMED
    --add-opens java.base/jdk.internal.loader=ALL-UNNAMED
    --add-opens java.base/jdk.internal.ref=ALL-UNNAMED
    --add-opens java.base/jdk.internal.reflect=ALL-UNNAMED
    --add-opens java.base/jdk.internal.math=ALL-UNNAMED
    --add-opens java.base/jdk.internal.module=ALL-UNNAMED
    --add-opens java.base/jdk.internal.util.jar=ALL-UNNAMED
    --add-opens jdk.management/com.sun.management.internal=ALL-UNNAMED
    --add-opens java.base/sun.nio.ch=ALL-UNNAMED
    --add-opens java.base/java.io=ALL-UNNAMED
    --add-opens java.base/java.lang.reflect=ALL-UNNAMED
    --add-opens jdk.compiler/com.sun.tools.javac=ALL-UNNAMED
    --add-opens java.base/java.lang=ALL-UNNAMED
    --add-opens java.base/java.util=ALL-UNNAMED
    -Dio.netty.tryReflectionSetAccessible=true
    -Dio.netty.allocator.useCacheForAllThreads=true
    -Dio.netty.allocator.maxOrder=11
    # cassandra-env.sh
    "-Xms$heap" "-Xmx$heap" -XX:+UseCondCardMark
    "-XX:HeapDumpPath=$dir/logs"
    "-XX:OnOutOfMemoryError=kill -9 %p"
    "-Dcassandra.jmx.local.port=$(cass_jmx "$n")"
    -Dcom.sun.management.jmxremote.authenticate=false
    # bin/cassandra
    "-Dlogback.configurationFile=$dir/conf/logback.xml"
    "-Dcassandra.logdir=$dir/logs"
    "-Dcassandra.storagedir=$dir"
    "-Dcassandra.config=file://$dir/conf/cassandra.yaml"
    "-Dcassandra.triggers_dir=$dir/conf/triggers"
    -Dcassandra-foreground=yes
    # fast test start
    -Dcassandra.size_recorder_interval=5
    -Dcassandra.skip_wait_for_gossip_to_settle=0
    -Dcassandra.superuser_setup_delay_ms=0
    "$(cass_marker "$n")"
  )
  if [[ -n "$jamm" ]]; then JVM_OPTS+=("-javaagent:$jamm"); fi
  # Ring delay (default 30 s) is how long a new node waits to learn the ring before it picks
  # tokens. On loopback gossip settles in well under a second.
  if [[ "$n" == 1 || "$n" == "$CASS_AUTH_NODE" || "$n" == "$CASS_FAULT_NODE" ]]; then
    JVM_OPTS+=(-Dcassandra.ring_delay_ms=1000)
  else
    JVM_OPTS+=(-Dcassandra.ring_delay_ms=5000)
  fi
}

cqlsh_ok() {
  local ip="$1"
  shift
  timeout 20 "$VENV/bin/cqlsh" "$ip" 9042 --connect-timeout=5 --request-timeout=10 "$@" \
    -e 'SELECT release_version FROM system.local' >/dev/null 2>&1
}

# cqlsh login arguments of node N: the default superuser on the auth node, none elsewhere.
cass_login() {
  if [[ "$1" == "$CASS_AUTH_NODE" ]]; then echo "-u cassandra -p cassandra"; fi
}

# The auth node's test role; its superuser creates it once the node answers.
ensure_cassandra_auth_role() {
  local ip logf
  ip="$(cass_ip "$CASS_AUTH_NODE")"
  logf="$(cass_log "$CASS_AUTH_NODE")"
  timeout 30 "$VENV/bin/cqlsh" "$ip" 9042 -u cassandra -p cassandra --request-timeout=20 -e \
    "CREATE ROLE IF NOT EXISTS $CASS_AUTH_USER WITH PASSWORD = '$CASS_AUTH_PASSWORD' AND LOGIN = true AND SUPERUSER = true" \
    >>"$logf" 2>&1 || fail_service "cassandra node$CASS_AUTH_NODE" "$logf" "creating role $CASS_AUTH_USER failed"
}

# nodetool status on node N lists at least COUNT nodes, all UN.
cass_ring_up() {
  local n="$1" count="$2" out un
  out="$(timeout 30 "$BIN/nodetool" -h 127.0.0.1 -p "$(cass_jmx "$n")" status 2>/dev/null)" || return 1
  un="$(grep -c '^UN ' <<<"$out" || true)"
  ! grep -qE '^(D|U)[LJM] ' <<<"$out" && [[ "$un" -ge "$count" ]]
}

# Launches node N's JVM (config, TLS certificates and a fresh log first).
launch_cassandra_node() {
  local n="$1" home="$2" ip heap logf
  ip="$(cass_ip "$n")"
  logf="$(cass_log "$n")"
  if port_open "$ip" 9042; then
    die "cassandra node$n: $ip:9042 is already in use by a process this script did not start"
  fi
  heap=768M
  [[ "$n" == 1 ]] && heap=1G
  [[ "$n" == "$CASS_AUTH_NODE" || "$n" == "$CASS_FAULT_NODE" ]] && heap=512M
  make_cassandra_tls_certs
  wait_out_cassandra_quarantine "$n"
  write_cassandra_conf "$n" "$home"
  cassandra_jvm_opts "$n" "$home" "$heap"
  rotate_log "$logf"
  log "starting cassandra node$n on $ip:9042 (heap $heap, JMX 127.0.0.1:$(cass_jmx "$n"), log $logf) ..."
  rm -f "$(cass_pidfile "$n")"
  MAX_HEAP_SIZE="$heap" HEAP_NEWSIZE=200M MALLOC_ARENA_MAX=4 \
    start_detached "$(cass_pidfile "$n")" "$logf" \
    java "${JVM_OPTS[@]}" -cp "$(cass_node_dir "$n")/conf:$home/lib/*" \
    org.apache.cassandra.service.CassandraDaemon -f ||
    fail_service "cassandra node$n" "$logf" "process did not start"
}

start_cassandra_node() {
  local n="$1" expect_ring="${2:-1}" home pid ip logf t0 attempt=1
  home="$(cassandra_home)"
  ip="$(cass_ip "$n")"
  logf="$(cass_log "$n")"
  if pid="$(cass_pid "$n")"; then
    log "cassandra node$n already running (pid $pid, $ip:9042)"
    if ! grep -q '^client_encryption_options:' "$(cass_node_dir "$n")/conf/cassandra.yaml" 2>/dev/null; then
      log "warning: cassandra node$n was started by an older services.sh, without TLS on 9042;" \
        "to apply the current config: scripts/services.sh cassandra-restart-node $n"
    fi
  else
    # A node started earlier whose pid file is gone: adopt it instead of starting a second JVM.
    pid="$(find_by_marker "$(cass_marker "$n")" | head -n1)"
    if [[ -n "$pid" ]]; then
      log "cassandra node$n found running without pid file (pid $pid), adopting it"
      echo "$pid" >"$(cass_pidfile "$n")"
    else
      launch_cassandra_node "$n" "$home"
    fi
  fi
  # wait: CQL port, then a cqlsh query
  t0=$SECONDS
  while true; do
    pid="$(cat "$(cass_pidfile "$n")" 2>/dev/null || true)"
    if ! pid_alive "$pid" "$(cass_marker "$n")"; then
      # A joining node that found no seed in gossip gave up at once; the seed may still have
      # been forgetting an earlier node at this address. Once more, from an empty data dir.
      if [[ "$n" != 1 && "$attempt" == 1 ]] && grep -q 'Unable to contact any seeds' "$logf"; then
        log "cassandra node$n could not contact the seed while joining; retrying once from empty data in ${CASS_RETRY_S}s ..."
        attempt=2
        rm -rf "$(cass_node_dir "$n")"
        sleep "$CASS_RETRY_S"
        launch_cassandra_node "$n" "$home"
        t0=$SECONDS
        continue
      fi
      fail_service "cassandra node$n" "$logf" "process exited during startup"
    fi
    # shellcheck disable=SC2046 # cass_login prints separate words
    if port_open "$ip" 9042 && cqlsh_ok "$ip" $(cass_login "$n"); then break; fi
    ((SECONDS - t0 < CASS_WAIT)) ||
      fail_service "cassandra node$n" "$logf" "not answering CQL on $ip:9042 after ${CASS_WAIT}s"
    sleep 1
  done
  if [[ "$expect_ring" -gt 1 ]]; then
    while ! cass_ring_up "$n" "$expect_ring"; do
      ((SECONDS - t0 < CASS_WAIT)) ||
        fail_service "cassandra node$n" "$logf" "nodetool status does not show $expect_ring nodes UN after ${CASS_WAIT}s"
      sleep 2
    done
  fi
  if [[ "$n" == "$CASS_AUTH_NODE" ]]; then ensure_cassandra_auth_role; fi
  log "cassandra node$n ready on $ip:9042 ($((SECONDS - t0))s)"
}

# Remove stopped nodes N > KEEP from node 1's ring (so a 1-node `up` after a 3-node cluster
# has no DOWN members owning token ranges) and delete their data; only when none of them runs.
forget_extra_cassandra_nodes() {
  local keep="$1" n any=0 extra=()
  for ((n = keep + 1; n <= 3; n++)); do
    if cass_pid "$n" >/dev/null; then any=1; fi
    if [[ -d "$(cass_node_dir "$n")/data" ]]; then extra+=("$n"); fi
  done
  [[ "$any" == 0 && ${#extra[@]} -gt 0 ]] || return 0
  for n in "${extra[@]}"; do
    log "removing stopped cassandra node$n ($(cass_ip "$n")) from the ring and deleting its data (up --cassandra-nodes 3 re-adds it) ..."
    timeout 120 "$BIN/nodetool" -h 127.0.0.1 -p "$(cass_jmx 1)" assassinate "$(cass_ip "$n")" >>"$(cass_log 1)" 2>&1 ||
      log "warning: nodetool assassinate $(cass_ip "$n") failed (see $(cass_log 1))"
    rm -rf "$(cass_node_dir "$n")"
    date +%s >"$(cass_forgotten "$n")"
  done
}

# The seed ignores an assassinated address's gossip for 2 × ring_delay (60 s), and a node that
# bootstraps from that address in that window dies with "Unable to contact any seeds": wait it out.
wait_out_cassandra_quarantine() {
  local n="$1" since left
  since="$(cat "$(cass_forgotten "$n")" 2>/dev/null || true)"
  [[ "$since" =~ ^[0-9]+$ ]] || return 0
  left=$((since + CASS_QUARANTINE_S - $(date +%s)))
  if ((left > 0)); then
    log "cassandra node$n was removed from the ring moments ago; waiting ${left}s for the seed to accept its address again ..."
    sleep "$left"
  fi
  rm -f "$(cass_forgotten "$n")"
}

stop_cassandra_node() {
  local n="$1" pid
  if pid="$(cass_pid "$n")"; then
    log "stopping cassandra node$n (pid $pid) ..."
    stop_pid "$pid" "$(cass_marker "$n")" "cassandra node$n" 60
  fi
  # leftovers without pid file
  for pid in $(find_by_marker "$(cass_marker "$n")"); do
    log "stopping stray cassandra node$n (pid $pid) ..."
    stop_pid "$pid" "$(cass_marker "$n")" "cassandra node$n" 60
  done
  rm -f "$(cass_pidfile "$n")"
}

# ---------------------------------------------------------------------------
# PostgreSQL
# ---------------------------------------------------------------------------

PG_BIN=""
ensure_postgres_installed() {
  PG_BIN="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1 || true)"
  if [[ -z "$PG_BIN" || ! -x "$PG_BIN/postgres" ]]; then
    log "installing PostgreSQL from Debian packages (apt-get) ..."
    { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql; } >>"$LOGS/postgres-install.log" 2>&1 ||
      fail_service "postgres install" "$LOGS/postgres-install.log" "apt-get install postgresql failed"
    PG_BIN="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1 || true)"
    [[ -x "$PG_BIN/postgres" ]] || fail_service "postgres install" "$LOGS/postgres-install.log" "no postgres binary after install"
  fi
  id -u postgres >/dev/null 2>&1 ||
    useradd --system --home-dir "$STATE/pg" --shell /usr/sbin/nologin postgres
  command -v openssl >/dev/null || { apt-get update && apt-get install -y openssl; } >>"$LOGS/postgres-install.log" 2>&1
}

as_pg() { runuser -u postgres -- "$@"; }

# The pgserver wheel's PostgreSQL and pgvector, unpacked into $PG_VECTOR_DIR.
ensure_pgvector_installed() {
  [[ -x "$PG_VECTOR_BIN/postgres" ]] && return 0
  log "installing PostgreSQL with pgvector (pgserver $PGSERVER_VERSION wheel from PyPI) ..."
  local tmp="$STATE/pgserver-download"
  rm -rf "$tmp" "$PG_VECTOR_DIR"
  "$VENV/bin/python" -m pip download -q --disable-pip-version-check --no-deps \
    --only-binary=:all: --platform manylinux2014_x86_64 --python-version 3.11 \
    -d "$tmp" "pgserver==$PGSERVER_VERSION" >>"$LOGS/pgvector-install.log" 2>&1 ||
    fail_service pg-vector "$LOGS/pgvector-install.log" "pip download pgserver failed"
  mkdir -p "$PG_VECTOR_DIR"
  "$VENV/bin/python" -m zipfile -e "$tmp"/pgserver-*.whl "$PG_VECTOR_DIR" >>"$LOGS/pgvector-install.log" 2>&1 ||
    fail_service pg-vector "$LOGS/pgvector-install.log" "unpacking the pgserver wheel failed"
  rm -rf "$tmp"
  # zip keeps no modes: the binaries must run, and the postgres OS user must read it all.
  chmod -R a+rX "$PG_VECTOR_DIR"
  chmod a+x "$PG_VECTOR_BIN"/*
  [[ -x "$PG_VECTOR_BIN/postgres" ]] ||
    fail_service pg-vector "$LOGS/pgvector-install.log" "no postgres binary in the pgserver wheel"
}

# node ids: 1 2 3 (ports 54320..54322), tls (port 54330) and vector (port 54331, pgvector)
pg_bin() { if [[ "$1" == vector ]]; then echo "$PG_VECTOR_BIN"; else echo "$PG_BIN"; fi; }
pg_port() {
  case "$1" in
    tls) echo "$PG_TLS_PORT" ;;
    vector) echo "$PG_VECTOR_PORT" ;;
    *) echo $((PG_BASE_PORT + $1 - 1)) ;;
  esac
}
pg_name() {
  case "$1" in
    tls|vector) echo "pg-$1" ;;
    *) echo "pg-node$1" ;;
  esac
}
pg_data() { echo "$STATE/pg/$(pg_name "$1")"; }
pg_log()  { echo "$LOGS/$(pg_name "$1").log"; }
pg_host() { if [[ "$1" == tls ]]; then echo localhost; else echo 127.0.0.1; fi; }
pg_url()  {
  if [[ "$1" == tls ]]; then
    echo "postgresql://ferry:ferry@localhost:$PG_TLS_PORT/ferry?sslmode=verify-full"
  else
    echo "postgresql://ferry:ferry@127.0.0.1:$(pg_port "$1")/ferry"
  fi
}

pg_pid() {
  local id="$1" pid
  pid="$(head -n1 "$(pg_data "$id")/postmaster.pid" 2>/dev/null || true)"
  if pid_alive "$pid" "$(pg_data "$id")"; then echo "$pid"; return 0; fi
  return 1
}

make_tls_certs() {
  local d="$STATE/tls"
  [[ -f "$d/server.crt" && -f "$d/ca.crt" ]] && return 0
  command -v openssl >/dev/null || die "openssl not found (apt-get install openssl)"
  log "creating self-signed CA and server certificate in $d ..."
  mkdir -p "$d"
  (
    cd "$d"
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -keyout ca.key -out ca.crt \
      -subj "/CN=Ferry test CA" -addext "basicConstraints=critical,CA:TRUE" \
      -addext "keyUsage=critical,keyCertSign,cRLSign"
    openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj "/CN=localhost"
    printf '%s\n' "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1" \
      "basicConstraints=CA:FALSE" "keyUsage=critical,digitalSignature,keyEncipherment" \
      "extendedKeyUsage=serverAuth" >server.ext
    openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 \
      -out server.crt -extfile server.ext
  ) >>"$LOGS/tls.log" 2>&1 || fail_service "tls certs" "$LOGS/tls.log" "openssl failed"
  chmod 644 "$d/ca.crt" "$d/server.crt"
  chmod 600 "$d/ca.key" "$d/server.key"
}

# Cassandra's TLS material, signed by the same test CA as the PostgreSQL TLS instance:
#   cassandra.crt/.key  server certificate, SANs 127.0.0.1..127.0.0.3 and localhost
#   cassandra.p12       the same as a PKCS12 keystore for Cassandra (password ferry-test)
#   cassandra-truststore.p12  the CA, for Cassandra to check client certificates (keytool)
#   client.crt/.key     a client certificate (extendedKeyUsage clientAuth) for mutual-TLS configs
# Remade when missing or older than ca.crt.
CASS_KEYSTORE_PASSWORD=ferry-test
make_cassandra_tls_certs() {
  local d="$STATE/tls"
  make_tls_certs
  if [[ -s "$d/cassandra.p12" && -s "$d/cassandra-truststore.p12" && -s "$d/client.crt" &&
    "$d/cassandra.p12" -nt "$d/ca.crt" ]]; then
    return 0
  fi
  log "creating Cassandra server certificate, PKCS12 keystore and client certificate in $d ..."
  (
    cd "$d"
    openssl req -newkey rsa:2048 -nodes -keyout cassandra.key -out cassandra.csr -subj "/CN=ferry-cassandra"
    printf '%s\n' "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:127.0.0.2,IP:127.0.0.3" \
      "basicConstraints=CA:FALSE" "keyUsage=critical,digitalSignature,keyEncipherment" \
      "extendedKeyUsage=serverAuth" >cassandra.ext
    openssl x509 -req -in cassandra.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 \
      -out cassandra.crt -extfile cassandra.ext
    openssl req -newkey rsa:2048 -nodes -keyout client.key -out client.csr -subj "/CN=ferry-client"
    printf '%s\n' "basicConstraints=CA:FALSE" "keyUsage=critical,digitalSignature" \
      "extendedKeyUsage=clientAuth" >client.ext
    openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 \
      -out client.crt -extfile client.ext
    rm -f cassandra.p12.tmp
    openssl pkcs12 -export -in cassandra.crt -inkey cassandra.key -certfile ca.crt -name cassandra \
      -out cassandra.p12.tmp -passout "pass:$CASS_KEYSTORE_PASSWORD"
    # Java 17 must be able to open it, as Cassandra will at start.
    keytool -list -keystore cassandra.p12.tmp -storetype PKCS12 -storepass "$CASS_KEYSTORE_PASSWORD"
    rm -f cassandra-truststore.p12
    keytool -importcert -noprompt -alias ferry-test-ca -file ca.crt -keystore cassandra-truststore.p12 \
      -storetype PKCS12 -storepass "$CASS_KEYSTORE_PASSWORD"
    mv -f cassandra.p12.tmp cassandra.p12
  ) >>"$LOGS/tls.log" 2>&1 || fail_service "cassandra tls certs" "$LOGS/tls.log" "openssl/keytool failed"
  chmod 644 "$d/cassandra.crt" "$d/client.crt"
  chmod 600 "$d/cassandra.key" "$d/client.key" "$d/cassandra.p12"
}

pg_init() {
  local id="$1" data port logf pw
  data="$(pg_data "$id")"
  port="$(pg_port "$id")"
  logf="$(pg_log "$id")"
  [[ -f "$data/PG_VERSION" ]] && return 0
  log "initdb $(pg_name "$id") in $data ..."
  mkdir -p "$STATE/pg" "$STATE/pg/sock"
  chown postgres: "$STATE/pg/sock"
  chmod 755 "$STATE/pg"
  as_pg test -x "$STATE/pg" ||
    die "the postgres OS user cannot reach $STATE/pg (a parent directory is not world-executable); set FERRY_SERVICES_DIR elsewhere"
  rm -rf "$data"
  mkdir -p "$data"
  chown postgres: "$data"
  chmod 700 "$data"
  pw="$STATE/pg/.pwfile"
  echo ferry >"$pw"
  chown postgres: "$pw"
  chmod 600 "$pw"
  local locale=(--locale=C.UTF-8)
  locale -a 2>/dev/null | grep -qix 'c.utf-\?8' || locale=(--no-locale)
  as_pg "$(pg_bin "$id")/initdb" -D "$data" -U ferry --pwfile="$pw" -E UTF8 "${locale[@]}" \
    --auth-local=trust --auth-host=scram-sha-256 >>"$logf" 2>&1 ||
    fail_service "$(pg_name "$id")" "$logf" "initdb failed"
  rm -f "$pw"
  {
    echo ""
    echo "# --- scripts/services.sh ---"
    echo "port = $port"
    if [[ "$id" == tls ]]; then
      echo "listen_addresses = '127.0.0.1,::1'"
    else
      echo "listen_addresses = '127.0.0.1'"
    fi
    echo "unix_socket_directories = '$STATE/pg/sock'"
    echo "max_connections = 300"
    echo "shared_buffers = 256MB"
    echo "max_wal_size = 4GB"
    echo "password_encryption = 'scram-sha-256'"
    echo "log_line_prefix = '%m [%p] %q%u@%d '"
    if [[ "$id" == tls ]]; then
      echo "ssl = on"
      echo "ssl_cert_file = 'server.crt'"
      echo "ssl_key_file = 'server.key'"
    fi
  } >>"$data/postgresql.conf"
  if [[ "$id" == tls ]]; then
    cp "$STATE/tls/server.crt" "$STATE/tls/server.key" "$data/"
    chown postgres: "$data/server.crt" "$data/server.key"
    chmod 600 "$data/server.key"
    cat >"$data/pg_hba.conf" <<'EOF'
# scripts/services.sh: TLS only over TCP
local   all  all                 trust
hostssl all  all  127.0.0.1/32   scram-sha-256
hostssl all  all  ::1/128        scram-sha-256
EOF
  else
    cat >"$data/pg_hba.conf" <<'EOF'
# scripts/services.sh
local   all  all                 trust
host    all  all  127.0.0.1/32   scram-sha-256
host    all  all  ::1/128        scram-sha-256
EOF
  fi
  chown postgres: "$data/pg_hba.conf"
}

pg_psql() {
  local id="$1"
  shift
  as_pg "$(pg_bin "$id")/psql" -X -q -v ON_ERROR_STOP=1 -h "$STATE/pg/sock" -p "$(pg_port "$id")" -U ferry "$@"
}

# The yb_servers() stand-in lives in its own database, ferry_yb, so that only placement tests
# (which connect to /ferry_yb) see a "YugabyteDB cluster"; every other test uses database ferry
# on node 1 alone, as plain PostgreSQL.
install_yb_servers() {
  local id="$1"
  if [[ "$(pg_psql "$id" -d postgres -Atc "SELECT 1 FROM pg_database WHERE datname='ferry_yb'")" != 1 ]]; then
    pg_psql "$id" -d postgres -c 'CREATE DATABASE ferry_yb' >>"$(pg_log "$id")" 2>&1 ||
      fail_service "$(pg_name "$id")" "$(pg_log "$id")" "CREATE DATABASE ferry_yb failed"
  fi
  # Earlier versions of this script put it into database ferry.
  pg_psql "$id" -d ferry -c 'DROP FUNCTION IF EXISTS yb_servers()' >>"$(pg_log "$id")" 2>&1 || true
  pg_psql "$id" -d ferry_yb >>"$(pg_log "$id")" 2>&1 <<'EOF' || fail_service "$(pg_name "$id")" "$(pg_log "$id")" "creating yb_servers() failed"
CREATE OR REPLACE FUNCTION yb_servers()
RETURNS TABLE(host text, port bigint, num_connections int, node_type text, cloud text,
              region text, zone text, public_ip text, uuid text)
LANGUAGE sql STABLE AS $$
  VALUES
    ('127.0.0.1'::text, 54320::bigint, 0, 'primary'::text, 'cloud1'::text, 'region1'::text, 'zone1'::text,
     '127.0.0.1'::text, '00000000000000000000000000054320'::text),
    ('127.0.0.1', 54321, 0, 'primary', 'cloud1', 'region1', 'zone2', '127.0.0.1', '00000000000000000000000000054321'),
    ('127.0.0.1', 54322, 0, 'primary', 'cloud1', 'region2', 'zone1', '127.0.0.1', '00000000000000000000000000054322')
$$;
COMMENT ON FUNCTION yb_servers() IS 'Stand-in for YugabyteDB yb_servers(), written by scripts/services.sh';
EOF
}

start_pg_node() {
  local id="$1" with_yb="${2:-0}" data port logf name pid t0
  data="$(pg_data "$id")"
  port="$(pg_port "$id")"
  logf="$(pg_log "$id")"
  name="$(pg_name "$id")"
  t0=$SECONDS
  [[ "$id" == tls ]] && make_tls_certs
  pg_init "$id"
  if pid="$(pg_pid "$id")"; then
    log "$name already running (pid $pid, 127.0.0.1:$port)"
  else
    if port_open 127.0.0.1 "$port"; then
      die "$name: 127.0.0.1:$port is already in use by a process this script did not start"
    fi
    rm -f "$data/postmaster.pid"
    log "starting $name on 127.0.0.1:$port (log $logf) ..."
    chown postgres: "$logf" 2>/dev/null || { touch "$logf"; chown postgres: "$logf"; }
    setsid runuser -u postgres -- "$(pg_bin "$id")/pg_ctl" -D "$data" -l "$logf" -w -t "$PG_WAIT" start \
      >>"$LOGS/pg_ctl.log" 2>&1 </dev/null ||
      fail_service "$name" "$logf" "pg_ctl start failed"
  fi
  local i
  for ((i = 0; i < PG_WAIT * 2; i++)); do
    "$(pg_bin "$id")/pg_isready" -q -h 127.0.0.1 -p "$port" && break
    sleep 0.5
  done
  "$(pg_bin "$id")/pg_isready" -q -h 127.0.0.1 -p "$port" ||
    fail_service "$name" "$logf" "pg_isready fails on 127.0.0.1:$port after ${PG_WAIT}s"
  if [[ "$(pg_psql "$id" -d postgres -Atc "SELECT 1 FROM pg_database WHERE datname='ferry'")" != 1 ]]; then
    pg_psql "$id" -d postgres -c 'CREATE DATABASE ferry' >>"$logf" 2>&1 ||
      fail_service "$name" "$logf" "CREATE DATABASE ferry failed"
  fi
  if [[ "$with_yb" == 1 ]]; then install_yb_servers "$id"; fi
  if [[ "$id" == vector ]]; then
    pg_psql "$id" -d ferry -c 'CREATE EXTENSION IF NOT EXISTS vector' >>"$logf" 2>&1 ||
      fail_service "$name" "$logf" "CREATE EXTENSION vector failed"
  fi
  log "$name ready on 127.0.0.1:$port ($((SECONDS - t0))s)"
}

stop_pg_node() {
  local id="$1" data pid
  data="$(pg_data "$id")"
  if pid="$(pg_pid "$id")"; then
    log "stopping $(pg_name "$id") (pid $pid) ..."
    runuser -u postgres -- "$(pg_bin "$id")/pg_ctl" -D "$data" -m fast -w -t 60 stop >>"$LOGS/pg_ctl.log" 2>&1 ||
      stop_pid "$pid" "$data" "$(pg_name "$id")" 30
  fi
}

# ---------------------------------------------------------------------------
# moto (S3)
# ---------------------------------------------------------------------------

MOTO_MARKER="moto_server -H 127.0.0.1 -p $MOTO_PORT"
moto_pid() { service_pid moto "$MOTO_MARKER"; }

# service_pid NAME MARKER: the pid in $RUN/NAME.pid, if that process still runs.
service_pid() {
  local pid
  pid="$(cat "$RUN/$1.pid" 2>/dev/null || true)"
  if pid_alive "$pid" "$2"; then echo "$pid"; return 0; fi
  return 1
}

# stop_service NAME MARKER: stops NAME (its pid file's process, and any stray one with MARKER).
stop_service() {
  local name="$1" marker="$2" pid
  if pid="$(service_pid "$name" "$marker")"; then
    log "stopping $name (pid $pid) ..."
    stop_pid "$pid" "$marker" "$name" 20
  fi
  for pid in $(find_by_marker "$marker"); do stop_pid "$pid" "$marker" "$name" 20; done
  rm -f "$RUN/$name.pid"
}

# start_http_service NAME PORT MARKER CMD...: adopts NAME if it runs (its pid file, or a process
# with MARKER on its command line), else starts CMD detached with its log in $LOGS/NAME.log; then
# waits until something answers HTTP on 127.0.0.1:PORT.
start_http_service() {
  local name="$1" port="$2" marker="$3" pidfile="$RUN/$1.pid" logf="$LOGS/$1.log" pid i code=""
  shift 3
  if pid="$(service_pid "$name" "$marker")"; then
    log "$name already running (pid $pid, 127.0.0.1:$port)"
  else
    pid="$(find_by_marker "$marker" | head -n1)"
    if [[ -n "$pid" ]]; then
      echo "$pid" >"$pidfile"
    else
      port_open 127.0.0.1 "$port" &&
        die "$name: 127.0.0.1:$port is already in use by a process this script did not start"
      rotate_log "$logf"
      log "starting $name on 127.0.0.1:$port (log $logf) ..."
      rm -f "$pidfile"
      start_detached "$pidfile" "$logf" "$@" || fail_service "$name" "$logf" "process did not start"
    fi
  fi
  for ((i = 0; i < 120; i++)); do
    pid="$(cat "$pidfile" 2>/dev/null || true)"
    pid_alive "$pid" "$marker" || fail_service "$name" "$logf" "process exited during startup"
    code="$(curl -s -o /dev/null -m 2 -w '%{http_code}' "http://127.0.0.1:$port/" || true)"
    [[ "$code" =~ ^[1-5][0-9][0-9]$ ]] && return 0
    sleep 0.5
  done
  fail_service "$name" "$logf" "no HTTP answer on 127.0.0.1:$port"
}

start_moto() {
  local t0=$SECONDS
  start_http_service moto "$MOTO_PORT" "$MOTO_MARKER" \
    "$VENV/bin/python" "$VENV/bin/moto_server" -H 127.0.0.1 -p "$MOTO_PORT"
  log "moto ready on http://127.0.0.1:$MOTO_PORT ($((SECONDS - t0))s)"
}

# ---------------------------------------------------------------------------
# Azurite (Azure Blob Storage emulator, from npm)
# ---------------------------------------------------------------------------
AZURITE_MARKER="--blobPort $AZURITE_PORT"
azurite_pid() { service_pid azurite "$AZURITE_MARKER"; }

ensure_azurite_installed() {
  [[ -x "$AZURITE_DIR/node_modules/.bin/azurite-blob" ]] && return 0
  command -v npm >/dev/null || die "npm not found (needed to install Azurite for --azure)"
  log "installing Azurite $AZURITE_VERSION from npm into $AZURITE_DIR ..."
  mkdir -p "$AZURITE_DIR"
  npm install --no-audit --no-fund --loglevel=error --prefix "$AZURITE_DIR" "azurite@$AZURITE_VERSION" \
    >>"$LOGS/azurite-install.log" 2>&1 ||
    fail_service azurite "$LOGS/azurite-install.log" "npm install azurite@$AZURITE_VERSION failed"
}

# Creates container NAME with a Shared Key request (Azurite has no anonymous writes); an existing
# container is fine.
azurite_container() {
  python3 - "http://127.0.0.1:$AZURITE_PORT/$AZURITE_ACCOUNT" "$AZURITE_ACCOUNT" "$AZURITE_KEY" "$1" <<'PY'
import base64, email.utils, hashlib, hmac, sys, urllib.error, urllib.request
endpoint, account, key, container = sys.argv[1:5]
date, version = email.utils.formatdate(usegmt=True), "2021-08-06"
to_sign = ("PUT" + "\n" * 12 + f"x-ms-date:{date}\nx-ms-version:{version}\n"
           + f"/{account}/{account}/{container}\nrestype:container")
signature = hmac.new(base64.b64decode(key), to_sign.encode(), hashlib.sha256).digest()
request = urllib.request.Request(
    f"{endpoint}/{container}?restype=container", method="PUT",
    headers={"x-ms-date": date, "x-ms-version": version, "Content-Length": "0",
             "Authorization": f"SharedKey {account}:{base64.b64encode(signature).decode()}"})
try:
    urllib.request.urlopen(request, timeout=10)
except urllib.error.HTTPError as e:
    if e.code != 409:  # 409: it exists
        sys.exit(f"creating container {container}: HTTP {e.code}: {e.read().decode()[:300]}")
PY
}

start_azurite() {
  local t0=$SECONDS
  ensure_azurite_installed
  mkdir -p "$AZURITE_DIR/data"
  start_http_service azurite "$AZURITE_PORT" "$AZURITE_MARKER" \
    "$AZURITE_DIR/node_modules/.bin/azurite-blob" --blobHost 127.0.0.1 --blobPort "$AZURITE_PORT" \
    --location "$AZURITE_DIR/data" --skipApiVersionCheck --silent
  azurite_container "$AZURITE_CONTAINER" >>"$LOGS/azurite.log" 2>&1 ||
    fail_service azurite "$LOGS/azurite.log" "cannot create container $AZURITE_CONTAINER"
  log "azurite ready on http://127.0.0.1:$AZURITE_PORT/$AZURITE_ACCOUNT, container $AZURITE_CONTAINER ($((SECONDS - t0))s)"
}


# ---------------------------------------------------------------------------
# env / status
# ---------------------------------------------------------------------------

print_env() {
  local n id nodes="" pgnodes="" first=""
  for n in 1 2 3; do
    if cass_pid "$n" >/dev/null; then
      nodes="${nodes:+$nodes,}$(cass_ip "$n"):9042"
      [[ -z "$first" ]] && first="$(cass_ip "$n"):9042"
    fi
  done
  if [[ -n "$nodes" ]]; then
    echo "export FERRY_CASSANDRA=$first"
    echo "export FERRY_CASSANDRA_NODES=$nodes"
    if [[ -s "$STATE/tls/cassandra.p12" ]] &&
      grep -q '^client_encryption_options:' "$(cass_node_dir 1)/conf/cassandra.yaml" 2>/dev/null; then
      echo "export FERRY_CASSANDRA_TLS_CA=$STATE/tls/ca.crt"
      echo "export FERRY_CASSANDRA_TLS_CERT=$STATE/tls/client.crt"
      echo "export FERRY_CASSANDRA_TLS_KEY=$STATE/tls/client.key"
    fi
  fi
  if cass_pid "$CASS_AUTH_NODE" >/dev/null; then
    echo "export FERRY_CASSANDRA_AUTH=$(cass_ip "$CASS_AUTH_NODE"):9042"
    echo "export FERRY_CASSANDRA_AUTH_USER=$CASS_AUTH_USER"
    echo "export FERRY_CASSANDRA_AUTH_PASSWORD=$CASS_AUTH_PASSWORD"
  fi
  if cass_pid "$CASS_FAULT_NODE" >/dev/null; then
    echo "export FERRY_CASSANDRA_FAULT=$(cass_ip "$CASS_FAULT_NODE"):9042"
  fi
  if [[ -x "$BIN/cqlsh" ]]; then echo "export FERRY_CQLSH=$BIN/cqlsh"; fi
  if [[ -x "$BIN/nodetool" ]]; then echo "export FERRY_NODETOOL=$BIN/nodetool"; fi
  first=""
  for id in 1 2 3; do
    if pg_pid "$id" >/dev/null; then
      pgnodes="${pgnodes:+$pgnodes,}$(pg_url "$id")"
      [[ -z "$first" ]] && first="$(pg_url "$id")"
    fi
  done
  if [[ -n "$pgnodes" ]]; then
    echo "export FERRY_POSTGRES_URL='$first'"
    echo "export FERRY_POSTGRES_NODES='$pgnodes'"
  fi
  if pg_pid tls >/dev/null; then
    echo "export FERRY_POSTGRES_TLS_URL='$(pg_url tls)'"
    echo "export FERRY_POSTGRES_TLS_CA=$STATE/tls/ca.crt"
  fi
  if pg_pid vector >/dev/null; then
    echo "export FERRY_PGVECTOR_URL='$(pg_url vector)'"
  fi
  if moto_pid >/dev/null; then
    echo "export FERRY_S3_ENDPOINT=http://127.0.0.1:$MOTO_PORT"
    echo "export AWS_ACCESS_KEY_ID=test"
    echo "export AWS_SECRET_ACCESS_KEY=test"
    echo "export AWS_REGION=us-east-1"
  fi
  if azurite_pid >/dev/null; then
    echo "export FERRY_AZURE_ENDPOINT=http://127.0.0.1:$AZURITE_PORT/$AZURITE_ACCOUNT"
    echo "export FERRY_AZURE_ACCOUNT=$AZURITE_ACCOUNT"
    echo "export FERRY_AZURE_KEY='$AZURITE_KEY'"
    echo "export FERRY_AZURE_CONTAINER=$AZURITE_CONTAINER"
  fi
}

print_status() {
  local n id pid state
  printf '%-16s %-8s %-8s %-26s %s\n' SERVICE STATE PID ADDRESS LOG
  for n in 1 2 3 "$CASS_AUTH_NODE" "$CASS_FAULT_NODE"; do
    [[ -d "$(cass_node_dir "$n")" ]] || [[ "$n" == 1 ]] || continue
    if pid="$(cass_pid "$n")"; then
      state=up; port_open "$(cass_ip "$n")" 9042 || state=starting
    else pid=-; state=down; fi
    printf '%-16s %-8s %-8s %-26s %s\n' "cassandra-node$n" "$state" "$pid" "$(cass_ip "$n"):9042 jmx:$(cass_jmx "$n")" "$(cass_log "$n")"
  done
  for id in 1 2 3 tls vector; do
    [[ -d "$(pg_data "$id")" ]] || [[ "$id" == 1 ]] || continue
    if pid="$(pg_pid "$id")"; then
      state=up; port_open 127.0.0.1 "$(pg_port "$id")" || state=starting
    else pid=-; state=down; fi
    printf '%-16s %-8s %-8s %-26s %s\n' "$(pg_name "$id")" "$state" "$pid" "127.0.0.1:$(pg_port "$id")" "$(pg_log "$id")"
  done
  if pid="$(moto_pid)"; then state=up; else pid=-; state=down; fi
  printf '%-16s %-8s %-8s %-26s %s\n' moto-s3 "$state" "$pid" "127.0.0.1:$MOTO_PORT" "$LOGS/moto.log"
  if pid="$(azurite_pid)"; then state=up; else pid=-; state=down; fi
  printf '%-16s %-8s %-8s %-26s %s\n' azurite "$state" "$pid" "127.0.0.1:$AZURITE_PORT" "$LOGS/azurite.log"
  local home
  home="$(cassandra_home)"
  printf 'state dir: %s   cassandra: %s\n' "$STATE" "${home:+$(cat "$home/VERSION" 2>/dev/null) ($home)}"
}

# ---------------------------------------------------------------------------
# commands
# ---------------------------------------------------------------------------

usage() {
  cat >&2 <<'EOF'
usage: scripts/services.sh COMMAND [FLAGS]
  up [--cassandra-nodes 1|2|3] [--pg-nodes 1|2|3] [--pg-tls] [--pg-vector] [--cassandra-auth] [--cassandra-fault] [--all]
                          start (idempotent) and print export lines; default: 1 Cassandra, 1 PostgreSQL, moto
                          --cassandra-auth: also a separate 1-node cluster with password auth on 127.0.0.4
                          --cassandra-fault: also a separate 1-node cluster on 127.0.0.5 that fault tests stop
                          --azure: also Azurite (Azure Blob Storage, npm) on 127.0.0.1:54350, container ferry
                          --pg-vector: also PostgreSQL 16 with pgvector (pgserver wheel, PyPI) on 127.0.0.1:54331
  down                    stop everything started here
  status                  what runs where (pid, address, log), then the export lines
  env                     only the export lines: eval "$(scripts/services.sh env)"
  cassandra-stop-node N   / cassandra-start-node N   (N = 1..3, 4: the --cassandra-auth node,
                          5: the --cassandra-fault node)
  cassandra-restart-node N  stop, rewrite cassandra.yaml, start: applies a changed config
  cassandra-kill-node N   SIGKILL node N (1..3 or 5; a crash, for fault tests)
  pg-stop-node N          / pg-start-node N          (N = 1..3 or tls)
State: ${FERRY_SERVICES_DIR:-/var/tmp/ferry-services}
EOF
}

cmd_up() {
  local cnodes=1 pgnodes=1 pgtls=0 pgvector=0 cauth=0 cfault=0 azure=0
  while [[ $# -gt 0 ]]; do
    case "$1" in
      --cassandra-nodes) cnodes="${2:?}"; shift 2 ;;
      --cassandra-nodes=*) cnodes="${1#*=}"; shift ;;
      --pg-nodes) pgnodes="${2:?}"; shift 2 ;;
      --pg-nodes=*) pgnodes="${1#*=}"; shift ;;
      --pg-tls) pgtls=1; shift ;;
      --pg-vector) pgvector=1; shift ;;
      --cassandra-auth) cauth=1; shift ;;
      --cassandra-fault) cfault=1; shift ;;
      --azure) azure=1; shift ;;
      --s3) shift ;; # moto is always on
      --all) cnodes=3; pgnodes=3; pgtls=1; shift ;;
      -h|--help) usage; exit 0 ;;
      *) usage; die "unknown flag: $1" ;;
    esac
  done
  [[ "$cnodes" =~ ^[1-3]$ ]] || die "--cassandra-nodes must be 1..3"
  [[ "$pgnodes" =~ ^[1-3]$ ]] || die "--pg-nodes must be 1..3"
  local t0=$SECONDS n
  ensure_dirs
  ensure_venv
  ensure_cassandra_installed
  write_cassandra_tools "$(cassandra_home)"
  ensure_postgres_installed
  start_moto
  [[ "$azure" == 1 ]] && start_azurite
  local yb=0
  [[ "$pgnodes" -gt 1 ]] && yb=1
  for ((n = 1; n <= pgnodes; n++)); do start_pg_node "$n" "$yb"; done
  [[ "$pgtls" == 1 ]] && start_pg_node tls 0
  if [[ "$pgvector" == 1 ]]; then ensure_pgvector_installed; start_pg_node vector 0; fi
  for ((n = 1; n <= cnodes; n++)); do start_cassandra_node "$n" "$([[ $cnodes -gt 1 ]] && echo "$n" || echo 1)"; done
  forget_extra_cassandra_nodes "$cnodes"
  [[ "$cauth" == 1 ]] && start_cassandra_node "$CASS_AUTH_NODE" 1
  [[ "$cfault" == 1 ]] && start_cassandra_node "$CASS_FAULT_NODE" 1
  log "all requested services up in $((SECONDS - t0))s"
  print_env
}

cmd_down() {
  local n id
  ensure_dirs
  PG_BIN="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1 || true)"
  # Cassandra nodes in parallel: each drains for a few seconds on SIGTERM.
  for n in "$CASS_FAULT_NODE" "$CASS_AUTH_NODE" 3 2 1; do stop_cassandra_node "$n" & done
  for id in tls 3 2 1; do
    [[ -n "$PG_BIN" ]] && stop_pg_node "$id"
  done
  stop_pg_node vector
  stop_service moto "$MOTO_MARKER"
  stop_service azurite "$AZURITE_MARKER"
  wait
  log "all services stopped"
}

main() {
  local cmd="${1:-}"
  [[ $# -gt 0 ]] && shift
  case "$cmd" in
    up) cmd_up "$@" ;;
    down) cmd_down ;;
    status)
      PG_BIN="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1 || true)"
      print_status >&2
      print_env
      ;;
    env) print_env ;;
    cassandra-stop-node)
      [[ "${1:-}" =~ ^[1-5]$ ]] || die "usage: cassandra-stop-node 1..5"
      stop_cassandra_node "$1"
      ;;
    cassandra-kill-node)
      # A crash, not a shutdown: SIGKILL, no drain. `cassandra-start-node N` brings it back.
      [[ "${1:-}" =~ ^([1-3]|$CASS_FAULT_NODE)$ ]] || die "usage: cassandra-kill-node 1..3|$CASS_FAULT_NODE"
      local pid
      if pid="$(cass_pid "$1")"; then
        log "killing cassandra node$1 (pid $pid) with SIGKILL"
        kill -9 "$pid"
        rm -f "$(cass_pidfile "$1")"
      else
        log "cassandra node$1 is not running"
      fi
      ;;
    cassandra-start-node)
      [[ "${1:-}" =~ ^[1-5]$ ]] || die "usage: cassandra-start-node 1..5"
      ensure_dirs; ensure_venv; ensure_cassandra_installed
      start_cassandra_node "$1" 1
      ;;
    cassandra-restart-node)
      [[ "${1:-}" =~ ^[1-5]$ ]] || die "usage: cassandra-restart-node 1..5"
      ensure_dirs; ensure_venv; ensure_cassandra_installed
      stop_cassandra_node "$1"
      start_cassandra_node "$1" 1
      ;;
    pg-stop-node)
      [[ "${1:-}" =~ ^([1-3]|tls|vector)$ ]] || die "usage: pg-stop-node 1..3|tls|vector"
      ensure_dirs
      PG_BIN="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1 || true)"
      stop_pg_node "$1"
      ;;
    pg-start-node)
      [[ "${1:-}" =~ ^([1-3]|tls)$ ]] || die "usage: pg-start-node 1..3|tls"
      ensure_dirs; ensure_postgres_installed
      local yb=0
      [[ "$1" != tls && ( "$1" != 1 || -d "$(pg_data 2)" ) ]] && yb=1
      start_pg_node "$1" "$yb"
      ;;
    -h|--help|help) usage ;;
    *) usage; exit 2 ;;
  esac
}

main "$@"
