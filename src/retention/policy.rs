//! The retention policy's types: the lock every archived version carries, the lifecycle the
//! archive bucket runs, and what the worker does about drift. Parsed and validated in
//! `config`; judged in [`super::judge`]; applied by the bucket reconcile and the lock action.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
pub enum LockMode {
    #[serde(rename = "COMPLIANCE")]
    Compliance,
    #[serde(rename = "GOVERNANCE")]
    Governance,
}

impl LockMode {
    pub fn as_str(self) -> &'static str {
        match self {
            LockMode::Compliance => "COMPLIANCE",
            LockMode::Governance => "GOVERNANCE",
        }
    }

    pub fn parse(s: &str) -> Option<LockMode> {
        match s {
            "COMPLIANCE" => Some(LockMode::Compliance),
            "GOVERNANCE" => Some(LockMode::Governance),
            _ => None,
        }
    }
}

impl fmt::Display for LockMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How long every archived version is locked. S3 expresses default retention in days or in
/// years, and so does this.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetentionPeriod {
    Days(u32),
    Years(u32),
}

impl RetentionPeriod {
    /// The most days the period can span: years are calendar years, and `y` of them hold at
    /// most `ceil(y / 4)` leap days. A lifecycle expiration at or after this many days never
    /// touches a version that is still locked.
    pub fn max_days(self) -> u32 {
        match self {
            RetentionPeriod::Days(d) => d,
            RetentionPeriod::Years(y) => y * 365 + y.div_ceil(4),
        }
    }

    /// The fewest days the period can span (years without leap days): comparing two periods
    /// by this errs on the side of calling a period short.
    pub fn min_days(self) -> u32 {
        match self {
            RetentionPeriod::Days(d) => d,
            RetentionPeriod::Years(y) => y * 365,
        }
    }
}

impl fmt::Display for RetentionPeriod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RetentionPeriod::Days(1) => f.write_str("1 day"),
            RetentionPeriod::Days(d) => write!(f, "{d} days"),
            RetentionPeriod::Years(1) => f.write_str("1 year"),
            RetentionPeriod::Years(y) => write!(f, "{y} years"),
        }
    }
}

/// The Object Lock every archived version carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lock {
    pub mode: LockMode,
    pub period: RetentionPeriod,
}

impl fmt::Display for Lock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.mode, self.period)
    }
}

/// What the worker does when the bucket's configuration differs from the policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Reconcile {
    /// Make the bucket equal to the policy (as `trailvault retention apply` does).
    #[default]
    Enforce,
    /// Only warn and set the drift metric: for a bucket whose configuration Terraform owns.
    Report,
}

/// The storage classes a lifecycle rule can move objects to, in the only order S3 allows
/// (each may be followed only by one further down).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, Serialize)]
pub enum StorageClass {
    #[serde(rename = "STANDARD_IA")]
    StandardIa,
    #[serde(rename = "INTELLIGENT_TIERING")]
    IntelligentTiering,
    #[serde(rename = "ONEZONE_IA")]
    OnezoneIa,
    #[serde(rename = "GLACIER_IR")]
    GlacierIr,
    #[serde(rename = "GLACIER")]
    Glacier,
    #[serde(rename = "DEEP_ARCHIVE")]
    DeepArchive,
}

impl StorageClass {
    pub const ALL: [StorageClass; 6] = [
        StorageClass::StandardIa,
        StorageClass::IntelligentTiering,
        StorageClass::OnezoneIa,
        StorageClass::GlacierIr,
        StorageClass::Glacier,
        StorageClass::DeepArchive,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            StorageClass::StandardIa => "STANDARD_IA",
            StorageClass::IntelligentTiering => "INTELLIGENT_TIERING",
            StorageClass::OnezoneIa => "ONEZONE_IA",
            StorageClass::GlacierIr => "GLACIER_IR",
            StorageClass::Glacier => "GLACIER",
            StorageClass::DeepArchive => "DEEP_ARCHIVE",
        }
    }

    pub fn parse(s: &str) -> Option<StorageClass> {
        StorageClass::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// The fewest days after creation S3 accepts for a transition into this class.
    pub fn earliest_day(self) -> u32 {
        match self {
            StorageClass::StandardIa | StorageClass::OnezoneIa => 30,
            _ => 0,
        }
    }

    /// The minimum storage duration: S3 refuses a next transition sooner for the IA classes,
    /// and charges the whole duration for Glacier objects moved or deleted sooner.
    pub fn minimum_days(self) -> u32 {
        match self {
            StorageClass::StandardIa | StorageClass::OnezoneIa => 30,
            StorageClass::IntelligentTiering => 0,
            StorageClass::GlacierIr | StorageClass::Glacier => 90,
            StorageClass::DeepArchive => 180,
        }
    }
}

impl fmt::Display for StorageClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    /// Days after the version was written.
    pub days: u32,
    pub storage_class: StorageClass,
}

/// The archive bucket's lifecycle, as trailvault's policy wants it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lifecycle {
    /// In order of days, each to a class further down S3's order.
    pub transitions: Vec<Transition>,
    /// Days after creation when a current version expires (S3 puts a delete marker on it;
    /// the version itself stays, noncurrent, until its lock ends and the noncurrent rule
    /// removes it). Never sooner than the lock period. `None`: kept for good.
    pub expiration_days: Option<u32>,
    /// Days after a version became noncurrent when S3 deletes it, once its lock allows.
    pub noncurrent_expiration_days: Option<u32>,
    /// Remove delete markers that no longer hide any version.
    pub expired_delete_markers: bool,
    /// Days after which an unfinished multipart upload is aborted; `None`: never.
    pub abort_incomplete_multipart_days: Option<u32>,
}

/// The whole policy, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retention {
    pub lock: Lock,
    pub lifecycle: Lifecycle,
    pub reconcile: Reconcile,
    /// How often the worker compares the bucket with the policy (and, enforcing, fixes it).
    pub reconcile_interval: Duration,
}
