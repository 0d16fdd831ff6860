//! The archive bucket's configuration against the policy: Object Lock and its default
//! retention, versioning, and the lifecycle rules.
//!
//! Both sides are reduced to the same [`BucketState`]: a list of named settings, each with a
//! one-line description. The difference between two states is then the settings whose
//! descriptions differ, which is what `retention plan` prints and what `retention apply`
//! changes. trailvault owns the bucket's whole lifecycle configuration: a rule the policy does
//! not name is drift, and `apply` removes it.

use std::collections::BTreeMap;
use std::fmt;

use aws_sdk_s3::types::{
    AbortIncompleteMultipartUpload, ExpirationStatus, LifecycleExpiration, LifecycleRule,
    LifecycleRuleFilter, NoncurrentVersionExpiration, Transition, TransitionStorageClass,
};
use serde::Serialize;

use super::policy::{Lock, LockMode, Retention, RetentionPeriod};

/// The lifecycle rule that carries transitions and expirations.
pub const RULE_RETENTION: &str = "trailvault-retention";
/// The lifecycle rule that removes delete markers left with no version behind them.
pub const RULE_DELETE_MARKERS: &str = "trailvault-delete-markers";

/// One named part of a bucket's configuration and how it reads.
pub type Settings = BTreeMap<String, String>;

/// A bucket's configuration, as the policy wants it or as S3 has it.
#[derive(Debug, Clone, PartialEq)]
pub struct BucketState {
    pub versioning: Option<String>,
    pub object_lock: bool,
    pub default_retention: Option<Lock>,
    /// Lifecycle rules by id, each reduced to its settings.
    pub rules: BTreeMap<String, Settings>,
    /// The rules themselves, for writing back (the policy's side only).
    pub(super) lifecycle: Vec<LifecycleRule>,
}

/// One difference between the bucket and the policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    /// What it is about: `versioning`, `object lock`, `default retention`, or
    /// `lifecycle rule ID: SETTING`.
    pub setting: String,
    /// How the bucket has it (`None`: not there).
    pub bucket: Option<String>,
    /// How the policy wants it (`None`: not there).
    pub policy: Option<String>,
    /// Why `apply` will not make this change, if it will not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refused: Option<String>,
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.bucket, &self.policy) {
            (Some(b), Some(p)) => write!(f, "~ {}: {b} -> {p}", self.setting)?,
            (None, Some(p)) => write!(f, "+ {}: {p}", self.setting)?,
            (Some(b), None) => write!(f, "- {}: {b}", self.setting)?,
            (None, None) => write!(f, "  {}", self.setting)?,
        }
        if let Some(why) = &self.refused {
            write!(f, "  (apply refuses: {why})")?;
        }
        Ok(())
    }
}

impl BucketState {
    /// What the policy asks of the archive bucket.
    pub fn desired(retention: &Retention) -> BucketState {
        let lifecycle = lifecycle_rules(retention);
        BucketState {
            versioning: Some("Enabled".to_owned()),
            object_lock: true,
            default_retention: Some(retention.lock),
            rules: lifecycle
                .iter()
                .map(|r| (r.id().unwrap_or_default().to_owned(), rule_settings(r)))
                .collect(),
            lifecycle,
        }
    }

    /// The settings in the order they are compared and printed.
    fn settings(&self) -> Settings {
        let mut s = Settings::new();
        s.insert(
            "versioning".to_owned(),
            self.versioning
                .clone()
                .unwrap_or_else(|| "never enabled".to_owned()),
        );
        s.insert(
            "object lock".to_owned(),
            if self.object_lock {
                "Enabled"
            } else {
                "not enabled"
            }
            .to_owned(),
        );
        s.insert(
            "object lock default retention".to_owned(),
            self.default_retention
                .map_or_else(|| "none".to_owned(), |l| l.to_string()),
        );
        for (id, settings) in &self.rules {
            for (name, value) in settings {
                s.insert(format!("lifecycle rule {id}: {name}"), value.clone());
            }
        }
        s
    }

