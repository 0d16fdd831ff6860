//! `trailvault alerts`: the alert rules, tried on local CloudTrail files.

use std::io::Read as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use serde::Deserialize;
use serde_json::Value;

use crate::alerts::cis::{self, Severity};
use crate::alerts::eval::Rules;
use crate::alerts::pattern::Pattern;
use crate::archive::layout;
use crate::aws::{listing, Aws};
use crate::cli::args::{parse_until, parse_when, ConfigOption};
use crate::cloudtrail::gzip;
use crate::cloudtrail::key::{self as ctkey, FileKind};
use crate::cloudtrail::logfile;
use crate::completeness::inventory::{self, Window};
use crate::config::{Config, Rule as ConfigRule};
use time::OffsetDateTime;

/// CloudTrail log files are a few MB compressed (tens decompressed); a file is read whole and
/// parsed, so more than this is refused rather than held.
const FILE_CAP: u64 = 256 * 1024 * 1024;

#[derive(Debug, clap::Subcommand)]
pub enum AlertsCommand {
    /// Show which records of local CloudTrail files (gzip or plain JSON) each rule matches:
    /// exit 0 when some record matched, 1 when none did, 2 on an error.
    Test(TestArgs),
    /// List the built-in rules (the `cis` set) with their controls and patterns.
    List(ListArgs),
    /// Run the rules over the archive after the fact (a new rule, applied to last year):
    /// print every matching record of the archived log files named for the window, with its
    /// archive key. Reads only (s3:ListBucket, s3:GetObject, kms:Decrypt). Exit 0 when some
    /// record matched, 1 when none did, 2 on an error.
    Scan(ScanArgs),
}

