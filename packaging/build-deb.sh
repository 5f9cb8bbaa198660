#!/usr/bin/env bash
# Builds the Debian package target/debian/retentiond_VERSION-1_ARCH.deb: the release binary,
# the hardened unit (pointing at /usr/bin), the man pages and shell completions generated
# from the binary itself, the example config as a conffile. Needs cargo-deb (installed from
# crates.io if missing).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked
bin=target/release/retentiond
rm -rf target/package
mkdir -p target/package/man target/package/completions
"$bin" man --dir target/package/man >/dev/null
gzip -9n target/package/man/*.1 target/package/man/*.5
"$bin" completions bash >target/package/completions/retentiond
"$bin" completions zsh >target/package/completions/_retentiond
"$bin" completions fish >target/package/completions/retentiond.fish
sed -e 's#/usr/local/bin/retentiond#/usr/bin/retentiond#g' \
    -e 's|^# Install: .*|# Installed by the retentiond package; override with `systemctl edit retentiond`.|' \
    -e '/^# \/etc\/systemd\/system\/retentiond.service, the config/d' \
    -e '/^# the policies in \/etc\/retentiond\/policies. See systemd\/README.md./d' \
    systemd/retentiond.service >target/package/retentiond.service
if ! command -v cargo-deb >/dev/null; then
    cargo install --locked cargo-deb
fi
cargo deb --no-build --locked
