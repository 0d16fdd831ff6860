//! CloudTrail records with a realistic mix: every `userIdentity.type`, read-only and mutating
//! calls, errors and AccessDenied, console sign-ins with and without MFA, root activity, the
//! changes CIS monitoring looks for (IAM, KMS, CloudTrail, S3 policies, network), service
//! events, and data events. Records come unordered, sometimes late, sometimes duplicated, as
//! CloudTrail's do.

use rand::seq::SliceRandom;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use serde_json::{json, Value};
use time::OffsetDateTime;

use crate::timefmt;

/// Who the records of one account and region are about.
pub struct Context<'a> {
    pub account: &'a str,
    pub region: &'a str,
    /// Another account in the organization, for cross-account calls.
    pub other_account: &'a str,
}

/// One record, its fields in CloudTrail's order. Absent fields are left out, as CloudTrail
/// leaves them out.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    pub event_version: &'static str,
    pub user_identity: Value,
    pub event_time: String,
    pub event_source: String,
    pub event_name: String,
    pub aws_region: String,
    #[serde(rename = "sourceIPAddress")]
    pub source_ip_address: String,
    pub user_agent: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
    pub request_parameters: Value,
    pub response_elements: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub additional_event_data: Option<Value>,
    #[serde(rename = "requestID", skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    #[serde(rename = "eventID")]
    pub event_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_only: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resources: Option<Value>,
    pub event_type: &'static str,
    pub management_event: bool,
    pub recipient_account_id: String,
    #[serde(rename = "sharedEventID", skip_serializing_if = "Option::is_none")]
    pub shared_event_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vpc_endpoint_id: Option<String>,
    pub event_category: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_details: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_credential_from_console: Option<&'static str>,
}

/// What kind of activity a file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mix {
    /// Mostly management events: reads, changes, sign-ins, errors.
    Management,
    /// A burst of data events (S3 object reads and writes, Lambda invokes): the large files.
    DataHeavy,
}

/// Generates `count` records delivered at `delivered`, in no particular order.
pub fn generate(
    rng: &mut ChaCha8Rng,
    ctx: &Context<'_>,
    delivered: OffsetDateTime,
    count: usize,
    mix: Mix,
) -> Vec<Record> {
    let mut records = Vec::with_capacity(count);
    while records.len() < count {
        let at = event_time(rng, delivered);
        let record = match mix {
            Mix::DataHeavy if rng.gen_bool(0.9) => data_event(rng, ctx, at),
            _ => management_event(rng, ctx, at),
        };
        records.push(record);
        // CloudTrail may deliver the same event twice (same eventID).
        if records.len() < count && rng.gen_bool(0.004) {
            let twin = records.last().expect("just pushed").clone();
            records.push(twin);
        }
    }
    records
}

/// Mostly seconds to minutes before delivery; now and then hours late.
fn event_time(rng: &mut ChaCha8Rng, delivered: OffsetDateTime) -> OffsetDateTime {
    let back = if rng.gen_bool(0.02) {
        rng.gen_range(900..6 * 3600)
    } else {
        rng.gen_range(5..900)
    };
    delivered - time::Duration::seconds(back)
}

// ---------------------------------------------------------------------------------------------
// Identities

const USERS: &[&str] = &["alice", "bob", "carol", "deploy-bot", "ci-runner", "dave"];
const ROLES: &[(&str, &str)] = &[
    (
        "AWSReservedSSO_AdministratorAccess_4c3f2a1b0d9e8f7a",
        "alice@example.com",
    ),
    ("github-actions-deploy", "GitHubActions"),
    ("eks-node-group-role", "i-0a1b2c3d4e5f60718"),
    ("lambda-orders-processor", "orders-processor"),
    ("OrganizationAccountAccessRole", "admin-session"),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    Root,
    IamUser,
    AssumedRole,
    FederatedUser,
    AwsAccount,
    AwsService,
    SamlUser,
    WebIdentityUser,
    IdentityCenterUser,
}

fn pick_who(rng: &mut ChaCha8Rng) -> Who {
    let weighted = [
        (Who::AssumedRole, 46),
        (Who::IamUser, 16),
        (Who::AwsService, 12),
        (Who::IdentityCenterUser, 6),
        (Who::SamlUser, 5),
        (Who::WebIdentityUser, 5),
        (Who::AwsAccount, 4),
        (Who::FederatedUser, 3),
        (Who::Root, 3),
    ];
    let total: u32 = weighted.iter().map(|(_, w)| w).sum();
    let mut n = rng.gen_range(0..total);
    for (who, w) in weighted {
        if n < w {
            return who;
        }
        n -= w;
    }
    Who::AssumedRole
}

fn upper_id(rng: &mut ChaCha8Rng, prefix: &str, len: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut s = String::from(prefix);
    for _ in 0..len {
        s.push(ALPHABET[rng.gen_range(0..ALPHABET.len())] as char);
    }
    s
}

