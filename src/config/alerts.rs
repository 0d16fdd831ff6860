//! `[alerts]`: which rules the worker evaluates on every record it archives, and where their
//! alerts go. Without the section, alerts are off.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::error::Problems;
use super::ids::{AccountId, Region};
use crate::alerts::cis::{self, Severity};
use crate::alerts::pattern::Pattern;

/// The longest suppression window: a day.
const MAX_SUPPRESS_SECS: u64 = 86_400;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawAlerts {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sns_topic_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_bus_arn: Option<String>,
    /// Built-in rule sets by name; only `cis` exists.
    #[serde(default = "default_builtin")]
    pub builtin: Vec<String>,
    /// Per rule name: at most one alert per rule and account in this many seconds.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub suppress_secs: BTreeMap<String, u64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<RawRule>,
}

fn default_builtin() -> Vec<String> {
    vec!["cis".to_owned()]
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawRule {
    pub name: String,
    pub pattern: String,
    #[serde(default = "default_severity")]
    pub severity: Severity,
    #[serde(default)]
    pub description: String,
}

fn default_severity() -> Severity {
    Severity::Medium
}

/// Where alerts go and what raises them.
#[derive(Debug, Clone, PartialEq)]
pub struct Alerts {
    pub sns_topic: Option<Destination>,
    pub event_bus: Option<Destination>,
    /// Built-in sets as configured (kept to write the file back).
    pub builtin: Vec<String>,
    /// Every rule evaluated: the built-in sets' first, then the custom ones, in file order.
    pub rules: Vec<Rule>,
}

/// An SNS topic or an EventBridge bus, by ARN.
#[derive(Debug, Clone, PartialEq)]
pub struct Destination {
    pub arn: String,
    pub region: Region,
    pub account: AccountId,
}

/// One rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub name: String,
    /// The benchmark control it implements (`CIS 4.3 / CloudWatch.1`), for built-in rules.
    pub control: Option<String>,
    pub severity: Severity,
    pub description: String,
    pub pattern: Pattern,
    /// At most one alert per account in this window; `None`: every match is an alert.
    pub suppress: Option<Duration>,
    pub builtin: bool,
}

impl Rule {
    /// The built-in `cis` set, as rules without suppression.
    pub fn cis() -> Vec<Rule> {
        cis::rules()
            .into_iter()
            .map(|(b, pattern)| Rule {
                name: b.name.to_owned(),
                control: Some(b.control.to_owned()),
                severity: b.severity,
                description: b.description.to_owned(),
                pattern,
                suppress: None,
                builtin: true,
            })
            .collect()
    }
}

