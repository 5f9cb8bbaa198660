#!/usr/bin/env python3
"""`retentiond run` deleting N local files with the journal on PostgreSQL behind DELAY_MS of
added latency each way (a loopback proxy that holds every chunk that long: `bench/delay_proxy.rs`,
the `delay_proxy` example built beside RETENTIOND), against the same run on SQLite. A throwaway
cluster (Debian's postgresql: initdb and pg_ctl), fsync on.

    cargo build --release --bin retentiond --example delay_proxy
    python3 bench/pg_latency.py target/release/retentiond N [DELAY_MS]

Prints `pg_latency n=... delay=...ms sqlite=...s postgres=...s ratio=...` (medians of three,
each run on a fresh journal: a new folder, a new database).
"""
import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

binary, n = sys.argv[1], int(sys.argv[2])
delay = float(sys.argv[3]) / 1000 if len(sys.argv) > 3 else 0.001
here = os.path.dirname(os.path.abspath(__file__))
pg_bin = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]))[-1]
as_root = os.geteuid() == 0
proxy_binary = os.path.join(os.path.dirname(os.path.abspath(binary)), "examples", "delay_proxy")
if not os.access(proxy_binary, os.X_OK):
    sys.exit(f"{proxy_binary} is missing: cargo build --release --example delay_proxy")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pg_tool(name, *args, cwd):
    command = [os.path.join(pg_bin, name), *args]
    if as_root:
        command = ["runuser", "-u", "postgres", "--", *command]
    subprocess.run(command, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def timed_run(config):
    start = time.monotonic()
    child = subprocess.run([binary, "--config", config, "run"], stdout=subprocess.DEVNULL)
    if child.returncode != 0:
        sys.exit(f"retentiond run exited {child.returncode}")
    return time.monotonic() - start


def main():
    work = tempfile.mkdtemp()
    forwarder = None
    try:
        data = os.path.join(work, "pg")
        os.makedirs(data)
        if as_root:
            shutil.chown(work, "postgres", "postgres")
            shutil.chown(data, "postgres", "postgres")
        pg_tool("initdb", "-D", data, "-U", "retentiond", "--auth=trust", "-E", "UTF8", "--no-locale", cwd=work)
        port = free_port()
        pg_tool("pg_ctl", "-D", data, "-o", f"-p {port} -c listen_addresses=127.0.0.1 -k {work} -c fsync=on",
                "-l", os.path.join(work, "server.log"), "-w", "start", cwd=work)
        forwarder = subprocess.Popen([proxy_binary, str(port), str(delay * 1000)], stdout=subprocess.PIPE, text=True)
        proxy = int(forwarder.stdout.readline())
        folder = os.path.join(work, "local")
        times = {"sqlite": [], "postgres": []}
        for turn in range(3):
            # A fresh database each turn, as the SQLite run gets a fresh journal.
            database = f"bench{turn}"
            subprocess.run([os.path.join(pg_bin, "createdb"), "-h", "127.0.0.1", "-p", str(port),
                            "-U", "retentiond", database], check=True)
            url = f"postgresql://retentiond@127.0.0.1:{proxy}/{database}?sslmode=disable"
            for journal in ("sqlite", "postgres"):
                subprocess.run([sys.executable, os.path.join(here, "local_folder.py"), folder, str(n), "1"], check=True)
                config = os.path.join(folder, "retentiond.yaml")
                if journal == "postgres":
                    with open(os.path.join(work, "pg-url"), "w") as f:
                        f.write(url)
                    with open(config, "a") as f:
                        f.write(f'journal: {{postgres: "${{file:{work}/pg-url}}"}}\n')
                subprocess.run([binary, "--config", config, "approve", "--all"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                times[journal].append(timed_run(config))
        sqlite, postgres = (sorted(times[j])[1] for j in ("sqlite", "postgres"))
        print(f"pg_latency n={n} delay={delay * 1000:.0f}ms each way sqlite={sqlite:.2f}s "
              f"postgres={postgres:.2f}s ratio={postgres / sqlite:.2f}")
        pg_tool("pg_ctl", "-D", data, "-m", "immediate", "-w", "stop", cwd=work)
    finally:
        if forwarder:
            forwarder.kill()
        shutil.rmtree(work, ignore_errors=True)


main()
