//! `devstack up`: the organization, its accounts, and everything a real trailvault
//! deployment has, provisioned into the emulator through the AWS SDK.

use std::path::Path;

use anyhow::{bail, Context as _};
use aws_sdk_s3::types as s3t;
use aws_sdk_sqs::types::QueueAttributeName;
use serde_json::json;
use sha2::{Digest as _, Sha256};

use crate::session::Session;
use crate::state::{CentralQueue, Delivery, Layout, Member, MemberBucket, Security, Stack};
use crate::trail::{derive_seed, SigningKey};

/// What to provision.
#[derive(Debug, Clone)]
pub struct Options {
    pub endpoint: String,
    pub namespace: String,
    pub seed: u64,
    /// The first is the home region: archive bucket, KMS keys.
    pub regions: Vec<String>,
    pub members: usize,
    /// Assigned round-robin to the (member, region) buckets.
    pub deliveries: Vec<Delivery>,
}

pub const WORKER_ROLE: &str = "trailvault-worker";
pub const READER_ROLE: &str = "trailvault-reader";
pub const LOCAL_USER: &str = "trailvault-local";

/// Queue settings that a real deployment would use too.
const VISIBILITY_TIMEOUT_SECS: &str = "300";
const QUEUE_RETENTION_SECS: &str = "345600"; // 4 days
const DLQ_RETENTION_SECS: &str = "1209600"; // 14 days, longer than the queue's
const MAX_RECEIVE_COUNT: u32 = 5;

pub fn validate_namespace(ns: &str) -> anyhow::Result<()> {
    let ok = (1..=16).contains(&ns.len())
        && ns
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !ns.starts_with('-')
        && !ns.ends_with('-');
    if !ok {
        bail!("namespace {ns:?}: use 1 to 16 lowercase letters, digits and inner hyphens (it goes into bucket names)");
    }
    Ok(())
}

/// The management account of a namespace: its own organization, so that namespaces (the demo,
/// each test) never see each other's accounts in the one emulator.
pub fn management_account(namespace: &str) -> String {
    let hash = Sha256::digest(format!("trailvault-devstack-management/{namespace}"));
    let n = u64::from_be_bytes(hash[..8].try_into().expect("8 bytes")) % 1_000_000_000_000;
    let id = format!("{n:012}");
    if id == "123456789012" {
        "210987654321".to_owned()
    } else {
        id
    }
}

/// Provisions the organization and writes its description, a trailvault configuration, the
/// worker's local AWS profile and CloudTrail's public keys into `dir`.
pub async fn up(opts: &Options, dir: &Path) -> anyhow::Result<Stack> {
    validate_namespace(&opts.namespace)?;
    if opts.regions.is_empty() || opts.members == 0 || opts.deliveries.is_empty() {
        bail!("need at least one region, one member account and one delivery kind");
    }
    if let Ok(existing) = Stack::load(dir) {
        if existing.endpoint == opts.endpoint && existing.namespace == opts.namespace {
            let mgmt = Session::management(&opts.endpoint, &existing.management_account).await?;
            if mgmt
                .organizations()
                .describe_organization()
                .send()
                .await
                .is_ok()
            {
                eprintln!(
                    "devstack: namespace {} is already provisioned at {} (organization {}); nothing to do",
                    existing.namespace, existing.endpoint, existing.organization_id
                );
                return Ok(existing);
            }
        }
    }

    let Accounts {
        management: mgmt,
        organization_id,
        security: security_account,
        members: member_accounts,
    } = accounts(&opts.endpoint, &opts.namespace, opts.members, dir).await?;

    let sec = mgmt.admin(&security_account).await;
    let security = provision_security(&sec, opts, &member_accounts).await?;

    let mut members = Vec::new();
    let mut pair = 0;
    for (slot, account) in member_accounts.iter().enumerate() {
        let session = mgmt.admin(account).await;
        let layout = match slot {
            1 => Layout::Prefixed {
                prefix: "audit/cloudtrail".to_owned(),
            },
            2 => Layout::Organization {
                organization_id: organization_id.clone(),
            },
            _ => Layout::Plain,
        };
        let mut deliveries = Vec::new();
        for _ in &opts.regions {
            deliveries.push(opts.deliveries[pair % opts.deliveries.len()]);
            pair += 1;
        }
        let member =
            provision_member(&session, opts, slot, &layout, &deliveries, &security, None).await?;
        members.push(member);
    }

    let stack = Stack {
        endpoint: opts.endpoint.clone(),
        namespace: opts.namespace.clone(),
        seed: opts.seed,
        regions: opts.regions.clone(),
        organization_id,
        management_account: mgmt.account.clone(),
        security,
        members,
        chains: Default::default(),
    };
    write_outputs(&stack, &sec, dir).await?;
    stack.save(dir)?;
    Ok(stack)
}

