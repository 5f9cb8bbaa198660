#!/usr/bin/env python3
"""Writes a large listing in retentiond's listing format, for the plan benchmark.

    python3 bench/make_listing.py 1000000 [GROUPS] > /tmp/listing-1m.json

Backups are spread over GROUPS groups (servers, default 1,000), one every ~2 hours going back in time,
with a failed backup every 97th and an in-progress one every 1,009th. Deterministic.
"""
import sys
from datetime import datetime, timedelta, timezone

n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
groups = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
newest = datetime(2026, 11, 22, 23, 0, tzinfo=timezone.utc)
out = sys.stdout
out.write('{"backups": [\n')
for i in range(n):
    group = i % groups
    step = i // groups
    t = newest - timedelta(hours=2 * step, minutes=group % 60)
    status = "failed" if i % 97 == 0 else "in_progress" if i % 1009 == 0 else "complete"
    sep = ",\n" if i + 1 < n else "\n"
    out.write(
        f'{{"id": "bk-{i:08d}", "group": "server-{group:04d}", '
        f'"created_at": "{t.strftime("%Y-%m-%dT%H:%M:%SZ")}", "status": "{status}", '
        f'"name": "nightly-{group:04d}-{step:05d}"}}{sep}'
    )
out.write("]}\n")
