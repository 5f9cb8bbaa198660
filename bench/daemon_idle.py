#!/usr/bin/env python3
"""The daemon at rest: 100 policies loaded (local provider, no fire during the window),
measured over 60 s between fires: resident memory and CPU time.

    python3 bench/daemon_idle.py [BINARY] [POLICIES] [SECONDS]

Prints `idle policies=100 seconds=60 rss=…MB peak_rss=…MB cpu=…ms cpu_per_minute=…ms`.
"""
import os
import signal
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone

binary = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "target/release/retentiond")
count = int(sys.argv[2]) if len(sys.argv) > 2 else 100
seconds = float(sys.argv[3]) if len(sys.argv) > 3 else 60
tick = os.sysconf("SC_CLK_TCK")


def cpu_ms(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000 / tick  # utime + stime


def memory_mb(pid, key):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


with tempfile.TemporaryDirectory() as d:
    os.makedirs(f"{d}/policies")
    os.makedirs(f"{d}/backups")
    # Twelve hours away: no policy fires during the window.
    hour = (datetime.now(timezone.utc).hour + 12) % 24
    with open(f"{d}/retentiond.yaml", "w") as f:
        f.write("policies: policies\nstate_dir: state\n"
                'metrics: { listen: "127.0.0.1:0" }\n'
                "defaults: { timezone: UTC }\n"
                "accounts:\n  dumps: { provider: local, path: backups }\n")
    for i in range(count):
        with open(f"{d}/policies/p{i:03d}.yaml", "w") as f:
            f.write(f"name: p{i:03d}\naccount: dumps\nschedule: \"{i % 60} {hour} * * *\"\n"
                    f"select: {{ pattern: '^p{i:03d}-(?P<ts>\\d{{8}}T\\d{{6}}Z)$', "
                    f"timestamp_format: \"%Y%m%dT%H%M%SZ\" }}\n"
                    "keep: { daily: 7, weekly: 4, monthly: 12 }\n")
    log = open(f"{d}/daemon.log", "w+")
    child = subprocess.Popen([binary, "--config", f"{d}/retentiond.yaml", "daemon"],
                             stdout=subprocess.DEVNULL, stderr=log)
    try:
        deadline = time.monotonic() + 30
        while "ready:" not in open(f"{d}/daemon.log").read():
            if child.poll() is not None or time.monotonic() > deadline:
                sys.exit("the daemon did not start:\n" + open(f"{d}/daemon.log").read())
            time.sleep(0.05)
        time.sleep(2)  # let start-up settle
        before = cpu_ms(child.pid)
        time.sleep(seconds)
        used = cpu_ms(child.pid) - before
        rss, peak = memory_mb(child.pid, "VmRSS"), memory_mb(child.pid, "VmHWM")
    finally:
        child.send_signal(signal.SIGTERM)
        child.wait(timeout=30)
    print(f"idle policies={count} seconds={seconds:g} rss={rss:.1f}MB peak_rss={peak:.1f}MB "
          f"cpu={used:.0f}ms cpu_per_minute={used * 60 / seconds:.1f}ms")
