#!/usr/bin/env bash
# Runs a Python script of scripts/ in a venv with pyarrow from PyPI, creating it on first use:
#   scripts/pyarrow.sh check_staged_parquet.py <staged table folder>
# The venv lives in $FERRY_PYARROW_VENV (default ~/.cache/ferry/pyarrow-venv).
set -euo pipefail
venv="${FERRY_PYARROW_VENV:-$HOME/.cache/ferry/pyarrow-venv}"
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import pyarrow' 2>/dev/null; then
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install --quiet pyarrow >&2
fi
script="$1"
shift
exec "$venv/bin/python" "$(dirname "$0")/$script" "$@"
