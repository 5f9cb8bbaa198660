#!/usr/bin/env bash
# The benchmark run: builds release, measures, prints each figure beside its target and its
# floor. About 25 minutes on 2 cores (most of it the deletion runs at cap 1, the million local
# files of row 3b, the listings and the 60 s idle window), and about 6 more for S3 against moto's server, whose own listing is
# slow (the S3 rows need `pip install 'moto[server]'`; without it they are skipped). Needs
# cargo and python3, and GNU time (`/usr/bin/time`, Debian's `time`) for the peaks of small
# processes; writes only to a temporary folder.
#
#   bash bench/run.sh              # everything
#   QUICK=1 bash bench/run.sh      # smaller sizes and windows, to check the script
#   PLAN_ONLY=1 bash bench/run.sh  # the planning figures only (sections 1 and 5, 8 minutes)
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

if [ -n "${QUICK:-}" ]; then
    big=100000 listed=10000 deletions=500 idle=5 local_sizes=5000 pg_local=5000 s3_objects=5000
else
    big=1000000 listed=100000 deletions=10000 idle=60 local_sizes="50000 1000000" pg_local=100000 s3_objects=100000
fi

echo "== build (release)"
cargo build --release --locked --bin retentiond --example floor --example delay_proxy
cargo bench --locked --no-run --bench engine --bench listing --bench delete 2>/dev/null

echo "== machine"
nproc_=$(nproc)
model=$(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)
memory=$(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)
echo "$nproc_ cores, $model, $memory"

echo "== 1. engine: the planner in process (divan)"
cargo bench --locked --bench engine

rows=()
row() { rows+=("$(printf '%-46s | %-37s | %-16s | %s' "$1" "$2" "$3" "$4")"); }

# The median of five runs taking turns (this shared machine's speed drifts by a third within a
# minute): `median "$runs"` of lines `wall=...s maxrss=...MB`.
median() {
    local middle
    middle=$(grep . <<<"$1" | sort -t= -k2 -g | sed -n 3p)
    [ -n "$middle" ] || { echo "fewer than five measurements" >&2; exit 1; }
    echo "$middle"
}
wall_of() { sed 's/wall=\([0-9.]*\)s.*/\1/' <<<"$1"; }
rss_of() { sed 's/.*maxrss=\([0-9.]*\)MB/\1/' <<<"$1"; }

echo "== 1. engine: the whole process on $big backups, against the floor (bench/floor.rs)"
# One group of $big and groups of 100; the Berlin policy (bench/policy.yaml: every rule, DST)
# and the UTC one of the borg side by side (bench/borg-policy.yaml). JSON and text plans.
for groups in 1 $((big / 100)); do
    listing="$work/listing-$groups.json"
    python3 bench/make_listing.py "$big" "$groups" >"$listing"
    for policy in policy borg-policy; do
        zone=$(sed -n 's/^timezone: //p' "bench/$policy.yaml")
        floors="" jsons="" texts=""
        for _ in 1 2 3 4 5; do
            floors+="$(python3 bench/measure.py -- target/release/examples/floor "$listing")"$'\n'
            jsons+="$(python3 bench/measure.py -- target/release/retentiond plan --policies "bench/$policy.yaml" \
                --listing "$listing" --now 2026-11-23T00:00:00Z --format json)"$'\n'
            texts+="$(python3 bench/measure.py -- target/release/retentiond plan --policies "bench/$policy.yaml" \
                --listing "$listing" --now 2026-11-23T00:00:00Z)"$'\n'
        done
        floor=$(median "$floors") json=$(median "$jsons") text=$(median "$texts")
        echo "groups=$groups $zone floor: $floor; json: $json; text: $text"
        fw=$(wall_of "$floor") jw=$(wall_of "$json") tw=$(wall_of "$text") jr=$(rss_of "$json")
        ratio=$(awk -v w="$jw" -v f="$fw" 'BEGIN { printf "%.2f", w / f }')
        per=$(awk -v m="$jr" -v n="$big" 'BEGIN { printf "%.0f", m * 1048576 / n }')
        verdict=$(awk -v r="$ratio" -v p="$per" 'BEGIN { print (r <= 1.5 && p <= 250) ? "met" : "NOT MET" }')
        row "plan --listing $big, $groups group(s), $zone, JSON" "≤ 1.5× floor, ≤ 250 B/backup" \
            "floor ${fw}s" "${jw}s = ${ratio}× floor, ${per} B/backup: $verdict"
        ratio=$(awk -v t="$tw" -v j="$jw" 'BEGIN { printf "%.2f", t / j }')
        verdict=$(awk -v r="$ratio" 'BEGIN { print (r <= 1.2) ? "met" : "NOT MET" }')
        row "plan --listing $big, $groups group(s), $zone, text" "≤ 1.2× the JSON plan" \
            "JSON ${jw}s" "${tw}s = ${ratio}× JSON: $verdict"
    done
