//! `trailvault alerts`: the alert rules, tried on local CloudTrail files.

use std::io::Read as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use serde::Deserialize;
use serde_json::Value;

use crate::alerts::cis::{self, Severity};
use crate::alerts::pattern::Pattern;
use crate::archive::layout;
use crate::cloudtrail::gzip;

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
