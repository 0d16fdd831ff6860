//! Which member account an object belongs to, and where it goes in the archive.
//!
//! The bucket decides the account (from the configuration), and the key must agree: a
//! CloudTrail key names its account twice (`AWSLogs/[o-ID/]ACCOUNT/...` and the file name), and
//! both must be the bucket's account. Otherwise a member account could plant files under
//! another account's name. Anything that is not a CloudTrail key is refused too.

use super::layout::archive_key;
use crate::cloudtrail::key::{self, FileKind};
use crate::config::{Account, Config, SourceBucket};
use crate::notification::ObjectRef;

/// Where an object comes from and where it goes.
#[derive(Debug, Clone, PartialEq)]
pub struct Route<'c> {
    pub account: &'c Account,
    pub bucket: &'c SourceBucket,
    pub kind: FileKind,
    pub archive_key: String,
}

/// Why an object is not archived.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error(
        "bucket {bucket} is not a source bucket of any configured account; add it to the \
         account's [[accounts.buckets]], or stop its notifications"
    )]
    UnknownBucket { bucket: String },
    #[error("s3://{bucket}/{key} is not a CloudTrail file: {reason}")]
    NotCloudTrail {
        bucket: String,
        key: String,
        reason: &'static str,
    },
    #[error(
        "s3://{bucket}/{key} names account {key_account}, but {bucket} belongs to account \
         {bucket_account}: refused, a member account may not write another account's logs"
    )]
    AccountMismatch {
        bucket: String,
        key: String,
        bucket_account: String,
        key_account: String,
    },
}

impl Refusal {
    /// A bounded label for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            Refusal::UnknownBucket { .. } => "unknown_bucket",
            Refusal::NotCloudTrail { .. } => "not_cloudtrail",
            Refusal::AccountMismatch { .. } => "account_mismatch",
        }
    }
}

/// Decides an object's account and archive key, or refuses it, among the configured accounts.
pub fn route<'c>(config: &'c Config, object: &ObjectRef) -> Result<Route<'c>, Refusal> {
    route_among(&config.accounts, &config.archive.key_prefix, object)
}

/// [`route`] among a given set of accounts (the configured ones and those discovered).
pub fn route_among<'c>(
    accounts: &'c [Account],
    key_prefix: &str,
    object: &ObjectRef,
) -> Result<Route<'c>, Refusal> {
    let (account, bucket) = accounts
        .iter()
        .find_map(|a| {
            a.buckets
                .iter()
                .find(|b| b.name.as_str() == object.bucket)
                .map(|b| (a, b))
        })
        .ok_or_else(|| Refusal::UnknownBucket {
            bucket: object.bucket.clone(),
        })?;
    let parsed = key::parse(&object.key).map_err(|e| Refusal::NotCloudTrail {
        bucket: object.bucket.clone(),
        key: object.key.clone(),
        reason: e.reason,
    })?;
    if parsed.account != account.id.as_str() {
        return Err(Refusal::AccountMismatch {
            bucket: object.bucket.clone(),
            key: object.key.clone(),
            bucket_account: account.id.to_string(),
            key_account: parsed.account.to_owned(),
        });
    }
    Ok(Route {
        account,
        bucket,
        kind: parsed.kind,
        archive_key: archive_key(key_prefix, &object.bucket, &object.key),
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    const CONFIG: &str = r#"
        [archive]
        bucket = "archive"
        region = "us-east-1"
        kms_key = "alias/archive"
        key_prefix = "ct/"
        [[queues]]
        url = "https://sqs.us-east-1.amazonaws.com/111111111111/q"
        [[accounts]]
        id = "222222222222"
        reader_role_arn = "arn:aws:iam::222222222222:role/r"
        external_id = "ext-1"
        [[accounts.buckets]]
        name = "trail-a"
        region = "us-east-1"
        [[accounts]]
        id = "333333333333"
        reader_role_arn = "arn:aws:iam::333333333333:role/r"
        external_id = "ext-2"
        [[accounts.buckets]]
        name = "trail-b"
        region = "us-east-1"
        [retention]
        mode = "GOVERNANCE"
        days = 1
    "#;

    fn object(bucket: &str, key: &str) -> ObjectRef {
        ObjectRef {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            version_id: None,
            size: None,
            etag: None,
            event_time: None,
        }
    }

    fn log_key(account: &str) -> String {
        format!("AWSLogs/o-abcdefghij/{account}/CloudTrail/us-east-1/2026/11/01/{account}_CloudTrail_us-east-1_20261101T0036Z_Fbwb0dU5sXa27Nsd.json.gz")
    }

    #[test]
    fn the_bucket_decides_and_the_key_agrees() {
        let config = Config::from_toml(CONFIG, Path::new("t.toml")).unwrap();
        let key = log_key("333333333333");
        let route = route(&config, &object("trail-b", &key)).unwrap();
        assert_eq!(route.account.id.as_str(), "333333333333");
        assert_eq!(route.kind, FileKind::Log);
        assert_eq!(route.archive_key, format!("ct/trail-b/{key}"));
        assert_eq!(
            crate::archive::layout::source_of("ct/", &route.archive_key),
            Some(("trail-b", key.as_str()))
        );
    }

    #[test]
    fn refusals() {
        let config = Config::from_toml(CONFIG, Path::new("t.toml")).unwrap();
        let planted = route(&config, &object("trail-a", &log_key("333333333333"))).unwrap_err();
        assert_eq!(planted.label(), "account_mismatch");
        assert!(
            planted.to_string().contains("names account 333333333333"),
            "{planted}"
        );
        let unknown = route(&config, &object("elsewhere", &log_key("222222222222"))).unwrap_err();
        assert_eq!(unknown.label(), "unknown_bucket");
        let other = route(
            &config,
            &object("trail-a", "AWSLogs/222222222222/Config/x.json"),
        )
        .unwrap_err();
        assert_eq!(other.label(), "not_cloudtrail");
    }
}
