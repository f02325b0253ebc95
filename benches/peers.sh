#!/usr/bin/env bash
# benches/peers.sh [N] [FRACTION] [REPS]     (defaults: 1000 0.1 3)
#
# The performance benchmark of `tidings check`, side by side with urlwatch,
# on the loopback page server of ../shared/bench (see docs/benchmarks.md).
#
#   1. cargo build --release
#   2. installs urlwatch + html2text into $PEERS_DIR/urlwatch/venv if missing
#   3. runs ../shared/bench/run_peer.sh for tidings (the generic `cmd` peer:
#      `tidings import` as setup, `tidings check` per cycle), N pages,
#      FRACTION changed between cycles, REPS repetitions
#   4. measures the store on disk after the three cycles of each repetition
#      (bytes per stored version), and urlwatch's cache.db the same way
#   5. runs the harness for urlwatch with the same N / FRACTION
#      (URLWATCH_REPS repetitions, default REPS)
#   6. fetches the N pages with curl into a temp dir and runs
#      `TIDINGS_BENCH_PAGES=dir cargo bench --bench pipeline` (the floor:
#      bare html5ever parse against extract / diff / store)
#   7. prints the Markdown tables (benches/summarize.py), also written to
#      benches/results/summary.md
#
# Results (JSON and text) go to benches/results/. Run as root: the harness
# runs everything in a loopback-only network namespace (unshare -n); set
# BENCH_NETNS=0 to use the host namespace (the server binds 127.0.0.1 only).
#
# Environment:
#   TIDINGS_SHARED   the shared folder           (default: <repo>/../shared)
#   PEERS_DIR        where peer venvs live        (default: ~/.cache/tidings-peers)
#   BENCH_WORK       state dirs, server logs      (default: a fresh mktemp -d, kept)
#   BENCH_PORT       page server port             (default: 18080)
#   URLWATCH_REPS    repetitions for urlwatch     (default: REPS)
#   SKIP_TIDINGS=1 / SKIP_URLWATCH=1 / SKIP_PIPELINE=1   leave a step out
#   SKIP_BUILD=1     use target/release/tidings as it is; TIDINGS=path: that binary
#
# Examples:
#   benches/peers.sh                      # the full run, ~10 min with urlwatch
#   URLWATCH_REPS=1 benches/peers.sh 1000 0.1 3
#   SKIP_URLWATCH=1 SKIP_PIPELINE=1 benches/peers.sh 100 0.1 1   # quick look
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SHARED="${TIDINGS_SHARED:-$REPO/../shared}"
BENCH="$SHARED/bench"
export PEERS_DIR="${PEERS_DIR:-$HOME/.cache/tidings-peers}"
PORT="${BENCH_PORT:-18080}"

# Hidden step, run inside `unshare -n`: start the page server, fetch pages
# 0..N-1 at generation 0 into DIR, stop the server.
if [ "${1:-}" = "__fetch_pages" ]; then
  dir="$2"; n="$3"
  if [ -n "${BENCH_IN_NETNS:-}" ]; then ip link set lo up; fi
  ready="$dir/.server.ready"
  python3 "$BENCH/pageserver.py" --host 127.0.0.1 --port "$PORT" --max-seconds 600 \
    --ready-file "$ready" >"$dir/.server.log" 2>&1 &
  srv=$!
  for _ in $(seq 300); do [ -e "$ready" ] && break; sleep 0.1; done
  [ -e "$ready" ] || { echo "page server did not start; see $dir/.server.log" >&2; kill "$srv"; exit 1; }
  curl -sf "http://127.0.0.1:$PORT/control/reset?n=$n" >/dev/null
  # One curl, many URLs: keep-alive, raw bodies (no gzip), page-<i>.html.
  args=()
  for ((i = 0; i < n; i++)); do
    args+=("http://127.0.0.1:$PORT/page/$i" -o "$dir/page-$i.html")
  done
  curl -sf "${args[@]}"
  curl -sf "http://127.0.0.1:$PORT/control/quit" >/dev/null || true
  wait "$srv" || true
  rm -f "$ready"
  exit 0
fi

N="${1:-1000}"
F="${2:-0.1}"
REPS="${3:-3}"
UW_REPS="${URLWATCH_REPS:-$REPS}"
RESULTS="$REPO/benches/results"
export BENCH_RESULTS="$RESULTS"
export BENCH_WORK="${BENCH_WORK:-$(mktemp -d /tmp/tidings-peers-bench.XXXXXX)}"
export BENCH_PORT="$PORT"
mkdir -p "$RESULTS" "$BENCH_WORK"

[ -x "$BENCH/run_peer.sh" ] || { echo "no harness at $BENCH/run_peer.sh (set TIDINGS_SHARED)" >&2; exit 2; }
echo "# N=$N fraction=$F reps=$REPS (urlwatch: $UW_REPS); work dir $BENCH_WORK; results $RESULTS"

# 1. build (unless SKIP_BUILD=1 or TIDINGS= names a binary)
[ -n "${SKIP_BUILD:-}${TIDINGS:-}" ] || (cd "$REPO" && cargo build --release)
# A private copy, so that a rebuild in the shared target dir during the run
# cannot swap the binary between cycles.
mkdir -p "$BENCH_WORK/bin"
cp "${TIDINGS:-$REPO/target/release/tidings}" "$BENCH_WORK/bin/tidings"
TIDINGS="$BENCH_WORK/bin/tidings"
REV="$(git -C "$REPO" describe --always --dirty 2>/dev/null || echo unknown)"
TIDINGS_VERSION="$("$TIDINGS" --version) ($REV)"