done

if [ -z "${PLAN_ONLY:-}" ]; then
echo "== 2. listing: $listed backups through each provider's fake, 0 and 20 ms a request, cap 4"
listing_out=$(cargo bench --locked --bench listing -- "$listed" 4 20)
listing=$(grep '^listing ' <<<"$listing_out")
echo "$listing"
field() { sed "s/.* $1=\([^ ]*\).*/\1/" <<<"$2"; }
plural() { if [ "$1" = 1 ]; then echo "1 $2"; else echo "$1 ${2}s"; fi; }
while read -r line; do
    provider=$(field provider "$line")
    requests=$(field requests "$line")
    rounds=$(field rounds "$line")
    ideal=$(field ideal "$line")
    floor=$(field floor "$line")
    wall=$(field wall "$line")
    ratio=$(field ratio "$line")
    above=$(field above_floor "$line")
    ours=$(field cpu_retentiond "$line")
    verdict=$(awk -v a="$above" 'BEGIN { print (a <= 1.5) ? "met" : "NOT MET" }')
    row "list $listed, $provider: $(plural "$requests" request), $(plural "$rounds" round)" \
        "≤ 1.5× ideal above the floor" \
        "floor ${floor}, ideal ${ideal}" \
        "${wall} = ${ratio}× ideal, ${above}× above floor (retentiond CPU ${ours}): $verdict"
done <<<"$listing"

# Deletions through CBR's fake (asynchronous: look, DELETE, poll until gone) and through moto's
# S3 server (DeleteObjects calls of 1000 keys), `cap` at a time.
while read -r line; do
    [ -n "$line" ] || continue
    provider=$(field provider "$line")
    n=$(field n "$line")
    requests=$(field requests "$line")
    rounds=$(field rounds "$line")
    ideal=$(field ideal "$line")
    floor=$(field floor "$line")
    wall=$(field wall "$line")
    ratio=$(field ratio "$line")
    above=$(field above_floor "$line")
    verdict=$(awk -v a="$above" 'BEGIN { print (a <= 1.5) ? "met" : "NOT MET" }')
    row "delete $n, $provider: $(plural "$requests" request), $(plural "$rounds" round)" \
        "≤ 1.5× ideal above the floor" \
        "floor ${floor}, ideal ${ideal}" \
        "${wall} = ${ratio}× ideal, ${above}× above floor: $verdict"
done <<<"$(grep '^deletion ' <<<"$listing_out" || true)"

echo "== 3. deletion: $deletions deletions through the runner and the journal, 20 ms each"
delete=$(cargo bench --locked --bench delete -- "$deletions" 20 1 5 16 | grep '^delete ')
echo "$delete"
while read -r line; do
    cap=$(sed 's/.* cap=\([0-9]*\).*/\1/' <<<"$line")
    wall=$(sed 's/.* wall=\([0-9.]*\)s.*/\1/' <<<"$line")
    ideal=$(sed 's/.* ideal=\([0-9.]*\)s.*/\1/' <<<"$line")
    ratio=$(sed 's/.* ratio=\([0-9.]*\).*/\1/' <<<"$line")
    most=$(sed 's/.* max_in_flight=\([0-9]*\).*/\1/' <<<"$line")
    verdict=$(awk -v r="$ratio" -v m="$most" -v c="$cap" 'BEGIN { print (r <= 1.15 && m <= c) ? "met" : "NOT MET" }')
    row "delete $deletions at cap $cap" "≤ 1.15× ideal, ≤ cap in flight" "ideal ${ideal}s" \
        "${wall}s = ${ratio}×, at most $most in flight: $verdict"
done <<<"$delete"
journal=$(cargo bench --locked --bench delete -- "$deletions" 0 16 | grep '^delete ')
echo "$journal"
cost=$(sed 's/.* overhead_per_deletion=\([0-9.]*\)ms.*/\1/' <<<"$journal")
row "journal: intent + outcome per deletion" "(no target)" "0 (no latency)" "${cost} ms per deletion, 2 synced commits"
# The same with the fleet's journal: a throwaway PostgreSQL cluster on loopback (fsync on).
if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    pg=$(DELETE_JOURNAL=postgres cargo bench --locked --bench delete -- "$deletions" 20 16 | grep '^delete ')
    echo "$pg"
    wall=$(sed 's/.* wall=\([0-9.]*\)s.*/\1/' <<<"$pg")
    ideal=$(sed 's/.* ideal=\([0-9.]*\)s.*/\1/' <<<"$pg")
    ratio=$(sed 's/.* ratio=\([0-9.]*\).*/\1/' <<<"$pg")
    verdict=$(awk -v r="$ratio" 'BEGIN { print (r <= 1.15) ? "met" : "NOT MET" }')
    row "delete $deletions at cap 16, PostgreSQL journal" "≤ 1.15× ideal" "ideal ${ideal}s" "${wall}s = ${ratio}×: $verdict"
    pg=$(DELETE_JOURNAL=postgres cargo bench --locked --bench delete -- "$deletions" 0 16 | grep '^delete ')
    echo "$pg"
    cost=$(sed 's/.* overhead_per_deletion=\([0-9.]*\)ms.*/\1/' <<<"$pg")
    row "journal on PostgreSQL: intent + outcome" "(no target)" "0 (no latency)" "${cost} ms per deletion"
