#!/usr/bin/env bash
# Runs Ferry's whole test suite against real local services.
#
#   scripts/test.sh            # services up, then every test
#   scripts/test.sh -- e2e     # extra arguments go to `cargo test`
#
# The build goes to $CARGO_TARGET_DIR, by default a cache outside the clone so that fresh clones
# on the same machine reuse it; the build works the same without it.
set -euo pipefail
cd "$(dirname "$0")/.."

source scripts/lib/toolchain.sh
ensure_toolchain

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/ferry/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

# --cassandra-auth: the separate password-protected Cassandra (127.0.0.4) of the credential tests.
echo "==> starting services (scripts/services.sh up --cassandra-auth)" >&2
env_lines=$(scripts/services.sh up --cassandra-auth)
eval "$env_lines"

echo "==> building tests" >&2
start=$(date +%s)
cargo test --workspace --no-run --locked
echo "==> build took $(( $(date +%s) - start ))s" >&2

if [ "${1:-}" = "--" ]; then shift; fi
echo "==> running tests" >&2
cargo test --workspace --locked "$@"
