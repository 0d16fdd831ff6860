//! Signed reports: `trailvault verify --report FILE.html --sign KEY` signs the report with a KMS
//! key of its own, and `trailvault report check` checks a report against its signature offline.
//!
//! The signature is over a short message that names what it is and everything the signature
//! file claims (the report's name and SHA-256, the key, when), not over the report's bytes
//! alone: see [`message`]. Nothing in the `.sig` file is shown as signed unless it is. A
//! manifest's string to sign never starts like that, so even a key misused for both could not
//! make a report signature stand in for a manifest's; and `--sign` refuses the manifest signing
//! key anyway (by its public key, so an alias or a replica is refused too).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context as _};
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{KeyUsageType, MessageType, SigningAlgorithmSpec};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use time::OffsetDateTime;

use crate::archive::layout;
use crate::aws::{Aws, Failure};
use crate::cli::args::ConfigOption;
use crate::cloudtrail::digest::PublicKey;
use crate::config::Region;
use crate::verify::keys;

/// What a report signature file says.
pub const FORMAT: &str = "trailvault-report-signature/1";
const ALGORITHM: &str = "RSASSA_PKCS1_V1_5_SHA_256";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SignatureFile {
    pub format: String,
    /// The report's file name when it was signed.
    pub report: String,
    /// Hex SHA-256 of the report's bytes.
    pub report_sha256: String,
    /// The KMS key that signed, and the SHA-256 of its DER public key.
    pub key_arn: String,
    pub key_fingerprint: String,
    pub algorithm: String,
    /// Hex of KMS's signature over [`message`].
    pub signature: String,
    pub signed_at: String,
}

/// What is signed: every claim of the signature file, one per line, under the format's name.
pub fn message(sig: &SignatureFile) -> String {
    format!(
        "{FORMAT}\nreport: {}\nsha256: {}\nkey: {}\nkey-sha256: {}\nsigned-at: {}\n",
        layout::printable(&sig.report),
        sig.report_sha256,
        layout::printable(&sig.key_arn),
        sig.key_fingerprint,
        sig.signed_at
    )
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Where a report's signature goes unless told otherwise: `FILE.sig` beside it.
pub fn signature_path(report: &Path) -> PathBuf {
    let mut name = report.as_os_str().to_owned();
    name.push(".sig");
    PathBuf::from(name)
}

/// A KMS key checked fit to sign reports, before the (long) verification runs.
pub struct Signer {
    kms: aws_sdk_kms::Client,
    key_arn: String,
    fingerprint: String,
}

impl Signer {
    /// `key` (id, ARN or alias) must be an RSA signing key, and not the manifest signing key.
    pub async fn prepare(
        aws: &Aws,
        region: &Region,
        key: &str,
        manifest_key: Option<&str>,
    ) -> anyhow::Result<Signer> {
        let kms = aws.kms(region);
        let meta = kms
            .describe_key()
            .key_id(key)
            .send()
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "--sign {key}: {}; check the key exists in {region} and you may \
                     kms:DescribeKey, kms:GetPublicKey and kms:Sign on it",
                    Failure::from_sdk(&e).detail
                )
            })?
            .key_metadata
            .context("KMS DescribeKey returned no key metadata")?;
        let arn = meta.arn().unwrap_or(key).to_owned();
        if meta.key_usage() != Some(&KeyUsageType::SignVerify)
            || !meta
                .signing_algorithms()
                .contains(&SigningAlgorithmSpec::RsassaPkcs1V15Sha256)
        {
            bail!(
                "--sign {key}: {arn} is not an RSA signing key (KeyUsage SIGN_VERIFY with \
                 RSASSA_PKCS1_V1_5_SHA_256); create one with KeySpec RSA_2048 or larger and \
                 KeyUsage SIGN_VERIFY for reports"
            );
        }
        let der = keys::manifest_key_der(aws, region, &arn).await?;
        let public = PublicKey::from_der("report", &der)
            .with_context(|| format!("--sign {key}: KMS returned a public key that is not RSA"))?;
        // Compared by public key, not by name: an alias, an ARN or a multi-Region replica of the
        // manifest key is the manifest key. Not knowing is not a pass.
        if let Some(manifest_key) = manifest_key {
            let manifest = keys::manifest_key_der(aws, region, manifest_key)
                .await
                .with_context(|| {
                    format!(
                        "cannot check that --sign {key} is not the manifest signing key \
                         (archive.signing_key {manifest_key})"
                    )
                })?;
            if manifest == der {
                bail!(
                    "--sign {key}: {arn} is the manifest signing key (archive.signing_key); a \
                     report must be signed with a key of its own, so that a report signature \
                     can never stand in for a manifest's: create another RSA SIGN_VERIFY key \
                     for reports"
                );
            }
        }
        Ok(Signer {
            kms,
            key_arn: arn,
            fingerprint: public.spki_sha256(),
        })
    }

    /// Signs the report whose bytes are `report`, named `name`.
    pub async fn sign(&self, name: &str, report: &[u8]) -> anyhow::Result<SignatureFile> {
        let mut sig = SignatureFile {
            format: FORMAT.to_owned(),
            report: name.to_owned(),
            report_sha256: sha256_hex(report),
            key_arn: self.key_arn.clone(),
            key_fingerprint: self.fingerprint.clone(),
            algorithm: ALGORITHM.to_owned(),
            signature: String::new(),
            signed_at: layout::rfc3339(OffsetDateTime::now_utc()),
        };
        let out = self
            .kms
            .sign()
            .key_id(&self.key_arn)
            .message(Blob::new(message(&sig).into_bytes()))
            .message_type(MessageType::Raw)
            .signing_algorithm(SigningAlgorithmSpec::RsassaPkcs1V15Sha256)
            .send()
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "cannot sign the report with {}: {}; you need kms:Sign on it",
                    self.key_arn,
                    Failure::from_sdk(&e).detail
                )
            })?;
        sig.signature = match out.signature() {
            Some(s) if !s.as_ref().is_empty() => hex::encode(s.as_ref()),
            _ => bail!(
                "KMS returned no signature for the report ({})",
                self.key_arn
            ),
        };
        Ok(sig)
    }
}

