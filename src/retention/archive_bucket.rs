//! The archive bucket itself: its configuration read from S3 as a [`BucketState`], and made
//! equal to the policy's.

use std::collections::BTreeMap;

use aws_sdk_s3::types::{
    BucketLifecycleConfiguration, BucketVersioningStatus, DefaultRetention,
    ObjectLockConfiguration, ObjectLockEnabled, ObjectLockRule, VersioningConfiguration,
};

use super::bucket::{rule_settings, BucketState, Change};
use super::policy::{Lock, RetentionPeriod};
use crate::aws::Failure;

#[derive(Debug, thiserror::Error)]
pub enum BucketError {
    #[error(
        "cannot read the {what} of archive bucket {bucket}: {}; the identity needs {permission} \
         on it",
        failure.detail
    )]
    Read {
        bucket: String,
        what: &'static str,
        permission: &'static str,
        failure: Failure,
    },
    #[error(
        "cannot change the {what} of archive bucket {bucket}: {}; the identity needs \
         {permission} on it (or set retention.reconcile = \"report\" where Terraform owns the \
         bucket)",
        failure.detail
    )]
    Write {
        bucket: String,
        what: &'static str,
        permission: &'static str,
        failure: Failure,
    },
    #[error(
        "refusing to change archive bucket {bucket}'s default retention from {bucket_lock} to \
         {policy_lock}: {why}. trailvault never weakens a COMPLIANCE default; if the policy is \
         right, an account administrator must change the bucket by hand"
    )]
    WouldWeaken {
        bucket: String,
        bucket_lock: String,
        policy_lock: String,
        why: String,
    },
    #[error("archive bucket {bucket} still differs from the policy after the change: {remaining}")]
    Unsettled { bucket: String, remaining: String },
}

/// Reads and changes one archive bucket's configuration.
pub struct ArchiveBucket {
    s3: aws_sdk_s3::Client,
    bucket: String,
}

impl ArchiveBucket {
    pub fn new(s3: aws_sdk_s3::Client, bucket: impl Into<String>) -> ArchiveBucket {
        ArchiveBucket {
            s3,
            bucket: bucket.into(),
        }
    }

    pub fn name(&self) -> &str {
        &self.bucket
    }

    /// The bucket's configuration as S3 has it.
    pub async fn read(&self) -> Result<BucketState, BucketError> {
        let read_error = |what, permission, failure| BucketError::Read {
            bucket: self.bucket.clone(),
            what,
            permission,
            failure,
        };
        let denied = |what, permission| move |failure| read_error(what, permission, failure);
        let (object_lock, default_retention) = match self
            .s3
            .get_object_lock_configuration()
            .bucket(&self.bucket)
            .send()
            .await
        {
            Ok(out) => {
                let conf = out.object_lock_configuration();
                let enabled =
                    conf.and_then(|c| c.object_lock_enabled()) == Some(&ObjectLockEnabled::Enabled);
                let lock = conf
                    .and_then(|c| c.rule())
                    .and_then(|r| r.default_retention())
                    .and_then(read_default_retention);
                (enabled, lock)
            }
            Err(e) => {
                let failure = Failure::from_sdk(&e);
                if failure.is_code("ObjectLockConfigurationNotFoundError") {
                    (false, None)
                } else {
                    return Err(read_error(
                        "Object Lock configuration",
                        "s3:GetBucketObjectLockConfiguration",
                        failure,
                    ));
                }
            }
        };

        // Object Lock cannot be on without versioning, and S3 never lets it be suspended
        // then: only a bucket without the lock needs asking.
        let versioning = if object_lock {
            Some("Enabled".to_owned())
        } else {
            self.s3
                .get_bucket_versioning()
                .bucket(&self.bucket)
                .send()
                .await
                .map_err(|e| Failure::from_sdk(&e))
                .map_err(denied("versioning", "s3:GetBucketVersioning"))?
                .status()
                .map(|s| s.as_str().to_owned())
        };

        let lifecycle = match self
            .s3
            .get_bucket_lifecycle_configuration()
            .bucket(&self.bucket)
            .send()
            .await
        {
            Ok(out) => out.rules().to_vec(),
            Err(e) => {
                let failure = Failure::from_sdk(&e);
                if failure.is_code("NoSuchLifecycleConfiguration") {
                    Vec::new()
                } else {
                    return Err(read_error(
                        "lifecycle configuration",
                        "s3:GetLifecycleConfiguration",
                        failure,
                    ));
                }
            }
        };
        let mut rules = BTreeMap::new();
        for (i, rule) in lifecycle.iter().enumerate() {
            let id = rule
                .id()
                .filter(|id| !id.is_empty())
                .map_or_else(|| format!("(unnamed rule {})", i + 1), str::to_owned);
            rules.insert(id, rule_settings(rule));
        }
        Ok(BucketState {
            versioning,
            object_lock,
            default_retention,
            rules,
            lifecycle,
        })
    }

