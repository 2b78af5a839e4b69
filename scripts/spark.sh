#!/usr/bin/env bash
# The Spark anchor of `ferry-bench e2e` (benchmarks/spark/): installs it on first use, then runs it.
#
#   scripts/spark.sh setup
#       Creates, if missing or out of date, under ${FERRY_SPARK_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/ferry/spark}:
#       venv/  a Python venv with pyspark $PYSPARK (PyPI; it ships Spark and spark-submit),
#       jars/  spark-cassandra-connector_2.12 and the PostgreSQL JDBC driver with their runtime
#              dependencies (Maven Central, via `mvn dependency:copy-dependencies` on
#              benchmarks/spark/pom.xml),
#       job/   benchmarks/spark/TableMigrationJob.java compiled with javac against pyspark's jars.
#       Prints the versions as one JSON line. Needs python3 (3.8–3.11), a JDK 17 and Maven.
#
#   scripts/spark.sh run [--parallelism P] [--master MASTER] KEYSPACE.TABLE SCHEMA.TABLE
#       Runs the job with spark-submit in local mode: spark.default.parallelism P (default 16),
#       master local[P] unless --master is given (P task threads, so the P partitions, each one
#       JDBC connection and one COPY stream, all run at once as the seed's table says), driver
#       memory $FERRY_SPARK_DRIVER_MEMORY (default 2g). Reads FERRY_CASSANDRA (host:port, the
#       first of a comma-separated list) and FERRY_POSTGRES_URL (postgresql://user:pass@host:port/db).
#       The job prints one JSON line on stdout: rows, elapsed_s, … (TableMigrationJob.java).
set -euo pipefail

PYSPARK="3.5.9"
here="$(cd "$(dirname "$0")/.." && pwd)"
src="$here/benchmarks/spark"
home="${FERRY_SPARK_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/ferry/spark}"
venv="$home/venv"

log() { echo "spark.sh: $*" >&2; }
die() { log "$*"; exit 1; }

setup() {
  mkdir -p "$home"
  for tool in python3 javac java mvn; do
    command -v "$tool" >/dev/null || die "$tool is not installed (the Spark anchor needs python3, a JDK 17 and Maven)"
  done
  if [ "$("$venv/bin/python" -c 'import pyspark; print(pyspark.__version__)' 2>/dev/null)" != "$PYSPARK" ]; then
    log "installing pyspark $PYSPARK into $venv (about 320 MB)"
    python3 -m venv "$venv" >&2
    "$venv/bin/pip" install --quiet "pyspark==$PYSPARK" >&2
  fi
  # pyspark's package directory is a Spark distribution (bin/, jars/): SPARK_HOME for spark-submit,
  # which would otherwise look for pyspark with whatever python3 comes first on PATH.
  spark_home="$("$venv/bin/python" -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))')"

  # The jars, fetched again whenever the pom changes.
  local pom_sum
  pom_sum="$(sha256sum "$src/pom.xml" | cut -c1-16)"
  if [ ! -f "$home/jars/.pom-$pom_sum" ]; then
    log "fetching spark-cassandra-connector and the PostgreSQL JDBC driver from Maven Central"
    rm -rf "$home/jars.tmp"
    mvn -B -q -f "$src/pom.xml" dependency:copy-dependencies -DincludeScope=runtime \
      -DoutputDirectory="$home/jars.tmp" >&2 || die "mvn could not fetch the jars of $src/pom.xml"
    touch "$home/jars.tmp/.pom-$pom_sum"
    rm -rf "$home/jars"
    mv "$home/jars.tmp" "$home/jars"
  fi

  # The job, compiled again whenever its source changes.
  local job_sum
  job_sum="$(sha256sum "$src/TableMigrationJob.java" | cut -c1-16)"
  if [ ! -f "$home/job/$job_sum/job.jar" ]; then
    log "compiling TableMigrationJob.java"
    rm -rf "$home/job"
    mkdir -p "$home/job/$job_sum/classes"
    javac --release 17 -nowarn -d "$home/job/$job_sum/classes" \
      -cp "$spark_home/jars/*:$home/jars/*" "$src/TableMigrationJob.java" >&2
    jar --create --file "$home/job/$job_sum/job.jar" -C "$home/job/$job_sum/classes" . >&2
  fi
  job_jar="$home/job/$job_sum/job.jar"

  local connector_jar=("$home"/jars/spark-cassandra-connector_2.12-*.jar) pgjdbc_jar=("$home"/jars/postgresql-*.jar)
  local connector="${connector_jar[0]##*_2.12-}" pgjdbc="${pgjdbc_jar[0]##*/postgresql-}"
  connector="${connector%.jar}" pgjdbc="${pgjdbc%.jar}"
  versions="{\"pyspark\":\"$PYSPARK\",\"spark-cassandra-connector\":\"$connector\",\"pgjdbc\":\"$pgjdbc\",\"java\":\"$(java -version 2>&1 | head -1 | sed 's/"//g')\"}"
}

