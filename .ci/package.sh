#!/usr/bin/env bash
# Builds the Debian package with cargo-deb: the release binary, the unit
# (with the package's paths), the config as conffiles, the docs, man pages
# and shell completions. Prints the path of the .deb on its last line.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! cargo deb --version >/dev/null 2>&1; then
  cargo install cargo-deb --locked
fi
cargo build --locked --release
out=target/package
rm -rf "$out"
mkdir -p "$out/man" "$out/completions"
./target/release/tidings man "$out/man" >/dev/null
./target/release/tidings completions bash > "$out/completions/tidings.bash"
./target/release/tidings completions zsh > "$out/completions/_tidings"
./target/release/tidings completions fish > "$out/completions/tidings.fish"
# The package puts the binary in /usr/bin and the docs in /usr/share/doc.
sed -e 's|/usr/local/bin/tidings|/usr/bin/tidings|g' \
    -e 's|/usr/local/share/doc/tidings|/usr/share/doc/tidings|g' \
    systemd/tidings.service > "$out/tidings.service"
cargo deb --no-build --locked 2>&1 | tail -n 1