    /// Makes the bucket equal to `policy`, changing only what differs; then reads it back
    /// and checks. Refuses, changing nothing, when that would weaken a COMPLIANCE default.
    /// Returns the changes made.
    pub async fn apply(&self, policy: &BucketState) -> Result<Vec<Change>, BucketError> {
        let current = self.read().await?;
        let changes = current.diff(policy);
        if let Some(refused) = changes.iter().find(|c| c.refused.is_some()) {
            return Err(BucketError::WouldWeaken {
                bucket: self.bucket.clone(),
                bucket_lock: refused.bucket.clone().unwrap_or_default(),
                policy_lock: refused.policy.clone().unwrap_or_default(),
                why: refused.refused.clone().unwrap_or_default(),
            });
        }
        if changes.is_empty() {
            return Ok(changes);
        }
        let write_error = |what, permission, e: Failure| BucketError::Write {
            bucket: self.bucket.clone(),
            what,
            permission,
            failure: e,
        };
        let refused = |what, permission| move |failure| write_error(what, permission, failure);
        if current.versioning != policy.versioning {
            self.s3
                .put_bucket_versioning()
                .bucket(&self.bucket)
                .versioning_configuration(
                    VersioningConfiguration::builder()
                        .status(BucketVersioningStatus::Enabled)
                        .build(),
                )
                .send()
                .await
                .map_err(|e| Failure::from_sdk(&e))
                .map_err(refused("versioning", "s3:PutBucketVersioning"))?;
        }
        if current.object_lock != policy.object_lock
            || current.default_retention != policy.default_retention
        {
            let mut conf =
                ObjectLockConfiguration::builder().object_lock_enabled(ObjectLockEnabled::Enabled);
            if let Some(lock) = policy.default_retention {
                conf = conf.rule(
                    ObjectLockRule::builder()
                        .default_retention(default_retention(lock))
                        .build(),
                );
            }
            self.s3
                .put_object_lock_configuration()
                .bucket(&self.bucket)
                .object_lock_configuration(conf.build())
                .send()
                .await
                .map_err(|e| Failure::from_sdk(&e))
                .map_err(refused(
                    "Object Lock configuration",
                    "s3:PutBucketObjectLockConfiguration",
                ))?;
        }
        if current.rules != policy.rules {
            // No rules at all is no lifecycle configuration: S3 refuses an empty one.
            let changed = if policy.lifecycle.is_empty() {
                let delete = self.s3.delete_bucket_lifecycle().bucket(&self.bucket);
                delete
                    .send()
                    .await
                    .map(drop)
                    .map_err(|e| Failure::from_sdk(&e))
            } else {
                let rules = BucketLifecycleConfiguration::builder()
                    .set_rules(Some(policy.lifecycle.clone()))
                    .build()
                    .expect("rules are set");
                let put = self
                    .s3
                    .put_bucket_lifecycle_configuration()
                    .bucket(&self.bucket)
                    .lifecycle_configuration(rules);
                put.send()
                    .await
                    .map(drop)
                    .map_err(|e| Failure::from_sdk(&e))
            };
            changed.map_err(refused(
                "lifecycle configuration",
                "s3:PutLifecycleConfiguration",
            ))?;
        }
        let remaining = self.read().await?.diff(policy);
        if !remaining.is_empty() {
            return Err(BucketError::Unsettled {
                bucket: self.bucket.clone(),
                remaining: remaining
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; "),
            });
        }
        Ok(changes)
    }
}

fn read_default_retention(d: &DefaultRetention) -> Option<Lock> {
    let mode = super::lock::from_retention_mode(d.mode()?)?;
    // S3 answers with one of days or years; some implementations send the other as 0.
    let period = match (d.days().filter(|d| *d > 0), d.years().filter(|y| *y > 0)) {
        (Some(days), _) => RetentionPeriod::Days(days as u32),
        (None, Some(years)) => RetentionPeriod::Years(years as u32),
        (None, None) => return None,
    };
    Some(Lock { mode, period })
}

fn default_retention(lock: Lock) -> DefaultRetention {
    let b = DefaultRetention::builder().mode(super::lock::retention_mode(lock.mode));
    match lock.period {
        RetentionPeriod::Days(d) => b.days(d as i32),
        RetentionPeriod::Years(y) => b.years(y as i32),
    }
    .build()
}
