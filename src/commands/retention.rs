//! `trailvault retention plan|apply|audit`: the archive bucket and its versions against the
//! retention policy.

use std::process::ExitCode;

use anyhow::Context as _;

use crate::aws::Aws;
use crate::cli::args::progress_bar;
use crate::cli::args::ConfigOption;
use crate::config::Config;
use crate::retention::archive_bucket::ArchiveBucket;
use crate::retention::audit::{Audit, Report};
use crate::retention::bucket::{BucketState, Change};
use crate::retention::Standing;

/// Exit code when the bucket or a version differs from the policy (as `terraform plan
/// -detailed-exitcode` does for changes).
pub const DRIFT: u8 = 2;

#[derive(Debug, clap::Subcommand)]
pub enum RetentionCommand {
    /// Compare the archive bucket's Object Lock default retention and lifecycle rules with
    /// the policy; exit 0 when equal, 2 when they differ.
    Plan(PlanArgs),
    /// Make the archive bucket's configuration equal to the policy (never weakening a
    /// COMPLIANCE default).
    Apply(ApplyArgs),
    /// Check every archived version's lock against the policy; exit 2 when any falls short.
    Audit(AuditArgs),
}

#[derive(Debug, clap::Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub config: ConfigOption,
    /// Print the differences as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct ApplyArgs {
    #[command(flatten)]
    pub config: ConfigOption,
}

#[derive(Debug, clap::Args)]
pub struct AuditArgs {
    #[command(flatten)]
    pub config: ConfigOption,
    /// Only versions whose archive key starts with this.
    #[arg(long)]
    pub prefix: Option<String>,
    /// Extend every lock that falls short to what the policy asks (never shortens, never
    /// weakens a mode).
    #[arg(long)]
    pub fix: bool,
    /// Print the report as JSON (every finding, and the counts).
    #[arg(long)]
    pub json: bool,
    /// Versions checked at once.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub concurrency: u16,
}

pub async fn run(command: RetentionCommand) -> anyhow::Result<ExitCode> {
    match command {
        RetentionCommand::Plan(args) => plan(args).await,
        RetentionCommand::Apply(args) => apply(args).await,
        RetentionCommand::Audit(args) => audit(args).await,
    }
}

async fn archive_bucket(config: &Config) -> ArchiveBucket {
    let aws = Aws::load(&config.aws).await;
    ArchiveBucket::new(
        aws.s3(&config.archive.region),
        config.archive.bucket.as_str(),
    )
}

async fn plan(args: PlanArgs) -> anyhow::Result<ExitCode> {
    let (config, source) = args.config.load()?;
    let bucket = archive_bucket(&config).await;
    let changes = bucket
        .read()
        .await?
        .diff(&BucketState::desired(&config.retention));
    if args.json {
        let json = serde_json::json!({
            "bucket": bucket.name(),
            "region": config.archive.region.as_str(),
            "equal": changes.is_empty(),
            "changes": changes,
        });
        println!("{}", serde_json::to_string_pretty(&json)?);
    } else {
        println!(
            "Archive bucket {} ({}) against [retention] in {source}:",
            bucket.name(),
            config.archive.region,
        );
        print_changes(&changes);
        if changes.is_empty() {
            println!("The bucket is equal to the policy.");
        } else {
            println!(
                "{} difference{}. `trailvault retention apply` makes the bucket equal to the \
                 policy{}.",
                changes.len(),
                if changes.len() == 1 { "" } else { "s" },
                if changes.iter().any(|c| c.refused.is_some()) {
                    ", except where it refuses (marked)"
                } else {
                    ""
                }
            );
        }
    }
    Ok(if changes.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(DRIFT)
    })
}

fn print_changes(changes: &[Change]) {
    if changes.is_empty() {
        return;
    }
    println!();
    for change in changes {
        println!("  {change}");
    }
    println!();
}

async fn apply(args: ApplyArgs) -> anyhow::Result<ExitCode> {
    let (config, _) = args.config.load()?;
    let bucket = archive_bucket(&config).await;
    let changes = bucket
        .apply(&BucketState::desired(&config.retention))
        .await?;
    if changes.is_empty() {
        println!(
            "Archive bucket {} already equals the policy; nothing changed.",
            bucket.name()
        );
    } else {
        println!("Archive bucket {}: changed", bucket.name());
        print_changes(&changes);
        println!("The bucket now equals the policy (read back and checked).");
    }
    tracing::info!(
        bucket = bucket.name(),
        changes = changes.len(),
        "retention policy applied to the archive bucket"
    );
    Ok(ExitCode::SUCCESS)
}

async fn audit(args: AuditArgs) -> anyhow::Result<ExitCode> {
    let (config, _) = args.config.load()?;
    let aws = Aws::load(&config.aws).await;
    let audit = Audit {
        s3: aws.s3(&config.archive.region),
        bucket: config.archive.bucket.to_string(),
        lock: config.retention.lock,
        concurrency: usize::from(args.concurrency),
    };
    let bar = progress_bar("versions checked");
    let report = audit
        .run(args.prefix.as_deref(), args.fix, |r| {
            bar.set_position(r.versions);
            bar.set_message(format!(
                "versions checked, {} short of the policy",
                r.findings.len()
            ));
        })
        .await?;
    bar.finish_and_clear();
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).context("rendering the report")?
        );
    } else {
        print_audit(&report, args.fix);
    }
    Ok(if report.outstanding() == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(DRIFT)
    })
}

fn print_audit(report: &Report, fixing: bool) {
    for f in &report.findings {
        let lock = match (&f.mode, &f.retain_until) {
            (Some(mode), Some(until)) => format!("{mode} until {until}"),
            _ => "no lock".to_owned(),
        };
        let due = f
            .due
            .as_deref()
            .map(|d| format!("; policy: until {d} at least"))
            .unwrap_or_default();
        let hold = if f.legal_hold { "; legal hold" } else { "" };
        let fix = f
            .fix
            .as_deref()
            .map(|x| format!("\t{x}"))
            .unwrap_or_default();
        let error = f
            .error
            .as_deref()
            .map(|e| format!("\t{e}"))
            .unwrap_or_default();
        println!(
            "{}\ts3://{}/{}\tversion {}\t{lock}{due}{hold}{fix}{error}",
            f.standing.map_or("unreadable", Standing::label),
            report.bucket,
            f.key,
            f.version_id
        );
    }
    let count = |s: Standing| report.standings.get(&s).copied().unwrap_or(0);
    println!(
        "\n{} version{} checked in s3://{}/{} against {} ({} delete marker{} skipped): {} held, \
         {} without a lock, {} short, {} in GOVERNANCE, {} stricter (COMPLIANCE), {} unreadable; \
         {} under legal hold.",
        report.versions,
        if report.versions == 1 { "" } else { "s" },
        report.bucket,
        report.prefix.as_deref().unwrap_or(""),
        report.policy,
        report.delete_markers,
        if report.delete_markers == 1 { "" } else { "s" },
        count(Standing::Held),
        count(Standing::Missing),
        count(Standing::Short),
        count(Standing::WeakerMode),
        count(Standing::StricterMode),
        report.unreadable,
        report.legal_holds,
    );
    if fixing {
        println!(
            "Fixed {}, {} fix{} failed.",
            report.fixed,
            report.fix_failures,
            if report.fix_failures == 1 { "" } else { "es" }
        );
    } else if report.outstanding() > 0 {
        println!("`trailvault retention audit --fix` extends them to the policy.");
    }
}
