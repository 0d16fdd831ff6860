//! Organization discovery: the organization's accounts, listed every `discovery.interval`
//! (Organizations ListAccounts, through `discovery.organizations_role_arn`), each one not
//! configured in `[[accounts]]` and not excluded served through the reader role the pattern
//! names, its buckets found from its trails (CloudTrail DescribeTrails in every queue region,
//! then GetBucketLocation once per bucket).
//!
//! Nothing discovered is ever dropped: an account that leaves the organization, is suspended,
//! or whose role or trails cannot be read is reported (log line and
//! `trailvault_discovered_accounts{status}`) and kept with the buckets it had, so that its
//! notifications still find their way.
//!
//! A bucket belongs to exactly one account: the account it is routed to is the one whose logs
//! its files may hold. A bucket two accounts claim (two discovered accounts' trails, or a
//! configured account's bucket that a discovered account's trail names) is served by neither
//! until someone decides whose it is: serving it as either would archive one account's files
//! under the other's name, or refuse the real owner's as planted. It is reported (a warning
//! naming the bucket and every account that claims it, and the claiming discovered accounts
//! counted as `trailvault_discovered_accounts{status="contested"}`); its notifications are
//! retried, then dead-lettered, as a bucket nobody knows.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_organizations::types::AccountStatus;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::archive::accounts::Directory;
use crate::aws::{Aws, Failure, Members};
use crate::config::{self, Account, AccountId, BucketName, Config, Region, SourceBucket};
use crate::telemetry::metrics::{Metrics, StatusLabel};

/// Refreshes asked for by an unknown bucket come at most this often.
const MIN_SPACING: Duration = Duration::from_secs(5);

/// Why a discovered account is not served (yet).
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("discovery.reader_role_arn gives no role ARN: {0}")]
    RoleArn(config::Invalid),
    #[error(
        "CloudTrail DescribeTrails in {region} as {role} failed: {}; check that the role \
         exists, trusts the worker role with the ExternalId, and allows \
         cloudtrail:DescribeTrails",
        failure.detail
    )]
    DescribeTrails {
        region: String,
        role: String,
        failure: Failure,
    },
}

/// The organization's accounts and their trail buckets, listed on a timer and when an unknown
/// bucket asks, and swapped into the account directory whole.
pub struct Discovery {
    settings: config::Discovery,
    configured: Vec<Account>,
    archive_bucket: String,
    organizations: aws_sdk_organizations::Client,
    members: Arc<Members>,
    /// The queue regions: where trails are looked for.
    regions: Vec<Region>,
    accounts: Arc<Directory>,
    metrics: Arc<Metrics>,
    state: tokio::sync::Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Discovered accounts, by id.
    known: BTreeMap<String, Known>,
    /// The buckets claimed by more than one account at the last look.
    contested: Contested,
    last_started: Option<Instant>,
}

/// A discovered account as last seen.
#[derive(Clone)]
struct Known {
    /// With every bucket it was ever served (kept, so that late notifications find it).
    account: Account,
    status: &'static str,
    /// The buckets its trails named at the last successful look.
    trails: BTreeSet<String>,
}

/// Why an account claims a bucket; the strongest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Claim {
    /// In its `[[accounts.buckets]]`.
    Configured,
    /// Served to it by discovery before (and kept).
    Served,
    /// One of its trails writes there.
    Trail,
}

impl Claim {
    fn as_str(self) -> &'static str {
        match self {
            Claim::Configured => "configured",
            Claim::Served => "served before",
            Claim::Trail => "its trail",
        }
    }
}

/// An account that claims a bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimant {
    pub account_id: String,
    pub account: String,
    pub claim: Claim,
}

/// Buckets claimed by more than one account, each with its claimants (by account id).
pub type Contested = BTreeMap<String, Vec<Claimant>>;

