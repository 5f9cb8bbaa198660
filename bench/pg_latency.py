#!/usr/bin/env python3
"""`retentiond run` deleting N local files with the journal on PostgreSQL behind DELAY_MS of
added latency each way (a loopback proxy that holds every chunk that long), against the same
run on SQLite. A throwaway cluster (Debian's postgresql: initdb and pg_ctl), fsync on.

    python3 bench/pg_latency.py RETENTIOND N [DELAY_MS]

Prints `pg_latency n=... delay=...ms sqlite=...s postgres=...s ratio=...` (medians of three,
each run on a fresh journal: a new folder, a new database).
"""
import asyncio
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


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pg_tool(name, *args, cwd):
    command = [os.path.join(pg_bin, name), *args]
    if as_root:
        command = ["runuser", "-u", "postgres", "--", *command]
    subprocess.run(command, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def pipe(reader, writer):
    """Forwards one direction, each chunk held `delay` (chunks keep their order)."""
    queue = asyncio.Queue()

    async def send():
        while True:
            due, data = await queue.get()
            if data is None:
                writer.close()
                return
            await asyncio.sleep(max(0, due - time.monotonic()))
            writer.write(data)
            await writer.drain()

    sender = asyncio.create_task(send())
    while data := await reader.read(65536):
        queue.put_nowait((time.monotonic() + delay, data))
    queue.put_nowait((0, None))
    await sender


async def serve(listen, target):
    async def handle(client_reader, client_writer):
        server_reader, server_writer = await asyncio.open_connection("127.0.0.1", target)
        try:
            await asyncio.gather(pipe(client_reader, server_writer), pipe(server_reader, client_writer),
                                 return_exceptions=True)
        except asyncio.CancelledError:
            # The benchmark is over and the event loop is closing: nothing left to forward.
            pass

    return await asyncio.start_server(handle, "127.0.0.1", listen)


async def timed_run(config):
    start = time.monotonic()
    child = await asyncio.create_subprocess_exec(binary, "--config", config, "run",
                                                 stdout=subprocess.DEVNULL)
    if await child.wait() != 0:
        sys.exit(f"retentiond run exited {child.returncode}")
    return time.monotonic() - start


async def main():
    work = tempfile.mkdtemp()
    try:
        data = os.path.join(work, "pg")
        os.makedirs(data)
        if as_root:
            shutil.chown(work, "postgres", "postgres")
            shutil.chown(data, "postgres", "postgres")
        pg_tool("initdb", "-D", data, "-U", "retentiond", "--auth=trust", "-E", "UTF8", "--no-locale", cwd=work)
        port, proxy = free_port(), free_port()
        pg_tool("pg_ctl", "-D", data, "-o", f"-p {port} -c listen_addresses=127.0.0.1 -k {work} -c fsync=on",
                "-l", os.path.join(work, "server.log"), "-w", "start", cwd=work)
        await serve(proxy, port)
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
                approve = await asyncio.create_subprocess_exec(binary, "--config", config, "approve", "--all",
                                                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                await approve.wait()
                times[journal].append(await timed_run(config))
        sqlite, postgres = (sorted(times[j])[1] for j in ("sqlite", "postgres"))
        print(f"pg_latency n={n} delay={delay * 1000:.0f}ms each way sqlite={sqlite:.2f}s "
              f"postgres={postgres:.2f}s ratio={postgres / sqlite:.2f}")
        pg_tool("pg_ctl", "-D", data, "-m", "immediate", "-w", "stop", cwd=work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


asyncio.run(main())
