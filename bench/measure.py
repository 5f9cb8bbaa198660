#!/usr/bin/env python3
"""Runs a command and prints its wall time and peak memory: `wall=1.23s maxrss=45.6MB`.

    python3 bench/measure.py -- COMMAND [ARG...]

The command's own output goes to /dev/null; a non-zero exit fails.

The peak is read by GNU time (`/usr/bin/time`, Debian's package `time`) when it is there.
A process started from this script starts as a copy of it, and Linux counts that copy's
pages in the peak it reports for the command (`ru_maxrss` survives the exec): about 13 MB of
Python that the command never used. GNU time is a small C program, so the copy its child
starts as is about 1 MB. Without it the peak comes from `wait4` and the note on standard
error says so.
"""
import os
import shutil
import subprocess
import sys
import tempfile
import time

args = sys.argv[1:]
if args and args[0] == "--":
    args = args[1:]
gnu_time = shutil.which("time", path="/usr/bin:/bin")
with tempfile.NamedTemporaryFile("r") as peak:
    command = [gnu_time, "-f", "%M", "-o", peak.name, *args] if gnu_time else args
    start = time.monotonic()
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.monotonic() - start
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        sys.exit(f"{args[0]} exited {code}")
    if gnu_time:
        # GNU time writes "Command exited with non-zero status N" first on a failure; the
        # peak, in KiB, is the last line.
        kib = int(peak.read().split()[-1])
    else:
        print("measure.py: no /usr/bin/time; the peak includes this script's own", file=sys.stderr)
        kib = usage.ru_maxrss
print(f"wall={wall:.2f}s maxrss={kib / 1024:.1f}MB")