#[derive(Debug, clap::Subcommand)]
pub enum ReportCommand {
    /// Check a report file against its signature, offline: exit 0 when the file is the one
    /// that was signed, by the key given; 1 when it is not; 2 when it cannot be checked.
    Check(CheckArgs),
    /// Print the public half of a report signing key in PEM (kms:GetPublicKey), for
    /// `trailvault report check --public-key`.
    PublicKey(PublicKeyArgs),
}

#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// The report (`verify --report FILE.html`).
    pub report: PathBuf,
    /// The signature file [default: the report's path with `.sig` added].
    #[arg(long, value_name = "FILE")]
    pub signature: Option<PathBuf>,
    /// The signing key's public half in PEM (`trailvault report public-key`), obtained and
    /// trusted beforehand: the signature file names its key but cannot vouch for it.
    #[arg(long, value_name = "PEM")]
    pub public_key: PathBuf,
}

#[derive(Debug, clap::Args)]
pub struct PublicKeyArgs {
    #[command(flatten)]
    pub config: ConfigOption,
    /// The report signing key: id, ARN or alias.
    #[arg(long, value_name = "KEY")]
    pub key: String,
    /// Write it to this file instead of standard output.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

pub async fn run(command: ReportCommand) -> anyhow::Result<ExitCode> {
    match command {
        ReportCommand::Check(args) => match check(&args) {
            Ok(Checked::Valid(text)) => {
                println!("{text}");
                Ok(ExitCode::SUCCESS)
            }
            Ok(Checked::Invalid(text)) => {
                println!("INVALID: {text}");
                Ok(ExitCode::from(1))
            }
            Err(err) => {
                eprintln!("error: {err:#}");
                Ok(ExitCode::from(2))
            }
        },
        ReportCommand::PublicKey(args) => {
            let (config, _) = args.config.load()?;
            let aws = Aws::load(&config.aws).await;
            let der = keys::manifest_key_der(&aws, &config.archive.region, &args.key).await?;
            super::manifest::write_pem(&der, args.out.as_deref())?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

enum Checked {
    Valid(String),
    Invalid(String),
}

fn check(args: &CheckArgs) -> anyhow::Result<Checked> {
    let sig_path = args
        .signature
        .clone()
        .unwrap_or_else(|| signature_path(&args.report));
    let report = std::fs::read(&args.report)
        .with_context(|| format!("cannot read the report {}", args.report.display()))?;
    let sig_text = std::fs::read_to_string(&sig_path).with_context(|| {
        format!(
            "cannot read the signature {} (give it with --signature)",
            sig_path.display()
        )
    })?;
    let sig: SignatureFile = serde_json::from_str(&sig_text).with_context(|| {
        format!(
            "{} is not a trailvault report signature (JSON with format {FORMAT})",
            sig_path.display()
        )
    })?;
    if sig.format != FORMAT || sig.algorithm != ALGORITHM {
        bail!(
            "{}: format {:?} with algorithm {:?}; this trailvault checks {FORMAT} with {ALGORITHM}",
            sig_path.display(),
            sig.format,
            sig.algorithm
        );
    }
    let public = keys::manifest_key_from_pem(&args.public_key)?;
    let actual = sha256_hex(&report);
    if actual != sig.report_sha256 {
        return Ok(Checked::Invalid(format!(
            "{} has SHA-256 {actual}, but the signature is for {}: the file was changed after \
             it was signed",
            args.report.display(),
            sig.report_sha256
        )));
    }
    if public.spki_sha256() != sig.key_fingerprint {
        return Ok(Checked::Invalid(format!(
            "{}: signature verification failed: the key in {} (public key SHA-256 {}) is not \
             the key the signature file names ({}, public key SHA-256 {})",
            args.report.display(),
            args.public_key.display(),
            public.spki_sha256(),
            layout::printable(&sig.key_arn),
            layout::printable(&sig.key_fingerprint)
        )));
    }
    if public
        .verify(message(&sig).as_bytes(), &sig.signature)
        .is_err()
    {
        return Ok(Checked::Invalid(format!(
            "{}: signature verification failed: the signature does not match what the \
             signature file says (the report's SHA-256, its name, the key, the time); the file \
             or its signature was changed",
            args.report.display()
        )));
    }
    Ok(Checked::Valid(format!(
        "valid: {} (SHA-256 {actual}, signed as {}) was signed by {} (public key SHA-256 {}) \
         at {}",
        args.report.display(),
        layout::printable(&sig.report),
        layout::printable(&sig.key_arn),
        public.spki_sha256(),
        layout::printable(&sig.signed_at)
    )))
}
