//! Rules evaluated on the records of one log file as they stream past: what matched, kept
//! small enough to publish, and bounded whatever the file holds.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::config::Rule;

/// SNS takes at most 256 KiB per message (and EventBridge per entry); the record travels
/// inside an envelope of a few KB, so it is trimmed to this.
pub const RECORD_BUDGET: usize = 200 * 1024;
/// What one file's matches may hold in memory; past it, matches are counted, not kept, and
/// the file's alerts say how many more there were.
pub const FILE_BUDGET: usize = 8 * 1024 * 1024;
/// Longest text of a field copied into an alert's summary (who, from where, what).
const FIELD_BUDGET: usize = 1024;

/// The rules, shared by every copy of a run.
#[derive(Debug, Clone)]
pub struct Rules {
    rules: Arc<Vec<Rule>>,
    /// The paths any rule looks at (and `eventTime`, which the log check reads); `None`:
    /// some rule may look at any field.
    paths: Option<Arc<Paths>>,
    /// The paths an alert's summary takes from a matching record ([`about`]).
    about: Arc<Paths>,
}

/// One record that matched one rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Match {
    /// Index into the rules.
    pub rule: usize,
    /// The record's place in the file's `Records` (0-based).
    pub index: u64,
    pub event_id: Option<String>,
    /// The summary of the record an alert leads with (who, what, from where, when).
    pub about: Map<String, Value>,
    /// The record as JSON, trimmed to [`RECORD_BUDGET`].
    pub record: String,
    /// The record's fields left out to fit, largest first.
    pub trimmed: Vec<String>,
}

/// Everything one file matched.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileMatches {
    pub matches: Vec<Match>,
    /// Per rule, matches past [`FILE_BUDGET`]: counted, not kept.
    pub overflow: BTreeMap<usize, u64>,
    kept: usize,
}

impl FileMatches {
    pub fn is_empty(&self) -> bool {
        self.matches.is_empty() && self.overflow.is_empty()
    }
}

impl Rules {
    pub fn new(rules: Vec<Rule>) -> Rules {
        let mut paths = Paths::default();
        paths.add(&["eventTime"]);
        let mut all = false;
        for r in &rules {
            for p in r.pattern.paths() {
                all |= p.is_empty();
                paths.add(&p);
            }
        }
        let mut about = Paths::default();
        for p in ABOUT {
            about.add(p);
        }
        Rules {
            rules: Arc::new(rules),
            paths: (!all).then(|| Arc::new(paths)),
            about: Arc::new(about),
        }
    }

    pub fn get(&self, i: usize) -> &Rule {
        &self.rules[i]
    }

    pub fn all(&self) -> &[Rule] {
        &self.rules
    }

    /// One record (its JSON text, as in the file) as the rules need it: a JSON object of the
    /// paths they look at (`userIdentity.type`, not all of `userIdentity`), parsed; every
    /// other field skipped without building it. Most records match nothing, and building
    /// every string and map of every record would cost more than the rules.
    pub fn view(&self, record: &str) -> Result<Value, serde_json::Error> {
        match &self.paths {
            None => serde_json::from_str(record),
            Some(paths) => {
                let mut de = serde_json::Deserializer::from_str(record);
                let view = serde::Deserializer::deserialize_map(&mut de, View { paths })?;
                de.end()?;
                Ok(view)
            }
        }
    }

    /// Evaluates every rule on one record: `view` from [`Rules::view`], `record` its text.
    pub fn record(&self, index: u64, view: &Value, record: &str, out: &mut FileMatches) {
        let mut full: Option<Value> = None;
        let mut kept: Option<(String, Vec<String>)> = None;
        for (i, rule) in self.rules.iter().enumerate() {
            if !rule.pattern.matches(view) {
                continue;
            }
            if out.kept >= FILE_BUDGET {
                *out.overflow.entry(i).or_default() += 1;
                continue;
            }
            // What the alert leads with, parsed once whatever the number of rules the record
            // matches (only those fields); the record kept as its own text when it fits, or
            // parsed whole and trimmed.
            let full = full.get_or_insert_with(|| {
                let mut de = serde_json::Deserializer::from_str(record);
                serde::Deserializer::deserialize_map(&mut de, View { paths: &self.about })
                    .unwrap_or_default()
            });
            let (json, trimmed) = kept
                .get_or_insert_with(|| {
                    if record.len() <= RECORD_BUDGET {
                        (record.to_owned(), Vec::new())
                    } else {
                        trim(&serde_json::from_str(record).unwrap_or_default())
                    }
                })
                .clone();
            out.kept += json.len();
            out.matches.push(Match {
                rule: i,
                index,
                event_id: text(full, "eventID"),
                about: about(full),
                record: json,
                trimmed,
            });
        }
    }
}

