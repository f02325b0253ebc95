#!/usr/bin/env bash
# benches/scale.sh [WATCHES]     (default: 10000,100000)
#
# One node at scale: `tidings run` with 10,000 and then 100,000 watches
# against the loopback page server of ../shared/bench (pages of ~20 KB),
# driven by benches/scale_bench.py (see its docstring and
# docs/benchmarks.md, "One node at scale"): validate, start-up, the first
# pass, then the schedule until every watch is checked twice (or WINDOW
# seconds), `tidings status`, SIGHUP reloads, a restart on the full store.
#
# Run as root to put everything in a loopback-only network namespace
# (unshare -n); BENCH_NETNS=0 uses the host namespace.
#
# Environment:
#   TIDINGS_SHARED  the shared folder               (default: <repo>/../shared)
#   BENCH_WORK      configs, stores, logs            (default: a fresh mktemp -d, kept)
#   BENCH_PORT      page server port                 (default: 18282)
#   SCHEDULE        cron of every watch              (default: "*/5 * * * *")
#   JITTER          [daemon] max_jitter              (default: 5m)
#   PAGES           distinct pages at most           (default: 2000)
#   WINDOW          seconds per N at most            (default: 1800)
#   REPEAT          status / reload / validate runs  (default: 3)
#   MINUTE_SLOTS    M: watch i fires at minutes i mod M, +M, … (default: 0, off;
#                   30 with JITTER=1m gives N/1800 checks a second, steadily)
#   PASSES          stop after PASSES × N checks      (default: 2)
#   SKIP_BUILD=1    use the existing target/release/tidings
#
#   RESULTS_TAG     a suffix for the result files     (default: none)
#
# Results: benches/results/scale_N<WATCHES>[_TAG].json and .md.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WATCHES="${1:-10000,100000}"
SHARED="$(cd "${TIDINGS_SHARED:-$REPO/../shared}" && pwd)"
WORK="${BENCH_WORK:-$(mktemp -d /tmp/tidings-scale-bench.XXXXXX)}"
RESULTS="$REPO/benches/results"
TAG="${RESULTS_TAG:+_$RESULTS_TAG}"

if [ "${BENCH_NETNS:-1}" != 0 ] && [ -z "${_TIDINGS_IN_NETNS:-}" ] \
   && [ "$(id -u)" = 0 ] && command -v unshare >/dev/null 2>&1; then
  [ -n "${SKIP_BUILD:-}" ] || (cd "$REPO" && cargo build --release --quiet)
  exec unshare -n env _TIDINGS_IN_NETNS=1 SKIP_BUILD=1 BENCH_WORK="$WORK" \
    bash -c 'ip link set lo up && exec "$0" "$@"' "$0" "$@"
fi
[ -n "${SKIP_BUILD:-}" ] || (cd "$REPO" && cargo build --release --quiet)
mkdir -p "$RESULTS" "$WORK"
# A private copy: a rebuild in the shared target dir cannot swap it mid-run.
install -m 0755 "$REPO/target/release/tidings" "$WORK/tidings"
echo "scale.sh: work dir $WORK" >&2

python3 "$REPO/benches/scale_bench.py" --tidings "$WORK/tidings" --shared "$SHARED" \
  --work "$WORK" --port "${BENCH_PORT:-18282}" --watches "$WATCHES" \
  --schedule "${SCHEDULE:-*/5 * * * *}" --jitter "${JITTER:-5m}" \
  --minute-slots "${MINUTE_SLOTS:-0}" --passes "${PASSES:-2}" \
  --pages "${PAGES:-2000}" --window "${WINDOW:-1800}" --repeat "${REPEAT:-3}" \
  --json "$RESULTS/scale_N${WATCHES//,/_}${TAG}.json" | tee "$RESULTS/scale_N${WATCHES//,/_}${TAG}.md"