    /// What differs between this (the bucket) and `policy`.
    pub fn diff(&self, policy: &BucketState) -> Vec<Change> {
        let (ours, theirs) = (self.settings(), policy.settings());
        let mut changes = Vec::new();
        for (setting, value) in &ours {
            match theirs.get(setting) {
                Some(wanted) if wanted == value => {}
                wanted => changes.push(Change {
                    setting: setting.clone(),
                    bucket: Some(value.clone()),
                    policy: wanted.cloned(),
                    refused: None,
                }),
            }
        }
        for (setting, wanted) in &theirs {
            if !ours.contains_key(setting) {
                changes.push(Change {
                    setting: setting.clone(),
                    bucket: None,
                    policy: Some(wanted.clone()),
                    refused: None,
                });
            }
        }
        if let (Some(have), Some(want)) = (self.default_retention, policy.default_retention) {
            if let Some(why) = weakens(have, want) {
                for c in &mut changes {
                    if c.setting == "object lock default retention" {
                        c.refused = Some(why.clone());
                    }
                }
            }
        }
        changes.sort_by(|a, b| a.setting.cmp(&b.setting));
        changes
    }
}

/// Why moving a bucket's default retention from `have` to `want` weakens a COMPLIANCE
/// default, if it does.
pub fn weakens(have: Lock, want: Lock) -> Option<String> {
    if have.mode != LockMode::Compliance {
        return None;
    }
    if want.mode == LockMode::Governance {
        return Some("it would turn COMPLIANCE into GOVERNANCE".to_owned());
    }
    let shorter = match (have.period, want.period) {
        (RetentionPeriod::Days(a), RetentionPeriod::Days(b)) => b < a,
        (RetentionPeriod::Years(a), RetentionPeriod::Years(b)) => b < a,
        (a, b) => b.max_days() < a.min_days(),
    };
    shorter.then(|| format!("{} is shorter than {}", want.period, have.period))
}

/// The policy as lifecycle rules: transitions and expirations in one rule over the whole
/// bucket (it holds nothing but the archive), delete-marker cleanup in another (S3 does not
/// allow it beside an expiration in days).
pub(super) fn lifecycle_rules(retention: &Retention) -> Vec<LifecycleRule> {
    let l = &retention.lifecycle;
    let whole_bucket = || LifecycleRuleFilter::builder().prefix("").build();
    let mut rules = Vec::new();
    let has_retention_rule = !l.transitions.is_empty()
        || l.expiration_days.is_some()
        || l.noncurrent_expiration_days.is_some()
        || l.abort_incomplete_multipart_days.is_some();
    if has_retention_rule {
        let mut rule = LifecycleRule::builder()
            .id(RULE_RETENTION)
            .status(ExpirationStatus::Enabled)
            .filter(whole_bucket());
        for t in &l.transitions {
            rule = rule.transitions(
                Transition::builder()
                    .days(t.days as i32)
                    .storage_class(TransitionStorageClass::from(t.storage_class.as_str()))
                    .build(),
            );
        }
        if let Some(days) = l.expiration_days {
            rule = rule.expiration(LifecycleExpiration::builder().days(days as i32).build());
        }
        if let Some(days) = l.noncurrent_expiration_days {
            rule = rule.noncurrent_version_expiration(
                NoncurrentVersionExpiration::builder()
                    .noncurrent_days(days as i32)
                    .build(),
            );
        }
        if let Some(days) = l.abort_incomplete_multipart_days {
            rule = rule.abort_incomplete_multipart_upload(
                AbortIncompleteMultipartUpload::builder()
                    .days_after_initiation(days as i32)
                    .build(),
            );
        }
        rules.push(rule.build().expect("id, status and filter are set"));
    }
    if l.expired_delete_markers {
        rules.push(
            LifecycleRule::builder()
                .id(RULE_DELETE_MARKERS)
                .status(ExpirationStatus::Enabled)
                .filter(whole_bucket())
                .expiration(
                    LifecycleExpiration::builder()
                        .expired_object_delete_marker(true)
                        .build(),
                )
                .build()
                .expect("id, status and filter are set"),
        );
    }
    rules
}

