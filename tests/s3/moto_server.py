"""A real S3-compatible server for the tests: moto's server (PyPI `moto[server]`) on
127.0.0.1, with request signing checked (moto recomputes each SigV4 signature with botocore
and refuses a wrong one), run in this process so that the tests can set buckets up quickly.

Prints one JSON line: {"endpoint", "access_key_id", "secret_access_key"} — the keys of an IAM
user allowed everything. Then answers JSON-line commands on stdin, one JSON line each:

  {"op": "bucket", "name": B, "versioned": bool, "lock": bool}
  {"op": "put", "bucket": B, "objects": [{"key": K, "last_modified": RFC3339?, "size": N?,
           "lock_until": RFC3339?, "legal_hold": bool?}]}             -> {"count": n}
  {"op": "delete", "bucket": B, "keys": [K]}  -> {"count": n}   (behind retentiond's back)
  {"op": "keys", "bucket": B}                 -> {"keys": [current keys, sorted]}
  {"op": "versions", "bucket": B}             -> {"versions": [[key, version_id, is_marker]]}

The test's setup goes straight to moto's in-memory backend (fast, and independent of the code
under test); everything retentiond does goes over HTTP. Ends at end of input.
"""

import datetime
import json
import os
import sys

# The first requests create the IAM user without authentication; every later one is checked.
os.environ["INITIAL_NO_AUTH_ACTION_COUNT"] = "3"

import boto3  # noqa: E402
from moto.server import ThreadedMotoServer  # noqa: E402
from moto.s3.models import s3_backends  # noqa: E402

ACCOUNT = "123456789012"


def keep_the_query_as_sent():
    """moto checks a signature against the URL werkzeug rebuilds, whose query has `%2F` (and
    other safe escapes) decoded to `/`: a listing with `prefix=db%2F`, signed as sent, would
    fail even from boto3. moto is given the query string exactly as it came instead."""
    from moto.core import responses

    original = responses.BaseResponse.setup_class

    def setup_class(self, request, full_url, headers, use_raw_body=False):
        environ = getattr(request, "environ", None) or {}
        query = environ.get("QUERY_STRING")
        if query:
            full_url = full_url.split("?", 1)[0] + "?" + query
        return original(self, request, full_url, headers, use_raw_body)

    responses.BaseResponse.setup_class = setup_class


def main():
    keep_the_query_as_sent()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    iam = boto3.client(
        "iam",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="setup",
        aws_secret_access_key="setup",
    )
    iam.create_user(UserName="retentiond")
    iam.put_user_policy(
        UserName="retentiond",
        PolicyName="all",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
            }
        ),
    )
    key = iam.create_access_key(UserName="retentiond")["AccessKey"]
    reply(
        {
            "endpoint": endpoint,
            "access_key_id": key["AccessKeyId"],
            "secret_access_key": key["SecretAccessKey"],
        }
    )
    backend = s3_backends[ACCOUNT]["aws"]
    for line in sys.stdin:
        if not line.strip():
            continue
        command = json.loads(line)
        try:
            reply(run(backend, command))
        except Exception as e:  # the test prints it
            reply({"error": f"{type(e).__name__}: {e}"})
    server.stop()


def run(backend, command):
    op = command["op"]
    if op == "bucket":
        name = command["name"]
        backend.create_bucket(name, "eu-west-1")
        bucket = backend.get_bucket(name)
        if command.get("lock"):
            bucket.object_lock_enabled = True
            command["versioned"] = True
        if command.get("versioned"):
            backend.put_bucket_versioning(name, "Enabled")
        return {"ok": True}
    if op == "put":
        bucket = command["bucket"]
        for spec in command["objects"]:
            lock = spec.get("lock_until")
            obj = backend.put_object(
                bucket,
                spec["key"],
                b"x" * spec.get("size", 1),
                lock_mode="GOVERNANCE" if lock else None,
                lock_until=lock,
                lock_legal_status="ON" if spec.get("legal_hold") else None,
            )
            if spec.get("last_modified"):
                when = datetime.datetime.fromisoformat(
                    spec["last_modified"].replace("Z", "+00:00")
                )
                obj.last_modified = when.astimezone(datetime.timezone.utc).replace(
                    tzinfo=None
                )
        return {"count": len(command["objects"])}
    if op == "delete":
        for name in command["keys"]:
            backend.delete_object(command["bucket"], name)
        return {"count": len(command["keys"])}
    if op == "keys":
        bucket = backend.get_bucket(command["bucket"])
        keys = [
            name
            for name in bucket.keys.keys()
            if not getattr(bucket.keys[name], "is_delete_marker", False)
            and type(bucket.keys[name]).__name__ != "FakeDeleteMarker"
        ]
        return {"keys": sorted(keys)}
    if op == "versions":
        bucket = backend.get_bucket(command["bucket"])
        versions = []
        for name in bucket.keys.keys():
            for obj in bucket.keys.getlist(name):
                marker = type(obj).__name__ == "FakeDeleteMarker"
                versions.append([name, obj.version_id, marker])
        return {"versions": sorted(versions)}
    raise ValueError(f"unknown op {op}")


def reply(value):
    sys.stdout.write(json.dumps(value) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