pub fn uuid(rng: &mut ChaCha8Rng) -> String {
    let b: [u8; 16] = rng.gen();
    let h = hex::encode(b);
    format!(
        "{}-{}-4{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[13..16],
        &h[16..20],
        &h[20..32]
    )
}

struct Identity {
    value: Value,
    who: Who,
    /// The service that acted, for AWSService identities and calls invoked by a service.
    invoked_by: Option<&'static str>,
    mfa: bool,
}

fn identity(rng: &mut ChaCha8Rng, ctx: &Context<'_>, who: Who, at: OffsetDateTime) -> Identity {
    let account = ctx.account;
    let session_start = timefmt::event(at - time::Duration::seconds(rng.gen_range(60..7200)));
    let mfa = rng.gen_bool(0.6);
    let value = match who {
        Who::Root => json!({
            "type": "Root",
            "principalId": account,
            "arn": format!("arn:aws:iam::{account}:root"),
            "accountId": account,
            "accessKeyId": upper_id(rng, "ASIA", 16),
            "sessionContext": {"attributes": {"creationDate": session_start, "mfaAuthenticated": mfa.to_string()}}
        }),
        Who::IamUser => {
            let user = USERS[rng.gen_range(0..USERS.len())];
            json!({
                "type": "IAMUser",
                "principalId": upper_id(rng, "AIDA", 17),
                "arn": format!("arn:aws:iam::{account}:user/{user}"),
                "accountId": account,
                "accessKeyId": upper_id(rng, "AKIA", 16),
                "userName": user
            })
        }
        Who::AssumedRole => {
            let (role, session) = ROLES[rng.gen_range(0..ROLES.len())];
            let role_id = upper_id(rng, "AROA", 17);
            json!({
                "type": "AssumedRole",
                "principalId": format!("{role_id}:{session}"),
                "arn": format!("arn:aws:sts::{account}:assumed-role/{role}/{session}"),
                "accountId": account,
                "accessKeyId": upper_id(rng, "ASIA", 16),
                "sessionContext": {
                    "sessionIssuer": {
                        "type": "Role",
                        "principalId": role_id,
                        "arn": format!("arn:aws:iam::{account}:role/{role}"),
                        "accountId": account,
                        "userName": role
                    },
                    "webIdFederationData": {},
                    "attributes": {"creationDate": session_start, "mfaAuthenticated": mfa.to_string()}
                }
            })
        }
        Who::FederatedUser => {
            let user = USERS[rng.gen_range(0..USERS.len())];
            let issuer = upper_id(rng, "AIDA", 17);
            json!({
                "type": "FederatedUser",
                "principalId": format!("{account}:{user}"),
                "arn": format!("arn:aws:sts::{account}:federated-user/{user}"),
                "accountId": account,
                "accessKeyId": upper_id(rng, "ASIA", 16),
                "sessionContext": {
                    "sessionIssuer": {
                        "type": "IAMUser",
                        "principalId": issuer,
                        "arn": format!("arn:aws:iam::{account}:user/federation-broker"),
                        "accountId": account,
                        "userName": "federation-broker"
                    },
                    "attributes": {"creationDate": session_start, "mfaAuthenticated": "false"}
                }
            })
        }
        Who::AwsAccount => json!({
            "type": "AWSAccount",
            "principalId": format!("{}:cross-account-reader", upper_id(rng, "AROA", 17)),
            "accountId": ctx.other_account
        }),
        Who::AwsService => {
            let service = [
                "cloudtrail.amazonaws.com",
                "config.amazonaws.com",
                "autoscaling.amazonaws.com",
                "lambda.amazonaws.com",
                "elasticloadbalancing.amazonaws.com",
            ][rng.gen_range(0..5)];
            return Identity {
                value: json!({"type": "AWSService", "invokedBy": service}),
                who,
                invoked_by: Some(service),
                mfa: false,
            };
        }
        Who::SamlUser => {
            let user = format!("{}@example.com", USERS[rng.gen_range(0..USERS.len())]);
            json!({
                "type": "SAMLUser",
                "principalId": format!("Fa1eIdP0rtalHash=:{user}"),
                "userName": user,
                "identityProvider": "Fa1eIdP0rtalHash="
            })
        }
        Who::WebIdentityUser => json!({
            "type": "WebIdentityUser",
            "principalId": format!("accounts.google.com:{}.apps.googleusercontent.com:{}", rng.gen_range(10_000_000u64..99_999_999), rng.gen_range(100_000_000_000u64..999_999_999_999)),
            "userName": format!("{}", rng.gen_range(100_000_000_000u64..999_999_999_999)),
            "identityProvider": "accounts.google.com"
        }),
        Who::IdentityCenterUser => json!({
            "type": "IdentityCenterUser",
            "accountId": account,
            "onBehalfOf": {
                "userId": uuid(rng),
                "identityStoreArn": format!("arn:aws:identitystore::{account}:identitystore/d-90677b1c2e")
            },
            "credentialId": upper_id(rng, "", 20)
        }),
    };
    Identity {
        value,
        who,
        invoked_by: None,
        mfa,
    }
}