run() {
  local parallelism=16 master=""
  while [ $# -gt 0 ]; do
    case "$1" in
      --parallelism) parallelism="$2"; shift 2 ;;
      --master) master="$2"; shift 2 ;;
      --) shift; break ;;
      -*) die "unknown option $1" ;;
      *) break ;;
    esac
  done
  [ $# -eq 2 ] || die "usage: scripts/spark.sh run [--parallelism P] [--master MASTER] KEYSPACE.TABLE SCHEMA.TABLE"
  [ -n "${FERRY_POSTGRES_URL:-}" ] || die "FERRY_POSTGRES_URL is not set (eval \"\$(scripts/services.sh env)\")"
  master="${master:-local[$parallelism]}"
  setup

  local cassandra="${FERRY_CASSANDRA:-127.0.0.1:9042}"
  cassandra="${cassandra%%,*}"
  # postgresql://user:pass@host:port/db?sslmode=… → the JDBC URL, user and password, which go to
  # the job through its environment rather than its command line.
  local jdbc
  jdbc="$("$venv/bin/python" - <<'EOF'
import os, sys, urllib.parse as u
url = u.urlsplit(os.environ["FERRY_POSTGRES_URL"])
if url.scheme not in ("postgres", "postgresql") or not url.hostname:
    sys.exit("spark.sh: FERRY_POSTGRES_URL must be a postgresql://user:pass@host:port/db URL")
query = dict(u.parse_qsl(url.query))
params = {k: v for k, v in query.items() if k in ("sslmode", "sslrootcert")}
host = f"[{url.hostname}]" if ":" in url.hostname else url.hostname
print(f"jdbc:postgresql://{host}:{url.port or 5432}{url.path or '/'}" + ("?" + u.urlencode(params) if params else ""))
print(u.unquote(url.username or os.environ.get("USER", "")))
print(u.unquote(url.password or ""))
EOF
)"
  local all=("$home"/jars/*.jar) jars
  jars="$(IFS=,; echo "${all[*]}")"
  FERRY_SPARK_JDBC_URL="$(sed -n 1p <<<"$jdbc")" \
  FERRY_SPARK_PGUSER="$(sed -n 2p <<<"$jdbc")" \
  FERRY_SPARK_PGPASSWORD="$(sed -n 3p <<<"$jdbc")" \
  SPARK_HOME="$spark_home" \
  SPARK_LOCAL_IP=127.0.0.1 \
  exec "$spark_home/bin/spark-submit" \
    --master "$master" \
    --driver-memory "${FERRY_SPARK_DRIVER_MEMORY:-2g}" \
    --conf "spark.default.parallelism=$parallelism" \
    --conf "spark.cassandra.connection.host=${cassandra%:*}" \
    --conf "spark.cassandra.connection.port=${cassandra##*:}" \
    --conf "spark.ui.enabled=false" \
    --conf "spark.driver.extraJavaOptions=-Dlog4j2.configurationFile=file:$src/log4j2.properties" \
    --jars "$jars" \
    --class TableMigrationJob \
    "$job_jar" "$1" "$2"
}

case "${1:-}" in
  setup) setup; echo "$versions" ;;
  run) shift; run "$@" ;;
  *) die "usage: scripts/spark.sh setup | run [--parallelism P] [--master MASTER] KEYSPACE.TABLE SCHEMA.TABLE" ;;
esac