/// A field name, borrowed from the record's text where it has no escapes (serde's own `Cow`
/// always copies).
struct Key<'de>(Cow<'de, str>);

impl<'de> serde::Deserialize<'de> for Key<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a field name")
            }
            fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(s)))
            }
            fn visit_str<E>(self, s: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(s.to_owned())))
            }
        }
        d.deserialize_str(Visit)
    }
}

/// The field paths the rules look at, as a tree.
#[derive(Debug, Default)]
struct Paths {
    /// A path ends here: the value is kept whole.
    whole: bool,
    children: HashMap<String, Paths>,
}

impl Paths {
    fn add(&mut self, path: &[&str]) {
        match path.split_first() {
            None => self.whole = true,
            Some((first, rest)) => self
                .children
                .entry((*first).to_owned())
                .or_default()
                .add(rest),
        }
    }
}

/// A record (or an object in it) cut down to `paths`.
struct View<'f> {
    paths: &'f Paths,
}

impl<'de> serde::de::DeserializeSeed<'de> for View<'_> {
    type Value = Value;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        if self.paths.whole {
            Value::deserialize(d)
        } else {
            d.deserialize_any(self)
        }
    }
}

impl<'de> serde::de::Visitor<'de> for View<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a record (a JSON object)")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
            match self.paths.children.get(key.as_ref()) {
                Some(paths) => {
                    let value = map.next_value_seed(View { paths })?;
                    out.insert(key.into_owned(), value);
                }
                None => {
                    map.next_value::<serde::de::IgnoredAny>()?;
                }
            }
        }
        Ok(Value::Object(out))
    }

    // Not an object where a path goes on: no path reaches into it, so what it holds does not
    // matter to a rule; it is kept as it is all the same.
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(v) = seq.next_element::<Value>()? {
            items.push(v);
        }
        Ok(Value::Array(items))
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
}

fn text(record: &Value, field: &str) -> Option<String> {
    record.get(field).and_then(Value::as_str).map(short)
}

