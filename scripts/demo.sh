#!/usr/bin/env bash
# A real migration on local services: Cassandra quickstart.events (100k generated rows) through
# the transform examples/quickstart/transforms/events.sql into PostgreSQL public.events.
#
#   scripts/demo.sh [ROWS]
set -euo pipefail
cd "$(dirname "$0")/.."
rows="${1:-100000}"

source scripts/lib/toolchain.sh
ensure_toolchain
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/ferry/target}"

echo "==> starting services (scripts/services.sh up)" >&2
eval "$(scripts/services.sh up)"

echo "==> building ferry and ferry-bench" >&2
cargo build --locked --bin ferry --bin ferry-bench
bin="$CARGO_TARGET_DIR/debug"

echo "==> creating quickstart.events in Cassandra and generating $rows rows" >&2
"$FERRY_CQLSH" 127.0.0.1 9042 -e "DROP KEYSPACE IF EXISTS quickstart"
"$FERRY_CQLSH" 127.0.0.1 9042 -f examples/quickstart/schema.cql
"$bin/ferry-bench" datagen --shape quickstart --table quickstart.events --rows "$rows"

echo "==> creating public.events in PostgreSQL" >&2
psql "$FERRY_POSTGRES_URL" -q -v ON_ERROR_STOP=1 -c "DROP TABLE IF EXISTS public.events" \
  -f examples/quickstart/target.sql

echo "==> ferry migrate -c examples/quickstart/ferry.toml" >&2
"$bin/ferry" migrate -c examples/quickstart/ferry.toml --report /tmp/ferry-demo-report.json

source_count=$("$FERRY_CQLSH" 127.0.0.1 9042 --request-timeout=120 \
  -e "SELECT count(*) FROM quickstart.events" | awk 'NR==4 {print $1}')
target_count=$(psql "$FERRY_POSTGRES_URL" -At -c "SELECT count(*) FROM public.events")
echo
echo "source rows (Cassandra quickstart.events): $source_count"
echo "target rows (PostgreSQL public.events):    $target_count"
echo
psql "$FERRY_POSTGRES_URL" -c "SELECT * FROM public.events ORDER BY account_id, event_id LIMIT 5"
echo "report: /tmp/ferry-demo-report.json"
if [ "$source_count" != "$target_count" ]; then
  echo "counts differ" >&2
  exit 1
fi
echo "counts match"
