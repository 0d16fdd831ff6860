//! `trailvault config check FILE [--connect]`: validate, print the effective configuration,
//! and optionally try every AWS resource it names with the credentials the worker would use.

use std::fmt::Write as _;
use std::process::ExitCode;

use anyhow::Context as _;
use aws_sdk_sqs::types::QueueAttributeName;

use crate::aws::Aws;
use crate::cli::args::ConfigPath;
use crate::config::Config;

#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub config: ConfigPath,

    /// Print the effective configuration as TOML (the file's own format) or JSON.
    #[arg(long, value_enum, default_value = "toml")]
    pub format: Format,

    /// Also reach every queue, bucket, key and reader role with the worker's credentials
    /// (the standard AWS chain), and report what answers; exit 1 if anything does not.
    #[arg(long)]
    pub connect: bool,

    /// Print the ExternalIds as configured. By default they are redacted: an ExternalId is
    /// the shared secret that keeps anyone else who learns a reader role's ARN from having
    /// trailvault assume it for them, and this output ends up in terminals, CI logs and
    /// tickets.
    #[arg(long)]
    pub show_secrets: bool,
}

/// What stands for a redacted ExternalId: not a valid one, so that a redacted copy of a
/// configuration cannot be deployed by mistake.
pub const REDACTED: &str = "<redacted: config check --show-secrets prints it>";

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Format {
    Toml,
    Json,
}

pub async fn run(args: CheckArgs) -> anyhow::Result<ExitCode> {
    let (config, source) = args.config.load()?;
    let endpoint_env = std::env::var("AWS_ENDPOINT_URL").ok();
    let mut raw = config.to_raw();
    if !args.show_secrets {
        for account in &mut raw.accounts {
            account.external_id = REDACTED.to_owned();
        }
        if !raw.discovery.external_id.is_empty() {
            raw.discovery.external_id = REDACTED.to_owned();
        }
    }
    match args.format {
        Format::Json => {
            let json = serde_json::to_string_pretty(&raw)
                .context("cannot render the configuration as JSON")?;
            println!("{json}");
        }
        Format::Toml => print!("{}", render_toml(&config, &raw, &source, endpoint_env)?),
    }
    if !args.connect {
        return Ok(ExitCode::SUCCESS);
    }
    let aws = Aws::load(&config.aws).await;
    let checks = connect(&config, &aws).await;
    eprintln!();
    for check in &checks {
        eprintln!("{check}");
    }
    let failed = checks.iter().filter(|c| c.problem.is_some()).count();
    if failed == 0 {
        eprintln!("\nAll {} checks passed.", checks.len());
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("\n{failed} of {} checks failed.", checks.len());
        Ok(ExitCode::FAILURE)
    }
}

/// The effective configuration as TOML, under a comment that sums it up.
fn render_toml(
    config: &Config,
    raw: &crate::config::RawConfig,
    source: &str,
    endpoint_env: Option<String>,
) -> anyhow::Result<String> {
    let buckets: usize = config.accounts.iter().map(|a| a.buckets.len()).sum();
    let regions: Vec<&str> = config
        .queues
        .iter()
        .map(|q| q.url.region().as_str())
        .collect();
    let mut out = String::new();
    writeln!(
        out,
        "# {source} is valid: {} member account{}, {buckets} source bucket{}, {} queue{} ({}).",
        config.accounts.len(),
        plural(config.accounts.len()),
        plural(buckets),
        config.queues.len(),
        plural(config.queues.len()),
        regions.join(", ")
    )?;
    match (&config.aws.endpoint_url, endpoint_env) {
        (Some(url), _) => writeln!(out, "# Every AWS client, STS included, is sent to {url}.")?,
        (None, Some(env)) => writeln!(
            out,
            "# aws.endpoint_url is not set; AWS_ENDPOINT_URL={env} applies to every client."
        )?,
        (None, None) => writeln!(
            out,
            "# AWS endpoints, credentials and region come from the standard AWS chain."
        )?,
    }
    if let Some(d) = &config.discovery {
        writeln!(
            out,
            "# Organization discovery is on: every other account of the organization is served \
             through {}.",
            d.reader_role_arn
        )?;
    }
    writeln!(out, "# The effective configuration, defaults filled in:\n")?;
    out.push_str(&toml::to_string(raw).context("cannot render the configuration as TOML")?);
    Ok(out)
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// One probe of one resource.
#[derive(Debug)]
pub struct Check {
    pub what: String,
    /// What was found, when it answered.
    pub found: String,
    /// What went wrong and what to do, when it did not.
    pub problem: Option<String>,
}

impl std::fmt::Display for Check {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.problem {
            None => write!(f, "  ok    {}: {}", self.what, self.found),
            Some(problem) => write!(f, "  FAIL  {}: {problem}", self.what),
        }
    }
}