/// A member account the organization gains after `up`: created in the organization, set up
/// like the others (buckets, notifications, reader role), with a CloudTrail trail per bucket
/// (so that its buckets can be found through CloudTrail), and added to the stack, but not to
/// trailvault's configuration: that is what organization discovery is for.
pub async fn add_member(
    stack: &mut Stack,
    dir: &Path,
    external_id: &str,
) -> anyhow::Result<Member> {
    let mgmt = Session::management(&stack.endpoint, &stack.management_account).await?;
    let org = mgmt.organizations();
    let slot = stack.members.len();
    let id = create_account(&org, &format!("member-{}", slot + 1), &stack.namespace).await?;
    let session = mgmt.admin(&id).await;
    let opts = Options {
        endpoint: stack.endpoint.clone(),
        namespace: stack.namespace.clone(),
        seed: stack.seed,
        regions: stack.regions.clone(),
        members: slot + 1,
        deliveries: vec![Delivery::S3],
    };
    let deliveries = vec![Delivery::S3; stack.regions.len()];
    let member = provision_member(
        &session,
        &opts,
        slot,
        &Layout::Plain,
        &deliveries,
        &stack.security,
        Some(external_id),
    )
    .await?;
    for bucket in &member.buckets {
        session
            .cloudtrail(&bucket.region)
            .create_trail()
            .name(format!("{}-{}", member.trail_name, bucket.region))
            .s3_bucket_name(&bucket.name)
            .enable_log_file_validation(true)
            .send()
            .await
            .with_context(|| format!("CloudTrail CreateTrail in {id} {}", bucket.region))?;
    }
    stack.members.push(member.clone());
    stack.save(dir)?;
    Ok(member)
}

/// An organization of a namespace's own: its management account, a security account and
/// `members` member accounts, each reachable through its `OrganizationAccountAccessRole`.
pub struct Accounts {
    pub management: Session,
    pub organization_id: String,
    pub security: String,
    pub members: Vec<String>,
}

/// Creates the organization and its accounts (in OUs Security and Workloads), nothing in them.
/// `dir` only names the state file in errors.
pub async fn accounts(
    endpoint: &str,
    namespace: &str,
    members: usize,
    dir: &Path,
) -> anyhow::Result<Accounts> {
    validate_namespace(namespace)?;
    let mgmt = Session::management(endpoint, &management_account(namespace)).await?;
    let org = mgmt.organizations();
    let organization_id = match org
        .create_organization()
        .feature_set(aws_sdk_organizations::types::OrganizationFeatureSet::All)
        .send()
        .await
    {
        Ok(out) => out
            .organization()
            .and_then(|o| o.id())
            .context("CreateOrganization returned no id")?
            .to_owned(),
        Err(err)
            if err
                .as_service_error()
                .is_some_and(|e| e.is_already_in_organization_exception()) =>
        {
            bail!(
                "namespace {namespace} already has an organization in the emulator at \
                 {endpoint}, but {} does not describe it; use another --namespace, or restart \
                 the emulator",
                Stack::path(dir).display()
            )
        }
        Err(err) => return Err(err).context("CreateOrganization in the management account"),
    };

    let root_id = org
        .list_roots()
        .send()
        .await
        .context("ListRoots")?
        .roots()
        .first()
        .and_then(|r| r.id())
        .context("the organization has no root")?
        .to_owned();
    let security_ou = create_ou(&org, &root_id, "Security").await?;
    let workloads_ou = create_ou(&org, &root_id, "Workloads").await?;

    let security = create_account(&org, "security", namespace).await?;
    move_account(&org, &security, &root_id, &security_ou).await?;
    let mut member_accounts = Vec::new();
    for slot in 0..members {
        let id = create_account(&org, &format!("member-{}", slot + 1), namespace).await?;
        move_account(&org, &id, &root_id, &workloads_ou).await?;
        member_accounts.push(id);
    }
    Ok(Accounts {
        management: mgmt,
        organization_id,
        security,
        members: member_accounts,
    })
}

async fn create_ou(
    org: &aws_sdk_organizations::Client,
    root: &str,
    name: &str,
) -> anyhow::Result<String> {
    let out = org
        .create_organizational_unit()
        .parent_id(root)
        .name(name)
        .send()
        .await
        .with_context(|| format!("CreateOrganizationalUnit {name}"))?;
    Ok(out
        .organizational_unit()
        .and_then(|ou| ou.id())
        .context("CreateOrganizationalUnit returned no id")?
        .to_owned())
}

