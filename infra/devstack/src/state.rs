//! What the devstack provisioned, written to `STATE_DIR/devstack.json` by `up` and read by
//! `deliver` and `status` (and by the tests).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

pub const STATE_FILE: &str = "devstack.json";

/// The simulated organization.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Stack {
    pub endpoint: String,
    pub namespace: String,
    pub seed: u64,
    pub regions: Vec<String>,
    pub organization_id: String,
    pub management_account: String,
    pub security: Security,
    pub members: Vec<Member>,
    /// The last digest of every (account, region) trail, so that the next delivery chains to it.
    #[serde(default)]
    pub chains: BTreeMap<String, ChainHead>,
}

/// The security (archive) account.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Security {
    pub account: String,
    pub archive_bucket: String,
    pub archive_region: String,
    pub kms_key_arn: String,
    pub signing_key_arn: String,
    pub worker_role_arn: String,
    /// The IAM user whose access key stands in for the ECS task role on this machine; it may
    /// only assume the worker role.
    pub local_user_arn: String,
    pub queues: Vec<CentralQueue>,
}

/// One region's notification queue, its dead-letter queue, and the event bus that feeds it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CentralQueue {
    pub region: String,
    pub url: String,
    pub arn: String,
    pub dlq_url: String,
    pub dlq_arn: String,
    pub event_bus_arn: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Member {
    /// The member's position in the organization (0, 1, 2...): what the generated activity
    /// depends on, so that the same seed gives the same logs whatever ids the emulator assigns.
    pub slot: usize,
    pub account: String,
    pub name: String,
    pub external_id: String,
    pub reader_role_arn: String,
    pub layout: Layout,
    pub trail_name: String,
    pub buckets: Vec<MemberBucket>,
}

/// Where CloudTrail puts a member's files in its bucket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Layout {
    /// `AWSLogs/ACCOUNT/...`
    Plain,
    /// `PREFIX/AWSLogs/ACCOUNT/...` (the trail's S3 key prefix)
    Prefixed { prefix: String },
    /// `AWSLogs/o-ORGID/ACCOUNT/...` (an organization trail)
    Organization { organization_id: String },
}

impl Layout {
    /// `[prefix/]AWSLogs/[o-ID/]ACCOUNT/`
    pub fn account_root(&self, account: &str) -> String {
        match self {
            Layout::Plain => format!("AWSLogs/{account}/"),
            Layout::Prefixed { prefix } => format!("{prefix}/AWSLogs/{account}/"),
            Layout::Organization { organization_id } => {
                format!("AWSLogs/{organization_id}/{account}/")
            }
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MemberBucket {
    pub region: String,
    pub name: String,
    pub delivery: Delivery,
    /// The same-account queue the emulator delivers this bucket's notifications to, for the
    /// devstack to carry across to the central queue (see [`Delivery`]).
    pub relay_queue_url: Option<String>,
    /// The topic S3 (or CloudTrail) publishes to, for the SNS deliveries.
    pub topic_arn: Option<String>,
}

/// How a bucket's notifications reach the central queue of its region.
///
/// Real S3, SNS and EventBridge deliver across accounts; the emulator delivers S3 and SNS
/// notifications only to a queue in the bucket's own account. So every notification body is
/// produced by the emulator itself, from the real write, into a relay queue in the member
/// account; the devstack then moves each body byte-for-byte to the central queue. EventBridge's
/// cross-account bus target does work in the emulator, so that path needs no relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Delivery {
    /// S3 event notification straight to the queue (the Terraform member module's choice).
    S3,
    /// S3 event notification through an SNS topic: the queue gets the SNS envelope.
    Sns,
    /// S3 EventBridge notifications, forwarded from the member's default bus to the
    /// security account's bus, whose rule targets the queue.
    Eventbridge,
    /// CloudTrail's own SNS message (`s3Bucket`, `s3ObjectKey[]`) for log files, through SNS;
    /// digests, which CloudTrail does not announce, by an S3 notification on their prefix.
    CloudtrailSns,
}

impl Delivery {
    pub const ALL: [Delivery; 4] = [
        Delivery::S3,
        Delivery::Sns,
        Delivery::Eventbridge,
        Delivery::CloudtrailSns,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Delivery::S3 => "s3",
            Delivery::Sns => "sns",
            Delivery::Eventbridge => "eventbridge",
            Delivery::CloudtrailSns => "cloudtrail-sns",
        }
    }
}

impl std::str::FromStr for Delivery {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Delivery::ALL
            .into_iter()
            .find(|d| d.label() == s)
            .ok_or_else(|| {
                format!("unknown delivery {s:?}; use s3, sns, eventbridge or cloudtrail-sns")
            })
    }
}

/// The newest digest of one trail and region.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainHead {
    pub bucket: String,
    pub key: String,
    /// RFC 3339, the digest's `digestEndTime`.
    pub end_time: String,
    /// Hex signature, as in the digest's metadata.
    pub signature: String,
    /// Hex SHA-256 of the digest's decompressed bytes.
    pub sha256: String,
}

impl Stack {
    pub fn path(dir: &Path) -> PathBuf {
        dir.join(STATE_FILE)
    }

    pub fn load(dir: &Path) -> anyhow::Result<Stack> {
        let path = Stack::path(dir);
        let text = std::fs::read_to_string(&path).with_context(|| {
            format!(
                "cannot read {}; provision the organization first with `devstack up`",
                path.display()
            )
        })?;
        serde_json::from_str(&text)
            .with_context(|| format!("{} is not a devstack state file", path.display()))
    }

    pub fn save(&self, dir: &Path) -> anyhow::Result<()> {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let path = Stack::path(dir);
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(self)?)
            .with_context(|| format!("cannot write {}", tmp.display()))?;
        std::fs::rename(&tmp, &path).with_context(|| format!("cannot write {}", path.display()))
    }

    pub fn queue(&self, region: &str) -> anyhow::Result<&CentralQueue> {
        self.security
            .queues
            .iter()
            .find(|q| q.region == region)
            .with_context(|| format!("no central queue in {region}"))
    }

    pub fn chain_key(account: &str, region: &str) -> String {
        format!("{account}/{region}")
    }
}
