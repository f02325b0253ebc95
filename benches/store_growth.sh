#!/usr/bin/env bash
# benches/store_growth.sh [N] [CYCLES] [FRACTION]     (defaults: 1000 10 0.1)
#
# How the sled store grows under `tidings check` over many cycles: N pages
# of ~80 KB from the loopback page server of ../shared/bench, a first
# cycle, then CYCLES-1 cycles each after FRACTION of the pages changed.
# After every cycle: the store's bytes on disk (apparent size of every file
# under store.sled/, of sled's store.sled/blobs/ and of the text packs in
# store.sled/texts/), the versions stored and the bytes per version, so the
# table shows whether it levels off.
#
# Run as root for a loopback-only network namespace (BENCH_NETNS=0 to use
# the host namespace). Environment: TIDINGS_SHARED (<repo>/../shared),
# BENCH_WORK (a fresh mktemp -d, kept), BENCH_PORT (18383), TIDINGS (the
# binary; default a private copy of target/release/tidings, built first
# unless SKIP_BUILD=1).
#
# Result: benches/results/store_growth.md (and on stdout).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
N="${1:-1000}"; CYCLES="${2:-10}"; F="${3:-0.1}"
SHARED="$(cd "${TIDINGS_SHARED:-$REPO/../shared}" && pwd)"
WORK="${BENCH_WORK:-$(mktemp -d /tmp/tidings-store-growth.XXXXXX)}"
PORT="${BENCH_PORT:-18383}"

if [ "${BENCH_NETNS:-1}" != 0 ] && [ -z "${_TIDINGS_IN_NETNS:-}" ] \
   && [ "$(id -u)" = 0 ] && command -v unshare >/dev/null 2>&1; then
  [ -n "${SKIP_BUILD:-}${TIDINGS:-}" ] || (cd "$REPO" && cargo build --release --quiet)
  exec unshare -n env _TIDINGS_IN_NETNS=1 SKIP_BUILD=1 BENCH_WORK="$WORK" \
    bash -c 'ip link set lo up && exec "$0" "$@"' "$0" "$@"
fi
[ -n "${SKIP_BUILD:-}${TIDINGS:-}" ] || (cd "$REPO" && cargo build --release --quiet)
mkdir -p "$WORK" "$REPO/benches/results"
if [ -z "${TIDINGS:-}" ]; then
  install -m 0755 "$REPO/target/release/tidings" "$WORK/tidings"
  TIDINGS="$WORK/tidings"
fi
python3 "$SHARED/bench/pageserver.py" --host 127.0.0.1 --port "$PORT" \
  --ready-file "$WORK/server.ready" --max-seconds 7200 >"$WORK/server.log" 2>&1 &
SERVER=$!
trap 'curl -s "http://127.0.0.1:$PORT/control/quit" >/dev/null || kill $SERVER' EXIT
for _ in $(seq 300); do [ -e "$WORK/server.ready" ] && break; sleep 0.1; done

cd "$WORK"
rm -rf state && mkdir state
for ((i = 0; i < N; i++)); do echo "http://127.0.0.1:$PORT/page/$i"; done >urls.txt
"$TIDINGS" import --urls urls.txt --out state/tidings.toml 2>/dev/null
curl -sf "http://127.0.0.1:$PORT/control/reset?n=$N" >/dev/null
OUT="$REPO/benches/results/store_growth.md"
{
  echo "$("$TIDINGS" --version) ($(git -C "$REPO" describe --always --dirty)), N=$N, $F changed per cycle, $(date -u +%FT%TZ)"
  echo
  echo "| cycle | NEW | CHANGED | versions | store.sled bytes | of which blobs/ | of which texts/ | bytes per version |"
  echo "|---:|---:|---:|---:|---:|---:|---:|---:|"
} | tee "$OUT"
versions=0
for ((c = 1; c <= CYCLES; c++)); do
  if [ "$c" -gt 1 ]; then
    curl -sf "http://127.0.0.1:$PORT/control/bump?n=$N&fraction=$F" >/dev/null
    sleep 1.1   # Last-Modified has one-second granularity
  fi
  "$TIDINGS" check --config state/tidings.toml >"check$c.txt" 2>&1 || true
  new=$(grep -c '^NEW:' "check$c.txt" || true)
  changed=$(grep -c '^CHANGED:' "check$c.txt" || true)
  versions=$((versions + new + changed))
  bytes=$(du -sb --apparent-size state/store.sled | cut -f1)
  blobs=$(du -sb --apparent-size state/store.sled/blobs 2>/dev/null | cut -f1 || echo 0)
  texts=$(du -sb --apparent-size state/store.sled/texts 2>/dev/null | cut -f1 || echo 0)
  echo "| $c | $new | $changed | $versions | $bytes | $blobs | $texts | $((bytes / versions)) |" | tee -a "$OUT"
done
