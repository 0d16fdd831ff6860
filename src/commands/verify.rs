//! `trailvault verify`: the archive against CloudTrail's digests and its own manifests.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use time::OffsetDateTime;

use crate::aws::Aws;
use crate::cli::args::progress_bar;
use crate::cli::args::{parse_until, parse_when, ConfigOption};
use crate::commands::report::{self, Signer};
use crate::verify::html;
use crate::verify::keys::{self, CloudTrailKeys};
use crate::verify::{Report, Scope, Status, Verifier};

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
    /// How late the head of a chain may be beyond its cadence (an hour for CloudTrail's
    /// digests, `manifest.period_secs` for the manifests) before it is judged stale: a
    /// duration such as `3h`, `90m` or `0s`.
    #[arg(long, value_name = "DURATION", default_value = "3h", value_parser = parse_duration)]
    pub allowance: std::time::Duration,
    /// Also write the report as one self-contained HTML file (a summary, a coverage picture
    /// per account, region and hour, the findings, the manifest chain); its SHA-256 is printed
    /// on standard error.
    #[arg(long, value_name = "FILE.html")]
    pub report: Option<PathBuf>,
    /// Sign the report with this KMS key (id, ARN or alias; RSA, SIGN_VERIFY; never the
    /// manifest signing key), into FILE.html.sig; `trailvault report check` checks it offline.
    #[arg(long, value_name = "KEY", requires = "report")]
    pub sign: Option<String>,
    /// Files read at once.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub concurrency: u16,
}

/// Exit statuses: 0 everything valid, 1 something invalid, 2 nothing judged (a usage error, or
/// the archive or the keys could not be read: the error says which), 3 nothing invalid but
/// some files cannot be verified.
pub async fn run(args: VerifyArgs) -> anyhow::Result<ExitCode> {
    match verify(args).await {
        Ok(code) => Ok(code),
        Err(err) => {
            // Not 1: a script must not take "could not verify" for "found invalid".
            eprintln!("error: {err:#}");
            Ok(ExitCode::from(2))
        }
    }
}

async fn verify(args: VerifyArgs) -> anyhow::Result<ExitCode> {
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
    verifier.allowance =
        time::Duration::try_from(args.allowance).context("--allowance is too long")?;
    verifier.manifest_period = time::Duration::try_from(config.manifest.period)
        .context("manifest.period_secs is too long")?;
    // A key that cannot sign fails now, not after the whole archive was read.
    let signer = match &args.sign {
        Some(key) => Some(
            Signer::prepare(
                &aws,
                &config.archive.region,
                key,
                config.archive.signing_key.as_ref().map(|k| k.as_str()),
            )
            .await?,
        ),
        None => None,
    };
    let bar = progress_bar("files checked");
    let report = verifier.run(&scope, &|_| bar.inc(1)).await?;
    bar.finish_and_clear();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print(&report);
    }
    if let Some(path) = &args.report {
        let context = html::Context {
            command_line: command_line(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            account_names: config
                .accounts
                .iter()
                .map(|a| (a.id.to_string(), a.name.clone()))
                .collect(),
        };
        let page = html::render(&report, &context);
        std::fs::write(path, &page)
            .with_context(|| format!("cannot write the report to {}", path.display()))?;
        eprintln!(
            "report: {} (SHA-256 {})",
            path.display(),
            report::sha256_hex(page.as_bytes())
        );
        if let Some(signer) = &signer {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let sig = signer.sign(&name, page.as_bytes()).await?;
            let sig_path = report::signature_path(path);
            std::fs::write(&sig_path, serde_json::to_string_pretty(&sig)? + "\n")
                .with_context(|| format!("cannot write the signature to {}", sig_path.display()))?;
            eprintln!(
                "signature: {} (key {}, public key SHA-256 {})",
                sig_path.display(),
                sig.key_arn,
                sig.key_fingerprint
            );
        }
    }
    Ok(ExitCode::from(report.status.exit_code()))
}

/// The command line as run, quoted where a word needs it, for the report.
fn command_line() -> String {
    // Lossy: a path that is not UTF-8 must not fail the report after the whole check ran.
    std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .map(|a| {
            if !a.is_empty()
                && a.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./=:,@+".contains(c))
            {
                a
            } else {
                format!("'{}'", a.replace('\'', "'\\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// `3h`, `90m`, `45s`, `0s` (or a bare number of seconds).
fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let (n, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => s.split_at(at),
        None => (s, "s"),
    };
    let n: u64 = n
        .parse()
        .map_err(|_| format!("{s:?}: expected a number and a unit, such as 3h, 90m or 0s"))?;
    let secs = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        _ => return Err(format!("{s:?}: the unit must be s, m, h or d")),
    };
    Ok(std::time::Duration::from_secs(secs))
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
    if report.insights.total > 0 {
        println!(
            "{}/{} Insights files valid",
            report.insights.valid, report.insights.total
        );
    }
    if report.unverified > 0 {
        println!(
            "{} file(s) cannot be verified (UNVERIFIED above)",
            report.unverified
        );
    }
    if report.conflicts > 0 {
        println!(
            "{} rewrite(s) kept apart as conflicts (see the notes)",
            report.conflicts
        );
    }
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
        match report.status {
            Status::Valid => "Everything checked is valid.",
            Status::Invalid => "INVALID: see the lines above.",
            Status::Unverified => {
                "UNVERIFIED: nothing is invalid, but some files cannot be verified; see the \
                 lines above."
            }
        }
    );
}