fn short(s: &str) -> String {
    if s.len() <= FIELD_BUDGET {
        return s.to_owned();
    }
    let mut end = FIELD_BUDGET;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// Every path [`about`] and the match read.
const ABOUT: &[&[&str]] = &[
    &["eventID"],
    &["eventTime"],
    &["eventName"],
    &["eventSource"],
    &["awsRegion"],
    &["recipientAccountId"],
    &["sourceIPAddress"],
    &["userAgent"],
    &["errorCode"],
    &["errorMessage"],
    &["userIdentity", "type"],
    &["userIdentity", "arn"],
    &["userIdentity", "accountId"],
    &["userIdentity", "principalId"],
    &["userIdentity", "accessKeyId"],
    &["userIdentity", "userName"],
    &["userIdentity", "invokedBy"],
    &["userIdentity", "sessionContext", "sessionIssuer", "arn"],
];

/// Who, what, from where and when, as the alert's first fields.
fn about(record: &Value) -> Map<String, Value> {
    let mut m = Map::new();
    let mut put = |name: &str, value: Option<String>| {
        if let Some(v) = value {
            m.insert(name.to_owned(), Value::String(v));
        }
    };
    put("event_time", text(record, "eventTime"));
    put("event_name", text(record, "eventName"));
    put("event_source", text(record, "eventSource"));
    put("aws_region", text(record, "awsRegion"));
    put("recipient_account", text(record, "recipientAccountId"));
    put("source_ip", text(record, "sourceIPAddress"));
    put("user_agent", text(record, "userAgent"));
    put("error_code", text(record, "errorCode"));
    put("error_message", text(record, "errorMessage"));
    let identity = record.get("userIdentity");
    let id = |f: &str| {
        identity
            .and_then(|i| i.get(f))
            .and_then(Value::as_str)
            .map(short)
    };
    let mut who = Map::new();
    for (name, field) in [
        ("type", "type"),
        ("arn", "arn"),
        ("account_id", "accountId"),
        ("principal_id", "principalId"),
        ("access_key_id", "accessKeyId"),
        ("user_name", "userName"),
        ("invoked_by", "invokedBy"),
    ] {
        if let Some(v) = id(field) {
            who.insert(name.to_owned(), Value::String(v));
        }
    }
    if let Some(issuer) = identity
        .and_then(|i| i.pointer("/sessionContext/sessionIssuer/arn"))
        .and_then(Value::as_str)
    {
        who.insert("session_issuer".to_owned(), Value::String(short(issuer)));
    }
    m.insert("who".to_owned(), Value::Object(who));
    m
}

/// The record as JSON, its largest top-level fields left out until it fits the budget.
fn trim(record: &Value) -> (String, Vec<String>) {
    let json = record.to_string();
    if json.len() <= RECORD_BUDGET {
        return (json, Vec::new());
    }
    let Value::Object(fields) = record else {
        return (
            "null".to_owned(),
            vec!["(the record is not an object)".to_owned()],
        );
    };
    let mut sizes: Vec<(usize, &String)> = fields
        .iter()
        .map(|(k, v)| (k.len() + v.to_string().len() + 4, k))
        .collect();
    sizes.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(b.1)));
    let mut total = json.len();
    let mut left_out = Vec::new();
    for (size, name) in sizes {
        if total <= RECORD_BUDGET {
            break;
        }
        total = total.saturating_sub(size);
        left_out.push(name.clone());
    }
    let kept: Map<String, Value> = fields
        .iter()
        .filter(|(k, _)| !left_out.contains(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let json = Value::Object(kept).to_string();
    (json, left_out)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::alerts::cis::Severity;
    use crate::alerts::pattern::Pattern;

    fn rules(patterns: &[&str]) -> Rules {
        Rules::new(
            patterns
                .iter()
                .enumerate()
                .map(|(i, p)| Rule {
                    name: format!("r{i}"),
                    control: None,
                    severity: Severity::High,
                    description: String::new(),
                    pattern: Pattern::parse(p).unwrap(),
                    suppress: None,
                    builtin: false,
                })
                .collect(),
        )
    }

    #[test]
    fn a_record_matching_two_rules_is_two_matches_of_one_serialization() {
        let r = rules(&[
            r#"{ $.eventName = "ConsoleLogin" }"#,
            r#"{ $.userIdentity.type = "Root" }"#,
            r#"{ $.eventName = "Other" }"#,
        ]);
        let record = json!({"eventID": "e1", "eventName": "ConsoleLogin", "eventTime": "2026-12-01T00:00:00Z",
            "sourceIPAddress": "203.0.113.9", "userIdentity": {"type": "Root", "arn": "arn:aws:iam::111111111111:root"}});
        let mut out = FileMatches::default();
        let text = record.to_string();
        r.record(7, &r.view(&text).unwrap(), &text, &mut out);
        assert_eq!(out.matches.len(), 2);
        assert_eq!(
            out.matches.iter().map(|m| m.rule).collect::<Vec<_>>(),
            [0, 1]
        );
        let m = &out.matches[0];
        assert_eq!((m.index, m.event_id.as_deref()), (7, Some("e1")));
        assert_eq!(serde_json::from_str::<Value>(&m.record).unwrap(), record);
        assert_eq!(m.about["source_ip"], "203.0.113.9");
        assert_eq!(m.about["who"]["type"], "Root");
        assert!(m.trimmed.is_empty());
    }

    #[test]
    fn a_huge_record_is_trimmed_by_its_largest_fields() {
        let big = "x".repeat(RECORD_BUDGET);
        let record = json!({"eventID": "e", "eventName": "PutBucketPolicy",
            "requestParameters": {"policy": big}, "responseElements": {"a": "y".repeat(1000)}});
        let (json, left_out) = trim(&record);
        assert_eq!(left_out, ["requestParameters"]);
        let back: Value = serde_json::from_str(&json).unwrap();
        assert_eq!(back["eventName"], "PutBucketPolicy");
        assert!(back.get("requestParameters").is_none());
        assert!(json.len() <= RECORD_BUDGET);
    }

    #[test]
    fn past_the_file_budget_matches_are_counted_not_kept() {
        let r = rules(&[r#"{ $.errorCode = "AccessDenied" }"#]);
        let record = json!({"errorCode": "AccessDenied", "pad": "p".repeat(100_000)});
        let mut out = FileMatches::default();
        let n = 200u64;
        let text = record.to_string();
        for i in 0..n {
            r.record(i, &r.view(&text).unwrap(), &text, &mut out);
        }
        let kept = out.matches.len() as u64;
        assert!(kept < n && kept > 0, "{kept}");
        assert_eq!(out.overflow.get(&0), Some(&(n - kept)));
        assert!(out.kept <= FILE_BUDGET + 110_000);
    }
}
