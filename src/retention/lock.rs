//! A policy's lock in S3's terms: the SDK's lock-mode types both ways, and the one action that
//! sets or extends a version's retention.

use aws_sdk_s3::operation::put_object_retention::PutObjectRetentionError;
use aws_sdk_s3::primitives::DateTime;
use aws_sdk_s3::types::{ObjectLockMode, ObjectLockRetention, ObjectLockRetentionMode};
use time::OffsetDateTime;

use super::policy::LockMode;

/// The mode as a write's `x-amz-object-lock-mode`.
pub fn object_lock_mode(mode: LockMode) -> ObjectLockMode {
    match mode {
        LockMode::Compliance => ObjectLockMode::Compliance,
        LockMode::Governance => ObjectLockMode::Governance,
    }
}

/// The mode as a retention (PutObjectRetention, default retention).
pub fn retention_mode(mode: LockMode) -> ObjectLockRetentionMode {
    match mode {
        LockMode::Compliance => ObjectLockRetentionMode::Compliance,
        LockMode::Governance => ObjectLockRetentionMode::Governance,
    }
}

/// A retention mode S3 reported, if it is one trailvault knows.
pub fn from_retention_mode(mode: &ObjectLockRetentionMode) -> Option<LockMode> {
    LockMode::parse(mode.as_str())
}

/// Sets a version's retention to `mode` until `until`. S3 lets retention only grow; turning a
/// GOVERNANCE lock (`was`) into COMPLIANCE overrides the governance lock, which needs the
/// bypass header and `s3:BypassGovernanceRetention`.
pub async fn set_retention(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    version_id: Option<&str>,
    was: Option<LockMode>,
    mode: LockMode,
    until: OffsetDateTime,
) -> Result<(), aws_sdk_s3::error::SdkError<PutObjectRetentionError>> {
    s3.put_object_retention()
        .bucket(bucket)
        .key(key)
        .set_version_id(version_id.map(str::to_owned))
        .retention(
            ObjectLockRetention::builder()
                .mode(retention_mode(mode))
                .retain_until_date(DateTime::from_secs(until.unix_timestamp()))
                .build(),
        )
        .set_bypass_governance_retention(
            (was == Some(LockMode::Governance) && mode == LockMode::Compliance).then_some(true),
        )
        .send()
        .await
        .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_convert_both_ways() {
        for mode in [LockMode::Compliance, LockMode::Governance] {
            assert_eq!(object_lock_mode(mode).as_str(), mode.as_str());
            assert_eq!(from_retention_mode(&retention_mode(mode)), Some(mode));
        }
        assert_eq!(
            from_retention_mode(&ObjectLockRetentionMode::from("SOMETHING")),
            None
        );
    }
}
