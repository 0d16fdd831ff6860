"""Prepares one run of bench/alerts: the compressed bytes the worker will read (every member
object), and with --topic an SNS topic in the security account for the worker's alerts (no
subscriber: the benchmark measures the worker, not SNS's fan-out).

    python alerts_setup.py STATE_DIR [--topic]

Prints one JSON line: objects, bytes, topic (or null).
"""

import json
import pathlib
import sys

import boto3
import botocore.config

import devstack_identity

state = json.loads((pathlib.Path(sys.argv[1]) / "devstack.json").read_text())
endpoint = state["endpoint"]
config = botocore.config.Config(s3={"addressing_style": "path"})
root = devstack_identity.ROOT
management = devstack_identity.credentials(endpoint, state["management_account"], root, "bench")

objects = 0
total = 0
for member in state["members"]:
    creds = devstack_identity.credentials(endpoint, member["account"], management, "bench")
    for bucket in member["buckets"]:
        s3 = boto3.client("s3", endpoint_url=endpoint, region_name=bucket["region"], config=config, **creds)
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket["name"]):
            for o in page.get("Contents", []):
                objects += 1
                total += o["Size"]

topic = None
if "--topic" in sys.argv[2:]:
    security = devstack_identity.credentials(endpoint, state["security"]["account"], management, "bench")
    sns = boto3.client("sns", endpoint_url=endpoint, region_name=state["security"]["archive_region"], **security)
    topic = sns.create_topic(Name=f"{state['namespace']}-alerts")["TopicArn"]
print(json.dumps({"objects": objects, "bytes": total, "topic": topic}))