/// The buckets in `claims` (claimant, bucket) that more than one account claims. An account
/// that claims a bucket in several ways is one claimant, with its strongest claim.
fn contested(claims: impl IntoIterator<Item = (Claimant, String)>) -> Contested {
    let mut by_bucket: BTreeMap<String, BTreeMap<String, Claimant>> = BTreeMap::new();
    for (claimant, bucket) in claims {
        let accounts = by_bucket.entry(bucket).or_default();
        match accounts.get(&claimant.account_id) {
            Some(known) if known.claim <= claimant.claim => {}
            _ => {
                accounts.insert(claimant.account_id.clone(), claimant);
            }
        }
    }
    by_bucket
        .into_iter()
        .filter(|(_, accounts)| accounts.len() > 1)
        .map(|(bucket, accounts)| (bucket, accounts.into_values().collect()))
        .collect()
}

/// The accounts as they are served: no contested bucket is any account's.
fn without_contested(mut accounts: Vec<Account>, contested: &Contested) -> Vec<Account> {
    for account in &mut accounts {
        account
            .buckets
            .retain(|b| !contested.contains_key(b.name.as_str()));
    }
    accounts
}

/// `id (name, claim), ...`, for the log line that reports a contested bucket.
fn claimants_text(claimants: &[Claimant]) -> String {
    claimants
        .iter()
        .map(|c| format!("{} ({}, {})", c.account_id, c.account, c.claim.as_str()))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Discovery {
    /// `members` are the copier's: a discovered account's role is assumed once, for finding
    /// its buckets and copying from them alike.
    pub async fn new(
        settings: config::Discovery,
        config: &Config,
        aws: &Aws,
        members: Arc<Members>,
        accounts: Arc<Directory>,
        metrics: Arc<Metrics>,
    ) -> Discovery {
        let organizations = organizations(&settings, aws, &config.archive.region).await;
        let mut regions: Vec<Region> = config
            .queues
            .iter()
            .map(|q| q.url.region().clone())
            .collect();
        if regions.is_empty() {
            regions.push(config.archive.region.clone());
        }
        regions.sort();
        regions.dedup();
        Discovery {
            configured: config.accounts.clone(),
            archive_bucket: config.archive.bucket.to_string(),
            organizations,
            members,
            regions,
            accounts,
            metrics,
            state: tokio::sync::Mutex::default(),
            settings,
        }
    }

    /// Every `interval`, until stopped.
    pub async fn every(self: Arc<Self>, stop: CancellationToken) {
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(self.settings.interval) => {}
            }
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = self.refresh() => {}
            }
        }
    }

    /// A refresh now, unless one started within the last few seconds (many messages from a
    /// new account's bucket ask at once; one look serves them all).
    pub async fn refresh_soon(&self) {
        let asked = Instant::now();
        let mut state = self.state.lock().await;
        if state.last_started.is_some_and(|t| t + MIN_SPACING > asked) {
            return;
        }
        self.refresh_locked(&mut state).await;
    }

    /// Lists the organization and updates the accounts served.
    pub async fn refresh(&self) {
        let mut state = self.state.lock().await;
        self.refresh_locked(&mut state).await;
    }

    async fn refresh_locked(&self, state: &mut State) {
        state.last_started = Some(Instant::now());
        let listed = match self.list_organization().await {
            Ok(listed) => listed,
            Err(failure) => {
                self.metrics.discovery_failures.inc();
                warn!(
                    error = %failure.detail,
                    "discovery could not list the organization's accounts; the accounts known \
                     so far are still served. Check that the worker may call \
                     organizations:ListAccounts{}",
                    match &self.settings.organizations_role_arn {
                        Some(role) => format!(" through {role} (and assume it)"),
                        None => " with its own identity".to_owned(),
                    }
                );
                return;
            }
        };
        let configured: BTreeSet<&str> = self.configured.iter().map(|a| a.id.as_str()).collect();
        let mut statuses: BTreeMap<&'static str, i64> = BTreeMap::new();
        let listed_ids: BTreeSet<String> = listed.iter().map(|(id, _, _)| id.to_string()).collect();
        // First every account's trails, then which buckets are contested, then the buckets
        // each may be served: a bucket is located (and served) only once nobody else claims it.
        let mut looked = Vec::new();
        for (id, name, status) in listed {
            if configured.contains(id.as_str()) {
                continue;
            }
            if self.settings.exclude.contains(&id) {
                *statuses.entry("excluded").or_default() += 1;
                continue;
            }
            let previous = state.known.get(id.as_str()).cloned();
            let read = match self.account(&id, &name, previous.as_ref().map(|p| &p.account)) {
                Ok(account) => self.trails(&account).await.map(|trails| (account, trails)),
                Err(problem) => Err(problem),
            };
            match read {
                Ok((account, trails)) => looked.push((account, trails, status)),
                Err(problem) => {
                    warn!(account_id = %id, account = %name, problem = %problem,
                        "discovered account not served yet; discovery tries again");
                    *statuses.entry("failed").or_default() += 1;
                    if let Some(known) = state.known.get_mut(id.as_str()) {
                        known.status = "failed";
                    }
                }
            }
        }
        let looked_ids: BTreeSet<String> =
            looked.iter().map(|(a, _, _)| a.id.to_string()).collect();
        let claimant = |account: &Account, claim| Claimant {
            account_id: account.id.to_string(),
            account: account.name.clone(),
            claim,
        };
        let mut claims = Vec::new();
        for account in &self.configured {
            for b in &account.buckets {
                claims.push((claimant(account, Claim::Configured), b.name.to_string()));
            }
        }
        let others = state
            .known
            .values()
            .filter(|k| !looked_ids.contains(k.account.id.as_str()))
            .map(|k| (&k.account, &k.trails));
        for (account, trails) in looked.iter().map(|(a, t, _)| (a, t)).chain(others) {
            for b in &account.buckets {
                claims.push((claimant(account, Claim::Served), b.name.to_string()));
            }
            for bucket in trails {
                claims.push((claimant(account, Claim::Trail), bucket.clone()));
            }
        }
        let contested = contested(claims);

        for (mut account, trails, org_status) in looked {
            let id = account.id.to_string();
            self.locate_new(&mut account, &trails, &contested).await;
            let claims_contested = account
                .buckets
                .iter()
                .map(|b| b.name.as_str())
                .chain(trails.iter().map(String::as_str))
                .any(|b| contested.contains_key(b));
            let status = if claims_contested {
                "contested"
            } else if org_status != AccountStatus::Active {
                "suspended"
            } else if account.buckets.is_empty() {
                "no_trail"
            } else {
                "served"
            };
            let was = state.known.get(&id).map(|k| k.status);
            if was != Some(status) {
                let name = account.name.as_str();
                match status {
                    "served" => info!(
                        account_id = %id, account = %name,
                        buckets = %account.buckets.iter().map(|b| format!("{} ({})", b.name, b.region)).collect::<Vec<_>>().join(", "),
                        "discovered account served"
                    ),
                    "suspended" => warn!(
                        account_id = %id, account = %name, status = %org_status.as_str(),
                        "organization account is not ACTIVE; still served, so that its logs \
                         are archived while they can be read"
                    ),
                    "no_trail" => warn!(
                        account_id = %id, account = %name,
                        "discovered account has no trail with an S3 bucket in the queue \
                         regions; nothing to archive until it has one"
                    ),
                    // Reported per bucket, below.
                    _ => {}
                }
            }
            *statuses.entry(status).or_default() += 1;
            state.known.insert(
                id,
                Known {
                    account,
                    status,
                    trails,
                },
            );
        }
        // Accounts that left the organization: reported, kept.
        for (id, known) in state.known.iter_mut() {
            if !listed_ids.contains(id) {
                if known.status != "left" {
                    warn!(
                        account_id = %id, account = %known.account.name,
                        "account is no longer in the organization; still served with its \
                         known buckets until the worker restarts (list it in [[accounts]] to \
                         keep archiving it after that)"
                    );
                }
                known.status = "left";
                *statuses.entry("left").or_default() += 1;
            }
        }
        self.report_contests(&state.contested, &contested);
        for status in [
            "served",
            "suspended",
            "excluded",
            "no_trail",
            "failed",
            "left",
            "contested",
        ] {
            self.metrics
                .discovered_accounts
                .get_or_create(&StatusLabel { status })
                .set(statuses.get(status).copied().unwrap_or(0));
        }
        let mut all = self.configured.clone();
        all.extend(state.known.values().map(|k| k.account.clone()));
        self.accounts.replace(without_contested(all, &contested));
        state.contested = contested;
    }

    /// A warning when a bucket becomes contested (or its claimants change), a note when it no
    /// longer is: once, not at every look.
    fn report_contests(&self, before: &Contested, now: &Contested) {
        for (bucket, claimants) in now {
            if before.get(bucket) == Some(claimants) {
                continue;
            }
            warn!(
                bucket = %bucket, accounts = %claimants_text(claimants),
                "bucket claimed by more than one account: served as none of them until \
                 resolved, its notifications retried and then dead-lettered. Decide which \
                 account it belongs to, then stop the other accounts' trails from writing to \
                 it (or list those accounts in discovery.exclude); a bucket an account was \
                 served before stays claimed by it until the worker restarts. Then redrive the \
                 dead-letter queue, or run `trailvault backfill`"
            );
        }
        for (bucket, claimants) in before {
            if !now.contains_key(bucket) {
                info!(
                    bucket = %bucket, accounts = %claimants_text(claimants),
                    "bucket no longer claimed by more than one account; served as its one \
                     claimant's"
                );
            }
        }
    }

    async fn list_organization(&self) -> Result<Vec<(AccountId, String, AccountStatus)>, Failure> {
        let mut pages = self.organizations.list_accounts().into_paginator().send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| Failure::from_sdk(&e))?;
            for a in page.accounts() {
                let Some(id) = a.id().and_then(|id| AccountId::parse(id).ok()) else {
                    continue;
                };
                let name = a.name().unwrap_or(id.as_str()).to_owned();
                let status = a.status().cloned().unwrap_or(AccountStatus::Active);
                out.push((id, name, status));
            }
        }
        Ok(out)
    }

    /// The account as served: its reader role from the pattern, its ExternalId, and the
    /// buckets it was served before (their regions not looked up again).
    fn account(
        &self,
        id: &AccountId,
        name: &str,
        previous: Option<&Account>,
    ) -> Result<Account, ServeError> {
        let reader_role_arn = self
            .settings
            .reader_role_arn(id)
            .map_err(ServeError::RoleArn)?;
        Ok(Account {
            id: id.clone(),
            name: sanitize_name(name, id),
            reader_role_arn,
            external_id: self.settings.external_id(id),
            cleanup_after_days: None,
            buckets: previous.map(|p| p.buckets.clone()).unwrap_or_default(),
        })
    }

    /// The buckets the account's own trails write to, in the queue regions; never the archive
    /// bucket (the worker's own output), never a name S3 could not have (it could not be
    /// served, and would be printed in the report).
    async fn trails(&self, account: &Account) -> Result<BTreeSet<String>, ServeError> {
        let clients = self.members.get(account).await;
        let mut buckets = BTreeSet::new();
        for region in &self.regions {
            let trails = clients
                .cloudtrail(region)
                .describe_trails()
                .include_shadow_trails(true)
                .send()
                .await
                .map_err(|e| ServeError::DescribeTrails {
                    region: region.to_string(),
                    role: account.reader_role_arn.to_string(),
                    failure: Failure::from_sdk(&e),
                })?;
            // Only the account's own trails (its multi-region trails' shadows included): an
            // organization trail shows up in every member, and would make its bucket look
            // claimed by all of them.
            let own = format!(":{}:trail/", account.id);
            for bucket in trails
                .trail_list()
                .iter()
                .filter(|t| t.trail_arn().is_none_or(|arn| arn.contains(&own)))
                .filter_map(|t| t.s3_bucket_name())
            {
                if bucket != self.archive_bucket && BucketName::parse(bucket).is_ok() {
                    buckets.insert(bucket.to_owned());
                }
            }
        }
        Ok(buckets)
    }

    /// Adds to the account the buckets its trails name that it is not served yet and that
    /// nobody else claims, each located once (a bucket never moves region). One that cannot
    /// be located is reported and skipped; the account's other buckets are still served.
    async fn locate_new(
        &self,
        account: &mut Account,
        trails: &BTreeSet<String>,
        contested: &Contested,
    ) {
        let new: Vec<&String> = trails
            .iter()
            .filter(|b| !contested.contains_key(b.as_str()))
            .filter(|b| {
                !account
                    .buckets
                    .iter()
                    .any(|s| s.name.as_str() == b.as_str())
            })
            .collect();
        if new.is_empty() {
            return;
        }
        let clients = self.members.get(account).await;
        for bucket in new {
            let Ok(name) = BucketName::parse(bucket) else {
                continue;
            };
            let location = match clients
                .s3(&self.regions[0])
                .get_bucket_location()
                .bucket(bucket)
                .send()
                .await
            {
                Ok(location) => location,
                Err(e) => {
                    warn!(
                        account_id = %account.id, account = %account.name, bucket = %bucket,
                        error = %Failure::from_sdk(&e).detail,
                        "a trail of the discovered account writes to a bucket its reader role \
                         cannot locate; not served. The reader role needs s3:GetBucketLocation \
                         on it; a trail writing to another account's bucket is archived \
                         through that account"
                    );
                    continue;
                }
            };
            let region = bucket_region(location.location_constraint().map(|c| c.as_str()));
            let Ok(region) = Region::parse(&region) else {
                warn!(account_id = %account.id, bucket = %bucket, region = %region,
                    "trail bucket in a region trailvault does not know; not served");
                continue;
            };
            account.buckets.push(SourceBucket { name, region });
        }
    }
}