// ---------------------------------------------------------------------------------------------
// Events

fn source_ip(rng: &mut ChaCha8Rng, id: &Identity) -> String {
    if let Some(service) = id.invoked_by {
        return service.to_owned();
    }
    match rng.gen_range(0..10) {
        0..=5 => format!("203.0.113.{}", rng.gen_range(1..255)),
        6..=7 => format!("198.51.100.{}", rng.gen_range(1..255)),
        8 => format!(
            "10.{}.{}.{}",
            rng.gen_range(0..255),
            rng.gen_range(0..255),
            rng.gen_range(1..255)
        ),
        _ => "AWS Internal".to_owned(),
    }
}

fn user_agent(rng: &mut ChaCha8Rng, id: &Identity) -> String {
    if let Some(service) = id.invoked_by {
        return service.to_owned();
    }
    [
        "aws-cli/2.22.4 md/awscrt#0.23.4 ua/2.1 os/linux#6.8.0 md/arch#x86_64 lang/python#3.12.6 md/pyimpl#CPython cfg/retry-mode#standard md/installer#exe md/distrib#ubuntu.24 md/prompt#off md/command#s3.ls",
        "Boto3/1.35.54 md/Botocore#1.35.54 ua/2.0 os/linux#5.10.227 md/arch#x86_64 lang/python#3.12.7 md/pyimpl#CPython cfg/retry-mode#legacy Botocore/1.35.54",
        "aws-sdk-go-v2/1.32.2 ua/2.1 os/linux lang/go#1.23.2 md/GOOS#linux md/GOARCH#amd64 api/ec2#1.187.0",
        "APN/1.0 HashiCorp/1.0 Terraform/1.9.8 (+https://www.terraform.io) terraform-provider-aws/5.74.0",
        "AWS Internal",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Safari/605.1.15",
        "aws-sdk-rust/1.3.3 os/linux lang/rust/1.82.0",
    ][rng.gen_range(0..7)]
        .to_owned()
}

fn tls(rng: &mut ChaCha8Rng, service: &str, region: &str) -> Option<Value> {
    rng.gen_bool(0.8).then(|| {
        json!({
            "tlsVersion": if rng.gen_bool(0.7) { "TLSv1.3" } else { "TLSv1.2" },
            "cipherSuite": if rng.gen_bool(0.7) { "TLS_AES_128_GCM_SHA256" } else { "ECDHE-RSA-AES128-GCM-SHA256" },
            "clientProvidedHostHeader": format!("{}.{region}.amazonaws.com", service.trim_end_matches(".amazonaws.com"))
        })
    })
}

/// One management call, as (source, name, read-only, request parameters, response).
struct Call {
    source: &'static str,
    name: &'static str,
    read_only: bool,
    request: Value,
    response: Value,
    /// Extra fields, for the calls that carry them.
    additional: Option<Value>,
    resources: Option<Value>,
}

fn call(source: &'static str, name: &'static str, read_only: bool, request: Value) -> Call {
    Call {
        source,
        name,
        read_only,
        request,
        response: Value::Null,
        additional: None,
        resources: None,
    }
}