#[derive(Debug, clap::Args)]
pub struct ScanArgs {
    #[command(flatten)]
    pub config: ConfigOption,
    /// Files from this time on, by the time in their names (RFC 3339, or a date YYYY-MM-DD).
    #[arg(long, value_parser = parse_when)]
    pub from: OffsetDateTime,
    /// Files before this time (RFC 3339, or a date YYYY-MM-DD: up to the end of that day).
    /// Default: now.
    #[arg(long, value_parser = parse_until)]
    pub to: Option<OffsetDateTime>,
    /// Only this rule (the configuration's [alerts] rules, or the built-in ones without
    /// [alerts]); repeat for several.
    #[arg(long = "rule", value_name = "NAME", conflicts_with = "pattern")]
    pub rules: Vec<String>,
    /// A CloudWatch Logs JSON filter pattern to run instead of the rules.
    #[arg(long, value_name = "PATTERN")]
    pub pattern: Option<String>,
    /// Only this member account (12 digits); repeat for several.
    #[arg(long = "account", value_name = "ACCOUNT")]
    pub accounts: Vec<String>,
    /// Only files recording this region's activity; repeat for several.
    #[arg(long = "region", value_name = "REGION")]
    pub regions: Vec<String>,
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Format {
    /// One line per match: file, eventID, rule, eventName.
    Text,
    /// One JSON object per line.
    Json,
}

#[derive(Debug, clap::Args)]
pub struct TestArgs {
    /// Only this built-in rule (see `trailvault alerts list`); repeat for several.
    #[arg(long = "rule", value_name = "NAME", conflicts_with = "pattern")]
    pub rules: Vec<String>,
    /// A CloudWatch Logs JSON filter pattern to try instead of the built-in rules.
    #[arg(long, value_name = "PATTERN")]
    pub pattern: Option<String>,
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
    /// CloudTrail log files (`{"Records": [...]}`), gzip or not.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct ListArgs {
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
}

struct Rule {
    name: String,
    severity: Option<Severity>,
    pattern: Pattern,
}

pub async fn run(command: AlertsCommand) -> anyhow::Result<ExitCode> {
    match command {
        AlertsCommand::List(args) => {
            for (b, _) in cis::rules() {
                match args.format {
                    Format::Text => println!(
                        "{}\t{}\t{}\t{}\n\t{}",
                        b.name,
                        b.control,
                        b.severity.name(),
                        b.description,
                        b.pattern
                    ),
                    Format::Json => println!(
                        "{}",
                        serde_json::json!({"name": b.name, "control": b.control,
                            "severity": b.severity, "description": b.description,
                            "pattern": b.pattern})
                    ),
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        AlertsCommand::Scan(args) => match scan(&args).await {
            Ok(0) => Ok(ExitCode::from(1)),
            Ok(_) => Ok(ExitCode::SUCCESS),
            Err(err) => {
                eprintln!("error: {err:#}");
                Ok(ExitCode::from(2))
            }
        },
        AlertsCommand::Test(args) => match test(&args) {
            Ok(0) => Ok(ExitCode::from(1)),
            Ok(_) => Ok(ExitCode::SUCCESS),
            Err(err) => {
                eprintln!("error: {err:#}");
                Ok(ExitCode::from(2))
            }
        },
    }
}

fn rules(args: &TestArgs) -> anyhow::Result<Vec<Rule>> {
    if let Some(p) = &args.pattern {
        let pattern = Pattern::parse(p).map_err(|e| {
            anyhow::anyhow!("--pattern is not a filter pattern: {e}\n{}", e.pointed(p))
        })?;
        return Ok(vec![Rule {
            name: "pattern".to_owned(),
            severity: None,
            pattern,
        }]);
    }
    let all = cis::rules();
    for name in &args.rules {
        if !all.iter().any(|(b, _)| b.name == name) {
            anyhow::bail!(
                "--rule {name}: no such rule; the rules are: {}",
                all.iter()
                    .map(|(b, _)| b.name)
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
    }
    Ok(all
        .into_iter()
        .filter(|(b, _)| args.rules.is_empty() || args.rules.iter().any(|r| r == b.name))
        .map(|(b, pattern)| Rule {
            name: b.name.to_owned(),
            severity: Some(b.severity),
            pattern,
        })
        .collect())
}

#[derive(Deserialize)]
struct LogFile {
    #[serde(rename = "Records")]
    records: Vec<Value>,
}

/// How many matches there were.
fn test(args: &TestArgs) -> anyhow::Result<u64> {
    let rules = rules(args)?;
    let mut matches = 0;
    for path in &args.files {
        let size = std::fs::metadata(path)
            .with_context(|| format!("cannot read {}", path.display()))?
            .len();
        anyhow::ensure!(
            size <= FILE_CAP,
            "{}: {size} bytes; a CloudTrail log file is far smaller (at most {} MiB here)",
            path.display(),
            FILE_CAP >> 20
        );
        let raw = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        let bytes = if raw.starts_with(&[0x1f, 0x8b]) {
            let mut out = Vec::new();
            gzip::reader(&raw[..], FILE_CAP)
                .read_to_end(&mut out)
                .with_context(|| {
                    format!(
                        "{}: not a gzip file, or over {} MiB decompressed",
                        path.display(),
                        FILE_CAP >> 20
                    )
                })?;
            out
        } else {
            raw
        };
        let file: LogFile = serde_json::from_slice(&bytes).with_context(|| {
            format!(
                "{}: not a CloudTrail log file (a JSON object with a \"Records\" array)",
                path.display()
            )
        })?;
        let shown = path.display().to_string();
        for record in &file.records {
            for rule in &rules {
                if !rule.pattern.matches(record) {
                    continue;
                }
                matches += 1;
                let field = |k: &str| record.get(k).and_then(Value::as_str).unwrap_or("-");
                match args.format {
                    Format::Text => println!(
                        "{}\t{}\t{}\t{}",
                        layout::printable(&shown),
                        layout::printable(field("eventID")),
                        rule.name,
                        layout::printable(field("eventName"))
                    ),
                    Format::Json => println!(
                        "{}",
                        serde_json::json!({"file": shown, "eventID": record.get("eventID"),
                            "rule": rule.name, "severity": rule.severity,
                            "eventName": record.get("eventName")})
                    ),
                }
            }
        }
    }
    Ok(matches)
}

/// The rules a scan runs: `--pattern`, or the configuration's [alerts] rules (the built-in
/// set without one), narrowed by `--rule`.
fn scan_rules(config: &Config, args: &ScanArgs) -> anyhow::Result<Vec<ConfigRule>> {
    if let Some(p) = &args.pattern {
        let pattern = Pattern::parse(p).map_err(|e| {
            anyhow::anyhow!("--pattern is not a filter pattern: {e}\n{}", e.pointed(p))
        })?;
        return Ok(vec![ConfigRule {
            name: "pattern".to_owned(),
            control: None,
            severity: Severity::Medium,
            description: String::new(),
            pattern,
            suppress: None,
            builtin: false,
        }]);
    }
    let all: Vec<ConfigRule> = match &config.alerts {
        Some(alerts) => alerts.rules.clone(),
        None => ConfigRule::cis(),
    };
    for name in &args.rules {
        if !all.iter().any(|r| &r.name == name) {
            anyhow::bail!(
                "--rule {name}: no such rule; the rules are: {}",
                all.iter()
                    .map(|r| r.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
    }
    Ok(all
        .into_iter()
        .filter(|r| args.rules.is_empty() || args.rules.contains(&r.name))
        .collect())
}

/// How many matches there were.
async fn scan(args: &ScanArgs) -> anyhow::Result<u64> {
    use futures_util::StreamExt as _;

    let (config, _) = args.config.load()?;
    let rules = Rules::new(scan_rules(&config, args)?);
    let to = args.to.unwrap_or_else(OffsetDateTime::now_utc);
    anyhow::ensure!(
        args.from < to,
        "--from {} is not before --to {to}: nothing would be scanned",
        args.from
    );
    for a in &args.accounts {
        crate::config::AccountId::parse(a).map_err(|e| anyhow::anyhow!("--account {a}: {e}"))?;
    }
    let aws = Aws::load(&config.aws).await;
    let s3 = aws.s3(&config.archive.region);
    let bucket = config.archive.bucket.as_str();
    let prefix = config.archive.key_prefix.as_str();
    let denied = |what: String| {
        move |f: crate::aws::Failure| {
            anyhow::anyhow!(
                "{what}: {}; scanning needs s3:ListBucket and s3:GetObject on the archive \
                 bucket and kms:Decrypt on its key",
                f.detail
            )
        }
    };
    // Files are taken by the time in their names (their delivery), as backfill and verify
    // take them: the day folders of the window, then the names.
    let window = Window {
        since: Some(args.from),
        until: Some(to),
    };
    let mut files = Vec::new();
    for source in listing::folders(&s3, bucket, prefix)
        .await
        .map_err(denied(format!("listing s3://{bucket}/{prefix}")))?
    {
        if source.starts_with(crate::archive::layout::OWN_ROOT) {
            continue;
        }
        let roots = inventory::roots_under(&s3, bucket, &source, None)
            .await
            .map_err(denied(format!("listing s3://{bucket}/{source}")))?;
        for root in roots {
            let account = root.trim_end_matches('/').rsplit('/').next().unwrap_or("");
            if !args.accounts.is_empty() && !args.accounts.iter().any(|a| a == account) {
                continue;
            }
            for day in inventory::days(&s3, bucket, &root, &args.regions, &window)
                .await
                .map_err(denied(format!("listing s3://{bucket}/{root}")))?
            {
                if !day.contains(&format!("/{}/", FileKind::Log.folder())) {
                    continue;
                }
                for o in listing::objects(&s3, bucket, &day)
                    .await
                    .map_err(denied(format!("listing s3://{bucket}/{day}")))?
                {
                    let Some((_, source_key)) = layout::source_of(prefix, &o.key) else {
                        continue;
                    };
                    let named = ctkey::parse(source_key)
                        .ok()
                        .filter(|k| k.kind == FileKind::Log)
                        .and_then(|k| k.time());
                    if named.is_some_and(|t| window.contains(t)) {
                        files.push(o);
                    }
                }
            }
        }
    }
    let mut matches = 0u64;
    let mut skipped = Vec::new();
    let mut read = futures_util::stream::iter(files.into_iter().map(|o| {
        let s3 = s3.clone();
        let rules = rules.clone();
        async move {
            if o.size > FILE_CAP {
                return (o.key, Err(format!("{} bytes, over the {} MiB a log file may have here", o.size, FILE_CAP >> 20)));
            }
            let got = match s3.get_object().bucket(bucket).key(&o.key).send().await {
                Ok(got) => got,
                Err(e) => {
                    let f = crate::aws::Failure::from_sdk(&e);
                    return (o.key, Err(format!("GetObject: {} (it needs s3:GetObject, and kms:Decrypt on the archive key; an object in Glacier Flexible Retrieval or Deep Archive must be restored first)", f.detail)));
                }
            };
            let bytes = match got.body.collect().await {
                Ok(b) => b.into_bytes(),
                Err(e) => return (o.key, Err(format!("reading it: {e}"))),
            };
            let result = tokio::task::spawn_blocking(move || logfile::evaluate_bytes(&bytes, &rules))
                .await
                .map_err(|e| e.to_string())
                .and_then(|r| r.map_err(|e| format!("{e} (quarantined?)")));
            (o.key, result)
        }
    }))
    .buffer_unordered(8);
    while let Some((key, result)) = read.next().await {
        let summary = match result {
            Ok(s) => s,
            Err(why) => {
                skipped.push((key, why));
                continue;
            }
        };
        for m in &summary.matches.matches {
            matches += 1;
            let rule = &rules.get(m.rule);
            let event_name = m
                .about
                .get("event_name")
                .and_then(Value::as_str)
                .unwrap_or("-");
            match args.format {
                Format::Text => println!(
                    "{}\t{}\t{}\t{}\t{}",
                    layout::printable(&key),
                    layout::printable(m.event_id.as_deref().unwrap_or("-")),
                    rule.name,
                    layout::printable(event_name),
                    layout::printable(
                        m.about
                            .get("event_time")
                            .and_then(Value::as_str)
                            .unwrap_or("-")
                    ),
                ),
                Format::Json => println!(
                    "{}",
                    serde_json::json!({"archive_key": key, "eventID": m.event_id,
                        "rule": rule.name, "severity": rule.severity,
                        "eventName": event_name, "eventTime": m.about.get("event_time"),
                        "record_index": m.index})
                ),
            }
        }
        for (&rule, &count) in &summary.matches.overflow {
            matches += count;
            eprintln!(
                "{}: {count} more match(es) of {} not listed (past what one file's matches may hold in memory); run `trailvault alerts test --rule {}` on the file",
                layout::printable(&key),
                rules.get(rule).name,
                rules.get(rule).name
            );
        }
    }
    if !skipped.is_empty() {
        eprintln!(
            "skipped {} file(s) that could not be read as CloudTrail:",
            skipped.len()
        );
        for (key, why) in &skipped {
            eprintln!("  s3://{bucket}/{}: {why}", layout::printable(key));
        }
    }
    Ok(matches)
}
