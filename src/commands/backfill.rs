//! `trailvault backfill [--account A] [--region R] [--since T] [--until T] [--dry-run]`:
//! archive the member buckets' CloudTrail files that the archive lacks, through the worker's
//! own archiving path. Resumable: a rerun does only what is left.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::bail;
use time::OffsetDateTime;

use crate::archive::record::Pace;
use crate::archive::Engine;
use crate::aws::Aws;
use crate::cli::args::progress_bar;
use crate::cli::args::ConfigOption;
use crate::cli::args::{parse_time, parse_when};
use crate::completeness::backfill::{self, Mode, Scope, Summary};
use crate::completeness::inventory::Window;
use crate::config::Region;
use crate::shutdown::{watch_signals, Shutdown};
use crate::telemetry::metrics::Metrics;

#[derive(Debug, clap::Args)]
pub struct BackfillArgs {
    #[command(flatten)]
    pub config: ConfigOption,
    /// Only this member account (id or configured name).
    #[arg(long, value_name = "ACCOUNT")]
    pub account: Option<String>,
    /// Only files recording this region's activity; repeat for several. Default: all.
    #[arg(long = "region", value_name = "REGION")]
    pub regions: Vec<String>,
    /// Only files from this time on, by the time in their name (RFC 3339, or a date
    /// YYYY-MM-DD). Default: the oldest there is.
    #[arg(long, value_parser = parse_when)]
    pub since: Option<OffsetDateTime>,
    /// Only files before this time (RFC 3339, or a date YYYY-MM-DD: up to the end of that
    /// day). Default: now.
    #[arg(long, value_parser = parse_until)]
    pub until: Option<OffsetDateTime>,
    /// List and compare only: say what would be archived, archive nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Evaluate the [alerts] rules on the files archived, and publish their alerts (history
    /// is not alerted on otherwise).
    #[arg(long, conflicts_with = "dry_run")]
    pub alerts: bool,
}

pub async fn run(args: BackfillArgs) -> anyhow::Result<ExitCode> {
    let (config, source) = args.config.load()?;
    for (i, region) in args.regions.iter().enumerate() {
        if let Err(e) = Region::parse(region) {
            bail!("--region {region} (#{}): {e}", i + 1);
        }
    }
    if let (Some(since), Some(until)) = (args.since, args.until) {
        if since >= until {
            bail!("--since {since} is not before --until {until}: nothing would be in scope");
        }
    }
    let config = Arc::new(config);
    let aws = Aws::load(&config.aws).await;
    let shutdown = Shutdown::default();
    let engine = Engine::start(
        config.clone(),
        &aws,
        Arc::new(Metrics::new()),
        shutdown.clone(),
        Pace::Draining,
        args.alerts,
    )
    .await?;
    let ctx = engine.ctx.clone();

    let account = match &args.account {
        None => None,
        Some(asked) => {
            let accounts = ctx.accounts.snapshot();
            match accounts
                .iter()
                .find(|a| a.id.as_str() == asked || a.name == *asked)
            {
                Some(a) => Some(a.id.clone()),
                None => bail!(
                    "--account {asked}: no such account in {source} (by id or name){}; \
                     `trailvault config check` lists them",
                    if config.discovery.is_some() {
                        ", nor among the accounts discovery found"
                    } else {
                        ""
                    }
                ),
            }
        }
    };
    let scope = Scope {
        account,
        regions: args.regions.clone(),
        window: Window {
            since: args.since,
            until: Some(args.until.unwrap_or_else(OffsetDateTime::now_utc)),
        },
        written_before: None,
        dry_run: args.dry_run,
    };

    // Ctrl-C: no new copies; those running finish and are listed in the manifest.
    watch_signals(
        shutdown.clone(),
        config.worker.shutdown_grace,
        "stopping: no new copies; the ones running finish. Rerun to do what is left",
        "second signal: exiting now; rerun to do what is left",
    )?;

    let started = std::time::Instant::now();
    let bar = progress_bar("backfill");
    let report = backfill::pass(&ctx, &scope, Mode::Backfill, &bar).await;
    let elapsed = started.elapsed();
    drop(ctx);
    engine.finish().await?;
    print!(
        "{}",
        Summary {
            report: &report,
            dry_run: args.dry_run,
            elapsed,
        }
    );
    Ok(if report.failed() > 0 || shutdown.stopping() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// A date means up to the end of that day: the next midnight, exclusive.
fn parse_until(s: &str) -> Result<OffsetDateTime, String> {
    let t = parse_time(s, false)?;
    if s.len() == 10 {
        Ok(t + time::Duration::DAY)
    } else {
        Ok(t)
    }
}
