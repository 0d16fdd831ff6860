//! What the integration tests share: the emulator's address, a fresh organization per test,
//! and the identities to act with.
#![allow(dead_code)] // each test binary uses its own part of this module

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use aws_config::BehaviorVersion;
use aws_runtime::env_config::file::{EnvConfigFileKind, EnvConfigFiles};
use trailvault::aws::Aws;
use trailvault::config::Config;
use trailvault_devstack::deliver;
use trailvault_devstack::provision;
use trailvault_devstack::session::Session;
use trailvault_devstack::state::{Delivery, Stack};

/// The emulator the test command started (`infra/local/emulator run -- ...`).
pub fn endpoint() -> String {
    std::env::var("TRAILVAULT_EMULATOR_ENDPOINT").unwrap_or_else(|_| {
        panic!(
            "TRAILVAULT_EMULATOR_ENDPOINT is not set: the integration tests need the local AWS \
             emulator. Run them with infra/test, or start one (infra/local/emulator start) and \
             export TRAILVAULT_EMULATOR_ENDPOINT=$(infra/local/emulator endpoint)"
        )
    })
}

/// A namespace no other test (in this or another process) uses: its own organization,
/// accounts, buckets and queues.
pub fn unique_namespace(tag: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .subsec_nanos();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let raw = format!("{:x}{:x}{n:x}", std::process::id(), nanos);
    let suffix = &raw[raw.len().saturating_sub(16 - tag.len() - 1)..];
    format!("{tag}-{suffix}")
}

/// A provisioned organization, its state directory removed when dropped.
pub struct TestStack {
    pub stack: Stack,
    pub dir: tempfile::TempDir,
}

impl TestStack {
    /// Provisions a fresh organization: `members` member accounts in two regions, with the
    /// given notification deliveries.
    pub async fn up(tag: &str, members: usize, deliveries: &[Delivery]) -> TestStack {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let opts = provision::Options {
            endpoint: endpoint(),
            namespace: unique_namespace(tag),
            seed: 42,
            regions: vec!["us-east-1".to_owned(), "eu-west-1".to_owned()],
            members,
            deliveries: deliveries.to_vec(),
        };
        let stack = provision::up(&opts, dir.path())
            .await
            .expect("provisioning the organization");
        TestStack { stack, dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Runs CloudTrail for `hours` digest periods with `files` log files per account and
    /// region.
    pub async fn deliver(&mut self, hours: u32, files: u32) -> Vec<deliver::TrailReport> {
        deliver::deliver(
            &mut self.stack,
            self.dir.path(),
            &deliver::Options {
                start: None,
                hours,
                files,
            },
        )
        .await
        .expect("delivering CloudTrail files")
    }

    /// The trailvault configuration `devstack up` wrote.
    pub fn config(&self) -> Config {
        Config::load(&self.dir.path().join("trailvault.toml"))
            .expect("the devstack's config is valid")
    }

    /// Clients acting as the worker role, reached the way the local worker reaches it: the
    /// devstack's AWS profile (an IAM user that assumes the role).
    pub async fn worker(&self) -> Aws {
        let files = EnvConfigFiles::builder()
            .with_file(
                EnvConfigFileKind::Config,
                self.dir.path().join("aws/config"),
            )
            .with_file(
                EnvConfigFileKind::Credentials,
                self.dir.path().join("aws/credentials"),
            )
            .build();
        let sdk = aws_config::defaults(BehaviorVersion::latest())
            .profile_files(files)
            .profile_name("trailvault-worker")
            .load()
            .await;
        Aws::from_sdk_config(sdk, &self.config().aws)
    }

    /// An administrator of `account` (through the organization's access role).
    pub async fn admin(&self, account: &str) -> Session {
        Session::management(&self.stack.endpoint, &self.stack.management_account)
            .await
            .expect("the emulator endpoint is local")
            .admin(account)
            .await
    }
}

/// The virtualenv the emulator script created (moto and the AWS CLI).
pub fn venv_python() -> PathBuf {
    let venv = std::env::var_os("TRAILVAULT_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(".trailvault/venv"));
    venv.join("bin/python")
}

/// Every object of a bucket: (key, size).
pub async fn list(s3: &aws_sdk_s3::Client, bucket: &str) -> Vec<(String, i64)> {
    let mut out = Vec::new();
    let mut pages = s3.list_objects_v2().bucket(bucket).into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.expect("ListObjectsV2");
        for o in page.contents() {
            out.push((
                o.key().unwrap_or_default().to_owned(),
                o.size().unwrap_or(0),
            ));
        }
    }
    out
}

/// An object's bytes and its response metadata.
pub async fn get(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
) -> (Vec<u8>, aws_sdk_s3::operation::get_object::GetObjectOutput) {
    let mut out = s3
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GetObject s3://{bucket}/{key}: {e:?}"));
    let body = std::mem::replace(
        &mut out.body,
        aws_sdk_s3::primitives::ByteStream::from_static(b""),
    );
    let bytes = body
        .collect()
        .await
        .expect("reading the body")
        .into_bytes()
        .to_vec();
    (bytes, out)
}