fn management_call(rng: &mut ChaCha8Rng, ctx: &Context<'_>) -> Call {
    let a = ctx.account;
    let r = ctx.region;
    let key_id = uuid(rng);
    let bucket = format!("app-data-{a}-{r}");
    let sg = format!("sg-0{}", &hex::encode(rng.gen::<[u8; 8]>())[..16]);
    let n = rng.gen_range(0..100);
    match n {
        // Reads: the bulk of every account's activity.
        0..=11 => call(
            "ec2.amazonaws.com",
            "DescribeInstances",
            true,
            json!({"instancesSet": {}, "filterSet": {}}),
        ),
        12..=17 => call(
            "s3.amazonaws.com",
            "ListBuckets",
            true,
            json!({"Host": "s3.amazonaws.com"}),
        ),
        18..=22 => call("sts.amazonaws.com", "GetCallerIdentity", true, Value::Null),
        23..=26 => call(
            "kms.amazonaws.com",
            "DescribeKey",
            true,
            json!({"keyId": format!("arn:aws:kms:{r}:{a}:key/{key_id}")}),
        ),
        27..=30 => call(
            "iam.amazonaws.com",
            "GetRole",
            true,
            json!({"roleName": "eks-node-group-role"}),
        ),
        31..=33 => call(
            "cloudtrail.amazonaws.com",
            "LookupEvents",
            true,
            json!({"maxResults": 50}),
        ),
        34..=36 => call(
            "lambda.amazonaws.com",
            "ListFunctions20150331",
            true,
            Value::Null,
        ),
        37..=39 => call(
            "logs.amazonaws.com",
            "DescribeLogGroups",
            true,
            json!({"limit": 50}),
        ),
        40..=42 => call(
            "config.amazonaws.com",
            "DescribeConfigurationRecorders",
            true,
            Value::Null,
        ),
        43..=45 => call(
            "sts.amazonaws.com",
            "AssumeRole",
            false,
            json!({
                "roleArn": format!("arn:aws:iam::{a}:role/github-actions-deploy"),
                "roleSessionName": "GitHubActions", "durationSeconds": 3600
            }),
        ),
        // Changes, including the ones CIS alarms watch.
        46..=48 => call(
            "ec2.amazonaws.com",
            "RunInstances",
            false,
            json!({
                "instancesSet": {"items": [{"imageId": "ami-0c02fb55956c7d316", "minCount": 1, "maxCount": 1}]},
                "instanceType": "t3.micro"
            }),
        ),
        49 => call(
            "ec2.amazonaws.com",
            "AuthorizeSecurityGroupIngress",
            false,
            json!({
                "groupId": sg,
                "ipPermissions": {"items": [{"ipProtocol": "tcp", "fromPort": 22, "toPort": 22, "ipRanges": {"items": [{"cidrIp": "0.0.0.0/0"}]}}]}
            }),
        ),
        50 => call(
            "ec2.amazonaws.com",
            "CreateNetworkAclEntry",
            false,
            json!({"networkAclId": "acl-0a1b2c3d", "ruleNumber": 100, "egress": false, "ruleAction": "allow"}),
        ),
        51 => call(
            "ec2.amazonaws.com",
            "CreateRoute",
            false,
            json!({"routeTableId": "rtb-0a1b2c3d", "destinationCidrBlock": "0.0.0.0/0", "gatewayId": "igw-0a1b2c3d"}),
        ),
        52 => call(
            "ec2.amazonaws.com",
            "AttachInternetGateway",
            false,
            json!({"internetGatewayId": "igw-0a1b2c3d", "vpcId": "vpc-0a1b2c3d"}),
        ),
        53 => call(
            "ec2.amazonaws.com",
            "CreateVpc",
            false,
            json!({"cidrBlock": "10.42.0.0/16"}),
        ),
        54..=55 => call(
            "iam.amazonaws.com",
            "AttachRolePolicy",
            false,
            json!({"roleName": "lambda-orders-processor", "policyArn": "arn:aws:iam::aws:policy/AmazonS3FullAccess"}),
        ),
        56 => call(
            "iam.amazonaws.com",
            "PutUserPolicy",
            false,
            json!({"userName": "deploy-bot", "policyName": "inline-admin", "policyDocument": "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"*\",\"Resource\":\"*\"}]}"}),
        ),
        57 => call(
            "iam.amazonaws.com",
            "CreatePolicyVersion",
            false,
            json!({"policyArn": format!("arn:aws:iam::{a}:policy/ci-deploy"), "setAsDefault": true}),
        ),
        58 => call(
            "iam.amazonaws.com",
            "CreateAccessKey",
            false,
            json!({"userName": "ci-runner"}),
        ),
        59 => call(
            "iam.amazonaws.com",
            "DeleteRolePolicy",
            false,
            json!({"roleName": "eks-node-group-role", "policyName": "legacy"}),
        ),
        60 => call(
            "kms.amazonaws.com",
            "DisableKey",
            false,
            json!({"keyId": format!("arn:aws:kms:{r}:{a}:key/{key_id}")}),
        ),
        61 => call(
            "kms.amazonaws.com",
            "ScheduleKeyDeletion",
            false,
            json!({"keyId": key_id, "pendingWindowInDays": 30}),
        ),
        62 => call(
            "kms.amazonaws.com",
            "CreateKey",
            false,
            json!({"keySpec": "SYMMETRIC_DEFAULT", "keyUsage": "ENCRYPT_DECRYPT"}),
        ),
        63 => call(
            "cloudtrail.amazonaws.com",
            "UpdateTrail",
            false,
            json!({"name": "management-events", "isMultiRegionTrail": true}),
        ),
        64 => call(
            "cloudtrail.amazonaws.com",
            "StopLogging",
            false,
            json!({"name": format!("arn:aws:cloudtrail:{r}:{a}:trail/management-events")}),
        ),
        65 => call(
            "cloudtrail.amazonaws.com",
            "StartLogging",
            false,
            json!({"name": format!("arn:aws:cloudtrail:{r}:{a}:trail/management-events")}),
        ),
        66 => call(
            "s3.amazonaws.com",
            "PutBucketPolicy",
            false,
            json!({"bucketName": bucket, "Host": format!("{bucket}.s3.{r}.amazonaws.com"), "policy": ""}),
        ),
        67 => call(
            "s3.amazonaws.com",
            "PutBucketAcl",
            false,
            json!({"bucketName": bucket, "acl": ""}),
        ),
        68 => call(
            "s3.amazonaws.com",
            "PutBucketLifecycle",
            false,
            json!({"bucketName": bucket, "lifecycle": ""}),
        ),
        69 => call(
            "s3.amazonaws.com",
            "PutBucketReplication",
            false,
            json!({"bucketName": bucket, "replication": ""}),
        ),
        70 => call(
            "s3.amazonaws.com",
            "DeleteBucketPolicy",
            false,
            json!({"bucketName": bucket}),
        ),
        71 => call(
            "config.amazonaws.com",
            "StopConfigurationRecorder",
            false,
            json!({"configurationRecorderName": "default"}),
        ),
        72 => call(
            "organizations.amazonaws.com",
            "DescribeOrganization",
            true,
            Value::Null,
        ),
        // The organization's structure changing (CIS 4.15), from the management account's
        // delegated administrators as much as anyone.
        73 => call(
            "organizations.amazonaws.com",
            "AttachPolicy",
            false,
            json!({"policyId": "p-examplescp1", "targetId": format!("{a}")}),
        ),
        74..=79 => call(
            "dynamodb.amazonaws.com",
            "DescribeTable",
            true,
            json!({"tableName": "orders"}),
        ),
        80..=84 => call(
            "ssm.amazonaws.com",
            "GetParameter",
            true,
            json!({"name": "/orders/db-url", "withDecryption": true}),
        ),
        85..=89 => call(
            "secretsmanager.amazonaws.com",
            "GetSecretValue",
            true,
            json!({"secretId": "orders/db"}),
        ),
        _ => call(
            "ecr.amazonaws.com",
            "GetAuthorizationToken",
            true,
            Value::Null,
        ),
    }
}