async fn create_account(
    org: &aws_sdk_organizations::Client,
    name: &str,
    ns: &str,
) -> anyhow::Result<String> {
    let out = org
        .create_account()
        .account_name(name)
        .email(format!("aws+{ns}-{name}@example.com"))
        .send()
        .await
        .with_context(|| format!("CreateAccount {name}"))?;
    let request = out
        .create_account_status()
        .and_then(|s| s.id())
        .context("CreateAccount returned no request id")?;
    // Account creation is asynchronous in AWS; the emulator finishes at once, but ask as a
    // real client must.
    let status = org
        .describe_create_account_status()
        .create_account_request_id(request)
        .send()
        .await
        .with_context(|| format!("DescribeCreateAccountStatus for {name}"))?;
    let status = status
        .create_account_status()
        .context("no account status")?;
    match status.account_id() {
        Some(id) => Ok(id.to_owned()),
        None => bail!(
            "account {name} was not created: {:?}",
            status.failure_reason()
        ),
    }
}

async fn move_account(
    org: &aws_sdk_organizations::Client,
    account: &str,
    from: &str,
    to: &str,
) -> anyhow::Result<()> {
    org.move_account()
        .account_id(account)
        .source_parent_id(from)
        .destination_parent_id(to)
        .send()
        .await
        .with_context(|| format!("MoveAccount {account}"))?;
    Ok(())
}

async fn provision_security(
    sec: &Session,
    opts: &Options,
    members: &[String],
) -> anyhow::Result<Security> {
    let home = &opts.regions[0];
    let account = sec.account.clone();

    // KMS: the archive key (SSE-KMS, rotation on) and the manifest signing key.
    let kms = sec.kms(home);
    let archive_key = kms
        .create_key()
        .description("trailvault archive encryption")
        .key_usage(aws_sdk_kms::types::KeyUsageType::EncryptDecrypt)
        .key_spec(aws_sdk_kms::types::KeySpec::SymmetricDefault)
        .send()
        .await
        .context("KMS CreateKey (archive)")?;
    let archive_key = archive_key.key_metadata().context("no key metadata")?;
    let kms_key_arn = archive_key.arn().context("no key ARN")?.to_owned();
    kms.enable_key_rotation()
        .key_id(archive_key.key_id())
        .send()
        .await
        .context("KMS EnableKeyRotation")?;
    kms.create_alias()
        .alias_name("alias/trailvault-archive")
        .target_key_id(archive_key.key_id())
        .send()
        .await
        .context("KMS CreateAlias alias/trailvault-archive")?;
    let signing_key = kms
        .create_key()
        .description("trailvault manifest signing")
        .key_usage(aws_sdk_kms::types::KeyUsageType::SignVerify)
        .key_spec(aws_sdk_kms::types::KeySpec::Rsa2048)
        .send()
        .await
        .context("KMS CreateKey (signing)")?;
    let signing_key = signing_key.key_metadata().context("no key metadata")?;
    let signing_key_arn = signing_key.arn().context("no key ARN")?.to_owned();
    kms.create_alias()
        .alias_name("alias/trailvault-manifest-signing")
        .target_key_id(signing_key.key_id())
        .send()
        .await
        .context("KMS CreateAlias alias/trailvault-manifest-signing")?;

    // The archive bucket: versioned and Object Lock on from birth, SSE-KMS with a bucket key,
    // no public access, default retention as trailvault's policy.
    let archive_bucket = format!("{}-trailvault-archive-{account}", opts.namespace);
    let s3 = sec.s3(home);
    create_bucket(&s3, &archive_bucket, home, true).await?;
    default_encryption(&s3, &archive_bucket, Some(&kms_key_arn)).await?;
    s3.put_object_lock_configuration()
        .bucket(&archive_bucket)
        .object_lock_configuration(
            s3t::ObjectLockConfiguration::builder()
                .object_lock_enabled(s3t::ObjectLockEnabled::Enabled)
                .rule(
                    s3t::ObjectLockRule::builder()
                        .default_retention(
                            s3t::DefaultRetention::builder()
                                .mode(s3t::ObjectLockRetentionMode::Compliance)
                                .years(7)
                                .build(),
                        )
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .with_context(|| format!("PutObjectLockConfiguration on {archive_bucket}"))?;

    // The worker's identity: the role ECS runs the task as, and (on this machine only) an IAM
    // user whose access key may do nothing but assume that role.
    let iam = sec.iam();
    let local_user = iam
        .create_user()
        .user_name(LOCAL_USER)
        .send()
        .await
        .context("IAM CreateUser trailvault-local")?;
    let local_user_arn = local_user.user().context("no user")?.arn().to_owned();
    // One statement for both principals: moto evaluates trust policies when IAM is enforced,
    // and fails on a statement that names only a service principal.
    let worker_trust = json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"AWS": local_user_arn, "Service": "ecs-tasks.amazonaws.com"},
            "Action": "sts:AssumeRole"
        }]
    });
    let worker = iam
        .create_role()
        .role_name(WORKER_ROLE)
        .description("The trailvault worker: reads notifications, assumes member reader roles, writes the archive")
        .assume_role_policy_document(worker_trust.to_string())
        .send()
        .await
        .context("IAM CreateRole trailvault-worker")?;
    let worker_role_arn = worker.role().context("no role")?.arn().to_owned();
    iam.put_user_policy()
        .user_name(LOCAL_USER)
        .policy_name("assume-worker-role")
        .policy_document(
            json!({"Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": worker_role_arn}
            ]})
            .to_string(),
        )
        .send()
        .await
        .context("IAM PutUserPolicy on trailvault-local")?;

    // One queue per region, with its dead-letter queue and the event bus feeding it.
    let mut queues = Vec::new();
    for region in &opts.regions {
        queues.push(provision_queue(sec, opts, region, members).await?);
    }

    let queue_arns: Vec<&str> = queues.iter().map(|q| q.arn.as_str()).collect();
    let dead_letter_arns: Vec<&str> = queues.iter().map(|q| q.dlq_arn.as_str()).collect();
    // AWS authorises DeleteMessageBatch and ChangeMessageVisibilityBatch as DeleteMessage and
    // ChangeMessageVisibility; the emulator checks them under their own names, so both appear.
    let worker_policy = json!({
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "Notifications", "Effect": "Allow",
             "Action": ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:DeleteMessageBatch", "sqs:ChangeMessageVisibility",
                        "sqs:ChangeMessageVisibilityBatch", "sqs:GetQueueAttributes", "sqs:GetQueueUrl"],
             "Resource": queue_arns},
            {"Sid": "DeadLetterDepth", "Effect": "Allow",
             "Action": "sqs:GetQueueAttributes",
             "Resource": dead_letter_arns},
            {"Sid": "ArchiveBucket", "Effect": "Allow",
             "Action": ["s3:ListBucket", "s3:ListBucketVersions", "s3:GetBucketLocation", "s3:GetBucketVersioning", "s3:GetBucketObjectLockConfiguration", "s3:GetLifecycleConfiguration", "s3:ListBucketMultipartUploads",
                        "s3:PutBucketObjectLockConfiguration", "s3:PutLifecycleConfiguration"],
             "Resource": format!("arn:aws:s3:::{archive_bucket}")},
            {"Sid": "ArchiveObjects", "Effect": "Allow",
             "Action": ["s3:PutObject", "s3:GetObject", "s3:GetObjectVersion", "s3:GetObjectAttributes", "s3:PutObjectRetention", "s3:GetObjectRetention", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"],
             "Resource": format!("arn:aws:s3:::{archive_bucket}/*")},
            {"Sid": "ArchiveKey", "Effect": "Allow",
             "Action": ["kms:GenerateDataKey", "kms:Encrypt", "kms:Decrypt", "kms:DescribeKey"],
             "Resource": kms_key_arn},
            {"Sid": "ManifestSigning", "Effect": "Allow",
             "Action": ["kms:Sign", "kms:GetPublicKey", "kms:DescribeKey"],
             "Resource": signing_key_arn},
            // The emulator evaluates every KMS action against the resource "*", so a statement
            // scoped to a key never matches there. This one exists only in the devstack: it
            // keeps IAM enforcement checking the action names while AWS scopes them to the key
            // (the statement above).
            {"Sid": "ManifestSigningInTheEmulator", "Effect": "Allow",
             "Action": ["kms:Sign"],
             "Resource": "*"},
            {"Sid": "ReadMemberBuckets", "Effect": "Allow",
             "Action": "sts:AssumeRole",
             "Resource": format!("arn:aws:iam::*:role/{READER_ROLE}")}
        ]
    });
    iam.put_role_policy()
        .role_name(WORKER_ROLE)
        .policy_name("trailvault-worker")
        .policy_document(worker_policy.to_string())
        .send()
        .await
        .context("IAM PutRolePolicy on trailvault-worker")?;

    Ok(Security {
        account,
        archive_bucket,
        archive_region: home.clone(),
        kms_key_arn,
        signing_key_arn,
        worker_role_arn,
        local_user_arn,
        queues,
    })
}

