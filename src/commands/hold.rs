//! `trailvault hold put|remove|list`: legal holds on archived versions, for investigations.

use std::process::ExitCode;

use anyhow::Context as _;
use tracing::info;

use crate::aws::Aws;
use crate::cli::args::ConfigOption;
use crate::config::Config;
use crate::retention::hold::{Held, Holds};

#[derive(Debug, clap::Subcommand)]
pub enum HoldCommand {
    /// Hold every version of an archive key (or of every key under a prefix): no version can
    /// be deleted, whatever its retention, until the hold is removed.
    Put(PutArgs),
    /// Release every version of an archive key (or under a prefix) from its legal hold.
    Remove(RemoveArgs),
    /// List the held versions (under a prefix, or in the whole archive) with who, when, why.
    List(ListArgs),
}

#[derive(Debug, clap::Args)]
pub struct PutArgs {
    #[command(flatten)]
    pub config: ConfigOption,
    /// An archive key, or a prefix of archive keys (`{key_prefix}{source bucket}/...`).
    #[arg(value_name = "KEY-OR-PREFIX")]
    pub target: String,
    /// Why: the case or ticket. Kept with every held version.
    #[arg(long)]
    pub reason: String,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct RemoveArgs {
    #[command(flatten)]
    pub config: ConfigOption,
    #[arg(value_name = "KEY-OR-PREFIX")]
    pub target: String,
    /// Why the hold ends; written to the log line that records the release.
    #[arg(long)]
    pub reason: Option<String>,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub config: ConfigOption,
    /// Only under this prefix (the whole archive when left out: one request per version).
    #[arg(value_name = "PREFIX")]
    pub prefix: Option<String>,
    #[arg(long)]
    pub json: bool,
}

pub async fn run(command: HoldCommand) -> anyhow::Result<ExitCode> {
    match command {
        HoldCommand::Put(args) => {
            let (config, aws) = load(&args.config).await?;
            let who = caller(&aws, &config).await?;
            let holds = holds(&config, &aws);
            let result = holds.put(&args.target, &who, &args.reason).await?;
            let placed = result.iter().filter(|h| h.outcome == "held").count();
            info!(
                action = "legal_hold_put",
                bucket = %config.archive.bucket,
                target = %args.target,
                by = %who,
                reason = %args.reason,
                versions = placed,
                already_held = result.iter().filter(|h| h.outcome == "already held").count(),
                "legal hold placed"
            );
            report(&result, args.json)
        }
        HoldCommand::Remove(args) => {
            let (config, aws) = load(&args.config).await?;
            let who = caller(&aws, &config).await?;
            let holds = holds(&config, &aws);
            let result = holds.remove(&args.target).await?;
            for h in result.iter().filter(|h| h.outcome == "released") {
                // The record leaves the object with the hold; this line keeps it.
                info!(
                    action = "legal_hold_remove",
                    bucket = %config.archive.bucket,
                    key = %h.key,
                    version_id = %h.version_id,
                    by = %who,
                    reason = args.reason.as_deref().unwrap_or(""),
                    held_by = h.by.as_deref().unwrap_or(""),
                    held_at = h.at.as_deref().unwrap_or(""),
                    held_for = h.reason.as_deref().unwrap_or(""),
                    "legal hold removed"
                );
            }
            report(&result, args.json)
        }
        HoldCommand::List(args) => {
            let (config, aws) = load(&args.config).await?;
            let result = holds(&config, &aws).list(args.prefix.as_deref()).await?;
            report(&result, args.json)
        }
    }
}

async fn load(option: &ConfigOption) -> anyhow::Result<(Config, Aws)> {
    let (config, _) = option.load()?;
    let aws = Aws::load(&config.aws).await;
    Ok((config, aws))
}

fn holds(config: &Config, aws: &Aws) -> Holds {
    Holds {
        s3: aws.s3(&config.archive.region),
        bucket: config.archive.bucket.to_string(),
        concurrency: 16,
    }
}

/// Who is acting: a hold must say who placed it.
async fn caller(aws: &Aws, config: &Config) -> anyhow::Result<String> {
    let me = aws
        .sts(&config.archive.region)
        .get_caller_identity()
        .send()
        .await
        .map_err(|e| crate::aws::Failure::from_sdk(&e).detail)
        .map_err(anyhow::Error::msg)
        .context(
            "cannot tell who is acting (STS GetCallerIdentity failed); a legal hold records who \
             placed it, so check the AWS credentials",
        )?;
    Ok(me.arn().unwrap_or("unknown").to_owned())
}

fn report(result: &[Held], json: bool) -> anyhow::Result<ExitCode> {
    if json {
        println!("{}", serde_json::to_string_pretty(result)?);
    } else {
        for h in result {
            let record = match (&h.by, &h.at, &h.reason) {
                (Some(by), Some(at), Some(reason)) => format!("\t{at}\t{by}\t{reason}"),
                _ => String::new(),
            };
            println!("{}\t{}\t{}{record}", h.outcome, h.key, h.version_id);
        }
    }
    let failed = result.iter().filter(|h| h.failed).count();
    if failed > 0 {
        eprintln!(
            "{failed} of {} version{} failed (see above).",
            result.len(),
            if result.len() == 1 { "" } else { "s" }
        );
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}