else
    echo "(PostgreSQL rows skipped: apt-get install postgresql)"
fi

echo "== 3b. local deletions against find -delete of the same files (SQLite journal, synced)"
# A fresh folder and journal for each measurement (bench/local_folder.py); retentiond's run
# and find take turns, the median of three for each size (one pair for a million files,
# whose folder takes 40 s to make).
# What a run costs before it holds any backup (a folder of 10 dumps, all kept): the binary's
# mapped pages, the runtime, SQLite's cache. Shown beside each row's figure, which includes it.
python3 bench/local_folder.py "$work/local" 10 1
fixed=$(rss_of "$(python3 bench/measure.py -- target/release/retentiond --config "$work/local/retentiond.yaml" run)")
echo "a run that deletes nothing: ${fixed}MB"
for n in $local_sizes; do
    ours="" finds="" reps=3
    [ "$n" -lt 1000000 ] || reps=1
    for _ in $(seq "$reps"); do
        python3 bench/local_folder.py "$work/local" "$n" 1
        target/release/retentiond --config "$work/local/retentiond.yaml" approve --all >/dev/null 2>&1
        ours+="$(python3 bench/measure.py -- target/release/retentiond --config "$work/local/retentiond.yaml" run)"$'\n'
        python3 bench/local_folder.py "$work/local" "$n" 1
        sync
        finds+="$(python3 bench/measure.py -- find "$work/local/backups" -name 'db-*' -delete)"$'\n'
    done
    middle=$(((reps + 1) / 2))
    ours=$(grep . <<<"$ours" | sort -t= -k2 -g | sed -n "${middle}p")
    floor=$(grep . <<<"$finds" | sort -t= -k2 -g | sed -n "${middle}p")
    echo "local $n: retentiond $ours; find $floor"
    ow=$(wall_of "$ours") fw=$(wall_of "$floor") orss=$(rss_of "$ours")
    deleted=$((n - 10))
    ratio=$(awk -v o="$ow" -v f="$fw" 'BEGIN { printf "%.2f", o / f }')
    per=$(awk -v m="$orss" -v n="$deleted" 'BEGIN { printf "%.0f", m * 1048576 / n }')
    above=$(awk -v m="$orss" -v f="$fixed" -v n="$deleted" 'BEGIN { printf "%.0f", (m - f) * 1048576 / n }')
    verdict=$(awk -v r="$ratio" -v p="$per" 'BEGIN { print (r <= 2 && p <= 300) ? "met" : "NOT MET" }')
    row "run deleting $deleted local files" "≤ 2× find -delete, ≤ 300 B/deletion" "find ${fw}s" \
        "${ow}s = ${ratio}× find, ${per} B/deletion (${above} B above the ${fixed} MB of a run deleting none): $verdict"
done

if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    echo "== 3c. the same on a PostgreSQL journal behind 1 ms each way (a loopback proxy)"
    pgl=$(python3 bench/pg_latency.py target/release/retentiond "$pg_local" 1 | grep '^pg_latency ')
    echo "$pgl"
    sw=$(sed 's/.* sqlite=\([0-9.]*\)s.*/\1/' <<<"$pgl")
    pw=$(sed 's/.* postgres=\([0-9.]*\)s.*/\1/' <<<"$pgl")
    ratio=$(sed 's/.* ratio=\([0-9.]*\).*/\1/' <<<"$pgl")
    verdict=$(awk -v r="$ratio" 'BEGIN { print (r <= 1.3) ? "met" : "NOT MET" }')
    row "run deleting $pg_local local files, PostgreSQL +2 ms" "≤ 1.3× the SQLite run" "SQLite ${sw}s" \
        "${pw}s = ${ratio}×: $verdict"
fi

