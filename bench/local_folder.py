#!/usr/bin/env python3
"""Makes a local account for the deletion and many-policy benchmarks: DIR/backups holds N
empty dump files of DBS databases (one a minute, newest 2026-01-01), DIR/retentiond.yaml a
config on it, DIR/policies one enforce policy per database keeping its 10 newest. A fresh
journal each time (DIR/state is removed).

    python3 bench/local_folder.py DIR N [DBS]
"""
import datetime
import os
import shutil
import sys

root, n = sys.argv[1], int(sys.argv[2])
dbs = int(sys.argv[3]) if len(sys.argv) > 3 else 1
for sub in ("backups", "policies", "state"):
    shutil.rmtree(os.path.join(root, sub), ignore_errors=True)
os.makedirs(os.path.join(root, "backups"))
os.makedirs(os.path.join(root, "policies"))
newest = datetime.datetime(2026, 1, 1)
folder = os.path.join(root, "backups")
for i in range(n):
    at = newest - datetime.timedelta(minutes=i // dbs)
    name = f"db-{i % dbs:04d}-{at:%Y%m%dT%H%M%SZ}.dump"
    os.close(os.open(os.path.join(folder, name), os.O_CREAT | os.O_WRONLY, 0o644))
with open(os.path.join(root, "retentiond.yaml"), "w") as f:
    f.write("policies: policies\nstate_dir: state\naccounts:\n  dumps: {provider: local, path: backups}\n")
for db in range(dbs):
    with open(os.path.join(root, "policies", f"db-{db:04d}.yaml"), "w") as f:
        f.write(
            f"name: db-{db:04d}\naccount: dumps\nmode: enforce\n"
            f"select:\n  pattern: '^db-{db:04d}-(?P<ts>\\d{{8}}T\\d{{6}}Z)\\.dump$'\n"
            '  timestamp_format: "%Y%m%dT%H%M%SZ"\n'
            "keep: {last: 10}\nguard: {max_delete_fraction: 1, max_delete: 100000000}\n"
        )
