//! `[sweep]` and `[discovery]`: what keeps the archive complete when notifications are lost
//! and when the organization grows.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::error::Problems;
use super::ids::{AccountId, Invalid, RoleArn};

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawSweep {
    #[serde(default = "default_sweep_interval_secs")]
    pub interval_secs: u64,
    #[serde(default = "default_sweep_window_secs")]
    pub window_secs: u64,
    #[serde(default = "default_sweep_min_age_secs")]
    pub min_age_secs: u64,
}

impl Default for RawSweep {
    fn default() -> Self {
        RawSweep {
            interval_secs: default_sweep_interval_secs(),
            window_secs: default_sweep_window_secs(),
            min_age_secs: default_sweep_min_age_secs(),
        }
    }
}

/// Every 15 minutes: a lost notification is made good within the quarter hour.
fn default_sweep_interval_secs() -> u64 {
    900
}

/// Two hours back: CloudTrail delivers within about 15 minutes of the activity (the key's
/// time), so this covers several sweeps' worth of late files.
fn default_sweep_window_secs() -> u64 {
    7200
}

/// A file written in the last five minutes may still have its notification on the way; it is
/// left to the notification, or to the next sweep.
fn default_sweep_min_age_secs() -> u64 {
    300
}

/// The worker's reconciliation sweep: every `interval`, the member buckets' files of the last
/// `window` (by the time in their names) are compared with the archive, and what is missing
/// is archived and reported as a missed notification.
#[derive(Debug, Clone, PartialEq)]
pub struct Sweep {
    /// `None`: the sweep is off.
    pub interval: Option<Duration>,
    pub window: Duration,
    /// Files younger than this (by LastModified) are not swept yet.
    pub min_age: Duration,
}

pub(super) fn validate_sweep(raw: &RawSweep, p: &mut Problems) -> Option<Sweep> {
    let mut ok = true;
    if raw.interval_secs != 0 && !(10..=86_400).contains(&raw.interval_secs) {
        p.add(
            "sweep.interval_secs",
            format!(
                "{} is outside 10..=86400 seconds; 0 turns the sweep off",
                raw.interval_secs
            ),
        );
        ok = false;
    }
    if !(60..=31 * 86_400).contains(&raw.window_secs) {
        p.add(
            "sweep.window_secs",
            format!(
                "{} is outside 60..=2678400 seconds (a minute to 31 days); for older files \
                 run `trailvault backfill`",
                raw.window_secs
            ),
        );
        ok = false;
    }
    if raw.interval_secs != 0
        && raw.window_secs < raw.interval_secs.saturating_add(raw.min_age_secs)
    {
        p.add(
            "sweep.window_secs",
            format!(
                "{} seconds is shorter than interval_secs + min_age_secs ({} + {}): a file \
                 could fall between two sweeps; make the window at least their sum",
                raw.window_secs, raw.interval_secs, raw.min_age_secs
            ),
        );
        ok = false;
    }
    ok.then(|| Sweep {
        interval: (raw.interval_secs != 0).then(|| Duration::from_secs(raw.interval_secs)),
        window: Duration::from_secs(raw.window_secs),
        min_age: Duration::from_secs(raw.min_age_secs),
    })
}

