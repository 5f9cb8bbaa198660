#!/usr/bin/python3
"""borg 1.2's retention on a retentiond listing, as `borg prune` applies it without repository
I/O: read the listing, make an archive per backup (id, ts), then borg's own
`borg.helpers.misc.prune_split` per rule in the order `borg prune` uses, with the rules of
bench/policy.yaml (`--keep-last` is borg's `secondly`; unlimited yearly is -1). Prints the
counts kept and deleted. Needs Debian's `borgbackup` package (its Python, /usr/bin/python3).

    /usr/bin/python3 bench/borg_prune.py LISTING.json
"""
import json
import sys
from collections import namedtuple
from datetime import datetime

from borg.helpers.misc import prune_split

Archive = namedtuple("Archive", "id ts")

RULES = [("secondly", 10), ("hourly", 48), ("daily", 30), ("weekly", 12), ("monthly", 24), ("yearly", -1)]


def main():
    with open(sys.argv[1], "rb") as f:
        listing = json.load(f)
    archives = [
        Archive(b["id"], datetime.fromisoformat(b["created_at"].replace("Z", "+00:00")))
        for b in listing["backups"]
        if b.get("status", "complete") == "complete"
    ]
    kept_because = {}
    keep = []
    for rule, n in RULES:
        keep += prune_split(archives, rule, n, kept_because)
    kept = {a.id for a in keep}
    print(f"borg 1.2 prune_split: keep {len(kept)}, delete {len(archives) - len(kept)}")


main()
