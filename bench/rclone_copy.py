"""The same copy as `trailvault backfill`, done by `rclone copy` (Debian's rclone): every
member bucket into a scratch bucket of the security account, encrypted with SSE-KMS under the
archive key, 16 transfers at once (the worker's max_in_flight in the devstack configuration).

    python rclone_copy.py STATE_DIR

Each member account is read with its own credentials (an assumed role, as trailvault reads
through the reader roles). Prints one JSON line: objects, bytes, seconds (all rclone runs).
"""

import json
import os
import pathlib
import subprocess
import sys
import time

import boto3
import botocore.config

import devstack_identity

state = json.loads((pathlib.Path(sys.argv[1]) / "devstack.json").read_text())
endpoint = state["endpoint"]
config = botocore.config.Config(s3={"addressing_style": "path"})


def credentials(account, base):
    return devstack_identity.credentials(endpoint, account, base, "rclone")


def remote(name, creds, region):
    """An rclone S3 remote, configured through its environment variables."""
    prefix = f"RCLONE_CONFIG_{name}_"
    return {
        prefix + "TYPE": "s3",
        prefix + "PROVIDER": "Other",
        prefix + "ENDPOINT": endpoint,
        prefix + "REGION": region,
        prefix + "FORCE_PATH_STYLE": "true",
        prefix + "ACCESS_KEY_ID": creds["aws_access_key_id"],
        prefix + "SECRET_ACCESS_KEY": creds["aws_secret_access_key"],
        prefix + "SESSION_TOKEN": creds["aws_session_token"],
    }


root = devstack_identity.ROOT
management = credentials(state["management_account"], root)
security = credentials(state["security"]["account"], management)
region = state["security"]["archive_region"]
target = boto3.client("s3", endpoint_url=endpoint, region_name=region, config=config, **security)
scratch = f"{state['namespace']}-rclone-{state['security']['account']}"
target.create_bucket(Bucket=scratch)

seconds = 0.0
for member in state["members"]:
    creds = credentials(member["account"], management)
    for bucket in member["buckets"]:
        # Nothing of the machine's AWS settings (AWS_CA_BUNDLE breaks rclone's S3 client).
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(remote("SRC", creds, bucket["region"]))
        env.update(remote("DST", security, region))
        started = time.monotonic()
        subprocess.run(
            [
                "rclone", "copy", f"SRC:{bucket['name']}", f"DST:{scratch}/{bucket['name']}",
                "--transfers", "16", "--checkers", "16", "--s3-no-check-bucket",
                "--s3-server-side-encryption", "aws:kms",
                "--s3-sse-kms-key-id", state["security"]["kms_key_arn"],
                "--config", "/dev/null", "--quiet",
            ],
            env=env,
            check=True,
        )
        seconds += time.monotonic() - started

objects = total = 0
for page in target.get_paginator("list_objects_v2").paginate(Bucket=scratch):
    for o in page.get("Contents", []):
        objects += 1
        total += o["Size"]
print(json.dumps({"objects": objects, "bytes": total, "seconds": round(seconds, 3)}))