if python3 -c 'import moto.server, boto3' 2>/dev/null; then
    echo "== 3e. S3 deletions against a plain boto3 loop (list, then DeleteObjects of 1,000, 4 at a time) on moto's server"
    s3d=$(python3 bench/s3_delete.py target/release/retentiond "$s3_objects" 3 4 | grep '^s3_delete ')
    echo "$s3d"
    ow=$(sed 's/.* retentiond=\([0-9.]*\)s.*/\1/' <<<"$s3d")
    bw=$(sed 's/.* boto=\([0-9.]*\)s.*/\1/' <<<"$s3d")
    ratio=$(sed 's/.* ratio=\([0-9.]*\).*/\1/' <<<"$s3d")
    verdict=$(awk -v r="$ratio" 'BEGIN { print (r <= 1.2) ? "met" : "NOT MET" }')
    row "run deleting $s3_objects S3 objects (moto)" "≤ 1.2× a boto3 loop" "boto3 ${bw}s" "${ow}s = ${ratio}×: $verdict"
else
    echo "(row 3e skipped: pip install 'moto[server]')"
fi

echo "== 3d. plan of 1,000 policies (one per database) on one local folder of 30,000 dumps"
python3 bench/local_folder.py "$work/many" 30000 1000
target/release/retentiond --config "$work/many/retentiond.yaml" approve --all >/dev/null 2>&1
plans=""
for _ in 1 2 3 4 5; do
    plans+="$(python3 bench/measure.py -- target/release/retentiond --config "$work/many/retentiond.yaml" plan)"$'\n'
done
many=$(median "$plans")
echo "plan 1000 policies: $many"
mw=$(wall_of "$many")
verdict=$(awk -v w="$mw" 'BEGIN { print (w <= 1) ? "met" : "NOT MET" }')
row "plan 1,000 policies on 30,000 local files" "≤ 1 s" "-" "${mw}s: $verdict"

echo "== 4. daemon idle: 100 policies, ${idle} s between fires"
idle_out=$(python3 bench/daemon_idle.py target/release/retentiond 100 "$idle")
echo "$idle_out"
rss=$(sed 's/.* rss=\([0-9.]*\)MB.*/\1/' <<<"$idle_out")
cpu=$(sed 's/.* cpu_per_minute=\([0-9.]*\)ms.*/\1/' <<<"$idle_out")
verdict=$(awk -v r="$rss" -v c="$cpu" 'BEGIN { print (r <= 15 && c <= 10) ? "met" : "NOT MET" }')
row "daemon idle, 100 policies" "≤ 15 MB, ≤ 10 ms CPU/min" "-" "${rss} MB, ${cpu} ms/min: $verdict"

fi

echo "== 5. side by side with borg 1.2's prune_split (Debian's borgbackup): $big backups, one group"
listing="$work/listing-1.json"
if /usr/bin/python3 -c 'import borg' 2>/dev/null; then
    borgs="" ours=""
    for _ in 1 2 3 4 5; do
        borgs+="$(python3 bench/measure.py -- /usr/bin/python3 bench/borg_prune.py "$listing")"$'\n'
        ours+="$(python3 bench/measure.py -- target/release/retentiond plan --policies bench/borg-policy.yaml \
            --listing "$listing" --now 2026-11-23T00:00:00Z --format json)"$'\n'
    done
    borg=$(median "$borgs") ours=$(median "$ours")
    echo "borg: $borg; retentiond: $ours"
    bw=$(wall_of "$borg") ow=$(wall_of "$ours")
    times=$(awk -v b="$bw" -v o="$ow" 'BEGIN { printf "%.1f", b / o }')
    verdict=$(awk -v t="$times" 'BEGIN { print (t >= 10) ? "met" : "NOT MET" }')
    row "plan vs borg prune_split, $big backups" "≥ 10× faster than borg" "borg ${bw}s" \
        "${ow}s = ${times}× faster: $verdict"
else
    echo "borg is not installed (apt-get install borgbackup): skipped"
fi

if [ -z "${PLAN_ONLY:-}" ]; then
echo "== 6. simulate: 3 years of hourly backups, the example policy running daily"
sim=$(python3 bench/measure.py -- target/release/retentiond --config examples/local/retentiond.yaml \
    simulate --policy pg-main --cadence "0 * * * *" --from 2026-01-01T00:00:00Z --for 3y)
echo "simulate: $sim"
sw=$(sed 's/wall=\([0-9.]*\)s.*/\1/' <<<"$sim")
verdict=$(awk -v w="$sw" 'BEGIN { print (w < 1) ? "met" : "NOT MET" }')
row "simulate 3y hourly (26,304 backups, 1,096 runs)" "well under 1 s" "-" "${sw}s: $verdict"

fi

echo
echo "== results"
printf '%-46s | %-37s | %-16s | %s\n' "figure" "target" "floor / ideal" "measured"
for r in "${rows[@]}"; do echo "$r"; done