fn management_event(rng: &mut ChaCha8Rng, ctx: &Context<'_>, at: OffsetDateTime) -> Record {
    // Console sign-ins and service events have shapes of their own.
    if rng.gen_bool(0.05) {
        return console_login(rng, ctx, at);
    }
    let mut who = pick_who(rng);
    if rng.gen_bool(0.06) {
        return service_event(rng, ctx, at);
    }
    let mut c = management_call(rng, ctx);
    if who == Who::AwsService && !c.read_only {
        who = Who::AssumedRole;
    }
    let id = identity(rng, ctx, who, at);
    let (error_code, error_message) = error(rng, &c, &id);
    if error_code.is_none() && c.name == "CreateAccessKey" {
        c.response = json!({"accessKey": {"accessKeyId": upper_id(rng, "AKIA", 16), "status": "Active", "userName": "ci-runner", "createDate": timefmt::event(at)}});
    }
    if c.source == "kms.amazonaws.com" {
        c.resources = Some(
            json!([{"accountId": ctx.account, "type": "AWS::KMS::Key", "ARN": format!("arn:aws:kms:{}:{}:key/{}", ctx.region, ctx.account, uuid(rng))}]),
        );
    }
    if c.source == "s3.amazonaws.com" {
        c.additional = Some(
            json!({"SignatureVersion": "SigV4", "CipherSuite": "TLS_AES_128_GCM_SHA256", "bytesTransferredIn": 0, "AuthenticationMethod": "AuthHeader", "x-amz-id-2": upper_id(rng, "", 56), "bytesTransferredOut": rng.gen_range(0..4096)}),
        );
    }
    let console =
        matches!(id.who, Who::Root | Who::IdentityCenterUser | Who::SamlUser) && rng.gen_bool(0.5);
    Record {
        event_version: ["1.11", "1.11", "1.11", "1.10", "1.09", "1.08"][rng.gen_range(0..6)],
        source_ip_address: source_ip(rng, &id),
        user_agent: user_agent(rng, &id),
        user_identity: id.value,
        event_time: timefmt::event(at),
        event_source: c.source.to_owned(),
        event_name: c.name.to_owned(),
        aws_region: ctx.region.to_owned(),
        request_parameters: if error_code.is_some() && rng.gen_bool(0.5) {
            Value::Null
        } else {
            c.request
        },
        response_elements: if error_code.is_some() {
            Value::Null
        } else {
            c.response
        },
        error_code,
        error_message,
        additional_event_data: c.additional,
        request_id: Some(if c.source == "s3.amazonaws.com" {
            upper_id(rng, "", 16)
        } else {
            uuid(rng)
        }),
        event_id: uuid(rng),
        read_only: Some(c.read_only),
        resources: c.resources,
        event_type: "AwsApiCall",
        management_event: true,
        recipient_account_id: ctx.account.to_owned(),
        shared_event_id: None,
        vpc_endpoint_id: rng
            .gen_bool(0.05)
            .then(|| format!("vpce-0{}", &hex::encode(rng.gen::<[u8; 8]>())[..16])),
        event_category: "Management",
        tls_details: tls(rng, c.source, ctx.region),
        session_credential_from_console: console.then_some("true"),
    }
}

