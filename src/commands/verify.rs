//! `trailvault verify`: the archive against CloudTrail's digests and its own manifests.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use time::OffsetDateTime;

use crate::aws::Aws;
use crate::cli::args::progress_bar;
use crate::cli::args::{parse_until, parse_when, ConfigOption};
use crate::verify::keys::{self, CloudTrailKeys};
use crate::verify::{Report, Scope, Verifier};

#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub config: ConfigOption,
    /// Only files from this time on (RFC 3339, or a date YYYY-MM-DD).
    #[arg(long, value_parser = parse_when)]
    pub from: Option<OffsetDateTime>,
    /// Only files up to this time (RFC 3339, or a date YYYY-MM-DD: the end of that day).
    #[arg(long, value_parser = parse_until)]
    pub to: Option<OffsetDateTime>,
    /// Only this account (id or configured name); repeat for several.
    #[arg(long = "account", value_name = "ACCOUNT")]
    pub accounts: Vec<String>,
    /// Only this region; repeat for several.
    #[arg(long = "region", value_name = "REGION")]
    pub regions: Vec<String>,
    /// CloudTrail's public keys, as `aws cloudtrail list-public-keys` prints them: a file, or a
    /// directory of such files (one per region); repeatable. Without it, each digest's region
    /// is asked (cloudtrail:ListPublicKeys).
    #[arg(long = "public-keys", value_name = "FILE-OR-DIR")]
    pub public_keys: Vec<PathBuf>,
    /// The manifest signing key's public half in PEM (`trailvault manifest public-key`).
    /// Without it, KMS is asked (kms:GetPublicKey on archive.signing_key).
    #[arg(long, value_name = "PEM")]
    pub manifest_public_key: Option<PathBuf>,
    /// Print the whole report as JSON (every line, the counts, the notes): evidence to keep.
    #[arg(long)]
    pub json: bool,
    /// Files read at once.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub concurrency: u16,
}

pub async fn run(args: VerifyArgs) -> anyhow::Result<ExitCode> {
    let (config, _) = args.config.load()?;
    let aws = Aws::load(&config.aws).await;
    let accounts = args
        .accounts
        .iter()
        .map(|a| {
            config
                .accounts
                .iter()
                .find(|c| c.id.as_str() == a || c.name == *a)
                .map(|c| c.id.to_string())
                // An account no longer configured may still be in the archive.
                .or_else(|| {
                    (a.len() == 12 && a.bytes().all(|b| b.is_ascii_digit())).then(|| a.clone())
                })
                .with_context(|| {
                    format!("--account {a}: not a configured account name or an account id")
                })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let scope = Scope {
        from: args.from,
        to: args.to,
        accounts,
        regions: args.regions.clone(),
    };
    let cloudtrail_keys = if args.public_keys.is_empty() {
        CloudTrailKeys::online(aws.clone())
    } else {
        CloudTrailKeys::from_files(&args.public_keys)?
    };
    let manifest_key = match (&args.manifest_public_key, &config.archive.signing_key) {
        (Some(pem), _) => Some(keys::manifest_key_from_pem(pem)?),
        (None, Some(key)) => {
            Some(keys::manifest_key_from_kms(&aws, &config.archive.region, key.as_str()).await?)
        }
        (None, None) => None,
    };
    let mut verifier = Verifier::new(
        aws.s3(&config.archive.region),
        config.archive.bucket.to_string(),
        config.archive.key_prefix.clone(),
        cloudtrail_keys,
        manifest_key,
        usize::from(args.concurrency),
    );
    let bar = progress_bar("files checked");
    let report = verifier.run(&scope, &|_| bar.inc(1)).await?;
    bar.finish_and_clear();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print(&report);
    }
    Ok(if report.all_valid() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn print(report: &Report) {
    for line in &report.lines {
        println!("{}\t{}\t{}", line.kind, line.location, line.result);
    }
    println!();
    for note in &report.notes {
        println!("Note ({}): {}", note.kind, note.text);
    }
    if !report.notes.is_empty() {
        println!();
    }
    println!(
        "{}/{} digest files valid",
        report.digests.valid, report.digests.total
    );
    println!(
        "{}/{} log files valid",
        report.logs.valid, report.logs.total
    );
    match report.manifests {
        Some(m) => {
            println!("{}/{} manifests valid", m.valid, m.total);
            println!(
                "{} archive version(s) listed by no manifest, {} listed version(s) missing or \
                 changed",
                report.unlisted_versions, report.bad_entries
            );
        }
        None => println!("manifests not checked"),
    }
    println!(
        "{}",
        if report.all_valid() {
            "Everything checked is valid."
        } else {
            "INVALID: see the lines above."
        }
    );
}