/// The Organizations client discovery lists accounts with: through
/// `discovery.organizations_role_arn` when set, else as the worker itself. (Organizations has
/// one endpoint, in us-east-1.)
pub async fn organizations(
    settings: &config::Discovery,
    aws: &Aws,
    sts_region: &Region,
) -> aws_sdk_organizations::Client {
    let us_east_1 = Region::parse("us-east-1").expect("a valid region");
    match &settings.organizations_role_arn {
        Some(role) => aws_sdk_organizations::Client::new(
            &aws.assumed(role, None, sts_region, &us_east_1).await,
        ),
        None => aws.organizations(&us_east_1),
    }
}

/// GetBucketLocation's answer as a region: empty means us-east-1, `EU` is eu-west-1.
fn bucket_region(constraint: Option<&str>) -> String {
    match constraint {
        None | Some("") => "us-east-1".to_owned(),
        Some("EU") => "eu-west-1".to_owned(),
        Some(region) => region.to_owned(),
    }
}

/// Account names label metrics and log lines: printable, bounded.
fn sanitize_name(name: &str, id: &AccountId) -> String {
    let clean: String = name
        .chars()
        .filter(|c| c.is_ascii_graphic() || *c == ' ')
        .take(64)
        .collect();
    if clean.trim().is_empty() {
        id.to_string()
    } else {
        clean
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_locations() {
        assert_eq!(bucket_region(None), "us-east-1");
        assert_eq!(bucket_region(Some("")), "us-east-1");
        assert_eq!(bucket_region(Some("EU")), "eu-west-1");
        assert_eq!(bucket_region(Some("eu-central-1")), "eu-central-1");
    }

    fn claim(id: &str, claim: Claim, bucket: &str) -> (Claimant, String) {
        (
            Claimant {
                account_id: id.to_owned(),
                account: format!("name-{id}"),
                claim,
            },
            bucket.to_owned(),
        )
    }

    #[test]
    fn a_bucket_is_contested_when_two_accounts_claim_it() {
        use Claim::*;
        let c = |id: &str, how| Claimant {
            account_id: id.to_owned(),
            account: format!("name-{id}"),
            claim: how,
        };
        type Case = (&'static str, Vec<(Claimant, String)>, Contested);
        let cases: Vec<Case> = vec![
            ("nobody", vec![], Contested::new()),
            (
                "each account its own bucket",
                vec![claim("1", Configured, "a"), claim("2", Trail, "b")],
                Contested::new(),
            ),
            (
                "one account, several ways",
                vec![claim("2", Trail, "b"), claim("2", Served, "b")],
                Contested::new(),
            ),
            (
                "two discovered accounts' trails",
                vec![claim("2", Trail, "b"), claim("3", Trail, "b")],
                [("b".to_owned(), vec![c("2", Trail), c("3", Trail)])].into(),
            ),
            (
                "a configured bucket a discovered trail names",
                vec![claim("3", Trail, "a"), claim("1", Configured, "a")],
                [("a".to_owned(), vec![c("1", Configured), c("3", Trail)])].into(),
            ),
            (
                "served before, now named by another; the strongest claim shown",
                vec![
                    claim("2", Trail, "b"),
                    claim("2", Served, "b"),
                    claim("3", Trail, "b"),
                    claim("3", Trail, "c"),
                ],
                [("b".to_owned(), vec![c("2", Served), c("3", Trail)])].into(),
            ),
            (
                "three claimants",
                vec![
                    claim("3", Trail, "a"),
                    claim("2", Trail, "a"),
                    claim("1", Configured, "a"),
                ],
                [(
                    "a".to_owned(),
                    vec![c("1", Configured), c("2", Trail), c("3", Trail)],
                )]
                .into(),
            ),
        ];
        for (case, claims, expected) in cases {
            assert_eq!(contested(claims), expected, "{case}");
        }
    }

    #[test]
    fn a_contested_bucket_is_nobodys() {
        let region = Region::parse("eu-west-1").unwrap();
        let account = |id: &str, buckets: &[&str]| Account {
            id: AccountId::parse(id).unwrap(),
            name: id.to_owned(),
            reader_role_arn: config::RoleArn::parse(&format!("arn:aws:iam::{id}:role/r")).unwrap(),
            external_id: "x".to_owned(),
            cleanup_after_days: None,
            buckets: buckets
                .iter()
                .map(|b| SourceBucket {
                    name: BucketName::parse(b).unwrap(),
                    region: region.clone(),
                })
                .collect(),
        };
        let contested = contested([
            claim("111111111111", Claim::Configured, "shared-bucket"),
            claim("222222222222", Claim::Served, "shared-bucket"),
        ]);
        let served = without_contested(
            vec![
                account("111111111111", &["own-bucket-1", "shared-bucket"]),
                account("222222222222", &["shared-bucket", "own-bucket-2"]),
            ],
            &contested,
        );
        let buckets: Vec<Vec<&str>> = served
            .iter()
            .map(|a| a.buckets.iter().map(|b| b.name.as_str()).collect())
            .collect();
        assert_eq!(buckets, [["own-bucket-1"], ["own-bucket-2"]]);
        assert_eq!(
            claimants_text(&contested["shared-bucket"]),
            "111111111111 (name-111111111111, configured), \
             222222222222 (name-222222222222, served before)"
        );
    }

    #[test]
    fn names_stay_printable() {
        let id = AccountId::parse("123456789012").unwrap();
        assert_eq!(sanitize_name("prod\napp", &id), "prodapp");
        assert_eq!(sanitize_name("\u{7}", &id), "123456789012");
    }
}
