"""The emulator's own ceiling for what the worker does: copy every member object into the
archive, with nothing but one GET and one PUT per object, from 16 threads (the worker's
max_in_flight in the devstack configuration).

    python baseline_copy.py STATE_DIR

Writes into a scratch bucket in the security account (not the archive, which the worker
fills afterwards) and prints one JSON line: objects, bytes, seconds.
"""

import json
import pathlib
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import boto3
import botocore.config

import devstack_identity

state = json.loads((pathlib.Path(sys.argv[1]) / "devstack.json").read_text())
endpoint = state["endpoint"]
config = botocore.config.Config(s3={"addressing_style": "path"}, max_pool_connections=32)


def credentials(account, base):
    return devstack_identity.credentials(endpoint, account, base, "baseline")


root = devstack_identity.ROOT
management = credentials(state["management_account"], root)
security = credentials(state["security"]["account"], management)
region = state["security"]["archive_region"]
target = boto3.client("s3", endpoint_url=endpoint, region_name=region, config=config, **security)
scratch = f"{state['namespace']}-baseline-{state['security']['account']}"
target.create_bucket(Bucket=scratch)

work = []
for member in state["members"]:
    creds = credentials(member["account"], management)
    for bucket in member["buckets"]:
        s3 = boto3.client("s3", endpoint_url=endpoint, region_name=bucket["region"], config=config, **creds)
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket["name"]):
            for o in page.get("Contents", []):
                work.append((s3, bucket["name"], o["Key"]))


def copy(item):
    s3, bucket, key = item
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    target.put_object(Bucket=scratch, Key=f"{bucket}/{key}", Body=body)
    return len(body)


started = time.monotonic()
with ThreadPoolExecutor(max_workers=16) as pool:
    total = sum(pool.map(copy, work))
seconds = time.monotonic() - started
print(json.dumps({"objects": len(work), "bytes": total, "seconds": round(seconds, 3)}))
