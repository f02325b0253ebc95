#!/usr/bin/env bash
# benches/daemon.sh [idle|soak|both]      (default: both)
#
# Resource benchmark of the daemon (`tidings run`), see docs/benchmarks.md,
# section "Daemon: idle and soak":
#
#   idle  1,000 watches on a daily schedule: after the first pass, CPU (% of
#         one core, from /proc/PID/stat utime+stime) and RSS (VmRSS) over an
#         idle window. Targets: < 0.5 % of one core, < 40 MB.
#   soak  100 watches every second against the loopback page server until
#         10,000 checks (or a time cap): RSS sampled every 2 s must stay flat.
#
# The page server is ../shared/bench/pageserver.py, used in place (never
# copied). The work is done by benches/daemon_bench.py (stdlib Python).
# Run as root to put everything in a loopback-only network namespace
# (unshare -n); BENCH_NETNS=0 uses the host namespace (the server binds
# 127.0.0.1 only, the watches point at 127.0.0.1 only).
#
# Environment:
#   TIDINGS_SHARED      the shared folder        (default: <repo>/../shared)
#   BENCH_WORK          configs, stores, logs    (default: a fresh mktemp -d, kept)
#   BENCH_PORT          page server port         (default: 18181)
#   IDLE_WATCHES        (1000)   IDLE_SECONDS  (120)
#   SOAK_WATCHES        (100)    SOAK_CHECKS   (10000)   SOAK_CAP seconds (600)
#   BUMP_EVERY seconds  (10)     BUMP_FRACTION (0.1)     pages changed per bump
#   SKIP_BUILD=1        use the existing target/release/tidings
#
# Results: benches/results/daemon.json (every sample) and
# benches/results/daemon.md (the tables for docs/benchmarks.md).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PHASE="${1:-both}"
SHARED="${TIDINGS_SHARED:-$REPO/../shared}"
SHARED="$(cd "$SHARED" && pwd)"
PORT="${BENCH_PORT:-18181}"
WORK="${BENCH_WORK:-$(mktemp -d /tmp/tidings-daemon-bench.XXXXXX)}"
RESULTS="$REPO/benches/results"
TIDINGS="${TIDINGS:-$REPO/target/release/tidings}"   # TIDINGS=path: another binary (then SKIP_BUILD=1)

if [ ! -f "$SHARED/bench/pageserver.py" ]; then
  echo "daemon.sh: $SHARED/bench/pageserver.py not found; set TIDINGS_SHARED" >&2
  exit 1
fi

# Re-run this script inside a network namespace with only loopback, once.
if [ "${BENCH_NETNS:-1}" != 0 ] && [ -z "${_TIDINGS_IN_NETNS:-}" ]; then
  if [ "$(id -u)" = 0 ] && command -v unshare >/dev/null 2>&1; then
    if [ -z "${SKIP_BUILD:-}" ]; then
      (cd "$REPO" && cargo build --release --quiet)
    fi
    exec unshare -n env _TIDINGS_IN_NETNS=1 SKIP_BUILD=1 BENCH_WORK="$WORK" \
      bash -c 'ip link set lo up && exec "$0" "$@"' "$0" "$@"
  fi
  echo "daemon.sh: not root (or no unshare): running in the host network namespace, loopback only" >&2
fi

if [ -z "${SKIP_BUILD:-}" ]; then
  (cd "$REPO" && cargo build --release --quiet)
fi
mkdir -p "$RESULTS" "$WORK"
# A private copy, so a rebuild in the shared target dir mid-run cannot swap
# the binary under the benchmark.
install -m 0755 "$TIDINGS" "$WORK/tidings"
TIDINGS="$WORK/tidings"
echo "daemon.sh: work dir $WORK, page server on 127.0.0.1:$PORT" >&2

python3 "$REPO/benches/daemon_bench.py" \
  --tidings "$TIDINGS" --shared "$SHARED" --work "$WORK" --port "$PORT" --phase "$PHASE" \
  --idle-watches "${IDLE_WATCHES:-1000}" --idle-seconds "${IDLE_SECONDS:-120}" \
  --soak-watches "${SOAK_WATCHES:-100}" --soak-checks "${SOAK_CHECKS:-10000}" \
  --soak-cap "${SOAK_CAP:-600}" --bump-every "${BUMP_EVERY:-10}" \
  --bump-fraction "${BUMP_FRACTION:-0.1}" \
  --json "$RESULTS/daemon.json" | tee "$RESULTS/daemon.md"
