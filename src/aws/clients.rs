//! Building AWS clients: one base `SdkConfig` (standard credential chain, optional endpoint
//! override), one client per service and region, and per member account an assume-role
//! credentials provider with its own identity cache.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_config::identity::IdentityCache;
use aws_config::sts::AssumeRoleProvider;
use aws_config::{BehaviorVersion, SdkConfig};
use aws_credential_types::provider::SharedCredentialsProvider;

use crate::config::{Account, AccountId, AwsSettings, Region, RoleArn};

/// Assumed-role credentials are renewed this long before they expire, so that a copy that
/// starts just before expiry never signs a request with stale credentials.
const REFRESH_BEFORE_EXPIRY: Duration = Duration::from_secs(5 * 60);

/// The session name every member account sees in its own CloudTrail for trailvault's reads.
pub const SESSION_NAME: &str = "trailvault";

/// Builds clients for the security account (the worker's own identity).
#[derive(Debug, Clone)]
pub struct Aws {
    base: SdkConfig,
    force_path_style: bool,
}

impl Aws {
    /// Loads credentials and settings from the standard AWS chain (environment, profile, ECS
    /// task role, instance metadata), with the configured endpoint override on top.
    pub async fn load(settings: &AwsSettings) -> Aws {
        let mut loader = aws_config::defaults(BehaviorVersion::latest());
        if let Some(url) = &settings.endpoint_url {
            loader = loader.endpoint_url(url);
        }
        Aws {
            base: loader.load().await,
            force_path_style: settings.force_path_style,
        }
    }

    /// Uses a ready `SdkConfig` (tests bring their own credentials this way); the endpoint
    /// override in `settings` still applies.
    pub fn from_sdk_config(base: SdkConfig, settings: &AwsSettings) -> Aws {
        let base = match &settings.endpoint_url {
            Some(url) => base.into_builder().endpoint_url(url).build(),
            None => base,
        };
        Aws {
            base,
            force_path_style: settings.force_path_style,
        }
    }

    fn in_region(&self, region: &Region) -> SdkConfig {
        self.base
            .to_builder()
            .region(aws_config::Region::new(region.to_string()))
            .build()
    }

    pub fn s3(&self, region: &Region) -> aws_sdk_s3::Client {
        s3_client(&self.in_region(region), self.force_path_style)
    }

    pub fn sqs(&self, region: &Region) -> aws_sdk_sqs::Client {
        aws_sdk_sqs::Client::new(&self.in_region(region))
    }

    pub fn kms(&self, region: &Region) -> aws_sdk_kms::Client {
        aws_sdk_kms::Client::new(&self.in_region(region))
    }

    pub fn sts(&self, region: &Region) -> aws_sdk_sts::Client {
        aws_sdk_sts::Client::new(&self.in_region(region))
    }

    pub fn sns(&self, region: &Region) -> aws_sdk_sns::Client {
        aws_sdk_sns::Client::new(&self.in_region(region))
    }

    pub fn events(&self, region: &Region) -> aws_sdk_eventbridge::Client {
        aws_sdk_eventbridge::Client::new(&self.in_region(region))
    }

    pub fn cloudtrail(&self, region: &Region) -> aws_sdk_cloudtrail::Client {
        aws_sdk_cloudtrail::Client::new(&self.in_region(region))
    }

    pub fn organizations(&self, region: &Region) -> aws_sdk_organizations::Client {
        aws_sdk_organizations::Client::new(&self.in_region(region))
    }

    /// A configuration that acts as `role` (assumed through STS in `sts_region`, renewed by
    /// the SDK), for clients in `region`.
    pub async fn assumed(
        &self,
        role: &RoleArn,
        external_id: Option<&str>,
        sts_region: &Region,
        region: &Region,
    ) -> SdkConfig {
        let mut provider = AssumeRoleProvider::builder(role.as_str())
            .session_name(SESSION_NAME)
            .region(aws_config::Region::new(sts_region.to_string()));
        if let Some(external_id) = external_id {
            provider = provider.external_id(external_id);
        }
        let provider = provider.configure(&self.base).build().await;
        self.base
            .to_builder()
            .region(aws_config::Region::new(region.to_string()))
            .credentials_provider(SharedCredentialsProvider::new(provider))
            .identity_cache(
                IdentityCache::lazy()
                    .buffer_time(REFRESH_BEFORE_EXPIRY)
                    .build(),
            )
            .build()
    }

