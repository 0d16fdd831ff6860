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
    /// Discovered accounts, by id, with the status they were last seen in.
    known: BTreeMap<String, (Account, &'static str)>,
    last_started: Option<Instant>,
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
        for (id, name, status) in listed {
            if configured.contains(id.as_str()) {
                continue;
            }
            if self.settings.exclude.contains(&id) {
                *statuses.entry("excluded").or_default() += 1;
                continue;
            }
            let suspended = status != AccountStatus::Active;
            let org_status = status.as_str().to_owned();
            let previous = state.known.get(id.as_str()).cloned();
            let served = match self
                .serve(&id, &name, previous.as_ref().map(|p| &p.0))
                .await
            {
                Ok(account) => account,
                Err(problem) => {
                    warn!(account_id = %id, account = %name, problem = %problem,
                        "discovered account not served yet; discovery tries again");
                    let status = "failed";
                    *statuses.entry(status).or_default() += 1;
                    if let Some((account, _)) = previous {
                        state.known.insert(id.to_string(), (account, status));
                    }
                    continue;
                }
            };
            let status = if suspended {
                "suspended"
            } else if served.buckets.is_empty() {
                "no_trail"
            } else {
                "served"
            };
            let was = previous.as_ref().map(|p| p.1);
            if was != Some(status) {
                match status {
                    "served" => info!(
                        account_id = %id, account = %name,
                        buckets = %served.buckets.iter().map(|b| format!("{} ({})", b.name, b.region)).collect::<Vec<_>>().join(", "),
                        "discovered account served"
                    ),
                    "suspended" => warn!(
                        account_id = %id, account = %name, status = %org_status,
                        "organization account is not ACTIVE; still served, so that its logs \
                         are archived while they can be read"
                    ),
                    _ => warn!(
                        account_id = %id, account = %name,
                        "discovered account has no trail with an S3 bucket in the queue \
                         regions; nothing to archive until it has one"
                    ),
                }
            }
            *statuses.entry(status).or_default() += 1;
            state.known.insert(id.to_string(), (served, status));
        }
        // Accounts that left the organization: reported, kept.
        for (id, (account, status)) in state.known.iter_mut() {
            if !listed_ids.contains(id) {
                if *status != "left" {
                    warn!(
                        account_id = %id, account = %account.name,
                        "account is no longer in the organization; still served with its \
                         known buckets until the worker restarts (list it in [[accounts]] to \
                         keep archiving it after that)"
                    );
                }
                *status = "left";
                *statuses.entry("left").or_default() += 1;
            }
        }
        for status in [
            "served",
            "suspended",
            "excluded",
            "no_trail",
            "failed",
            "left",
        ] {
            self.metrics
                .discovered_accounts
                .get_or_create(&StatusLabel { status })
                .set(statuses.get(status).copied().unwrap_or(0));
        }
        let mut all = self.configured.clone();
        all.extend(state.known.values().map(|(a, _)| a.clone()));
        self.accounts.replace(all);
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

    /// The account as served: its reader role from the pattern, its buckets from its trails
    /// (buckets found before are kept, their regions not looked up again).
    async fn serve(
        &self,
        id: &AccountId,
        name: &str,
        previous: Option<&Account>,
    ) -> Result<Account, ServeError> {
        let reader_role_arn = self
            .settings
            .reader_role_arn(id)
            .map_err(ServeError::RoleArn)?;
        let mut account = Account {
            id: id.clone(),
            name: sanitize_name(name, id),
            reader_role_arn,
            external_id: self.settings.external_id(id),
            cleanup_after_days: None,
            buckets: previous.map(|p| p.buckets.clone()).unwrap_or_default(),
        };
        let clients = self.members.get(&account).await;
        let mut trail_buckets = BTreeSet::new();
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
            for trail in trails.trail_list() {
                if let Some(bucket) = trail.s3_bucket_name() {
                    trail_buckets.insert(bucket.to_owned());
                }
            }
        }
        let claimed: BTreeSet<&str> = self
            .configured
            .iter()
            .flat_map(|a| a.buckets.iter().map(|b| b.name.as_str()))
            .chain([self.archive_bucket.as_str()])
            .collect();
        for bucket in trail_buckets {
            if claimed.contains(bucket.as_str())
                || account.buckets.iter().any(|b| b.name.as_str() == bucket)
            {
                continue;
            }
            let Ok(name) = BucketName::parse(&bucket) else {
                continue;
            };
            // Once per bucket: a bucket never moves region. One that cannot be read is
            // reported and skipped; the account's other buckets are still served.
            let location = match clients
                .s3(&self.regions[0])
                .get_bucket_location()
                .bucket(&bucket)
                .send()
                .await
            {
                Ok(location) => location,
                Err(e) => {
                    warn!(
                        account_id = %id, account = %account.name, bucket = %bucket,
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
                warn!(account_id = %id, bucket = %bucket, region = %region,
                    "trail bucket in a region trailvault does not know; not served");
                continue;
            };
            account.buckets.push(SourceBucket { name, region });
        }
        Ok(account)
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

    #[test]
    fn names_stay_printable() {
        let id = AccountId::parse("123456789012").unwrap();
        assert_eq!(sanitize_name("prod\napp", &id), "prodapp");
        assert_eq!(sanitize_name("\u{7}", &id), "123456789012");
    }
}
