#!/usr/bin/env bash
# benches/store_backends.sh [N] [FRACTION]     (defaults: 1000 0.1)
#
# sled against PostgreSQL, on the loopback page server of ../shared/bench:
#
#   1. `tidings check` over N pages, three cycles (first, FRACTION changed,
#      unchanged), once on sled and once on PostgreSQL: CPU seconds of
#      tidings (user + sys, /usr/bin/time) and, for PostgreSQL, of the
#      server (its processes' CPU from /proc), and store bytes per stored
#      version (sled: du of store.sled; PostgreSQL: pg_total_relation_size
#      of tidings_kv);
#   2. `tidings run` first passes over the N pages by 1 node and by 3 nodes
#      on one database: checks per second (time until every page has its
#      first version).
#
# Needs a release build (cargo build --release) and PostgreSQL's binaries;
# starts its own throwaway cluster (as the postgres user when root) and
# page server on free loopback ports, and removes them at exit.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SHARED="${TIDINGS_SHARED:-$REPO/../shared}"
N="${1:-1000}"
FRACTION="${2:-0.1}"
TIDINGS="$REPO/target/release/tidings"
WORK=$(mktemp -d)
chmod 755 "$WORK"   # the postgres user must reach its data directory inside
PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
TICK=$(getconf CLK_TCK)
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
PAGES_PID=
# Set before anything starts, so that a failure part-way stops what did.
cleanup() {
  [ -f "$WORK/pg/data/postmaster.pid" ] && as_pg "$PGBIN/pg_ctl" -D "$WORK/pg/data" -m fast stop >/dev/null 2>&1
  [ -n "$PAGES_PID" ] && kill "$PAGES_PID" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT

PAGE_PORT=$(free_port)
python3 "$SHARED/bench/pageserver.py" --port "$PAGE_PORT" --pages "$N" >"$WORK/pages.log" 2>&1 &
PAGES_PID=$!
PGPORT=$(free_port)
mkdir -p "$WORK/pg"
chown postgres:postgres "$WORK/pg" 2>/dev/null || true
as_pg "$PGBIN/initdb" -D "$WORK/pg/data" -U tidings --auth=trust -E UTF8 >/dev/null
as_pg "$PGBIN/pg_ctl" -D "$WORK/pg/data" -l "$WORK/pg/log" -w \
  -o "-p $PGPORT -h 127.0.0.1 -k $WORK/pg" start >/dev/null
psql() { "$PGBIN/psql" -h 127.0.0.1 -p "$PGPORT" -U tidings -At "$@"; }
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$PAGE_PORT/control/state" >/dev/null && break; sleep 0.2; done
seq 0 $((N - 1)) | sed "s|^|http://127.0.0.1:$PAGE_PORT/page/|" >"$WORK/urls.txt"

# CPU seconds of every process of the cluster so far (reaped backends are
# in the postmaster's cutime/cstime).
pg_cpu() {
  local pm total=0 pid f
  pm=$(head -n 1 "$WORK/pg/data/postmaster.pid")
  read -r -a f <<<"$(sed 's/^.*) //' "/proc/$pm/stat")"
  total=$((f[11] + f[12] + f[13] + f[14]))
  for pid in $(pgrep -P "$pm"); do
    read -r -a f <<<"$(sed 's/^.*) //' "/proc/$pid/stat" 2>/dev/null || echo)"
    [ "${#f[@]}" -gt 12 ] && total=$((total + f[11] + f[12]))
  done
  echo "$total"
}

cycle() { # backend name dir
  local before after out
  before=$(pg_cpu)
  /usr/bin/time -o "$3/$2.time" -f '%U %S %e %M' \
    "$TIDINGS" check --config "$3/tidings.toml" --state "$3" -q >"$3/$2.out" 2>/dev/null || true
  out=$(tail -n 1 "$3/$2.time")
  after=$(pg_cpu)
  read -r user sys wall rss <<<"$out"
  printf '| %s | %s | %.2f s | %s | %.1f s | %s MB | %s changed |\n' "$1" "$2" \
    "$(echo "$user + $sys" | bc)" \
    "$( [ "$1" = postgres ] && printf '%.2f s' "$(echo "($after - $before) / $TICK" | bc -l)" || echo -)" \
    "$wall" "$((rss / 1024))" "$(grep -c '^CHANGED' "$3/$2.out" || true)"
}

echo "## tidings check, $N pages, $FRACTION changed"
echo
echo "| store | cycle | tidings CPU | server CPU | wall | peak RSS | report |"
echo "|---|---|---:|---:|---:|---:|---|"
for backend in sled postgres; do
  dir="$WORK/$backend"
  mkdir -p "$dir"
  "$TIDINGS" import --urls "$WORK/urls.txt" --out "$dir/tidings.toml" --contact bench@localhost 2>/dev/null
  if [ "$backend" = postgres ]; then
    psql -d postgres -c "CREATE DATABASE bench_check" >/dev/null
    printf '\n[store]\nbackend = "postgres"\nurl = "postgresql://tidings@127.0.0.1:%s/bench_check?sslmode=disable"\n' "$PGPORT" >>"$dir/tidings.toml"
    "$TIDINGS" store migrate --config "$dir/tidings.toml" >/dev/null
  fi
  curl -sf "http://127.0.0.1:$PAGE_PORT/control/reset?n=$N" >/dev/null
  cycle "$backend" first "$dir"
  curl -sf "http://127.0.0.1:$PAGE_PORT/control/bump?n=$N&fraction=$FRACTION" >/dev/null
  sleep 1.1
  cycle "$backend" changed "$dir"
  cycle "$backend" unchanged "$dir"
  if [ "$backend" = sled ]; then
    bytes=$(du -sb "$dir/store.sled" | cut -f1)
    versions=$((N + $(grep -c '^CHANGED' "$dir/changed.out" || true)))
  else
    bytes=$(psql -d bench_check -c "SELECT pg_total_relation_size('tidings_kv')")
    versions=$(psql -d bench_check -c "SELECT count(*) FROM tidings_kv WHERE tree = 'versions'")
  fi
  echo "| $backend | store size | $bytes bytes | | | | $versions versions, $((bytes / versions / 1024)) KB per version |"
done

echo
echo "## tidings run, first pass over $N pages"
echo
echo "| nodes | time until every page has a version | checks per second |"
echo "|---:|---:|---:|"
for nodes in 1 3; do
  db="bench_nodes_$nodes"
  psql -d postgres -c "CREATE DATABASE $db" >/dev/null
  pids=()
  for i in $(seq "$nodes"); do
    dir="$WORK/run-$nodes-$i"
    mkdir -p "$dir"
    "$TIDINGS" import --urls "$WORK/urls.txt" --out "$dir/tidings.toml" --contact bench@localhost 2>/dev/null
    printf '\n[store]\nbackend = "postgres"\nurl = "postgresql://tidings@127.0.0.1:%s/%s?sslmode=disable"\nlease = "2m"\n' "$PGPORT" "$db" >>"$dir/tidings.toml"
  done
  "$TIDINGS" store migrate --config "$WORK/run-$nodes-1/tidings.toml" >/dev/null
  curl -sf "http://127.0.0.1:$PAGE_PORT/control/reset?n=$N" >/dev/null
  start=$(date +%s.%N)
  for i in $(seq "$nodes"); do
    "$TIDINGS" run --config "$WORK/run-$nodes-$i/tidings.toml" --state "$WORK/run-$nodes-$i" -q 2>"$WORK/run-$nodes-$i/log" &
    pids+=($!)
  done
  while [ "$(psql -d "$db" -c "SELECT count(*) FROM tidings_kv WHERE tree = 'versions'")" -lt "$N" ]; do
    sleep 0.2
  done
  end=$(date +%s.%N)
  kill -TERM "${pids[@]}"
  wait "${pids[@]}" || true
  secs=$(echo "$end - $start" | bc -l)
  printf '| %s | %.1f s | %.0f |\n' "$nodes" "$secs" "$(echo "$N / $secs" | bc -l)"
done