pub(super) fn validate(raw: Option<&RawAlerts>, p: &mut Problems) -> Option<Alerts> {
    let raw = raw?;
    let before = p.0.len();
    let sns_topic = raw
        .sns_topic_arn
        .as_deref()
        .and_then(|arn| destination(arn, "sns", "alerts.sns_topic_arn", p));
    let event_bus = raw
        .event_bus_arn
        .as_deref()
        .and_then(|arn| destination(arn, "events", "alerts.event_bus_arn", p));
    if raw.sns_topic_arn.is_none() && raw.event_bus_arn.is_none() {
        p.add(
            "alerts",
            "no destination: set sns_topic_arn (an SNS topic the worker may publish to) or \
             event_bus_arn (an EventBridge bus), or remove [alerts] to turn alerts off",
        );
    }
    let mut rules = Vec::new();
    let mut seen = BTreeSet::new();
    for (i, set) in raw.builtin.iter().enumerate() {
        if set != "cis" {
            p.add(
                format!("alerts.builtin[{i}]"),
                format!("{set:?} is not a built-in rule set; the one there is: \"cis\""),
            );
            continue;
        }
        if !seen.insert(set.clone()) {
            continue;
        }
        rules.extend(Rule::cis());
    }
    let builtin_names: BTreeSet<&str> = cis::rules().iter().map(|(b, _)| b.name).collect();
    let mut names = BTreeSet::new();
    for (i, r) in raw.rules.iter().enumerate() {
        let field = format!("alerts.rules[{i}]");
        if r.name.is_empty()
            || r.name.len() > 64
            || !r
                .name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        {
            p.add(
                format!("{field}.name"),
                format!(
                    "{:?}: a rule name is 1 to 64 characters of a-z, 0-9, '-' and '.' (it is \
                     a metric label and part of every alert's deduplication key)",
                    r.name
                ),
            );
            continue;
        }
        if builtin_names.contains(r.name.as_str()) || !names.insert(r.name.clone()) {
            p.add(
                format!("{field}.name"),
                format!(
                    "{} is already a rule's name (built-in names: `trailvault alerts list`); \
                     give each rule its own",
                    r.name
                ),
            );
            continue;
        }
        match Pattern::parse(&r.pattern) {
            Ok(pattern) => rules.push(Rule {
                name: r.name.clone(),
                control: None,
                severity: r.severity,
                description: r.description.clone(),
                pattern,
                suppress: None,
                builtin: false,
            }),
            Err(e) => p.add(
                format!("{field}.pattern"),
                format!(
                    "not a CloudWatch Logs JSON filter pattern: {e}\n{}\n      try it with \
                     `trailvault alerts test --pattern '...' FILE`",
                    indent(&e.pointed(&r.pattern))
                ),
            ),
        }
    }
    for (name, secs) in &raw.suppress_secs {
        let field = format!("alerts.suppress_secs.{name}");
        if *secs > MAX_SUPPRESS_SECS {
            p.add(
                field,
                format!("{secs} is more than {MAX_SUPPRESS_SECS} seconds (a day); 0 turns suppression off"),
            );
            continue;
        }
        match rules.iter_mut().find(|r| &r.name == name) {
            Some(rule) => rule.suppress = (*secs > 0).then(|| Duration::from_secs(*secs)),
            None => p.add(
                field,
                format!(
                    "no rule is named {name}; the rules are: {}",
                    rules
                        .iter()
                        .map(|r| r.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ),
        }
    }
    if rules.is_empty() && p.0.len() == before {
        p.add(
            "alerts",
            "no rules: keep builtin = [\"cis\"] or add [[alerts.rules]], or remove [alerts]",
        );
    }
    (p.0.len() == before).then(|| Alerts {
        sns_topic,
        event_bus,
        builtin: raw.builtin.clone(),
        rules,
    })
}

fn indent(s: &str) -> String {
    s.lines()
        .map(|l| format!("      {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// `arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE`.
fn destination(arn: &str, service: &str, field: &str, p: &mut Problems) -> Option<Destination> {
    let what = match service {
        "sns" => "arn:aws:sns:REGION:ACCOUNT:TOPIC",
        _ => "arn:aws:events:REGION:ACCOUNT:event-bus/NAME",
    };
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let well_formed = parts.len() == 6
        && parts[0] == "arn"
        && !parts[1].is_empty()
        && parts[2] == service
        && !parts[5].is_empty()
        && (service != "events" || parts[5].starts_with("event-bus/"));
    if !well_formed {
        p.add(field, format!("{arn:?} is not an ARN of the form {what}"));
        return None;
    }
    let region = p.check(field, Region::parse(parts[3]))?;
    let account = p.check(field, AccountId::parse(parts[4]))?;
    Some(Destination {
        arn: arn.to_owned(),
        region,
        account,
    })
}

impl Alerts {
    pub(super) fn to_raw(this: Option<&Alerts>) -> Option<RawAlerts> {
        let a = this?;
        Some(RawAlerts {
            sns_topic_arn: a.sns_topic.as_ref().map(|d| d.arn.clone()),
            event_bus_arn: a.event_bus.as_ref().map(|d| d.arn.clone()),
            builtin: a.builtin.clone(),
            suppress_secs: a
                .rules
                .iter()
                .filter_map(|r| r.suppress.map(|s| (r.name.clone(), s.as_secs())))
                .collect(),
            rules: a
                .rules
                .iter()
                .filter(|r| !r.builtin)
                .map(|r| RawRule {
                    name: r.name.clone(),
                    pattern: r.pattern.as_str().to_owned(),
                    severity: r.severity,
                    description: r.description.clone(),
                })
                .collect(),
        })
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
        [[accounts]]
        id = "222222222222"
        reader_role_arn = "arn:aws:iam::222222222222:role/r"
        external_id = "ext"
        [[accounts.buckets]]
        name = "trail-a"
        region = "us-east-1"
        [retention]
        mode = "GOVERNANCE"
        days = 1
    "#;

    fn load(alerts: &str) -> Result<Config, Vec<String>> {
        match Config::from_toml(&format!("{BASE}\n{alerts}"), Path::new("t.toml")) {
            Ok(c) => Ok(c),
            Err(ConfigError::Invalid { problems, .. }) => Err(problems
                .iter()
                .map(|p| format!("{}: {}", p.field, p.message))
                .collect()),
            Err(e) => Err(vec![format!("{e:#}")]),
        }
    }

    #[test]
    fn without_the_section_alerts_are_off_and_with_it_the_cis_set_and_custom_rules_run() {
        assert_eq!(load("").unwrap().alerts, None);
        let c = load(
            r#"
            [alerts]
            sns_topic_arn = "arn:aws:sns:us-east-1:111111111111:alerts"
            event_bus_arn = "arn:aws:events:eu-west-1:111111111111:event-bus/security"
            [alerts.suppress_secs]
            unauthorized-api-calls = 900
            mine = 60
            [[alerts.rules]]
            name = "mine"
            pattern = '{ $.eventName = "DeleteBucket" }'
            severity = "critical"
            description = "A bucket was deleted"
        "#,
        )
        .unwrap();
        let a = c.alerts.clone().unwrap();
        assert_eq!(a.sns_topic.as_ref().unwrap().region.as_str(), "us-east-1");
        assert_eq!(a.event_bus.as_ref().unwrap().region.as_str(), "eu-west-1");
        assert_eq!(a.rules.len(), 16);
        assert!(a.rules[..15]
            .iter()
            .all(|r| r.builtin && r.control.is_some()));
        let mine = &a.rules[15];
        assert_eq!((mine.name.as_str(), mine.builtin), ("mine", false));
        assert_eq!(mine.suppress, Some(std::time::Duration::from_secs(60)));
        let noisy = a.rules.iter().find(|r| r.name == "unauthorized-api-calls");
        assert_eq!(
            noisy.unwrap().suppress,
            Some(std::time::Duration::from_secs(900))
        );
        // Written back and read again, the same.
        let again = Config::from_raw(c.to_raw()).unwrap();
        assert_eq!(again.alerts, c.alerts);
    }

    #[test]
    fn every_mistake_is_named_by_its_field() {
        let problems = load(
            r#"
            [alerts]
            sns_topic_arn = "arn:aws:sqs:us-east-1:111111111111:alerts"
            event_bus_arn = "arn:aws:events:us-east-1:1111:event-bus/x"
            builtin = ["cis", "nist"]
            [alerts.suppress_secs]
            nothing-by-this-name = 60
            root-account-usage = 90000
            [[alerts.rules]]
            name = "root-account-usage"
            pattern = '{ $.a = 1 }'
            [[alerts.rules]]
            name = "Bad Name"
            pattern = '{ $.a = 1 }'
            [[alerts.rules]]
            name = "broken"
            pattern = '{ $.eventName = }'
        "#,
        )
        .unwrap_err();
        let fields: Vec<&str> = problems
            .iter()
            .map(|p| p.split(':').next().unwrap())
            .collect();
        assert_eq!(
            fields,
            [
                "alerts.sns_topic_arn",
                "alerts.event_bus_arn",
                "alerts.builtin[1]",
                "alerts.rules[0].name",
                "alerts.rules[1].name",
                "alerts.rules[2].pattern",
                "alerts.suppress_secs.nothing-by-this-name",
                "alerts.suppress_secs.root-account-usage",
            ],
            "{problems:#?}"
        );
        let pattern = problems.iter().find(|p| p.contains("rules[2]")).unwrap();
        assert!(pattern.contains("column 17"), "{pattern}");
        assert!(pattern.contains("trailvault alerts test"), "{pattern}");
        let none = load("[alerts]\nbuiltin = []").unwrap_err();
        assert_eq!(none.len(), 1, "{none:?}");
        assert!(none[0].starts_with("alerts: no destination"), "{none:?}");
        let none = load(
            "[alerts]\nsns_topic_arn = \"arn:aws:sns:us-east-1:111111111111:t\"\nbuiltin = []",
        )
        .unwrap_err();
        assert!(none[0].starts_with("alerts: no rules"), "{none:?}");
    }
}