impl Sweep {
    pub(super) fn to_raw(&self) -> RawSweep {
        RawSweep {
            interval_secs: self.interval.map_or(0, |i| i.as_secs()),
            window_secs: self.window.as_secs(),
            min_age_secs: self.min_age.as_secs(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawDiscovery {
    #[serde(default)]
    pub enabled: bool,
    /// Assumed for `organizations:ListAccounts` (in the management account, or a delegated
    /// administrator); unset: the worker's own identity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organizations_role_arn: Option<String>,
    /// With `{account}` for the account id.
    #[serde(default = "default_reader_role_arn")]
    pub reader_role_arn: String,
    /// May contain `{account}`.
    #[serde(default)]
    pub external_id: String,
    #[serde(default = "default_discovery_interval_secs")]
    pub interval_secs: u64,
    /// Accounts never archived through discovery (the security account itself, say).
    #[serde(default)]
    pub exclude: Vec<String>,
}

impl Default for RawDiscovery {
    fn default() -> Self {
        RawDiscovery {
            enabled: false,
            organizations_role_arn: None,
            reader_role_arn: default_reader_role_arn(),
            external_id: String::new(),
            interval_secs: default_discovery_interval_secs(),
            exclude: Vec::new(),
        }
    }
}

/// The characters a discovery ExternalId needs besides `{account}`.
const MIN_SECRET_CHARS: usize = 16;

fn default_reader_role_arn() -> String {
    "arn:aws:iam::{account}:role/trailvault-reader".to_owned()
}

/// Five minutes: a new account's first logs are archived minutes after its trail starts.
fn default_discovery_interval_secs() -> u64 {
    300
}

/// Organization discovery: the organization's accounts are listed every `interval`, and each
/// active one not configured in `[[accounts]]` is served through the reader role the pattern
/// names, its buckets found from its trails.
#[derive(Debug, Clone, PartialEq)]
pub struct Discovery {
    pub organizations_role_arn: Option<RoleArn>,
    pub reader_role_arn: String,
    pub external_id: String,
    pub interval: Duration,
    pub exclude: Vec<AccountId>,
}

impl Discovery {
    /// The reader role ARN of `account`.
    pub fn reader_role_arn(&self, account: &AccountId) -> Result<RoleArn, Invalid> {
        RoleArn::parse(&self.reader_role_arn.replace("{account}", account.as_str()))
    }

    pub fn external_id(&self, account: &AccountId) -> String {
        self.external_id.replace("{account}", account.as_str())
    }
}

pub(super) fn validate_discovery(raw: &RawDiscovery, p: &mut Problems) -> Option<Discovery> {
    if !raw.enabled {
        return None;
    }
    let organizations_role_arn = raw
        .organizations_role_arn
        .as_deref()
        .and_then(|arn| p.check("discovery.organizations_role_arn", RoleArn::parse(arn)));
    if !raw.reader_role_arn.contains("{account}") {
        p.add(
            "discovery.reader_role_arn",
            format!(
                "{:?} has no {{account}}: every member account has its own reader role \
                 (e.g. arn:aws:iam::{{account}}:role/trailvault-reader)",
                raw.reader_role_arn
            ),
        );
    } else if let Err(e) = RoleArn::parse(&raw.reader_role_arn.replace("{account}", "123456789012"))
    {
        p.add("discovery.reader_role_arn", e.to_string());
    }
    if raw.external_id.is_empty() {
        p.add(
            "discovery.external_id",
            "set the ExternalId the member reader roles require (may contain {account})",
        );
    } else if raw.external_id.replace("{account}", "").chars().count() < MIN_SECRET_CHARS {
        // The ExternalId is what keeps a party who learns a reader role's ARN from having
        // trailvault assume it (the confused deputy); one derived from the account id is
        // known to anyone who knows the account.
        p.add(
            "discovery.external_id",
            format!(
                "{:?} can be guessed from the account id: besides {{account}} it needs a random \
                 value of at least {MIN_SECRET_CHARS} characters (e.g. from `openssl rand -hex \
                 16`), the same in every reader role's trust policy",
                raw.external_id
            ),
        );
    }
    if !(10..=86_400).contains(&raw.interval_secs) {
        p.add(
            "discovery.interval_secs",
            format!("{} is outside 10..=86400 seconds", raw.interval_secs),
        );
    }
    let exclude: Vec<AccountId> = raw
        .exclude
        .iter()
        .enumerate()
        .filter_map(|(i, a)| p.check(format!("discovery.exclude[{i}]"), AccountId::parse(a)))
        .collect();
    Some(Discovery {
        organizations_role_arn,
        reader_role_arn: raw.reader_role_arn.clone(),
        external_id: raw.external_id.clone(),
        interval: Duration::from_secs(raw.interval_secs),
        exclude,
    })
}

impl Discovery {
    pub(super) fn to_raw(this: Option<&Discovery>) -> RawDiscovery {
        match this {
            None => RawDiscovery::default(),
            Some(d) => RawDiscovery {
                enabled: true,
                organizations_role_arn: d.organizations_role_arn.as_ref().map(|r| r.to_string()),
                reader_role_arn: d.reader_role_arn.clone(),
                external_id: d.external_id.clone(),
                interval_secs: d.interval.as_secs(),
                exclude: d.exclude.iter().map(|a| a.to_string()).collect(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::{Config, ConfigError};

    const BASE: &str = r#"
        [archive]
        bucket = "archive"
        region = "us-east-1"
        kms_key = "alias/archive"
        [[queues]]
        url = "https://sqs.us-east-1.amazonaws.com/111111111111/q"
        [retention]
        mode = "GOVERNANCE"
        days = 1
    "#;

    const ACCOUNT: &str = r#"
        [[accounts]]
        id = "222222222222"
        reader_role_arn = "arn:aws:iam::222222222222:role/r"
        external_id = "ext"
        [[accounts.buckets]]
        name = "trail-a"
        region = "us-east-1"
    "#;

    fn problems(toml: &str) -> Vec<String> {
        match Config::from_toml(toml, Path::new("t.toml")) {
            Ok(_) => Vec::new(),
            Err(ConfigError::Invalid { problems, .. }) => problems
                .iter()
                .map(|p| format!("{}: {}", p.field, p.message))
                .collect(),
            Err(e) => vec![e.to_string()],
        }
    }

    #[test]
    fn the_sweep_is_on_by_default_and_its_window_covers_its_interval() {
        let c = Config::from_toml(&format!("{BASE}{ACCOUNT}"), Path::new("t.toml")).unwrap();
        assert_eq!(c.sweep.interval.unwrap().as_secs(), 900);
        assert_eq!(c.sweep.window.as_secs(), 7200);
        let off = format!("{BASE}{ACCOUNT}[sweep]\ninterval_secs = 0\n");
        let c = Config::from_toml(&off, Path::new("t.toml")).unwrap();
        assert_eq!(c.sweep.interval, None);

        let gap = format!("{BASE}{ACCOUNT}[sweep]\ninterval_secs = 3600\nwindow_secs = 3600\n");
        let p = problems(&gap);
        assert!(
            p.iter()
                .any(|p| p.starts_with("sweep.window_secs") && p.contains("between two sweeps")),
            "{p:?}"
        );
    }

    #[test]
    fn discovery_needs_a_role_pattern_and_an_external_id_and_may_replace_accounts() {
        // Without accounts and without discovery: nothing to serve.
        assert!(problems(BASE).iter().any(|p| p.starts_with("accounts")));
        let on = format!(
            "{BASE}[discovery]\nenabled = true\nexternal_id = \"tv-{{account}}-5e0c7a9b1d2f4a68\"\n\
             exclude = [\"111111111111\"]\n"
        );
        let c = Config::from_toml(&on, Path::new("t.toml")).unwrap();
        let d = c.discovery.as_ref().unwrap();
        let id = crate::config::AccountId::parse("333333333333").unwrap();
        assert_eq!(
            d.reader_role_arn(&id).unwrap().as_str(),
            "arn:aws:iam::333333333333:role/trailvault-reader"
        );
        assert_eq!(d.external_id(&id), "tv-333333333333-5e0c7a9b1d2f4a68");
        // Derived from the account id alone: guessable, refused.
        for guessable in ["{account}", "tv-{account}", "trailvault-{account}"] {
            let p = problems(&format!(
                "{BASE}[discovery]\nenabled = true\nexternal_id = \"{guessable}\"\n"
            ));
            assert!(
                p.iter().any(|p| p.starts_with("discovery.external_id: ")
                    && p.contains("can be guessed from the account id")
                    && p.contains("a random value of at least 16 characters")),
                "{guessable}: {p:?}"
            );
        }
        // What config check prints is itself valid and the same.
        let again = toml::to_string(&c.to_raw()).unwrap();
        assert_eq!(Config::from_toml(&again, Path::new("t.toml")).unwrap(), c);

        let bad = format!(
            "{BASE}[discovery]\nenabled = true\nreader_role_arn = \"arn:aws:iam::1:role/x\"\n\
             exclude = [\"12\"]\n"
        );
        let p = problems(&bad);
        for field in [
            "discovery.reader_role_arn",
            "discovery.external_id",
            "discovery.exclude[0]",
        ] {
            assert!(p.iter().any(|p| p.starts_with(field)), "{field}: {p:?}");
        }
    }
}