async fn provision_queue(
    sec: &Session,
    opts: &Options,
    region: &str,
    members: &[String],
) -> anyhow::Result<CentralQueue> {
    let sqs = sec.sqs(region);
    let name = format!("trailvault-{region}");
    let dlq_name = format!("{name}-dlq");
    let (dlq_url, dlq_arn) = create_queue(
        &sqs,
        &dlq_name,
        &[(
            QueueAttributeName::MessageRetentionPeriod,
            DLQ_RETENTION_SECS.to_owned(),
        )],
    )
    .await?;
    let redrive =
        json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": MAX_RECEIVE_COUNT}).to_string();
    let (url, arn) = create_queue(
        &sqs,
        &name,
        &[
            (
                QueueAttributeName::VisibilityTimeout,
                VISIBILITY_TIMEOUT_SECS.to_owned(),
            ),
            (
                QueueAttributeName::MessageRetentionPeriod,
                QUEUE_RETENTION_SECS.to_owned(),
            ),
            (
                QueueAttributeName::ReceiveMessageWaitTimeSeconds,
                "20".to_owned(),
            ),
            (QueueAttributeName::RedrivePolicy, redrive),
        ],
    )
    .await?;

    // The bus that receives S3's EventBridge events forwarded by member accounts.
    let events = sec.events(region);
    let bus_name = format!("trailvault-{}", opts.namespace);
    let bus = events
        .create_event_bus()
        .name(&bus_name)
        .send()
        .await
        .with_context(|| format!("EventBridge CreateEventBus {bus_name} in {region}"))?;
    let event_bus_arn = bus.event_bus_arn().context("no event bus ARN")?.to_owned();
    events
        .put_permission()
        .event_bus_name(&bus_name)
        .policy(
            json!({"Version": "2012-10-17", "Statement": [{
                "Sid": "MemberAccountsForwardS3Events", "Effect": "Allow",
                "Principal": {"AWS": members.iter().map(|m| format!("arn:aws:iam::{m}:root")).collect::<Vec<_>>()},
                "Action": "events:PutEvents", "Resource": event_bus_arn
            }]})
            .to_string(),
        )
        .send()
        .await
        .with_context(|| format!("EventBridge PutPermission on {bus_name}"))?;
    let rule = events
        .put_rule()
        .name("trailvault-object-created")
        .event_bus_name(&bus_name)
        .event_pattern(json!({"source": ["aws.s3"], "detail-type": ["Object Created"]}).to_string())
        .state(aws_sdk_eventbridge::types::RuleState::Enabled)
        .send()
        .await
        .with_context(|| format!("EventBridge PutRule on {bus_name}"))?;
    let rule_arn = rule.rule_arn().context("no rule ARN")?.to_owned();
    events
        .put_targets()
        .rule("trailvault-object-created")
        .event_bus_name(&bus_name)
        .targets(
            aws_sdk_eventbridge::types::Target::builder()
                .id("trailvault-queue")
                .arn(&arn)
                .build()?,
        )
        .send()
        .await
        .with_context(|| format!("EventBridge PutTargets on {bus_name}"))?;

    // Who may send: S3 for the member buckets of this region, and the bus's rule.
    let source_arns: Vec<String> = members
        .iter()
        .map(|m| format!("arn:aws:s3:::{}-cloudtrail-{m}-{region}", opts.namespace))
        .collect();
    let policy = json!({
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "S3Notifications", "Effect": "Allow", "Principal": {"Service": "s3.amazonaws.com"},
             "Action": "sqs:SendMessage", "Resource": arn,
             "Condition": {"ArnLike": {"aws:SourceArn": source_arns}, "StringEquals": {"aws:SourceAccount": members}}},
            {"Sid": "EventBridge", "Effect": "Allow", "Principal": {"Service": "events.amazonaws.com"},
             "Action": "sqs:SendMessage", "Resource": arn,
             "Condition": {"ArnEquals": {"aws:SourceArn": rule_arn}}}
        ]
    });
    sqs.set_queue_attributes()
        .queue_url(&url)
        .attributes(QueueAttributeName::Policy, policy.to_string())
        .send()
        .await
        .with_context(|| format!("SQS SetQueueAttributes Policy on {name}"))?;

    Ok(CentralQueue {
        region: region.to_owned(),
        url,
        arn,
        dlq_url,
        dlq_arn,
        event_bus_arn,
    })
}