# 2. urlwatch
UW="$PEERS_DIR/urlwatch/venv/bin/urlwatch"
if [ "${SKIP_URLWATCH:-0}" != 1 ] && [ ! -x "$UW" ]; then
  echo "# installing urlwatch into $PEERS_DIR/urlwatch/venv"
  mkdir -p "$PEERS_DIR/urlwatch"
  python3 -m venv "$PEERS_DIR/urlwatch/venv"
  "$PEERS_DIR/urlwatch/venv/bin/pip" install -q urlwatch html2text
  "$PEERS_DIR/urlwatch/venv/bin/pip" freeze >"$PEERS_DIR/urlwatch/freeze.txt"
fi

# Bytes on disk of each repetition's state after its three cycles.
# $1 label, $2 glob of state files (relative to the rep dir), $3 versions command
store_growth() {
  local label="$1" pattern="$2" count_cmd="$3" out="$RESULTS/${1}_store_N${N}_f${F}.json"
  python3 - "$label" "$BENCH_WORK/$label-N$N" "$pattern" "$count_cmd" "$out" <<'PY'
import glob, json, os, subprocess, sys
label, root, pattern, count_cmd, out = sys.argv[1:]
reps = []
for rep in sorted(glob.glob(os.path.join(root, "rep*"))):
    files = [p for g in glob.glob(os.path.join(rep, pattern)) for p in
             ([g] if os.path.isfile(g) else [os.path.join(d, f) for d, _, fs in os.walk(g) for f in fs])]
    apparent = sum(os.path.getsize(p) for p in files)
    allocated = sum(os.stat(p).st_blocks * 512 for p in files)
    versions, text_bytes = (int(x) for x in subprocess.run(["bash", "-c", count_cmd], cwd=rep, check=True,
                                                           capture_output=True, text=True).stdout.split())
    reps.append({"rep": os.path.basename(rep), "files": len(files), "apparent_bytes": apparent,
                 "allocated_bytes": allocated, "versions": versions, "text_bytes": text_bytes,
                 "apparent_bytes_per_version": round(apparent / max(versions, 1)),
                 "allocated_bytes_per_version": round(allocated / max(versions, 1))})
json.dump({"peer": label, "n": int(root.rsplit("-N", 1)[1]), "reps": reps}, open(out, "w"), indent=1)
for r in reps:
    print(f"{label} {r['rep']}: {r['versions']} versions, {r['apparent_bytes']} bytes on disk "
          f"({r['allocated_bytes']} allocated) = {r['apparent_bytes_per_version']} B/version; "
          f"text {r['text_bytes']} B")
PY
}

# 3. tidings through the generic `cmd` peer
if [ "${SKIP_TIDINGS:-0}" != 1 ]; then
  BENCH_CMD_NAME=tidings \
  BENCH_CMD_VERSION="$TIDINGS_VERSION" \
  BENCH_CMD_SETUP="'$TIDINGS' import --urls \"\$BENCH_URLS\" --out \"\$BENCH_STATE/tidings.toml\"" \
  BENCH_CMD="'$TIDINGS' check --config \"\$BENCH_STATE/tidings.toml\"" \
    "$BENCH/run_peer.sh" cmd "$N" "$F" "$REPS"
  # 4. store growth: versions and rendered text bytes from `tidings history`,
  # one call per watch (the config names them page-0..page-N-1).
  store_growth tidings "store.sled" "
    v=0; t=0
    for w in \$(sed -n 's/^name = \"\\(.*\\)\"/\\1/p' tidings.toml); do
      while read -r num _ _ _ bytes _; do v=\$((v+1)); t=\$((t+bytes)); done \
        < <('$TIDINGS' history \"\$w\" --config tidings.toml | tail -n +2)
    done
    echo \$v \$t"
fi

# 5. urlwatch, same N and fraction
if [ "${SKIP_URLWATCH:-0}" != 1 ]; then
  "$BENCH/run_peer.sh" urlwatch "$N" "$F" "$UW_REPS"
  # urlwatch keeps every version in cache.db (minidb/SQLite); count its rows.
  store_growth urlwatch "cache.db" "
    python3 -c 'import sqlite3; c=sqlite3.connect(\"cache.db\"); print(*c.execute(\"select count(*), coalesce(sum(length(data)),0) from CacheEntry\").fetchone())'"
fi

# 6. the floor: bare html5ever parse against the pipeline's stages
if [ "${SKIP_PIPELINE:-0}" != 1 ]; then
  PAGES="$(mktemp -d /tmp/tidings-bench-pages.XXXXXX)"
  if [ "${BENCH_NETNS:-1}" = 1 ] && [ "$(id -u)" = 0 ] && command -v unshare >/dev/null; then
    unshare -n env BENCH_IN_NETNS=1 TIDINGS_SHARED="$SHARED" bash "$0" __fetch_pages "$PAGES" "$N"
  else
    TIDINGS_SHARED="$SHARED" bash "$0" __fetch_pages "$PAGES" "$N"
  fi
  echo "# fetched $(ls "$PAGES" | wc -l) pages ($(du -sh "$PAGES" | cut -f1)) into $PAGES"
  (cd "$REPO" && TIDINGS_BENCH_PAGES="$PAGES" cargo bench --bench pipeline) | tee "$RESULTS/pipeline_N$N.txt"
  rm -rf "$PAGES"
fi

# 7. tables
python3 "$REPO/benches/summarize.py" "$RESULTS" | tee "$RESULTS/summary.md"
