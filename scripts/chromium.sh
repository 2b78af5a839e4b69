#!/usr/bin/env bash
# Headless Chromium for the test that looks at `ferry dry-run --html` the way a person would
# (tests/e2e/dryrun.rs) and for the screenshot in docs/dry-run.md.
#
#   scripts/chromium.sh          # installs Debian's `chromium` package if missing; prints its path
#
# Idempotent: does nothing but print the path when Chromium is already there. Needs root (apt-get),
# as scripts/services.sh does for PostgreSQL.
set -euo pipefail

log() { printf '[chromium] %s\n' "$*" >&2; }

find_chromium() {
  command -v chromium || command -v chromium-browser || true
}

path=$(find_chromium)
if [[ -z "$path" ]]; then
  logfile="${FERRY_SERVICES_DIR:-/var/tmp/ferry-services}/logs/chromium-install.log"
  mkdir -p "$(dirname "$logfile")"
  log "installing Debian's chromium package (apt-get); log: $logfile"
  if ! { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        chromium fonts-dejavu-core; } >>"$logfile" 2>&1; then
    log "ERROR: apt-get install chromium failed; last lines of $logfile:"
    tail -n 20 "$logfile" >&2
    exit 1
  fi
  path=$(find_chromium)
  [[ -n "$path" ]] || { log "ERROR: chromium installed but not on PATH"; exit 1; }
fi
echo "$path"
