#!/usr/bin/env python3
"""Runs a command and prints its wall time and peak memory: `wall=1.23s maxrss=45.6MB`.

    python3 bench/measure.py -- COMMAND [ARG...]

The command's own output goes to /dev/null; a non-zero exit fails.
"""
import os
import subprocess
import sys
import time

args = sys.argv[1:]
if args and args[0] == "--":
    args = args[1:]
start = time.monotonic()
child = subprocess.Popen(args, stdout=subprocess.DEVNULL)
_, status, usage = os.wait4(child.pid, 0)
wall = time.monotonic() - start
code = os.waitstatus_to_exitcode(status)
if code != 0:
    sys.exit(f"{args[0]} exited {code}")
print(f"wall={wall:.2f}s maxrss={usage.ru_maxrss / 1024:.1f}MB")
