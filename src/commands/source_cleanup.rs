//! `trailvault source-cleanup [--account A] [--execute]`: delete from the member buckets the
//! CloudTrail files the archive holds byte for byte. A dry run unless `--execute`.

use std::process::ExitCode;

use anyhow::bail;
use time::OffsetDateTime;

use crate::aws::Aws;
use crate::cli::args::progress_bar;
use crate::cli::args::ConfigOption;
use crate::config::{Account, Config};
use crate::retention::cleanup::{Cleanup, Kept, Outcome, Report};

#[derive(Debug, clap::Args)]
pub struct CleanupArgs {
    #[command(flatten)]
    pub config: ConfigOption,
    /// Only this member account (id or name); repeat for several. Default: every account
    /// with `cleanup_after_days` set.
    #[arg(long = "account", value_name = "ACCOUNT")]
    pub accounts: Vec<String>,
    /// Really delete. Without it, nothing is deleted and the report says what would be.
    #[arg(long)]
    pub execute: bool,
    /// Print every decision and the counts as JSON.
    #[arg(long)]
    pub json: bool,
    /// Source versions checked at once.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub concurrency: u16,
}

pub async fn run(args: CleanupArgs) -> anyhow::Result<ExitCode> {
    let (config, _) = args.config.load()?;
    let accounts = select(&config, &args.accounts)?;
    let aws = Aws::load(&config.aws).await;
    let cleanup = Cleanup::new(&config, &aws, usize::from(args.concurrency)).await;
    let bar = progress_bar("source versions decided");
    let report = cleanup
        .run(&accounts, args.execute, OffsetDateTime::now_utc(), |r| {
            bar.set_position(r.decisions.len() as u64)
        })
        .await?;
    bar.finish_and_clear();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print(&report);
    }
    Ok(if report.kept.contains_key(&Kept::DeleteFailed) {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// The accounts asked for, each of which must allow cleanup.
fn select<'c>(config: &'c Config, asked: &[String]) -> anyhow::Result<Vec<&'c Account>> {
    if asked.is_empty() {
        let with: Vec<&Account> = config
            .accounts
            .iter()
            .filter(|a| a.cleanup_after_days.is_some())
            .collect();
        if with.is_empty() {
            bail!(
                "no account sets cleanup_after_days; add it to an [[accounts]] entry to allow \
                 deleting that account's archived source files"
            );
        }
        return Ok(with);
    }
    asked
        .iter()
        .map(|name| {
            let account = config
                .accounts
                .iter()
                .find(|a| a.id.as_str() == name || a.name == *name)
                .ok_or_else(|| {
                    anyhow::anyhow!("--account {name}: no configured account has this id or name")
                })?;
            if account.cleanup_after_days.is_none() {
                bail!(
                    "--account {name}: the account does not set cleanup_after_days, so its \
                     source files are never deleted; set it in its [[accounts]] entry first"
                );
            }
            Ok(account)
        })
        .collect()
}

fn print(report: &Report) {
    for d in &report.decisions {
        let why = match (d.check, d.reason, &d.detail) {
            (Some(check), Some(reason), Some(detail)) => {
                format!("\t{} check: {}: {detail}", label(check), label(reason))
            }
            _ => match (&d.archive_version_id, d.byte_check) {
                (Some(v), Some(how)) => {
                    format!("\tarchive version {v}, bytes by {}", label(how))
                }
                _ => String::new(),
            },
        };
        println!(
            "{}\ts3://{}/{}\tversion {}{why}",
            label(d.outcome),
            d.bucket,
            d.key,
            d.version_id
        );
    }
    let kept: Vec<String> = report
        .kept
        .iter()
        .map(|(reason, count)| format!("{count} {}", label(reason)))
        .collect();
    println!(
        "\n{} source version{} old enough: {} {}, {} kept{}; {} younger than their account's \
         cleanup_after_days.",
        report.decisions.len(),
        if report.decisions.len() == 1 { "" } else { "s" },
        if report.execute {
            report.count(Outcome::Deleted)
        } else {
            report.count(Outcome::WouldDelete)
        },
        if report.execute {
            format!("deleted ({} bytes)", report.bytes_deleted)
        } else {
            "would be deleted".to_owned()
        },
        report.count(Outcome::Kept),
        if kept.is_empty() {
            String::new()
        } else {
            format!(" ({})", kept.join(", "))
        },
        report.too_recent
    );
    if !report.execute && report.count(Outcome::WouldDelete) > 0 {
        println!("This was a dry run: --execute deletes them.");
    }
}

/// The name a value has in `--json`, for the text report too.
fn label(value: impl serde::Serialize) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        other => format!("{other:?}"),
    }
}
