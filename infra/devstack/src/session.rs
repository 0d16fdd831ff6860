//! Acting as an account of the simulated organization.
//!
//! The emulator decides the account from the credentials: the base credentials act as its
//! default account, and `AssumeRole` into `arn:aws:iam::ACCOUNT:role/NAME` yields credentials
//! that act as `ACCOUNT`. So the devstack works as a real administrator would: it assumes a role
//! into the management account, creates the organization there, and reaches every new account
//! through its `OrganizationAccountAccessRole`.

use aws_config::sts::AssumeRoleProvider;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_credential_types::Credentials;

/// The role Organizations creates in every account it creates, trusted by the management
/// account.
pub const ADMIN_ROLE: &str = "OrganizationAccountAccessRole";

/// An identity in one account, able to build clients for any region.
#[derive(Debug, Clone)]
pub struct Session {
    pub account: String,
    sdk: SdkConfig,
}

impl Session {
    /// The emulator's own (default-account) identity, with throwaway static credentials.
    pub async fn emulator_root(endpoint: &str) -> anyhow::Result<Session> {
        ensure_loopback(endpoint)?;
        let sdk = aws_config::defaults(BehaviorVersion::latest())
            .endpoint_url(endpoint)
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new(
                "devstack", "devstack", None, None, "devstack",
            ))
            .load()
            .await;
        Ok(Session {
            account: "123456789012".to_owned(),
            sdk,
        })
    }

    /// The administrator of an organization's management account.
    pub async fn management(endpoint: &str, management_account: &str) -> anyhow::Result<Session> {
        Ok(Session::emulator_root(endpoint)
            .await?
            .assume(management_account, ADMIN_ROLE)
            .await)
    }

    /// An administrator of `account`, reached from this (management) session.
    pub async fn admin(&self, account: &str) -> Session {
        self.assume(account, ADMIN_ROLE).await
    }

    /// Assumes `role_name` in `account`, starting from this session.
    pub async fn assume(&self, account: &str, role_name: &str) -> Session {
        let provider =
            AssumeRoleProvider::builder(format!("arn:aws:iam::{account}:role/{role_name}"))
                .session_name("devstack")
                .configure(&self.sdk)
                .build()
                .await;
        let sdk = self
            .sdk
            .to_builder()
            .credentials_provider(SharedCredentialsProvider::new(provider))
            .build();
        Session {
            account: account.to_owned(),
            sdk,
        }
    }

    /// The same identity with static credentials (an IAM user's access key).
    pub fn with_keys(&self, account: &str, access_key: &str, secret: &str) -> Session {
        let sdk = self
            .sdk
            .to_builder()
            .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
                access_key, secret, None, None, "devstack",
            )))
            .build();
        Session {
            account: account.to_owned(),
            sdk,
        }
    }

    pub fn config(&self, region: &str) -> SdkConfig {
        self.sdk
            .to_builder()
            .region(Region::new(region.to_owned()))
            .build()
    }

    pub fn s3(&self, region: &str) -> aws_sdk_s3::Client {
        let conf = aws_sdk_s3::config::Builder::from(&self.config(region))
            .force_path_style(true)
            .build();
        aws_sdk_s3::Client::from_conf(conf)
    }

    pub fn sqs(&self, region: &str) -> aws_sdk_sqs::Client {
        aws_sdk_sqs::Client::new(&self.config(region))
    }

    pub fn sns(&self, region: &str) -> aws_sdk_sns::Client {
        aws_sdk_sns::Client::new(&self.config(region))
    }

    pub fn kms(&self, region: &str) -> aws_sdk_kms::Client {
        aws_sdk_kms::Client::new(&self.config(region))
    }

    pub fn events(&self, region: &str) -> aws_sdk_eventbridge::Client {
        aws_sdk_eventbridge::Client::new(&self.config(region))
    }

    pub fn cloudtrail(&self, region: &str) -> aws_sdk_cloudtrail::Client {
        aws_sdk_cloudtrail::Client::new(&self.config(region))
    }

    pub fn iam(&self) -> aws_sdk_iam::Client {
        aws_sdk_iam::Client::new(&self.config("us-east-1"))
    }

    pub fn organizations(&self) -> aws_sdk_organizations::Client {
        aws_sdk_organizations::Client::new(&self.config("us-east-1"))
    }

    pub fn sts(&self, region: &str) -> aws_sdk_sts::Client {
        aws_sdk_sts::Client::new(&self.config(region))
    }
}

/// The devstack provisions with broad, throwaway identities: it must never talk to anything
/// but an emulator on this machine.
pub fn ensure_loopback(endpoint: &str) -> anyhow::Result<()> {
    let host = endpoint
        .strip_prefix("http://")
        .and_then(|rest| rest.split(['/', ':']).next())
        .unwrap_or_default();
    if matches!(host, "127.0.0.1" | "localhost" | "[::1]") {
        Ok(())
    } else {
        anyhow::bail!(
            "the devstack only talks to a local emulator (http://127.0.0.1:PORT), not {endpoint:?}; \
             start one with infra/local/emulator start"
        )
    }
}