/// Errors: mostly none; AccessDenied and its EC2 spelling most often among the rest.
fn error(rng: &mut ChaCha8Rng, c: &Call, id: &Identity) -> (Option<String>, Option<String>) {
    if !rng.gen_bool(0.12) || id.who == Who::AwsService {
        return (None, None);
    }
    let principal = id.value["arn"]
        .as_str()
        .unwrap_or("an anonymous principal")
        .to_owned();
    let action = format!("{}:{}", c.source.trim_end_matches(".amazonaws.com"), c.name);
    let (code, message) = match rng.gen_range(0..10) {
        0..=4 if c.source == "ec2.amazonaws.com" => (
            "Client.UnauthorizedOperation".to_owned(),
            "You are not authorized to perform this operation. User: ".to_owned() + &principal + " is not authorized to perform: " + &action,
        ),
        0..=4 => (
            "AccessDenied".to_owned(),
            format!("User: {principal} is not authorized to perform: {action} because no identity-based policy allows the {action} action"),
        ),
        5 => ("AccessDeniedException".to_owned(), format!("User: {principal} is not authorized to perform: {action} with an explicit deny in a service control policy")),
        6 => ("ThrottlingException".to_owned(), "Rate exceeded".to_owned()),
        7 => ("ValidationException".to_owned(), "1 validation error detected".to_owned()),
        8 => ("NoSuchEntity".to_owned(), "The role with name legacy cannot be found.".to_owned()),
        _ => ("InternalFailure".to_owned(), "An internal error occurred".to_owned()),
    };
    (Some(code), Some(message))
}

fn console_login(rng: &mut ChaCha8Rng, ctx: &Context<'_>, at: OffsetDateTime) -> Record {
    let who = [Who::Root, Who::IamUser, Who::AssumedRole, Who::SamlUser][rng.gen_range(0..4)];
    let id = identity(rng, ctx, who, at);
    let success = rng.gen_bool(0.85);
    let mfa_used = id.mfa && who != Who::AssumedRole;
    let mut additional = json!({
        "LoginTo": "https://console.aws.amazon.com/console/home?state=hashArgs%23&isauthcode=true",
        "MobileVersion": "No",
        "MFAUsed": if mfa_used { "Yes" } else { "No" }
    });
    if mfa_used {
        additional["MFAIdentifier"] = json!(format!(
            "arn:aws:iam::{}:mfa/{}",
            ctx.account, "hardware-key"
        ));
    }
    Record {
        event_version: "1.09",
        source_ip_address: format!("203.0.113.{}", rng.gen_range(1..255)),
        user_agent: "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36".to_owned(),
        user_identity: id.value,
        event_time: timefmt::event(at),
        event_source: "signin.amazonaws.com".to_owned(),
        event_name: "ConsoleLogin".to_owned(),
        aws_region: "us-east-1".to_owned(),
        error_code: None,
        error_message: (!success).then(|| "Failed authentication".to_owned()),
        request_parameters: Value::Null,
        response_elements: json!({"ConsoleLogin": if success { "Success" } else { "Failure" }}),
        additional_event_data: Some(additional),
        request_id: None,
        event_id: uuid(rng),
        read_only: Some(false),
        resources: None,
        event_type: "AwsConsoleSignIn",
        management_event: true,
        recipient_account_id: ctx.account.to_owned(),
        shared_event_id: None,
        vpc_endpoint_id: None,
        event_category: "Management",
        tls_details: None,
        session_credential_from_console: None,
    }
}

fn service_event(rng: &mut ChaCha8Rng, ctx: &Context<'_>, at: OffsetDateTime) -> Record {
    let (source, name, invoked) = [
        ("kms.amazonaws.com", "RotateKey", "kms.amazonaws.com"),
        (
            "health.amazonaws.com",
            "AWSHealthEvent",
            "health.amazonaws.com",
        ),
        ("sso.amazonaws.com", "CreateToken", "sso.amazonaws.com"),
    ][rng.gen_range(0..3)];
    Record {
        event_version: "1.11",
        user_identity: json!({"accountId": ctx.account, "invokedBy": invoked}),
        event_time: timefmt::event(at),
        event_source: source.to_owned(),
        event_name: name.to_owned(),
        aws_region: ctx.region.to_owned(),
        source_ip_address: invoked.to_owned(),
        user_agent: invoked.to_owned(),
        error_code: None,
        error_message: None,
        request_parameters: Value::Null,
        response_elements: Value::Null,
        additional_event_data: (name == "RotateKey").then(|| json!({"keyId": uuid(rng)})),
        request_id: None,
        event_id: uuid(rng),
        read_only: Some(false),
        resources: None,
        event_type: "AwsServiceEvent",
        management_event: true,
        recipient_account_id: ctx.account.to_owned(),
        shared_event_id: Some(uuid(rng)),
        vpc_endpoint_id: None,
        event_category: "Management",
        tls_details: None,
        session_credential_from_console: None,
    }
}

