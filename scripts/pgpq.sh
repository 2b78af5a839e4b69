#!/usr/bin/env bash
# Runs scripts/pgpq_encode.py in a venv with pgpq and pyarrow from PyPI, creating it on first use.
# The venv lives in $FERRY_PGPQ_VENV (default ~/.cache/ferry/pgpq-venv).
set -euo pipefail
venv="${FERRY_PGPQ_VENV:-$HOME/.cache/ferry/pgpq-venv}"
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import pgpq, pyarrow' 2>/dev/null; then
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install --quiet pgpq pyarrow >&2
fi
exec "$venv/bin/python" "$(dirname "$0")/pgpq_encode.py" "$@"
