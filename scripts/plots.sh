#!/usr/bin/env bash
# Draws benchmarks/plots/*.png from the JSON files ferry-bench writes (benchmarks/plot.py), with
# matplotlib from PyPI in a venv created on first use: $FERRY_PLOTS_VENV, default
# ~/.cache/ferry/plots-venv. Arguments go to plot.py: --results DIR (default benchmarks/results)
# and --out DIR (default benchmarks/plots).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="${FERRY_PLOTS_VENV:-$HOME/.cache/ferry/plots-venv}"
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import matplotlib' 2>/dev/null; then
  echo "creating $venv with matplotlib from PyPI" >&2
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install --quiet matplotlib >&2
fi
exec "$venv/bin/python" "$root/benchmarks/plot.py" "$@"
