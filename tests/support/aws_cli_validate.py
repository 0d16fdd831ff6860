"""Validates a devstack's CloudTrail files with the AWS CLI's own `validate-logs` code.

    python aws_cli_validate.py STATE_DIR

For every member bucket of the devstack described in STATE_DIR/devstack.json, this runs the
digest traversal and log validation of `aws cloudtrail validate-logs` (awscli v1,
awscli.customizations.cloudtrail.validation) unchanged: the CLI's digest key layout and
listing, its chain walk, its string to sign and RSA check, its log hashing, its report lines.
Only the wiring differs: S3 is the emulator, reached as each member account, and the public
keys come from the devstack's keys files (STATE_DIR/public-keys/REGION.json, the shape of
CloudTrail ListPublicKeys) instead of CloudTrail itself, which the emulator does not sign for.

Prints the CLI's per-file lines and one summary line per bucket; exits 1 when any digest or
log file is invalid or when a bucket has no digest at all.
"""

import datetime
import json
import pathlib
import sys

import boto3
import botocore.config
from awscli.customizations.cloudtrail import validation

state_dir = pathlib.Path(sys.argv[1])
state = json.loads((state_dir / "devstack.json").read_text())
endpoint = state["endpoint"]
path_style = botocore.config.Config(s3={"addressing_style": "path"})


def credentials(account, base):
    sts = boto3.client("sts", endpoint_url=endpoint, region_name="us-east-1", **base)
    role = f"arn:aws:iam::{account}:role/OrganizationAccountAccessRole"
    c = sts.assume_role(RoleArn=role, RoleSessionName="aws-cli-validate")["Credentials"]
    return dict(
        aws_access_key_id=c["AccessKeyId"],
        aws_secret_access_key=c["SecretAccessKey"],
        aws_session_token=c["SessionToken"],
    )


class Clients:
    """The CLI's S3ClientProvider, for one member account in the emulator."""

    def __init__(self, creds, region):
        self.client = boto3.client(
            "s3", endpoint_url=endpoint, region_name=region, config=path_style, **creds
        )

    def get_client(self, bucket_name):
        return self.client


class KeysFile:
    """The CLI's PublicKeyProvider, reading a ListPublicKeys-shaped file."""

    def __init__(self, path):
        keys = json.loads(path.read_text())["PublicKeyList"]
        self.keys = {k["Fingerprint"]: k for k in keys}

    def get_public_keys(self, start_date, end_date):
        return self.keys


start = datetime.datetime(2000, 1, 1)
end = datetime.datetime(2100, 1, 1)
root = dict(aws_access_key_id="devstack", aws_secret_access_key="devstack")
management = credentials(state["management_account"], root)
failed = False
for member in state["members"]:
    creds = credentials(member["account"], management)
    layout = member["layout"]
    for bucket in member["buckets"]:
        region = bucket["region"]
        command = validation.CloudTrailValidateLogs(session=None)
        command.is_verbose = True
        command.s3_client_provider = Clients(creds, region)
        provider = validation.DigestProvider(
            s3_client_provider=command.s3_client_provider,
            account_id=member["account"],
            trail_name=member["trail_name"],
            trail_home_region=region,
            trail_source_region=region,
            organization_id=layout.get("organization_id"),
        )
        traverser = validation.DigestTraverser(
            digest_provider=provider,
            starting_bucket=bucket["name"],
            starting_prefix=layout.get("prefix"),
            public_key_provider=KeysFile(state_dir / "public-keys" / f"{region}.json"),
            on_invalid=command._on_invalid_digest,
            on_gap=command._on_digest_gap,
            on_missing=command._on_missing_digest,
        )
        # What CloudTrailValidateLogs._call does with the traverser it builds itself.
        for is_backfill in (False, True):
            for digest in traverser.traverse_digests(start, end, is_backfill=is_backfill):
                command._valid_digests += 1
                command._write_status(
                    f"Digest file\ts3://{digest['digestS3Bucket']}/{digest['digestS3Object']}\tvalid"
                )
                for log in digest["logFiles"]:
                    command._download_log(log)
        sys.stdout.flush()
        digests = command._valid_digests + command._invalid_digests
        logs = command._valid_logs + command._invalid_logs
        print(
            f"s3://{bucket['name']}: {command._valid_digests}/{digests} digest files valid, "
            f"{command._valid_logs}/{logs} log files valid"
        )
        if command._invalid_digests or command._invalid_logs or digests == 0:
            failed = True
sys.exit(1 if failed else 0)
