#!/usr/bin/env bash
# benches/hot-functions.sh [N]     (default N: 60 pages)
#
# Writes build/hot-functions.txt: the functions of target/release/tidings
# that a first, a changed and an unchanged `tidings check` run, hottest
# first, for build.rs to lay out together at the start of the binary's code
# (why: see build.rs). Run it after changes that rename or add much of the
# code a check runs, then rebuild; a stale list only costs memory.
#
# It runs each cycle once under callgrind (valgrind), on N pages of the
# loopback page server of ../shared/bench, 10 % changed between cycles.
# Takes about a minute; needs valgrind and python3.
#
# Environment:
#   TIDINGS_SHARED   the shared folder           (default: <repo>/../shared)
#   BENCH_PORT       page server port             (default: 18080)
#   TIDINGS          the binary to profile        (default: target/release/tidings)
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SHARED="${TIDINGS_SHARED:-$REPO/../shared}"
PORT="${BENCH_PORT:-18080}"
N="${1:-60}"
BIN="$(realpath "${TIDINGS:-$REPO/target/release/tidings}")"
WORK="$(mktemp -d /tmp/tidings-hot.XXXXXX)"
trap 'kill "${srv:-}" 2>/dev/null || true; rm -rf "$WORK"' EXIT

command -v valgrind >/dev/null || { echo "valgrind is needed" >&2; exit 1; }
[ -x "$BIN" ] || { echo "no binary at $BIN: cargo build --release first" >&2; exit 1; }

python3 "$SHARED/bench/pageserver.py" --host 127.0.0.1 --port "$PORT" --max-seconds 900 \
  --ready-file "$WORK/ready" >"$WORK/server.log" 2>&1 &
srv=$!
for _ in $(seq 300); do [ -e "$WORK/ready" ] && break; sleep 0.1; done
[ -e "$WORK/ready" ] || { echo "page server did not start; see $WORK/server.log" >&2; exit 1; }
curl -sf "http://127.0.0.1:$PORT/control/reset?n=$N" >/dev/null

mkdir "$WORK/state"
for i in $(seq 0 $((N - 1))); do echo "http://127.0.0.1:$PORT/page/$i"; done >"$WORK/urls.txt"
"$BIN" import --urls "$WORK/urls.txt" --out "$WORK/state/tidings.toml" >/dev/null

cycle() {
  (cd "$WORK/state" && valgrind --tool=callgrind --demangle=no \
    --callgrind-out-file="$WORK/cg-$1.out" "$BIN" check --config tidings.toml \
    >"$WORK/$1.txt" 2>"$WORK/$1.err") || true
  echo "$1: $(wc -l <"$WORK/$1.txt") result lines" >&2
}
cycle first
curl -sf "http://127.0.0.1:$PORT/control/bump?n=$N&fraction=0.1" >/dev/null
cycle changed
cycle unchanged

python3 - "$BIN" "$REPO/build/hot-functions.txt" "$WORK"/cg-*.out <<'EOF'
import collections, re, subprocess, sys
binary, dest, outs = sys.argv[1], sys.argv[2], sys.argv[3:]
# The binary's own functions (callgrind also names libc's and ld.so's).
sizes = {}
for line in subprocess.run(["nm", "-S", "--defined-only", binary],
                           capture_output=True, text=True, check=True).stdout.splitlines():
    f = line.split()
    if len(f) == 4 and f[2] in "tTwW":
        sizes.setdefault(f[3], int(f[1], 16))
cost = collections.Counter()
for out in outs:
    names, current = {}, None
    for line in open(out):
        m = re.match(r"(c?fn)=\((\d+)\)(?: (.*))?", line)
        if m:
            if m.group(3):
                names[m.group(2)] = m.group(3).strip()
            if m.group(1) == "fn":
                current = names[m.group(2)]
                cost[current] += 0
            continue
        m = re.match(r"^(\+?\d+|\*|-\d+) (\d+)", line)
        if m and current:
            cost[current] += int(m.group(2))
run = sorted((n for n in cost if n in sizes), key=lambda n: (-cost[n], n))
with open(dest, "w") as f:
    f.write("\n".join(run) + "\n")
print(f"{dest}: {len(run)} functions, {sum(sizes[n] for n in run) / 1e6:.2f} MB of "
      f"{sum(sizes.values()) / 1e6:.2f} MB of code", file=sys.stderr)
EOF
