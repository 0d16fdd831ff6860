//! Identifiers that are checked once, here: a value of one of these types is valid.

use std::fmt;

/// Why a value is not a valid identifier: what it is not, and what is expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(String);

impl From<String> for Invalid {
    fn from(message: String) -> Invalid {
        Invalid(message)
    }
}

/// A twelve-digit AWS account id.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AccountId(String);

impl AccountId {
    pub fn parse(s: &str) -> Result<Self, Invalid> {
        if s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit()) {
            Ok(AccountId(s.to_owned()))
        } else {
            Err(format!("{s:?} is not an AWS account id (exactly 12 digits)").into())
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An AWS region name such as `eu-west-1` or `us-gov-west-1`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Region(String);

impl Region {
    pub fn parse(s: &str) -> Result<Self, Invalid> {
        // partition-ish prefix, then words, then a number: us-east-1, us-gov-west-1,
        // cn-north-1, eu-isoe-west-1, ap-southeast-5.
        let parts: Vec<&str> = s.split('-').collect();
        let ok = parts.len() >= 3
            && parts.iter().all(|p| {
                !p.is_empty()
                    && p.bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            })
            && parts[..parts.len() - 1]
                .iter()
                .all(|p| p.bytes().all(|b| b.is_ascii_lowercase()))
            && parts[parts.len() - 1].bytes().all(|b| b.is_ascii_digit());
        if ok {
            Ok(Region(s.to_owned()))
        } else {
            Err(format!("{s:?} is not an AWS region name (like eu-west-1)").into())
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An S3 bucket name, by S3's general-purpose bucket naming rules.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BucketName(String);

impl BucketName {
    pub fn parse(s: &str) -> Result<Self, Invalid> {
        let bad = |why: &str| Err(format!("{s:?} is not a valid S3 bucket name: {why}").into());
        if !(3..=63).contains(&s.len()) {
            return bad("it must be 3 to 63 characters long");
        }
        if !s
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
        {
            return bad("only lowercase letters, digits, dots and hyphens are allowed");
        }
        let first = s.as_bytes()[0];
        let last = s.as_bytes()[s.len() - 1];
        if !first.is_ascii_alphanumeric() || !last.is_ascii_alphanumeric() {
            return bad("it must begin and end with a letter or digit");
        }
        if s.contains("..") || s.contains(".-") || s.contains("-.") {
            return bad("dots may not be doubled or next to a hyphen");
        }
        if s.split('.').count() == 4 && s.split('.').all(|p| p.parse::<u8>().is_ok()) {
            return bad("it must not look like an IP address");
        }
        Ok(BucketName(s.to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for BucketName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An IAM role ARN, `arn:PARTITION:iam::ACCOUNT:role/[PATH/]NAME`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleArn {
    arn: String,
    account: AccountId,
}

impl RoleArn {
    pub fn parse(s: &str) -> Result<Self, Invalid> {
        let bad = || {
            Err(
                format!("{s:?} is not an IAM role ARN (arn:aws:iam::123456789012:role/NAME)")
                    .into(),
            )
        };
        let parts: Vec<&str> = s.splitn(6, ':').collect();
        let [arn, partition, service, region, account, resource] = parts[..] else {
            return bad();
        };
        if arn != "arn" || !is_partition(partition) || service != "iam" || !region.is_empty() {
            return bad();
        }
        let Some(name) = resource.strip_prefix("role/") else {
            return bad();
        };
        let name = name.rsplit('/').next().unwrap_or_default();
        let name_ok = (1..=64).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-".contains(&b));
        let Ok(account) = AccountId::parse(account) else {
            return bad();
        };
        if !name_ok {
            return bad();
        }
        Ok(RoleArn {
            arn: s.to_owned(),
            account,
        })
    }
    pub fn as_str(&self) -> &str {
        &self.arn
    }
    pub fn account(&self) -> &AccountId {
        &self.account
    }
}

impl fmt::Display for RoleArn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.arn)
    }
}

fn is_partition(s: &str) -> bool {
    matches!(
        s,
        "aws" | "aws-cn" | "aws-us-gov" | "aws-iso" | "aws-iso-b" | "aws-iso-e" | "aws-iso-f"
    )
}

/// A KMS key reference, in any form KMS accepts: key id, key ARN, alias name or alias ARN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KmsKey {
    id: String,
    /// The region named by an ARN; key ids and alias names have none.
    region: Option<Region>,
}

impl KmsKey {
    pub fn parse(s: &str) -> Result<Self, Invalid> {
        let bad = || {
            Err(format!(
                "{s:?} is not a KMS key: use a key ARN (arn:aws:kms:REGION:ACCOUNT:key/ID), \
                 a key id, alias/NAME, or an alias ARN"
            )
            .into())
        };
        if let Some(rest) = s.strip_prefix("arn:") {
            let parts: Vec<&str> = rest.splitn(5, ':').collect();
            let [partition, service, region, account, resource] = parts[..] else {
                return bad();
            };
            if !is_partition(partition) || service != "kms" || AccountId::parse(account).is_err() {
                return bad();
            }
            let Ok(region) = Region::parse(region) else {
                return bad();
            };
            let resource_ok = match resource.split_once('/') {
                Some(("key", id)) => is_key_id(id),
                Some(("alias", name)) => is_alias_name(name),
                _ => false,
            };
            if !resource_ok {
                return bad();
            }
            return Ok(KmsKey {
                id: s.to_owned(),
                region: Some(region),
            });
        }
        let ok = match s.strip_prefix("alias/") {
            Some(name) => is_alias_name(name),
            None => is_key_id(s),
        };
        if ok {
            Ok(KmsKey {
                id: s.to_owned(),
                region: None,
            })
        } else {
            bad()
        }
    }
    pub fn as_str(&self) -> &str {
        &self.id
    }
    pub fn region(&self) -> Option<&Region> {
        self.region.as_ref()
    }

    /// The key's ARN when it was given as one (not an alias or a bare key id).
    pub fn key_arn(&self) -> Option<&str> {
        (self.id.starts_with("arn:") && self.id.contains(":key/")).then_some(self.id.as_str())
    }
}

impl fmt::Display for KmsKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.id)
    }
}

/// A UUID key id, or a multi-Region key id (`mrk-` and 32 hex digits).
fn is_key_id(s: &str) -> bool {
    if let Some(hex) = s.strip_prefix("mrk-") {
        return hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_hexdigit());
    }
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn is_alias_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 250
        && !s.starts_with("aws/")
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/_-".contains(&b))
}

/// An SQS queue URL with the region and account it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueUrl {
    url: String,
    region: Region,
    account: AccountId,
    name: String,
}

