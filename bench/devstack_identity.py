"""The devstack's identities for the benchmark scripts: an administrator of any account of the
organization, reached as the devstack reaches it (the emulator's root, then the management
account's OrganizationAccountAccessRole, then the account's)."""

import boto3


def credentials(endpoint, account, base, session):
    """Assumed-role credentials for `account`, from `base` credentials, as boto3 kwargs."""
    sts = boto3.client("sts", endpoint_url=endpoint, region_name="us-east-1", **base)
    role = f"arn:aws:iam::{account}:role/OrganizationAccountAccessRole"
    c = sts.assume_role(RoleArn=role, RoleSessionName=session)["Credentials"]
    return dict(
        aws_access_key_id=c["AccessKeyId"],
        aws_secret_access_key=c["SecretAccessKey"],
        aws_session_token=c["SessionToken"],
    )


ROOT = dict(aws_access_key_id="bench", aws_secret_access_key="bench")