    /// Clients that act as `account`'s reader role, assumed with its ExternalId. STS is called
    /// in `sts_region` through the same endpoint as every other client.
    pub async fn member(&self, account: &Account, sts_region: &Region) -> MemberClients {
        let provider = AssumeRoleProvider::builder(account.reader_role_arn.as_str())
            .external_id(&account.external_id)
            .session_name(SESSION_NAME)
            .region(aws_config::Region::new(sts_region.to_string()))
            .configure(&self.base)
            .build()
            .await;
        // One cache per account, shared by the clients of every region: the role is assumed
        // once and renewed ahead of expiry by the SDK, never by hand.
        let sdk = self
            .base
            .to_builder()
            .credentials_provider(SharedCredentialsProvider::new(provider))
            .identity_cache(
                IdentityCache::lazy()
                    .buffer_time(REFRESH_BEFORE_EXPIRY)
                    .build(),
            )
            .build();
        MemberClients {
            account: account.id.clone(),
            sdk,
            force_path_style: self.force_path_style,
            s3: Arc::default(),
        }
    }
}

/// Member-account clients, made on first use and kept, so that each account's role is
/// assumed once (and renewed by the SDK) however many copies need it. Accounts discovered
/// while the worker runs get theirs the same way.
#[derive(Debug)]
pub struct Members {
    aws: Aws,
    sts_region: Region,
    /// By account and role: a changed role (or ExternalId) gets new clients.
    by_account: Mutex<HashMap<(String, String, String), MemberClients>>,
}

impl Members {
    pub fn new(aws: &Aws, sts_region: &Region) -> Members {
        Members {
            aws: aws.clone(),
            sts_region: sts_region.clone(),
            by_account: Mutex::default(),
        }
    }

    pub async fn get(&self, account: &Account) -> MemberClients {
        let key = (
            account.id.to_string(),
            account.reader_role_arn.to_string(),
            account.external_id.clone(),
        );
        if let Some(clients) = self.by_account.lock().expect("members lock").get(&key) {
            return clients.clone();
        }
        // Built outside the lock; two tasks racing on a new account build two, keep one.
        let clients = self.aws.member(account, &self.sts_region).await;
        self.by_account
            .lock()
            .expect("members lock")
            .entry(key)
            .or_insert(clients)
            .clone()
    }
}

/// Clients acting as one member account's reader role.
#[derive(Debug, Clone)]
pub struct MemberClients {
    account: AccountId,
    sdk: SdkConfig,
    force_path_style: bool,
    /// One S3 client per region, made once: every bucket is read in its own region.
    s3: Arc<Mutex<HashMap<String, aws_sdk_s3::Client>>>,
}

impl MemberClients {
    pub fn account(&self) -> &AccountId {
        &self.account
    }

    pub fn s3(&self, region: &Region) -> aws_sdk_s3::Client {
        let mut clients = self.s3.lock().expect("s3 clients lock");
        clients
            .entry(region.to_string())
            .or_insert_with(|| {
                let conf = self
                    .sdk
                    .to_builder()
                    .region(aws_config::Region::new(region.to_string()))
                    .build();
                s3_client(&conf, self.force_path_style)
            })
            .clone()
    }

    pub fn cloudtrail(&self, region: &Region) -> aws_sdk_cloudtrail::Client {
        let conf = self
            .sdk
            .to_builder()
            .region(aws_config::Region::new(region.to_string()))
            .build();
        aws_sdk_cloudtrail::Client::new(&conf)
    }

    pub fn sts(&self, region: &Region) -> aws_sdk_sts::Client {
        let conf = self
            .sdk
            .to_builder()
            .region(aws_config::Region::new(region.to_string()))
            .build();
        aws_sdk_sts::Client::new(&conf)
    }
}

fn s3_client(conf: &SdkConfig, force_path_style: bool) -> aws_sdk_s3::Client {
    let conf = aws_sdk_s3::config::Builder::from(conf)
        .force_path_style(force_path_style)
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}