/// A lifecycle rule reduced to what it does, one setting per line. Anything trailvault's
/// policy never sets (dates, tag or size filters, noncurrent transitions) still shows, so
/// that a foreign rule's every effect is visible.
pub(super) fn rule_settings(rule: &LifecycleRule) -> Settings {
    let mut s = Settings::new();
    s.insert("status".to_owned(), rule.status().as_str().to_owned());
    // Rules written before S3 had filters carry a bare prefix; a foreign rule may be one.
    #[allow(deprecated)]
    let filter = match (rule.filter(), rule.prefix()) {
        (Some(f), _) => describe_filter(f),
        (None, Some(p)) => describe_prefix(p),
        (None, None) => "whole bucket".to_owned(),
    };
    s.insert("applies to".to_owned(), filter);
    for t in rule.transitions() {
        let class = t
            .storage_class()
            .map(|c| c.as_str().to_owned())
            .unwrap_or_else(|| "?".to_owned());
        let when = match (t.days(), t.date()) {
            (Some(d), _) => format!("after {d} days"),
            (None, Some(date)) => format!("on {date}"),
            _ => "at an unknown time".to_owned(),
        };
        s.insert(format!("transition to {class}"), when);
    }
    if let Some(e) = rule.expiration() {
        if let Some(d) = e.days().filter(|d| *d > 0) {
            s.insert(
                "expire current versions".to_owned(),
                format!("after {d} days"),
            );
        }
        if let Some(date) = e.date() {
            s.insert("expire current versions".to_owned(), format!("on {date}"));
        }
        if e.expired_object_delete_marker() == Some(true) {
            s.insert("remove expired delete markers".to_owned(), "yes".to_owned());
        }
    }
    if let Some(n) = rule.noncurrent_version_expiration() {
        let mut text = format!(
            "{} days after they become noncurrent",
            n.noncurrent_days().unwrap_or(0)
        );
        if let Some(keep) = n.newer_noncurrent_versions() {
            text += &format!(", keeping the {keep} newest");
        }
        s.insert("delete noncurrent versions".to_owned(), text);
    }
    for t in rule.noncurrent_version_transitions() {
        let class = t
            .storage_class()
            .map(|c| c.as_str().to_owned())
            .unwrap_or_else(|| "?".to_owned());
        s.insert(
            format!("noncurrent transition to {class}"),
            format!("after {} days", t.noncurrent_days().unwrap_or(0)),
        );
    }
    if let Some(a) = rule.abort_incomplete_multipart_upload() {
        s.insert(
            "abort incomplete multipart uploads".to_owned(),
            format!("after {} days", a.days_after_initiation().unwrap_or(0)),
        );
    }
    s
}

fn describe_prefix(prefix: &str) -> String {
    if prefix.is_empty() {
        "whole bucket".to_owned()
    } else {
        format!("prefix {prefix}")
    }
}

