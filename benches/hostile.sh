#!/usr/bin/env bash
# Peak RSS and wall time of one `tidings check` on the hostile pages of
# issue 12, served on loopback by python3's http.server:
#
#   flood: a normal page replaced by ~4 MB of 300,000 short paragraphs
#   deep:  100,000 nested <div>s around one paragraph
#
# Usage: benches/hostile.sh [TIDINGS_BINARY]   (default target/release/tidings)
# Needs python3 and GNU time (/usr/bin/time -v). Prints one line per case.
set -euo pipefail

bin=${1:-target/release/tidings}
bin=$(realpath "$bin")
work=$(mktemp -d)
trap 'kill "$server" 2>/dev/null || true; rm -rf "$work"' EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$work/site"
(cd "$work/site" && exec python3 -m http.server "$port" --bind 127.0.0.1 >/dev/null 2>&1) &
server=$!
sleep 1

python3 - "$work/site" <<'EOF'
import sys
site = sys.argv[1]
places = "".join(f"<li>Place {i}, with {i * 1000} residents</li>" for i in range(40))
normal = ("<html><head><title>A partnership</title></head><body><main><h1>A partnership</h1>"
          + "".join(f"<p>Paragraph {i} about how the partnership works with its places.</p>" for i in range(60))
          + f"<ul>{places}</ul></main></body></html>")
open(f"{site}/normal.html", "w").write(normal)
open(f"{site}/flood.html", "w").write(
    "<html><body><main>" + "".join(f"<p>w{i}</p>" for i in range(300_000)) + "</main></body></html>")
n = 100_000
open(f"{site}/deep.html", "w").write(
    "<html><body>" + "<div>" * n + "<p>The partnership covers Allerdale and Eden.</p>" + "</div>" * n + "</body></html>")
EOF

config() {
    cat > "$work/$1.toml" <<EOF
state_dir = "$1-state"
contact = "bench@example.org"
[limits]
retries = 0
per_host_interval = "0s"
[[watch]]
name = "$1"
url = "http://127.0.0.1:$port/page-$1.html"
robots = false
EOF
}

measure() { # name
    local out
    /usr/bin/time -v -o "$work/$1.time" "$bin" check --config "$work/$1.toml" \
        >"$work/$1.out" 2>/dev/null || true
    local out rss wall
    out=$(cat "$work/$1.time")
    rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' <<<"$out")
    wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' <<<"$out")
    printf '%-6s peak RSS %6d KiB (%4d MiB)  wall %s  -> %s\n' \
        "$1" "$rss" $((rss / 1024)) "$wall" "$(head -c 160 "$work/$1.out")"
}

cd "$work"
# flood: a baseline of the normal page, then the flood in its place.
config flood
cp site/normal.html site/page-flood.html
"$bin" check --config flood.toml >/dev/null
cp site/flood.html site/page-flood.html
# A later modification time, or http.server answers 304 within the second.
touch -d "@$(($(date +%s) + 120))" site/page-flood.html
measure flood

# deep: the first check of the nested page.
config deep
cp site/deep.html site/page-deep.html
measure deep