impl QueueUrl {
    /// Reads a queue URL; `region` is required when the host does not name one (a custom
    /// endpoint) and must agree with it when it does.
    pub fn parse(url: &str, region: Option<&str>) -> Result<Self, Invalid> {
        let bad = |why: &str| {
            Err(format!(
                "{url:?} is not an SQS queue URL ({why}); expected \
                 https://sqs.REGION.amazonaws.com/ACCOUNT/NAME"
            )
            .into())
        };
        let Some(rest) = url
            .strip_prefix("https://")
            .or_else(|| url.strip_prefix("http://"))
        else {
            return bad("no http(s) scheme");
        };
        let Some((host, path)) = rest.split_once('/') else {
            return bad("no /ACCOUNT/NAME path");
        };
        let Some((account, name)) = path.trim_end_matches('/').split_once('/') else {
            return bad("no /ACCOUNT/NAME path");
        };
        let Ok(account) = AccountId::parse(account) else {
            return bad("the path does not start with a 12-digit account id");
        };
        let name_ok = (1..=80).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
        if !name_ok {
            return bad("the queue name must be 1 to 80 letters, digits, hyphens or underscores");
        }
        if name.ends_with(".fifo") {
            return Err(format!(
                "{url:?} is a FIFO queue; S3 event notifications can only be sent to \
                 standard queues, so use a standard queue"
            )
            .into());
        }
        let from_host = region_from_sqs_host(host);
        let region = match (from_host, region) {
            (Some(h), Some(given)) if h != given => {
                return Err(format!(
                    "the queue URL names region {h} but region is set to {given}; \
                     remove region or make them agree"
                )
                .into())
            }
            (_, Some(given)) => Region::parse(given)?,
            (Some(h), None) => Region::parse(&h)?,
            (None, None) => {
                return Err(format!(
                    "cannot tell the region of {url:?} from its host {host:?}; \
                     set region for this queue"
                )
                .into())
            }
        };
        Ok(QueueUrl {
            url: url.to_owned(),
            region,
            account,
            name: name.to_owned(),
        })
    }
    pub fn as_str(&self) -> &str {
        &self.url
    }
    pub fn region(&self) -> &Region {
        &self.region
    }
    pub fn account(&self) -> &AccountId {
        &self.account
    }
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl fmt::Display for QueueUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.url)
    }
}

/// `sqs.REGION.amazonaws.com[.cn]`, `sqs.REGION.api.aws`, the legacy
/// `REGION.queue.amazonaws.com`, and `queue.amazonaws.com` (us-east-1).
fn region_from_sqs_host(host: &str) -> Option<String> {
    let host = host.split(':').next().unwrap_or(host);
    if host == "queue.amazonaws.com" {
        return Some("us-east-1".to_owned());
    }
    let labels: Vec<&str> = host.split('.').collect();
    match labels[..] {
        ["sqs", region, "amazonaws", "com"]
        | ["sqs", region, "amazonaws", "com", "cn"]
        | ["sqs", region, "api", "aws"]
        | [region, "queue", "amazonaws", "com"] => Some(region.to_owned()),
        _ => None,
    }
}
