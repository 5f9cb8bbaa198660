#!/usr/bin/env python3
"""Regenerates examples/local/backups/postgres: empty files whose names carry realistic
timestamps. Deterministic; run from anywhere: python3 examples/local/generate.py

- pg-main: one dump a night at 02:30 UTC from 2024-11-25 to 2026-11-22, with gaps (a missed
  night now and then, a nine-day outage in August 2025), plus hourly dumps on 20-22 Nov 2026;
  one failed dump (a `.failed` marker beside it) and one still being written (`.partial`).
- pg-analytics: one dump a week (Sundays 04:00 UTC) for the last year.
"""
from datetime import datetime, timedelta, timezone
from pathlib import Path

root = Path(__file__).parent / "backups" / "postgres"
root.mkdir(parents=True, exist_ok=True)
for old in root.iterdir():
    old.unlink()

def touch(name):
    (root / name).write_bytes(b"")

def stamp(t):
    return t.strftime("%Y%m%dT%H%M%SZ")

start = datetime(2024, 11, 25, 2, 30, tzinfo=timezone.utc)
end = datetime(2026, 11, 22, 2, 30, tzinfo=timezone.utc)
outage = (datetime(2025, 8, 3, tzinfo=timezone.utc), datetime(2025, 8, 12, tzinfo=timezone.utc))
day = start
n = 0
while day <= end:
    n += 1
    missed = n % 37 == 0 or outage[0] <= day < outage[1]
    if not missed:
        touch(f"pg-main-{stamp(day)}.sql.gz")
    day += timedelta(days=1)

hour = datetime(2026, 11, 20, 0, 15, tzinfo=timezone.utc)
while hour < datetime(2026, 11, 23, 0, 0, tzinfo=timezone.utc):
    touch(f"pg-main-{stamp(hour)}.sql.gz")
    hour += timedelta(hours=1)

failed = f"pg-main-{stamp(datetime(2026, 11, 18, 2, 30, tzinfo=timezone.utc))}.sql.gz"
touch(failed + ".failed")
partial = f"pg-main-{stamp(datetime(2026, 11, 22, 23, 55, tzinfo=timezone.utc))}.sql.gz"
touch(partial)
touch(partial + ".partial")

week = datetime(2025, 11, 23, 4, 0, tzinfo=timezone.utc)
while week <= end:
    touch(f"pg-analytics-{stamp(week)}.sql.gz")
    week += timedelta(weeks=1)

touch("README.txt")
print(len(list(root.iterdir())), "files in", root)
