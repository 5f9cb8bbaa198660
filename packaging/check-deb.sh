#!/usr/bin/env bash
# Checks the built package as CI does: its contents, lintian (when installed), then installs
# it on this machine and checks the installed config and unit, removes it (the config
# stays) and purges it. Needs root (or sudo) for dpkg.
set -euo pipefail
cd "$(dirname "$0")/.."
deb=$(ls -t target/debian/retentiond_*.deb | head -1)
sudo=""
[ "$(id -u)" = 0 ] || sudo=sudo

echo "== contents of $deb"
contents=$(dpkg-deb --contents "$deb")
echo "$contents"
for path in ./usr/bin/retentiond ./lib/systemd/system/retentiond.service \
    ./etc/retentiond/retentiond.yaml ./usr/share/man/man1/retentiond.1.gz \
    ./usr/share/man/man1/retentiond-plan.1.gz ./usr/share/man/man5/retentiond.yaml.5.gz \
    ./usr/share/man/man5/retentiond-policy.5.gz ./usr/share/bash-completion/completions/retentiond \
    ./usr/share/zsh/vendor-completions/_retentiond \
    ./usr/share/fish/vendor_completions.d/retentiond.fish ./usr/share/doc/retentiond/README.md; do
    grep -q " $path\$" <<<"$contents" || { echo "FAIL: $path is missing"; exit 1; }
done
dpkg-deb --info "$deb" conffiles | grep -qx /etc/retentiond/retentiond.yaml \
    || { echo "FAIL: /etc/retentiond/retentiond.yaml is not a conffile"; exit 1; }

if command -v lintian >/dev/null; then
    echo "== lintian"
    # Errors fail; warnings are shown.
    # Not an upload to the Debian archive: no bug to close.
    lintian --fail-on error --suppress-tags initial-upload-closes-no-bugs "$deb"
fi

echo "== install"
$sudo dpkg -i "$deb"
retentiond --version
retentiond validate /etc/retentiond
output=$(systemd-analyze verify /lib/systemd/system/retentiond.service 2>&1) || true
if [ -n "$output" ]; then
    echo "$output"
    echo "FAIL: systemd-analyze verify on the installed unit"
    exit 1
fi
echo "ok: the installed unit verifies"
man -w retentiond-plan >/dev/null 2>&1 || [ -f /usr/share/man/man1/retentiond-plan.1.gz ]

echo "== remove: the config stays"
$sudo dpkg -r retentiond
[ -f /etc/retentiond/retentiond.yaml ] || { echo "FAIL: remove took the config"; exit 1; }
[ ! -e /usr/bin/retentiond ] || { echo "FAIL: the binary stayed"; exit 1; }

echo "== reinstall after remove: the unit is not left masked"
$sudo dpkg -i "$deb"
if [ "$(readlink /etc/systemd/system/retentiond.service 2>/dev/null)" = /dev/null ]; then
    echo "FAIL: the unit stayed masked after a reinstall"
    exit 1
fi
echo "ok: not masked"
$sudo dpkg --purge retentiond
echo "ok: installed, checked, removed and purged"