fn describe_filter(f: &LifecycleRuleFilter) -> String {
    let mut parts = Vec::new();
    if let Some(p) = f.prefix().filter(|p| !p.is_empty()) {
        parts.push(format!("prefix {p}"));
    }
    if let Some(t) = f.tag() {
        parts.push(format!("tag {}={}", t.key(), t.value()));
    }
    if let Some(and) = f.and() {
        if let Some(p) = and.prefix().filter(|p| !p.is_empty()) {
            parts.push(format!("prefix {p}"));
        }
        for t in and.tags() {
            parts.push(format!("tag {}={}", t.key(), t.value()));
        }
        if let Some(n) = and.object_size_greater_than() {
            parts.push(format!("larger than {n} bytes"));
        }
        if let Some(n) = and.object_size_less_than() {
            parts.push(format!("smaller than {n} bytes"));
        }
    }
    if let Some(n) = f.object_size_greater_than() {
        parts.push(format!("larger than {n} bytes"));
    }
    if let Some(n) = f.object_size_less_than() {
        parts.push(format!("smaller than {n} bytes"));
    }
    if parts.is_empty() {
        "whole bucket".to_owned()
    } else {
        parts.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::Config;

    const POLICY: &str = r#"
        [archive]
        bucket = "acme-archive"
        region = "eu-west-1"
        kms_key = "alias/archive"
        [[queues]]
        url = "https://sqs.eu-west-1.amazonaws.com/111111111111/q"
        [[accounts]]
        id = "222222222222"
        reader_role_arn = "arn:aws:iam::222222222222:role/reader"
        external_id = "ext-123"
        [[accounts.buckets]]
        name = "trail"
        region = "eu-west-1"
        [retention]
        mode = "COMPLIANCE"
        years = 7
        [retention.lifecycle]
        expiration_grace_days = 30
        noncurrent_expiration_days = 30
        [[retention.lifecycle.transitions]]
        days = 30
        storage_class = "STANDARD_IA"
        [[retention.lifecycle.transitions]]
        days = 365
        storage_class = "DEEP_ARCHIVE"
    "#;

    fn policy() -> BucketState {
        let config = Config::from_toml(POLICY, Path::new("t.toml")).unwrap();
        BucketState::desired(&config.retention)
    }

    #[test]
    fn the_policy_as_bucket_settings() {
        let settings = policy().settings();
        let get = |k: &str| settings.get(k).map(String::as_str);
        assert_eq!(
            get("object lock default retention"),
            Some("COMPLIANCE 7 years")
        );
        let rule = |s: &str| get(&format!("lifecycle rule trailvault-retention: {s}"));
        assert_eq!(rule("transition to STANDARD_IA"), Some("after 30 days"));
        assert_eq!(rule("transition to DEEP_ARCHIVE"), Some("after 365 days"));
        // 7 years hold at most 2 leap days: 2557 days, plus 30 days of grace.
        assert_eq!(rule("expire current versions"), Some("after 2587 days"));
        assert_eq!(
            rule("abort incomplete multipart uploads"),
            Some("after 7 days")
        );
        assert_eq!(
            get("lifecycle rule trailvault-delete-markers: remove expired delete markers"),
            Some("yes")
        );
    }

    #[test]
    fn drift_is_reported_setting_by_setting() {
        let want = policy();
        assert!(want.diff(&want).is_empty());

        let mut have = want.clone();
        have.default_retention = Some(Lock {
            mode: LockMode::Governance,
            period: RetentionPeriod::Days(30),
        });
        let rule = have.rules.get_mut(RULE_RETENTION).unwrap();
        rule.insert(
            "transition to DEEP_ARCHIVE".to_owned(),
            "after 400 days".to_owned(),
        );
        have.rules.remove(RULE_DELETE_MARKERS);
        let mut foreign = Settings::new();
        foreign.insert("status".to_owned(), "Enabled".to_owned());
        have.rules.insert("legacy".to_owned(), foreign);

        let lines: Vec<String> = have.diff(&want).iter().map(|c| c.to_string()).collect();
        assert_eq!(
            lines,
            [
                "- lifecycle rule legacy: status: Enabled",
                "+ lifecycle rule trailvault-delete-markers: applies to: whole bucket",
                "+ lifecycle rule trailvault-delete-markers: remove expired delete markers: yes",
                "+ lifecycle rule trailvault-delete-markers: status: Enabled",
                "~ lifecycle rule trailvault-retention: transition to DEEP_ARCHIVE: after 400 days -> after 365 days",
                "~ object lock default retention: GOVERNANCE 30 days -> COMPLIANCE 7 years",
            ]
        );
    }

    #[test]
    fn a_compliance_default_is_never_weakened() {
        let lock = |mode, period| Lock { mode, period };
        use LockMode::*;
        use RetentionPeriod::*;
        assert!(weakens(lock(Compliance, Years(10)), lock(Compliance, Years(7))).is_some());
        assert!(weakens(lock(Compliance, Years(7)), lock(Governance, Years(7))).is_some());
        assert!(weakens(lock(Compliance, Days(400)), lock(Compliance, Years(1))).is_some());
        assert!(weakens(lock(Compliance, Years(7)), lock(Compliance, Years(8))).is_none());
        assert!(weakens(lock(Compliance, Days(365)), lock(Compliance, Years(1))).is_none());
        assert!(weakens(lock(Governance, Years(10)), lock(Compliance, Days(1))).is_none());

        let want = policy();
        let mut have = want.clone();
        have.default_retention = Some(lock(Compliance, Years(10)));
        let changes = have.diff(&want);
        assert_eq!(changes.len(), 1);
        assert!(
            changes[0]
                .to_string()
                .ends_with("(apply refuses: 7 years is shorter than 10 years)"),
            "{}",
            changes[0]
        );
    }
}
