//! `trailvault manifest public-key`: the manifest signing key's public half, in PEM, for
//! auditors who verify offline.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context as _};
use rsa::pkcs8::{DecodePublicKey as _, EncodePublicKey as _, LineEnding};

use crate::aws::Aws;
use crate::cli::args::ConfigOption;
use crate::verify::keys;

#[derive(Debug, clap::Subcommand)]
pub enum ManifestCommand {
    /// Print the public half of archive.signing_key in PEM (from KMS GetPublicKey), for
    /// `trailvault verify --manifest-public-key`.
    PublicKey(PublicKeyArgs),
}

#[derive(Debug, clap::Args)]
pub struct PublicKeyArgs {
    #[command(flatten)]
    pub config: ConfigOption,
    /// Write it to this file instead of standard output.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

/// A DER public key from KMS written as PEM, to `out` or standard output: what auditors keep
/// to verify offline.
pub(crate) fn write_pem(der: &[u8], out: Option<&std::path::Path>) -> anyhow::Result<()> {
    let pem = rsa::RsaPublicKey::from_public_key_der(der)
        .context("KMS returned a public key that is not RSA")?
        .to_public_key_pem(LineEnding::LF)
        .context("cannot write the key as PEM")?;
    match out {
        Some(path) => std::fs::write(path, &pem)
            .with_context(|| format!("cannot write {}", path.display()))?,
        None => print!("{pem}"),
    }
    Ok(())
}

pub async fn run(command: ManifestCommand) -> anyhow::Result<ExitCode> {
    match command {
        ManifestCommand::PublicKey(args) => {
            let (config, source) = args.config.load()?;
            let Some(key) = &config.archive.signing_key else {
                bail!("archive.signing_key is not set in {source}: this archive has no manifests");
            };
            let aws = Aws::load(&config.aws).await;
            let der = keys::manifest_key_der(&aws, &config.archive.region, key.as_str()).await?;
            write_pem(&der, args.out.as_deref())?;
            Ok(ExitCode::SUCCESS)
        }
    }
}