async fn provision_member(
    session: &Session,
    opts: &Options,
    slot: usize,
    layout: &Layout,
    deliveries: &[Delivery],
    security: &Security,
    external_id: Option<&str>,
) -> anyhow::Result<Member> {
    let account = session.account.clone();
    let external_id = external_id.map(str::to_owned).unwrap_or_else(|| {
        format!(
            "tv-{}",
            &hex::encode(derive_seed(opts.seed, &["external-id", &slot.to_string()]))[..20]
        )
    });
    let mut buckets = Vec::new();
    for (region, delivery) in opts.regions.iter().zip(deliveries) {
        let name = format!("{}-cloudtrail-{account}-{region}", opts.namespace);
        let s3 = session.s3(region);
        create_bucket(&s3, &name, region, false).await?;
        default_encryption(&s3, &name, None).await?;
        let (relay_queue_url, topic_arn) = notifications(
            session, security, &name, region, *delivery, layout, &account,
        )
        .await?;
        buckets.push(MemberBucket {
            region: region.clone(),
            name,
            delivery: *delivery,
            relay_queue_url,
            topic_arn,
        });
    }

    // The reader role: trusted by the worker role with the ExternalId, read-only on the
    // trail buckets.
    let iam = session.iam();
    let trust = json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"AWS": security.worker_role_arn},
            "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"sts:ExternalId": external_id}}
        }]
    });
    let role = iam
        .create_role()
        .role_name(READER_ROLE)
        .description("Lets the trailvault worker in the security account read this account's CloudTrail files")
        .assume_role_policy_document(trust.to_string())
        .send()
        .await
        .with_context(|| format!("IAM CreateRole {READER_ROLE} in {account}"))?;
    let reader_role_arn = role.role().context("no role")?.arn().to_owned();
    let bucket_arns: Vec<String> = buckets
        .iter()
        .map(|b| format!("arn:aws:s3:::{}", b.name))
        .collect();
    let object_arns: Vec<String> = buckets
        .iter()
        .map(|b| format!("arn:aws:s3:::{}/*", b.name))
        .collect();
    iam.put_role_policy()
        .role_name(READER_ROLE)
        .policy_name("read-cloudtrail")
        .policy_document(
            json!({"Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Action": ["s3:GetObject", "s3:GetObjectVersion"], "Resource": object_arns},
                {"Effect": "Allow", "Action": ["s3:ListBucket", "s3:ListBucketVersions", "s3:GetBucketLocation"], "Resource": bucket_arns},
                // Organization discovery finds the account's buckets from its trails.
                {"Effect": "Allow", "Action": "cloudtrail:DescribeTrails", "Resource": "*"}
            ]})
            .to_string(),
        )
        .send()
        .await
        .with_context(|| format!("IAM PutRolePolicy on {READER_ROLE} in {account}"))?;

    Ok(Member {
        slot,
        account,
        name: format!("member-{}", slot + 1),
        external_id,
        reader_role_arn,
        layout: layout.clone(),
        trail_name: "management-events".to_owned(),
        buckets,
    })
}