fn data_event(rng: &mut ChaCha8Rng, ctx: &Context<'_>, at: OffsetDateTime) -> Record {
    let who = [
        Who::AssumedRole,
        Who::AssumedRole,
        Who::AssumedRole,
        Who::IamUser,
        Who::AwsAccount,
    ][rng.gen_range(0..5)];
    let id = identity(rng, ctx, who, at);
    let a = ctx.account;
    let r = ctx.region;
    let (source, name, read_only, request, resources) = match rng.gen_range(0..10) {
        0..=5 => {
            let bucket = format!("app-data-{a}-{r}");
            let object = format!("orders/2026/{:02}/{}.json", rng.gen_range(1..13), uuid(rng));
            let name = [
                "GetObject",
                "GetObject",
                "PutObject",
                "HeadObject",
                "DeleteObject",
            ][rng.gen_range(0..5)];
            (
                "s3.amazonaws.com",
                name,
                name == "GetObject" || name == "HeadObject",
                json!({"bucketName": bucket, "Host": format!("{bucket}.s3.{r}.amazonaws.com"), "key": object}),
                json!([
                    {"type": "AWS::S3::Object", "ARN": format!("arn:aws:s3:::{bucket}/{object}")},
                    {"accountId": a, "type": "AWS::S3::Bucket", "ARN": format!("arn:aws:s3:::{bucket}")}
                ]),
            )
        }
        6..=8 => (
            "lambda.amazonaws.com",
            "Invoke",
            false,
            json!({"functionName": format!("arn:aws:lambda:{r}:{a}:function:orders-processor"), "invocationType": "Event"}),
            json!([{"accountId": a, "type": "AWS::Lambda::Function", "ARN": format!("arn:aws:lambda:{r}:{a}:function:orders-processor")}]),
        ),
        _ => (
            "dynamodb.amazonaws.com",
            "GetItem",
            true,
            json!({"tableName": "orders", "key": {"pk": "REDACTED"}, "consistentRead": false}),
            json!([{"accountId": a, "type": "AWS::DynamoDB::Table", "ARN": format!("arn:aws:dynamodb:{r}:{a}:table/orders")}]),
        ),
    };
    let denied = rng.gen_bool(0.03);
    Record {
        event_version: "1.11",
        source_ip_address: source_ip(rng, &id),
        user_agent: user_agent(rng, &id),
        user_identity: id.value,
        event_time: timefmt::event(at),
        event_source: source.to_owned(),
        event_name: name.to_owned(),
        aws_region: r.to_owned(),
        error_code: denied.then(|| "AccessDenied".to_owned()),
        error_message: denied.then(|| "Access Denied".to_owned()),
        request_parameters: request,
        response_elements: Value::Null,
        additional_event_data: (source == "s3.amazonaws.com").then(|| json!({"bytesTransferredIn": 0, "bytesTransferredOut": rng.gen_range(0..262_144), "SignatureVersion": "SigV4", "AuthenticationMethod": "AuthHeader"})),
        request_id: Some(upper_id(rng, "", 16)),
        event_id: uuid(rng),
        read_only: Some(read_only),
        resources: Some(resources),
        event_type: "AwsApiCall",
        management_event: false,
        recipient_account_id: a.to_owned(),
        shared_event_id: None,
        vpc_endpoint_id: rng.gen_bool(0.2).then(|| format!("vpce-0{}", &hex::encode(rng.gen::<[u8; 8]>())[..16])),
        event_category: "Data",
        tls_details: tls(rng, source, r),
        session_credential_from_console: None,
    }
}

/// Shuffles records: CloudTrail does not order them.
pub fn shuffle(rng: &mut ChaCha8Rng, records: &mut [Record]) {
    records.shuffle(rng);
}

// ---------------------------------------------------------------------------------------------
// Insights events

/// One Insights event record, its fields in the order of AWS's example Insights log. It shares
/// no field layout with [`Record`]: Insights records have no identity, source or request.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InsightRecord {
    pub event_version: &'static str,
    pub event_time: String,
    pub aws_region: String,
    #[serde(rename = "eventID")]
    pub event_id: String,
    pub event_type: &'static str,
    pub recipient_account_id: String,
    #[serde(rename = "sharedEventID")]
    pub shared_event_id: String,
    pub insight_details: Value,
    pub event_category: &'static str,
}

