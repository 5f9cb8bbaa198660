"""S3 deletion against a plain client loop on the same server: moto's S3 server (PyPI
`moto[server]`) in this process, a bucket filled with N dump objects through moto's backend,
then, taking turns on a freshly filled bucket each time:

  - `retentiond run` of one enforce policy keeping the newest 10 (its listing, its plan, its
    journal synced, DeleteObjects calls of 1,000 keys, `http.concurrency` at a time);
  - boto3 doing the same work the plainest way: list the prefix (ListObjectsV2 pages), then
    DeleteObjects calls of 1,000 keys with the same concurrency (a thread pool).

Prints one line: `s3_delete n=N retentiond=S boto=S ratio=R` (medians of REPS turns).

    python3 bench/s3_delete.py RETENTIOND N [REPS] [CONCURRENCY]
"""

import concurrent.futures
import datetime
import logging
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import boto3
from botocore.config import Config
from moto.server import ThreadedMotoServer
from moto.s3.models import s3_backends

ACCOUNT = "123456789012"
KEEP = 10


def fill(backend, n, turn):
    """A new bucket of N dumps, one a minute, through moto's backend (fast, not what is
    measured); returns its name."""
    bucket = f"bench-{turn}"
    backend.create_bucket(bucket, "us-east-1")
    start = datetime.datetime(2026, 1, 1)
    for i in range(n):
        at = start + datetime.timedelta(minutes=i)
        obj = backend.put_object(bucket, f"db/dump-{at:%Y%m%dT%H%M%S}Z.sql.gz", b"x")
        obj.last_modified = at
    return bucket


def config(folder, endpoint, concurrency, bucket):
    os.makedirs(os.path.join(folder, "policies"), exist_ok=True)
    with open(os.path.join(folder, "retentiond.yaml"), "w") as f:
        f.write(
            f"""policies: policies
state_dir: state
accounts:
  bucket:
    provider: s3
    endpoint: {endpoint}
    region: us-east-1
    bucket: {bucket}
    path_style: true
    access_key_id: "${{env:BENCH_KEY}}"
    secret_access_key: "${{env:BENCH_SECRET}}"
    http: {{concurrency: {concurrency}}}
"""
        )
    with open(os.path.join(folder, "policies", "p.yaml"), "w") as f:
        f.write(
            f"""name: p
account: bucket
mode: enforce
select:
  prefix: db/
  pattern: '^dump-(?P<ts>\\d{{8}}T\\d{{6}}Z)\\.sql\\.gz$'
  timestamp_format: "%Y%m%dT%H%M%SZ"
keep: {{last: {KEEP}}}
guard: {{max_delete_fraction: 1, unapproved_max_delete: 100000000, unapproved_max_delete_fraction: 1}}
"""
        )


def ours(retentiond, folder):
    shutil.rmtree(os.path.join(folder, "state"), ignore_errors=True)
    env = dict(os.environ, BENCH_KEY="bench", BENCH_SECRET="bench-secret")
    started = time.monotonic()
    subprocess.run(
        [retentiond, "--config", os.path.join(folder, "retentiond.yaml"), "--quiet", "run"],
        check=True,
        env=env,
        stdout=subprocess.DEVNULL,
    )
    return time.monotonic() - started


def boto(endpoint, concurrency, bucket):
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="bench",
        aws_secret_access_key="bench-secret",
        config=Config(s3={"addressing_style": "path"}, max_pool_connections=concurrency),
    )
    started = time.monotonic()
    keys = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix="db/"):
        keys.extend(o["Key"] for o in page.get("Contents", []))
    keys.sort()
    doomed = keys[:-KEEP]
    chunks = [doomed[i : i + 1000] for i in range(0, len(doomed), 1000)]

    def delete(chunk):
        client.delete_objects(
            Bucket=bucket, Delete={"Objects": [{"Key": k} for k in chunk], "Quiet": True}
        )

    with concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(delete, chunks))
    return time.monotonic() - started


def main():
    retentiond, n = sys.argv[1], int(sys.argv[2])
    reps = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    concurrency = int(sys.argv[4]) if len(sys.argv) > 4 else 4
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    backend = s3_backends[ACCOUNT]["aws"]
    folder = tempfile.mkdtemp()
    times = {"retentiond": [], "boto": []}
    try:
        for turn in range(reps):
            bucket = fill(backend, n, 2 * turn)
            config(folder, endpoint, concurrency, bucket)
            times["retentiond"].append(ours(retentiond, folder))
            left = len(backend.buckets[bucket].keys)
            assert left == KEEP, f"retentiond left {left} objects"
            bucket = fill(backend, n, 2 * turn + 1)
            times["boto"].append(boto(endpoint, concurrency, bucket))
            left = len(backend.buckets[bucket].keys)
            assert left == KEEP, f"boto left {left} objects"
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)
    a, b = statistics.median(times["retentiond"]), statistics.median(times["boto"])
    print(
        f"s3_delete n={n} concurrency={concurrency} retentiond={a:.2f}s boto={b:.2f}s ratio={a / b:.2f}"
        f" all_retentiond={','.join(f'{t:.2f}' for t in times['retentiond'])}"
        f" all_boto={','.join(f'{t:.2f}' for t in times['boto'])}"
    )


main()