fn ok(what: String, found: String) -> Check {
    Check {
        what,
        found,
        problem: None,
    }
}

fn fail(what: String, problem: String) -> Check {
    Check {
        what,
        found: String::new(),
        problem: Some(problem),
    }
}

/// The full error chain of an SDK error, which `Display` alone hides.
fn sdk<E: std::error::Error>(err: &E) -> String {
    aws_sdk_s3::error::DisplayErrorContext(err).to_string()
}

/// Reaches everything the configuration names, as the worker would: its own identity, the
/// archive bucket and keys, every queue, and every member bucket through its reader role.
pub async fn connect(config: &Config, aws: &Aws) -> Vec<Check> {
    let mut checks = Vec::new();
    let home = &config.archive.region;

    let what = "worker identity".to_owned();
    checks.push(match aws.sts(home).get_caller_identity().send().await {
        Ok(id) => ok(what, id.arn().unwrap_or("?").to_owned()),
        Err(e) => fail(
            what,
            format!(
                "{}; set credentials the standard AWS way (AWS_PROFILE, the ECS task role, ...)",
                sdk(&e)
            ),
        ),
    });

    let s3 = aws.s3(home);
    let bucket = config.archive.bucket.as_str();
    let what = format!("archive bucket {bucket}");
    // Object Lock can only be on when versioning is, so one call answers both.
    let lock = s3
        .get_object_lock_configuration()
        .bucket(bucket)
        .send()
        .await;
    checks.push(match lock {
        Ok(out) => {
            let enabled = out
                .object_lock_configuration()
                .and_then(|l| l.object_lock_enabled())
                .is_some_and(|e| e.as_str() == "Enabled");
            if enabled {
                ok(what, "versioned, Object Lock enabled".to_owned())
            } else {
                fail(
                    what,
                    "Object Lock is not enabled; the archive bucket must be created with \
                     Object Lock enabled (which also turns versioning on for good)"
                        .to_owned(),
                )
            }
        }
        Err(e) => fail(
            what,
            format!(
                "{}; check archive.bucket and archive.region, that the bucket was created with \
                 Object Lock, and that the worker may s3:GetBucketObjectLockConfiguration",
                sdk(&e)
            ),
        ),
    });

    let kms = aws.kms(home);
    let mut keys = vec![("archive.kms_key", &config.archive.kms_key)];
    if let Some(signing) = &config.archive.signing_key {
        keys.push(("archive.signing_key", signing));
    }
    for (field, key) in keys {
        let what = format!("{field} {key}");
        checks.push(match kms.describe_key().key_id(key.as_str()).send().await {
            Ok(out) => match out.key_metadata() {
                Some(m) if m.enabled() => ok(
                    what,
                    format!(
                        "enabled, {} {}",
                        m.key_usage().map(|u| u.as_str()).unwrap_or("?"),
                        m.key_spec().map(|s| s.as_str()).unwrap_or("?")
                    ),
                ),
                _ => fail(
                    what,
                    "the key is disabled; enable it or point the field at another key".to_owned(),
                ),
            },
            Err(e) => fail(
                what,
                format!(
                    "{}; check the key exists in {home} and the worker may kms:DescribeKey",
                    sdk(&e)
                ),
            ),
        });
    }

    for queue in &config.queues {
        let url = queue.url.as_str();
        let what = format!("queue {} ({})", queue.url.name(), queue.url.region());
        let sqs = aws.sqs(queue.url.region());
        let attrs = sqs
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::RedrivePolicy)
            .send()
            .await;
        checks.push(match attrs {
            Ok(out) => {
                let get = |name| {
                    out.attributes()
                        .and_then(|a| a.get(&name))
                        .cloned()
                        .unwrap_or_default()
                };
                let waiting = get(QueueAttributeName::ApproximateNumberOfMessages);
                if get(QueueAttributeName::RedrivePolicy).is_empty() {
                    fail(
                        what,
                        format!(
                            "{waiting} waiting, but no redrive policy: a message that keeps \
                             failing would come back forever; give {url} a dead-letter queue"
                        ),
                    )
                } else {
                    ok(
                        what,
                        format!("{waiting} messages waiting, dead-letter queue set"),
                    )
                }
            }
            Err(e) => fail(
                what,
                format!(
                    "{}; check the URL and that the worker may sqs:GetQueueAttributes",
                    sdk(&e)
                ),
            ),
        });
    }

    for account in &config.accounts {
        let member = aws.member(account, home).await;
        let what = format!("account {} ({})", account.name, account.id);
        let identity = member.sts(home).get_caller_identity().send().await;
        let assumed = match identity {
            Ok(id) if id.account() == Some(account.id.as_str()) => {
                checks.push(ok(what, format!("assumed {}", id.arn().unwrap_or("?"))));
                true
            }
            Ok(id) => {
                checks.push(fail(
                    what,
                    format!(
                        "assuming {} gave an identity in account {}, not {}",
                        account.reader_role_arn,
                        id.account().unwrap_or("?"),
                        account.id
                    ),
                ));
                false
            }
            Err(e) => {
                checks.push(fail(
                    what,
                    format!(
                        "cannot assume {} with the configured external_id: {}; check the \
                         role's trust policy names the worker role and this ExternalId",
                        account.reader_role_arn,
                        sdk(&e)
                    ),
                ));
                false
            }
        };
        if !assumed {
            continue;
        }
        for bucket in &account.buckets {
            let what = format!(
                "bucket {} ({}, {})",
                bucket.name, account.name, bucket.region
            );
            let listed = member
                .s3(&bucket.region)
                .list_objects_v2()
                .bucket(bucket.name.as_str())
                .max_keys(1)
                .send()
                .await;
            checks.push(match listed {
                Ok(_) => ok(what, "readable by the reader role".to_owned()),
                Err(e) => fail(
                    what,
                    format!(
                        "{}; check the bucket's name and region, and that {} may \
                         s3:ListBucket and s3:GetObject on it",
                        sdk(&e),
                        account.reader_role_arn
                    ),
                ),
            });
        }
    }
    if let Some(discovery) = &config.discovery {
        let organizations =
            crate::completeness::discovery::organizations(discovery, aws, home).await;
        let through = discovery
            .organizations_role_arn
            .as_ref()
            .map_or("the worker identity".to_owned(), |r| r.to_string());
        let what = format!("organization discovery (through {through})");
        checks.push(
            match organizations.list_accounts().max_results(20).send().await {
                Ok(out) => ok(
                    what,
                    format!(
                        "lists the organization's accounts ({}{} on the first page)",
                        out.accounts().len(),
                        if out.next_token().is_some() { "+" } else { "" }
                    ),
                ),
                Err(e) => fail(
                    what,
                    format!(
                        "{}; discovery.organizations_role_arn must name a role in the \
                         management account (or a delegated administrator) that the worker may \
                         assume and that may organizations:ListAccounts",
                        sdk(&e)
                    ),
                ),
            },
        );
    }
    checks
}