/// Write APIs whose call rate Insights watches, each with the caller and user agent behind
/// a burst.
const CALL_RATE: &[(&str, &str, &str, &str)] = &[
    (
        "ssm.amazonaws.com",
        "UpdateInstanceInformation",
        "assumed-role/eks-node-group-role/i-0a1b2c3d4e5f60718",
        "aws-sdk-go/1.44.0 (go1.21; linux; amd64) amazon-ssm-agent/3.2.1630.0",
    ),
    (
        "ec2.amazonaws.com",
        "RunInstances",
        "assumed-role/github-actions-deploy/GitHubActions",
        "aws-cli/2.15.30 Python/3.11.8 Linux/6.5.0 exe/x86_64.ubuntu.22",
    ),
    (
        "iam.amazonaws.com",
        "CreateAccessKey",
        "user/deploy-bot",
        "Boto3/1.34.69 md/Botocore#1.34.69 ua/2.0 os/linux#6.5.0 lang/python#3.11.8",
    ),
    (
        "kms.amazonaws.com",
        "CreateGrant",
        "assumed-role/lambda-orders-processor/orders-processor",
        "aws-sdk-java/2.25.16 Linux/5.10.213 OpenJDK_64-Bit_Server_VM/17.0.10",
    ),
];

/// APIs whose error rate Insights watches, each with the error that rises and its caller.
const ERROR_RATE: &[(&str, &str, &str, &str)] = &[
    (
        "ec2.amazonaws.com",
        "DescribeInstances",
        "Client.UnauthorizedOperation",
        "user/ci-runner",
    ),
    (
        "s3.amazonaws.com",
        "GetBucketPolicy",
        "AccessDenied",
        "assumed-role/github-actions-deploy/GitHubActions",
    ),
    (
        "sts.amazonaws.com",
        "AssumeRole",
        "AccessDenied",
        "user/dave",
    ),
];

/// One Insights event delivered at `delivered`: the Start and End records of one stretch of
/// unusual activity, sharing a `sharedEventID`, as AWS's example Insights log holds them.
/// Insights times fall on the minute.
pub fn insight_event(
    rng: &mut ChaCha8Rng,
    ctx: &Context<'_>,
    delivered: OffsetDateTime,
) -> Vec<InsightRecord> {
    // CloudTrail delivers an Insights event within about 30 minutes of the activity.
    let end = delivered - time::Duration::seconds(rng.gen_range(60..1800));
    let end = end.replace_second(0).expect("0 is a second");
    let minutes: i64 = rng.gen_range(1..20);
    let start = end - time::Duration::minutes(minutes);
    let baseline: f64 = (rng.gen_range(0.05..90.0f64) * 1e6).round() / 1e6;
    let insight = (baseline * rng.gen_range(4.0..40.0f64)).round().max(1.0);
    let baseline_duration: u32 = rng.gen_range(1..=7) * 1440;
    let error_rate = rng.gen_bool(0.25);
    let (source, name, error, arn, agent) = if error_rate {
        let (source, name, error, arn) = *ERROR_RATE.choose(rng).expect("not empty");
        let agent = "aws-cli/2.15.30 Python/3.11.8 Linux/6.5.0 exe/x86_64.ubuntu.22";
        (source, name, Some(error), arn, agent)
    } else {
        let (source, name, arn, agent) = *CALL_RATE.choose(rng).expect("not empty");
        (source, name, None, arn, agent)
    };
    let arn = if arn.starts_with("user/") {
        format!("arn:aws:iam::{}:{arn}", ctx.account)
    } else {
        format!("arn:aws:sts::{}:{arn}", ctx.account)
    };
    let shared = uuid(rng);
    let mut pair = Vec::with_capacity(2);
    for (state, at) in [("Start", start), ("End", end)] {
        let mut statistics = json!({
            "baseline": {"average": baseline},
            "insight": {"average": insight},
            "baselineDuration": baseline_duration,
        });
        if state == "End" {
            statistics["insightDuration"] = json!(minutes);
        }
        let attribution = |attribute: &str, value: &str| {
            json!({
                "attribute": attribute,
                "insight": [{"value": value, "average": insight}],
                "baseline": [{"value": value, "average": baseline}],
            })
        };
        let mut details = json!({
            "state": state,
            "eventSource": source,
            "eventName": name,
            "insightType": if error_rate { "ApiErrorRateInsight" } else { "ApiCallRateInsight" },
            "insightContext": {
                "statistics": statistics,
                "attributions": [
                    attribution("userIdentityArn", &arn),
                    attribution("userAgent", agent),
                    attribution("errorCode", error.unwrap_or("null")),
                ],
            },
        });
        if let Some(error) = error {
            details["errorCode"] = json!(error);
        }
        pair.push(InsightRecord {
            event_version: "1.08",
            event_time: timefmt::event(at),
            aws_region: ctx.region.to_owned(),
            event_id: uuid(rng),
            event_type: "AwsCloudTrailInsight",
            recipient_account_id: ctx.account.to_owned(),
            shared_event_id: shared.clone(),
            insight_details: details,
            event_category: "Insight",
        });
    }
    pair
}
