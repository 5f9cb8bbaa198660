#!/usr/bin/env bash
# Checks systemd/retentiond.service offline, as CI does:
#   1. `systemd-analyze verify` prints nothing (it exits 0 on unknown keys, so any output
#      fails the check);
#   2. `systemd-analyze security --offline=true --threshold=20` passes with an overall
#      exposure of at most 2.0.
# verify needs the binaries the unit names; the copy it checks points ExecStart= and friends
# at the freshly built one (argument 1, default target/release/retentiond) instead of
# /usr/local/bin/retentiond. Nothing else in the unit is changed.
set -euo pipefail
cd "$(dirname "$0")/.."
binary=$(realpath "${1:-target/release/retentiond}")
unit=systemd/retentiond.service
max_exposure=2.0

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
sed "s#/usr/local/bin/retentiond#$binary#g" "$unit" >"$work/retentiond.service"

echo "== systemd-analyze verify $unit"
output=$(systemd-analyze verify "$work/retentiond.service" 2>&1) || {
    echo "$output"
    echo "FAIL: systemd-analyze verify exited non-zero"
    exit 1
}
if [ -n "$output" ]; then
    echo "$output"
    echo "FAIL: systemd-analyze verify printed warnings"
    exit 1
fi
echo "ok: no warnings"

echo "== systemd-analyze security --offline=true --threshold=20 $unit"
output=$(systemd-analyze security --offline=true --threshold=20 "$unit" 2>&1) || {
    echo "$output"
    echo "FAIL: systemd-analyze security is above the threshold"
    exit 1
}
echo "$output" | grep -E '✗' || true
exposure=$(echo "$output" | sed -n 's/.*Overall exposure level for retentiond.service: \([0-9.]*\).*/\1/p')
echo "overall exposure: $exposure (at most $max_exposure)"
if [ -z "$exposure" ] || ! awk -v e="$exposure" -v m="$max_exposure" 'BEGIN { exit !(e <= m) }'; then
    echo "FAIL: exposure ${exposure:-unknown} is above $max_exposure"
    exit 1
fi
echo "ok"
