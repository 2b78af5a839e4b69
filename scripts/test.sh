#!/usr/bin/env bash
# Runs Ferry's whole test suite against real local services.
#
#   scripts/test.sh            # services up, then every test
#   scripts/test.sh -- e2e     # extra arguments go to `cargo test` (the cluster phase is skipped)
#
# First a short static phase: scripts/validate-k8s.sh --self-test validates the Kubernetes
# example's manifests (examples/kubernetes/) against the Kubernetes schemas and Ferry's config
# (~10 s; the first time it also installs kubernetes-validate from PyPI into a venv).
#
# Then two phases: everything but the 3-node cluster tests on the default single Cassandra node,
# then `scripts/services.sh up --cassandra-nodes 3` and the cluster tests (`tests/e2e/cluster.rs`)
# on their own, since one of them crashes a node. Before the cluster grows, the ferry_* keyspaces
# of the first phase (and of ferry-bench) are dropped, so the new nodes have nothing to stream. Afterwards the extra nodes are stopped and
# removed from the ring again (FERRY_KEEP_CLUSTER=1 keeps them).
#
# The build goes to $CARGO_TARGET_DIR, by default a cache outside the clone so that fresh clones
# on the same machine reuse it; the build works the same without it.
set -euo pipefail
cd "$(dirname "$0")/.."

source scripts/lib/toolchain.sh
ensure_toolchain

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/ferry/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

echo "==> validating the Kubernetes manifests (scripts/validate-k8s.sh --self-test)" >&2
if ! scripts/validate-k8s.sh --self-test; then
  echo "error: the Kubernetes manifests in examples/kubernetes/ do not validate (problems above)" >&2
  exit 1
fi

# --cassandra-auth: the separate password-protected Cassandra (127.0.0.4) of the credential tests.
# --cassandra-fault: the separate Cassandra (127.0.0.5) that the fault tests stop mid-run.
echo "==> starting services (scripts/services.sh up --cassandra-auth --cassandra-fault --pg-nodes 3 --pg-tls --pg-vector --azure)" >&2
env_lines=$(scripts/services.sh up --cassandra-auth --cassandra-fault --pg-nodes 3 --pg-tls --pg-vector --azure)
eval "$env_lines"

echo "==> headless Chromium for the HTML report test (scripts/chromium.sh)" >&2
scripts/chromium.sh >/dev/null

echo "==> building tests" >&2
start=$(date +%s)
cargo test --workspace --no-run --locked
echo "==> build took $(( $(date +%s) - start ))s" >&2

if [ "${1:-}" = "--" ]; then shift; fi
if [ $# -gt 0 ]; then
  echo "==> running tests: $*" >&2
  cargo test --workspace --locked "$@"
  exit 0
fi

echo "==> running tests (single Cassandra node)" >&2
cargo test --workspace --locked -- --skip cluster::

# The cluster tests seed keyspaces of their own. Without the single-node phase's keyspaces
# (ferry_*: the tests' and ferry-bench's), nodes 2 and 3 join the ring in seconds instead of
# streaming all of that data while they bootstrap.
keyspaces=$("$FERRY_CQLSH" 127.0.0.1 9042 --request-timeout=60 \
  -e "SELECT keyspace_name FROM system_schema.keyspaces" | grep -oE '^ *ferry_[a-z0-9_]+' | tr -d ' ' || true)
if [ -n "$keyspaces" ]; then
  echo "==> dropping $(wc -w <<<"$keyspaces") ferry_* keyspace(s) before the cluster grows" >&2
  drops=""
  for k in $keyspaces; do drops+="DROP KEYSPACE IF EXISTS \"$k\";"; done
  "$FERRY_CQLSH" 127.0.0.1 9042 --request-timeout=120 -e "$drops"
fi

echo "==> starting the 3-node Cassandra cluster (scripts/services.sh up --cassandra-nodes 3)" >&2
start=$(date +%s)
# Not `eval "$(...)"`: that would hide a failing services.sh behind eval's own exit status.
env_lines=$(scripts/services.sh up --cassandra-nodes 3)
eval "$env_lines"
echo "==> cluster up in $(( $(date +%s) - start ))s; running the cluster tests" >&2
shrink() {
  if [ "${FERRY_KEEP_CLUSTER:-0}" != 1 ]; then
    echo "==> back to one Cassandra node" >&2
    scripts/services.sh cassandra-stop-node 3 || true
    scripts/services.sh cassandra-stop-node 2 || true
    scripts/services.sh up >/dev/null || true
  fi
}
trap shrink EXIT
cargo test --locked --test e2e cluster::