/// Sets up how `bucket`'s notifications travel; returns the relay queue and topic, if any.
async fn notifications(
    session: &Session,
    security: &Security,
    bucket: &str,
    region: &str,
    delivery: Delivery,
    layout: &Layout,
    account: &str,
) -> anyhow::Result<(Option<String>, Option<String>)> {
    let s3 = session.s3(region);
    let sqs = session.sqs(region);
    let created = vec![s3t::Event::S3ObjectCreated];
    let mut config = s3t::NotificationConfiguration::builder();
    let mut relay = None;
    let mut topic = None;
    if delivery != Delivery::Eventbridge {
        let (url, arn) = create_queue(&sqs, "trailvault-relay", &[]).await?;
        relay = Some((url, arn));
    }
    match delivery {
        Delivery::S3 => {
            let (_, arn) = relay.as_ref().expect("created above");
            config = config.queue_configurations(
                s3t::QueueConfiguration::builder()
                    .id("trailvault")
                    .queue_arn(arn)
                    .set_events(Some(created))
                    .build()?,
            );
        }
        Delivery::Sns | Delivery::CloudtrailSns => {
            let (_, relay_arn) = relay.as_ref().expect("created above");
            let sns = session.sns(region);
            let name = if delivery == Delivery::Sns {
                "s3-object-created"
            } else {
                "cloudtrail-log-delivery"
            };
            let arn = sns
                .create_topic()
                .name(name)
                .send()
                .await
                .with_context(|| format!("SNS CreateTopic {name} in {account}"))?
                .topic_arn()
                .context("no topic ARN")?
                .to_owned();
            sns.subscribe()
                .topic_arn(&arn)
                .protocol("sqs")
                .endpoint(relay_arn)
                .send()
                .await
                .with_context(|| format!("SNS Subscribe to {name} in {account}"))?;
            if delivery == Delivery::Sns {
                config = config.topic_configurations(
                    s3t::TopicConfiguration::builder()
                        .id("trailvault")
                        .topic_arn(&arn)
                        .set_events(Some(created))
                        .build()?,
                );
            } else {
                // CloudTrail announces log files on its topic (and says hello once); digests
                // are not announced, so an S3 notification on their prefix carries them.
                sns.publish()
                    .topic_arn(&arn)
                    .message("CloudTrail validation message.")
                    .send()
                    .await
                    .context("SNS Publish of CloudTrail's validation message")?;
                let prefix = format!("{}CloudTrail-Digest/", layout.account_root(account));
                config = config.queue_configurations(
                    s3t::QueueConfiguration::builder()
                        .id("trailvault-digests")
                        .queue_arn(relay_arn)
                        .set_events(Some(created))
                        .filter(
                            s3t::NotificationConfigurationFilter::builder()
                                .key(
                                    s3t::S3KeyFilter::builder()
                                        .filter_rules(
                                            s3t::FilterRule::builder()
                                                .name(s3t::FilterRuleName::Prefix)
                                                .value(prefix)
                                                .build(),
                                        )
                                        .build(),
                                )
                                .build(),
                        )
                        .build()?,
                );
            }
            topic = Some(arn);
        }
        Delivery::Eventbridge => {
            config =
                config.event_bridge_configuration(s3t::EventBridgeConfiguration::builder().build());
            let events = session.events(region);
            let bus = &security
                .queues
                .iter()
                .find(|q| q.region == region)
                .context("no central queue in this region")?
                .event_bus_arn;
            events
                .put_rule()
                .name("trailvault-forward")
                .event_pattern(json!({"source": ["aws.s3"], "detail-type": ["Object Created"], "detail": {"bucket": {"name": [bucket]}}}).to_string())
                .state(aws_sdk_eventbridge::types::RuleState::Enabled)
                .send()
                .await
                .with_context(|| format!("EventBridge PutRule in {account}"))?;
            events
                .put_targets()
                .rule("trailvault-forward")
                .targets(
                    aws_sdk_eventbridge::types::Target::builder()
                        .id("security-account-bus")
                        .arn(bus)
                        .build()?,
                )
                .send()
                .await
                .with_context(|| format!("EventBridge PutTargets in {account}"))?;
        }
    }
    s3.put_bucket_notification_configuration()
        .bucket(bucket)
        .notification_configuration(config.build())
        .send()
        .await
        .with_context(|| format!("PutBucketNotificationConfiguration on {bucket}"))?;
    Ok((relay.map(|(url, _)| url), topic))
}

