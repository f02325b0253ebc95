#!/usr/bin/env bash
# Rates the hardening of systemd/tidings.service with systemd-analyze and
# fails when the overall exposure level is above the limit (default 1.5;
# UNIT_EXPOSURE_MAX overrides). Needs systemd-analyze (Debian: `systemd`).
# Works offline: no running systemd is needed.
set -euo pipefail
cd "$(dirname "$0")/.."
UNIT="${1:-systemd/tidings.service}"
MAX="${UNIT_EXPOSURE_MAX:-1.5}"

if ! command -v systemd-analyze >/dev/null 2>&1; then
  echo "check-unit: systemd-analyze not found; install the systemd package" >&2
  exit 1
fi
if [ ! -f "$UNIT" ]; then
  echo "check-unit: $UNIT not found" >&2
  exit 1
fi

# systemd-analyze exits non-zero when the score is above its own threshold
# (--threshold, default 100), so its status alone says little: parse the line
#   → Overall exposure level for tidings.service: 1.1 OK 🙂
out=$(systemd-analyze security --offline=true --no-pager "$UNIT" 2>&1) || true
level=$(printf '%s\n' "$out" | sed -n 's/.*Overall exposure level for [^:]*: \([0-9][0-9]*\(\.[0-9]*\)\?\).*/\1/p' | head -n1)
if [ -z "$level" ]; then
  echo "check-unit: could not read the exposure level from systemd-analyze:" >&2
  printf '%s\n' "$out" >&2
  exit 1
fi
echo "$UNIT: overall exposure level $level (limit $MAX)"
if awk -v l="$level" -v m="$MAX" 'BEGIN { exit !(l > m) }'; then
  echo "check-unit: exposure $level is above $MAX; the settings that cost most:" >&2
  printf '%s\n' "$out" | grep '✗' >&2 || true
  exit 1
fi
