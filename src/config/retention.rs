//! The retention policy: how long every archived version is locked, how the archive bucket's
//! lifecycle moves and expires versions, and how the worker keeps the bucket equal to it.
//!
//! S3's rules for lifecycle transitions are checked here, at start-up, so that a policy that
//! S3 would refuse (or that would cost early-deletion charges, or promise a deletion the lock
//! forbids) never reaches the bucket.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::error::Problems;
use crate::retention::policy::{
    Lifecycle, Lock, LockMode, Reconcile, Retention, RetentionPeriod, StorageClass, Transition,
};

/// S3 Object Lock accepts at most 100 years.
pub const MAX_RETENTION_YEARS: u32 = 100;
pub const MAX_RETENTION_DAYS: u32 = 36_500;
/// Checking the bucket more often than this only adds requests.
const MIN_RECONCILE_SECS: u64 = 60;
/// A week: drift should not go unnoticed longer.
const MAX_RECONCILE_SECS: u64 = 7 * 24 * 3600;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawRetention {
    pub mode: LockMode,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub days: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub years: Option<u32>,
    #[serde(default)]
    pub reconcile: Reconcile,
    #[serde(default = "default_reconcile_interval_secs")]
    pub reconcile_interval_secs: u64,
    #[serde(default)]
    pub lifecycle: RawLifecycle,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawLifecycle {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiration_days: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiration_grace_days: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub noncurrent_expiration_days: Option<u32>,
    #[serde(default = "default_true")]
    pub expired_delete_markers: bool,
    #[serde(default = "default_abort_incomplete_multipart_days")]
    pub abort_incomplete_multipart_days: u32,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub transitions: Vec<RawTransition>,
}

impl Default for RawLifecycle {
    fn default() -> Self {
        RawLifecycle {
            expiration_days: None,
            expiration_grace_days: None,
            noncurrent_expiration_days: None,
            expired_delete_markers: default_true(),
            abort_incomplete_multipart_days: default_abort_incomplete_multipart_days(),
            transitions: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawTransition {
    pub days: u32,
    pub storage_class: StorageClass,
}

/// Hourly: drift is noticed within the hour, at one or two requests per check.
fn default_reconcile_interval_secs() -> u64 {
    3600
}

fn default_true() -> bool {
    true
}

/// A week: a multipart upload that has not completed by then never will (the worker
/// abandons its own within minutes), and its parts cost storage.
fn default_abort_incomplete_multipart_days() -> u32 {
    7
}

impl Retention {
    pub fn to_raw(&self) -> RawRetention {
        let l = &self.lifecycle;
        RawRetention {
            mode: self.lock.mode,
            days: match self.lock.period {
                RetentionPeriod::Days(d) => Some(d),
                RetentionPeriod::Years(_) => None,
            },
            years: match self.lock.period {
                RetentionPeriod::Years(y) => Some(y),
                RetentionPeriod::Days(_) => None,
            },
            reconcile: self.reconcile,
            reconcile_interval_secs: self.reconcile_interval.as_secs(),
            lifecycle: RawLifecycle {
                expiration_days: l.expiration_days,
                expiration_grace_days: None,
                noncurrent_expiration_days: l.noncurrent_expiration_days,
                expired_delete_markers: l.expired_delete_markers,
                abort_incomplete_multipart_days: l.abort_incomplete_multipart_days.unwrap_or(0),
                transitions: l
                    .transitions
                    .iter()
                    .map(|t| RawTransition {
                        days: t.days,
                        storage_class: t.storage_class,
                    })
                    .collect(),
            },
        }
    }
}

pub(super) fn validate(raw: &RawRetention, p: &mut Problems) -> Option<Retention> {
    let period = validate_period(raw, p);
    let interval_ok =
        (MIN_RECONCILE_SECS..=MAX_RECONCILE_SECS).contains(&raw.reconcile_interval_secs);
    if !interval_ok {
        p.add(
            "retention.reconcile_interval_secs",
            format!(
                "{} is outside {MIN_RECONCILE_SECS}..={MAX_RECONCILE_SECS} seconds (a minute \
                 to a week)",
                raw.reconcile_interval_secs
            ),
        );
    }
    let lifecycle = validate_lifecycle(&raw.lifecycle, period, p);
    Some(Retention {
        lock: Lock {
            mode: raw.mode,
            period: period?,
        },
        lifecycle: lifecycle?,
        reconcile: raw.reconcile,
        reconcile_interval: interval_ok
            .then(|| Duration::from_secs(raw.reconcile_interval_secs))?,
    })
}

fn validate_period(raw: &RawRetention, p: &mut Problems) -> Option<RetentionPeriod> {
    match (raw.days, raw.years) {
        (Some(_), Some(_)) => {
            p.add("retention", "set either days or years, not both");
            None
        }
        (None, None) => {
            p.add(
                "retention",
                "set how long archived logs are locked: days = N or years = N",
            );
            None
        }
        (Some(0), None) | (None, Some(0)) => {
            p.add(
                if raw.days.is_some() {
                    "retention.days"
                } else {
                    "retention.years"
                },
                "must be at least 1",
            );
            None
        }
        (Some(d), None) if d > MAX_RETENTION_DAYS => {
            p.add(
                "retention.days",
                format!(
                    "{d} is over S3 Object Lock's limit of {MAX_RETENTION_DAYS} days (100 years)"
                ),
            );
            None
        }
        (None, Some(y)) if y > MAX_RETENTION_YEARS => {
            p.add(
                "retention.years",
                format!("{y} is over S3 Object Lock's limit of {MAX_RETENTION_YEARS} years"),
            );
            None
        }
        (Some(d), None) => Some(RetentionPeriod::Days(d)),
        (None, Some(y)) => Some(RetentionPeriod::Years(y)),
    }
}

fn validate_lifecycle(
    raw: &RawLifecycle,
    period: Option<RetentionPeriod>,
    p: &mut Problems,
) -> Option<Lifecycle> {
    let problems_before = p.0.len();
    let field = |f: &str| format!("retention.lifecycle.{f}");

    let mut previous: Option<Transition> = None;
    for (i, t) in raw.transitions.iter().enumerate() {
        let at = field(&format!("transitions[{i}]"));
        let class = t.storage_class;
        if t.days < class.earliest_day() {
            p.add(
                format!("{at}.days"),
                format!(
                    "{} days is too soon: S3 moves objects to {class} no sooner than {} days \
                     after they are written",
                    t.days,
                    class.earliest_day()
                ),
            );
        }
        if let Some(prev) = previous {
            if class <= prev.storage_class {
                p.add(
                    format!("{at}.storage_class"),
                    format!(
                        "{class} cannot follow {}: S3 only moves objects down the order {}; \
                         list transitions in that order",
                        prev.storage_class,
                        StorageClass::ALL.map(StorageClass::as_str).join(" -> ")
                    ),
                );
            } else if t.days < prev.days + prev.storage_class.minimum_days().max(1) {
                p.add(
                    format!("{at}.days"),
                    format!(
                        "{} days is less than {} days after the move to {} (day {}): {}",
                        t.days,
                        prev.storage_class.minimum_days().max(1),
                        prev.storage_class,
                        prev.days,
                        minimum_reason(prev.storage_class)
                    ),
                );
            }
        }
        previous = Some(Transition {
            days: t.days,
            storage_class: class,
        });
    }

    let expiration_days = match (raw.expiration_days, raw.expiration_grace_days) {
        (Some(_), Some(_)) => {
            p.add(
                field("expiration_days"),
                "set either expiration_days or expiration_grace_days (days after the lock \
                 period), not both",
            );
            None
        }
        (Some(days), None) => {
            if let Some(period) = period {
                if days < period.max_days() {
                    p.add(
                        field("expiration_days"),
                        format!(
                            "{days} days is shorter than the {period} lock ({} days): the \
                             policy would promise deletions the lock forbids; use at least {} \
                             or expiration_grace_days",
                            period.max_days(),
                            period.max_days()
                        ),
                    );
                }
            }
            Some(days)
        }
        (None, Some(grace)) => period.map(|period| period.max_days() + grace),
        (None, None) => None,
    };
    if let (Some(expire), Some(last)) = (expiration_days, previous) {
        let earliest = last.days + last.storage_class.minimum_days().max(1);
        if expire < earliest {
            p.add(
                field("expiration_days"),
                format!(
                    "versions expire on day {expire}, before {earliest}: the move to {} on \
                     day {} {}",
                    last.storage_class,
                    last.days,
                    match last.storage_class.minimum_days() {
                        0 => "would be pointless".to_owned(),
                        n => format!(
                            "would be charged for {n} days; expire later or drop the transition"
                        ),
                    }
                ),
            );
        }
    }
    if raw.noncurrent_expiration_days == Some(0) {
        p.add(
            field("noncurrent_expiration_days"),
            "must be at least 1 (or left out to keep noncurrent versions)",
        );
    }
    (p.0.len() == problems_before).then(|| Lifecycle {
        transitions: raw
            .transitions
            .iter()
            .map(|t| Transition {
                days: t.days,
                storage_class: t.storage_class,
            })
            .collect(),
        expiration_days,
        noncurrent_expiration_days: raw.noncurrent_expiration_days,
        expired_delete_markers: raw.expired_delete_markers,
        abort_incomplete_multipart_days: (raw.abort_incomplete_multipart_days > 0)
            .then_some(raw.abort_incomplete_multipart_days),
    })
}

fn minimum_reason(class: StorageClass) -> &'static str {
    match class {
        StorageClass::StandardIa | StorageClass::OnezoneIa => {
            "S3 requires objects to stay at least 30 days in an IA class before the next move"
        }
        _ => "objects moved out sooner are charged for the class's whole minimum storage duration",
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::Config;

    const BASE: &str = r#"
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
    "#;

    fn transitions(list: &[(u32, &str)]) -> String {
        list.iter()
            .map(|(days, class)| {
                format!(
                    "[[retention.lifecycle.transitions]]\ndays = {days}\nstorage_class = \"{class}\"\n"
                )
            })
            .collect()
    }

    /// The problems of `[retention.lifecycle]` holding `lifecycle`, as `field: message`.
    fn problems(lifecycle: &str) -> Vec<String> {
        let text = format!("{BASE}\n[retention.lifecycle]\n{lifecycle}");
        match Config::from_toml(&text, Path::new("t.toml")) {
            Ok(_) => Vec::new(),
            Err(e) => e.problems().iter().map(|p| p.to_string()).collect(),
        }
    }

    fn fields(lifecycle: &str) -> Vec<String> {
        problems(lifecycle)
            .iter()
            .map(|p| p.split(':').next().unwrap().to_owned())
            .collect()
    }

    #[test]
    fn a_seven_year_regime_is_accepted() {
        let text =
            format!(
            "{BASE}\nreconcile = \"report\"\n[retention.lifecycle]\nexpiration_grace_days = 30\n\
             noncurrent_expiration_days = 30\n{}",
            transitions(&[(30, "STANDARD_IA"), (90, "GLACIER_IR"), (365, "DEEP_ARCHIVE")])
        );
        let c = Config::from_toml(&text, Path::new("t.toml")).unwrap();
        let r = &c.retention;
        assert_eq!(r.lock.period.max_days(), 2557);
        assert_eq!(r.lifecycle.expiration_days, Some(2587));
        assert_eq!(r.lifecycle.transitions.len(), 3);
        assert_eq!(r.lifecycle.abort_incomplete_multipart_days, Some(7));
        assert!(r.lifecycle.expired_delete_markers);
        assert_eq!(r.reconcile, Reconcile::Report);
        assert_eq!(r.reconcile_interval, Duration::from_secs(3600));

        // The effective configuration reads back as itself (the grace became days).
        let again = toml::to_string(&c.to_raw()).unwrap();
        assert_eq!(Config::from_toml(&again, Path::new("t.toml")).unwrap(), c);
    }

    #[test]
    fn without_a_lifecycle_section_nothing_expires() {
        let c = Config::from_toml(BASE, Path::new("t.toml")).unwrap();
        let l = &c.retention.lifecycle;
        assert_eq!(l.expiration_days, None);
        assert!(l.transitions.is_empty());
        assert_eq!(c.retention.reconcile, Reconcile::Enforce);
    }

    #[test]
    fn each_broken_rule_names_its_field() {
        let at = "retention.lifecycle";
        let cases: Vec<(String, String, &str)> = vec![
            (
                "expiration_days = 2000".into(),
                format!("{at}.expiration_days"),
                "shorter than the 7 years lock (2557 days)",
            ),
            (
                "expiration_days = 3000\nexpiration_grace_days = 1".into(),
                format!("{at}.expiration_days"),
                "not both",
            ),
            (
                transitions(&[(10, "STANDARD_IA")]),
                format!("{at}.transitions[0].days"),
                "no sooner than 30 days",
            ),
            (
                transitions(&[(5, "ONEZONE_IA")]),
                format!("{at}.transitions[0].days"),
                "no sooner than 30 days",
            ),
            (
                transitions(&[(30, "GLACIER"), (60, "STANDARD_IA")]),
                format!("{at}.transitions[1].storage_class"),
                "STANDARD_IA cannot follow GLACIER",
            ),
            (
                transitions(&[(30, "GLACIER"), (60, "GLACIER")]),
                format!("{at}.transitions[1].storage_class"),
                "cannot follow",
            ),
            (
                transitions(&[(30, "STANDARD_IA"), (45, "GLACIER_IR")]),
                format!("{at}.transitions[1].days"),
                "at least 30 days in an IA class",
            ),
            (
                transitions(&[(0, "GLACIER"), (60, "DEEP_ARCHIVE")]),
                format!("{at}.transitions[1].days"),
                "less than 90 days after the move to GLACIER",
            ),
            (
                transitions(&[(0, "INTELLIGENT_TIERING"), (0, "GLACIER")]),
                format!("{at}.transitions[1].days"),
                "less than 1 days after",
            ),
            (
                format!(
                    "expiration_days = 2600\n{}",
                    transitions(&[(2500, "DEEP_ARCHIVE")])
                ),
                format!("{at}.expiration_days"),
                "charged for 180 days",
            ),
            (
                "noncurrent_expiration_days = 0".into(),
                format!("{at}.noncurrent_expiration_days"),
                "at least 1",
            ),
        ];
        for (lifecycle, field, says) in &cases {
            let found = problems(lifecycle);
            assert_eq!(
                fields(lifecycle),
                vec![field.clone()],
                "{lifecycle}: {found:?}"
            );
            assert!(found[0].contains(says), "{lifecycle}: {found:?}");
        }
    }

    #[test]
    fn an_unknown_storage_class_or_setting_is_refused() {
        let text = format!(
            "{BASE}\n[retention.lifecycle]\n{}",
            transitions(&[(30, "GLACIER_DEEP")])
        );
        let err = Config::from_toml(&text, Path::new("t.toml")).unwrap_err();
        let chain = format!("{:#}", anyhow::Error::from(err));
        assert!(chain.contains("unknown variant `GLACIER_DEEP`"), "{chain}");
        assert!(chain.contains("DEEP_ARCHIVE"), "{chain}");

        let text = format!("{BASE}\nreconcile = \"fix\"");
        assert!(Config::from_toml(&text, Path::new("t.toml")).is_err());
        let text = format!("{BASE}\nreconcile_interval_secs = 5");
        let err = Config::from_toml(&text, Path::new("t.toml")).unwrap_err();
        assert_eq!(err.problems()[0].field, "retention.reconcile_interval_secs");
    }

    #[test]
    fn periods_in_days() {
        assert_eq!(RetentionPeriod::Years(1).max_days(), 366);
        assert_eq!(RetentionPeriod::Years(4).max_days(), 1461);
        assert_eq!(RetentionPeriod::Years(5).max_days(), 1827);
        assert_eq!(RetentionPeriod::Years(7).min_days(), 2555);
        assert_eq!(RetentionPeriod::Days(10).max_days(), 10);
    }
}