async fn create_bucket(
    s3: &aws_sdk_s3::Client,
    name: &str,
    region: &str,
    object_lock: bool,
) -> anyhow::Result<()> {
    let mut req = s3.create_bucket().bucket(name);
    if region != "us-east-1" {
        req = req.create_bucket_configuration(
            s3t::CreateBucketConfiguration::builder()
                .location_constraint(s3t::BucketLocationConstraint::from(region))
                .build(),
        );
    }
    if object_lock {
        req = req.object_lock_enabled_for_bucket(true);
    }
    req.send()
        .await
        .with_context(|| format!("CreateBucket {name} in {region}"))?;
    s3.put_bucket_versioning()
        .bucket(name)
        .versioning_configuration(
            s3t::VersioningConfiguration::builder()
                .status(s3t::BucketVersioningStatus::Enabled)
                .build(),
        )
        .send()
        .await
        .with_context(|| format!("PutBucketVersioning on {name}"))?;
    s3.put_public_access_block()
        .bucket(name)
        .public_access_block_configuration(
            s3t::PublicAccessBlockConfiguration::builder()
                .block_public_acls(true)
                .ignore_public_acls(true)
                .block_public_policy(true)
                .restrict_public_buckets(true)
                .build(),
        )
        .send()
        .await
        .with_context(|| format!("PutPublicAccessBlock on {name}"))?;
    Ok(())
}

/// Default encryption: SSE-KMS under `kms_key` with an S3 bucket key, or SSE-S3 without one.
async fn default_encryption(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    kms_key: Option<&str>,
) -> anyhow::Result<()> {
    let by_default = match kms_key {
        Some(key) => s3t::ServerSideEncryptionByDefault::builder()
            .sse_algorithm(s3t::ServerSideEncryption::AwsKms)
            .kms_master_key_id(key),
        None => s3t::ServerSideEncryptionByDefault::builder()
            .sse_algorithm(s3t::ServerSideEncryption::Aes256),
    };
    let rule = s3t::ServerSideEncryptionRule::builder()
        .apply_server_side_encryption_by_default(by_default.build()?)
        .bucket_key_enabled(kms_key.is_some())
        .build();
    s3.put_bucket_encryption()
        .bucket(bucket)
        .server_side_encryption_configuration(
            s3t::ServerSideEncryptionConfiguration::builder()
                .rules(rule)
                .build()?,
        )
        .send()
        .await
        .with_context(|| format!("PutBucketEncryption on {bucket}"))?;
    Ok(())
}

async fn create_queue(
    sqs: &aws_sdk_sqs::Client,
    name: &str,
    attributes: &[(QueueAttributeName, String)],
) -> anyhow::Result<(String, String)> {
    let mut req = sqs.create_queue().queue_name(name);
    for (k, v) in attributes {
        req = req.attributes(k.clone(), v);
    }
    let url = req
        .send()
        .await
        .with_context(|| format!("SQS CreateQueue {name}"))?
        .queue_url()
        .context("CreateQueue returned no URL")?
        .to_owned();
    let attrs = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .with_context(|| format!("SQS GetQueueAttributes on {name}"))?;
    let arn = attrs
        .attributes()
        .and_then(|a| a.get(&QueueAttributeName::QueueArn))
        .context("no queue ARN")?
        .to_owned();
    Ok((url, arn))
}

/// The trailvault configuration, the worker's local AWS profile, an env file, and the
/// CloudTrail public keys, all in `dir`.
async fn write_outputs(stack: &Stack, sec: &Session, dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir.join("aws"))?;
    std::fs::create_dir_all(dir.join("public-keys"))?;

    let iam = sec.iam();
    let key = iam
        .create_access_key()
        .user_name(LOCAL_USER)
        .send()
        .await
        .context("IAM CreateAccessKey for trailvault-local")?;
    let key = key.access_key().context("no access key")?;
    let home = &stack.regions[0];
    let endpoint = &stack.endpoint;
    write_private(
        &dir.join("aws/credentials"),
        &format!(
            "# The local stand-in for the ECS task's identity: an IAM user in the security account\n\
             # ({}) that may only assume the worker role.\n\
             [{LOCAL_USER}]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
            stack.security.account,
            key.access_key_id(),
            key.secret_access_key()
        ),
    )?;
    write_private(
        &dir.join("aws/config"),
        &format!(
            "# AWS profiles for running trailvault against the local emulator.\n\
             [profile {WORKER_ROLE}]\nrole_arn = {}\nsource_profile = {LOCAL_USER}\n\
             role_session_name = trailvault-local\nregion = {home}\nendpoint_url = {endpoint}\n\n\
             [profile {LOCAL_USER}]\nregion = {home}\nendpoint_url = {endpoint}\n",
            stack.security.worker_role_arn
        ),
    )?;
    let abs = std::path::absolute(dir)?;
    std::fs::write(
        dir.join("env"),
        format!(
            "# Source this to run trailvault as the worker role against the local emulator.\n\
             unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN AWS_ENDPOINT_URL\n\
             export AWS_CONFIG_FILE={0}/aws/config\n\
             export AWS_SHARED_CREDENTIALS_FILE={0}/aws/credentials\n\
             export AWS_PROFILE={WORKER_ROLE}\n\
             export TRAILVAULT_CONFIG={0}/trailvault.toml\n",
            abs.display()
        ),
    )?;
    std::fs::write(dir.join("trailvault.toml"), trailvault_config(stack))?;
    for region in &stack.regions {
        let key = SigningKey::derive(stack.seed, region)?;
        std::fs::write(
            dir.join(format!("public-keys/{region}.json")),
            serde_json::to_vec_pretty(&key.public_key_list())?,
        )?;
    }
    Ok(())
}

fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    f.write_all(text.as_bytes())?;
    Ok(())
}

fn q(s: &str) -> String {
    serde_json::to_string(s).expect("strings serialise")
}

/// A trailvault configuration for this organization, annotated.
pub fn trailvault_config(stack: &Stack) -> String {
    let s = &stack.security;
    let mut out = format!(
        "# trailvault configuration for the local devstack (namespace {ns}, organization {org}).\n\
         # Written by `devstack up`; see trailvault.example.toml for every setting explained.\n\n\
         [archive]\nbucket = {bucket}\nregion = {region}\nkms_key = {kms}\nsigning_key = {sign}\n\n\
         [aws]\n# The local emulator; every client, STS included, goes there.\n\
         endpoint_url = {endpoint}\nforce_path_style = true\n",
        ns = stack.namespace,
        org = stack.organization_id,
        bucket = q(&s.archive_bucket),
        region = q(&s.archive_region),
        kms = q(&s.kms_key_arn),
        sign = q(&s.signing_key_arn),
        endpoint = q(&stack.endpoint),
    );
    for queue in &s.queues {
        out += &format!(
            "\n[[queues]]\n# The emulator's queue URLs do not name a region, so it is given.\nurl = {}\nregion = {}\n",
            q(&queue.url),
            q(&queue.region)
        );
    }
    for m in &stack.members {
        out += &format!(
            "\n[[accounts]]\nid = {}\nname = {}\nreader_role_arn = {}\nexternal_id = {}\n",
            q(&m.account),
            q(&m.name),
            q(&m.reader_role_arn),
            q(&m.external_id)
        );
        for b in &m.buckets {
            out += &format!(
                "\n[[accounts.buckets]]\nname = {}\nregion = {}\n",
                q(&b.name),
                q(&b.region)
            );
        }
    }
    out += "\n[retention]\n# Seven years, and nobody can shorten it; the worker keeps the archive bucket equal\n\
            # to this policy (reconcile = \"enforce\").\nmode = \"COMPLIANCE\"\nyears = 7\n\n\
            [retention.lifecycle]\nexpiration_grace_days = 30\nnoncurrent_expiration_days = 30\n\n\
            [[retention.lifecycle.transitions]]\ndays = 30\nstorage_class = \"STANDARD_IA\"\n\n\
            [[retention.lifecycle.transitions]]\ndays = 90\nstorage_class = \"GLACIER_IR\"\n\n\
            [[retention.lifecycle.transitions]]\ndays = 365\nstorage_class = \"DEEP_ARCHIVE\"\n\n\
            [worker]\nmax_in_flight = 16\nvisibility_timeout_secs = 60\nshutdown_grace_secs = 10\n\n\
            [telemetry]\nlog_format = \"text\"\n# Port 0: any free port on loopback.\nmetrics_address = \"127.0.0.1:0\"\n";
    out
}
