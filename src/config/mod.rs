//! The deployment's configuration: one TOML file in, one validated [`Config`] out.
//!
//! This is the only place raw input is trusted. The file is read into `Raw*` structs (serde,
//! unknown fields refused), then [`Config::from_raw`] checks every field and every relation
//! between fields, collecting all problems rather than stopping at the first, so that a user
//! fixes a file in one round. Each problem names its field the way it is written in the file
//! (`accounts[1].buckets[0].region`).
//!
//! The validated types make the bad states unrepresentable: an [`AccountId`] is twelve digits,
//! a [`QueueUrl`] knows its region and account, a [`RoleArn`] belongs to its account.

use std::path::Path;

mod alerts;
mod completeness;
mod error;
mod ids;
mod model;
mod raw;
mod retention;
mod validate;

pub use alerts::{Alerts, Destination, RawAlerts, RawRule, Rule};
pub use completeness::{Discovery, RawDiscovery, RawSweep, Sweep};
pub use error::{ConfigError, Problem};
pub use ids::{AccountId, BucketName, Invalid, KmsKey, QueueUrl, Region, RoleArn};
pub use model::{
    Account, Archive, AwsSettings, Config, Manifest, Queue, SourceBucket, Telemetry, Worker,
};
pub use raw::{
    LogFormat, RawAccount, RawArchive, RawAws, RawBucket, RawConfig, RawManifest, RawQueue,
    RawTelemetry, RawWorker,
};
pub use retention::{RawLifecycle, RawRetention, RawTransition};

impl Config {
    /// Reads and validates a configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Config::from_toml(&text, path)
    }

    /// Parses and validates configuration text; `path` only names the source in errors.
    pub fn from_toml(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|source| ConfigError::Parse {
            path: path.to_owned(),
            source: Box::new(source),
        })?;
        Config::from_raw(raw).map_err(|problems| ConfigError::Invalid {
            path: path.to_owned(),
            problems,
        })
    }

    /// Validates a parsed file, returning every problem found.
    pub fn from_raw(raw: RawConfig) -> Result<Config, Vec<Problem>> {
        validate::config(raw)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const GOOD: &str = r#"
        [archive]
        bucket = "acme-cloudtrail-archive"
        region = "eu-west-1"
        kms_key = "arn:aws:kms:eu-west-1:111111111111:key/1234abcd-12ab-34cd-56ef-1234567890ab"
        signing_key = "alias/trailvault-manifest"
        key_prefix = "cloudtrail/"

        [[queues]]
        url = "https://sqs.eu-west-1.amazonaws.com/111111111111/trailvault-eu-west-1"

        [[queues]]
        url = "https://sqs.us-east-1.amazonaws.com/111111111111/trailvault-us-east-1"

        [[accounts]]
        id = "222222222222"
        name = "payments-prod"
        reader_role_arn = "arn:aws:iam::222222222222:role/trailvault-reader"
        external_id = "trailvault-0a1b2c"

        [[accounts.buckets]]
        name = "payments-prod-cloudtrail"
        region = "eu-west-1"

        [[accounts.buckets]]
        name = "payments-prod-cloudtrail-us"
        region = "us-east-1"

        [retention]
        mode = "COMPLIANCE"
        years = 7
    "#;

    fn load(text: &str) -> Result<Config, ConfigError> {
        Config::from_toml(text, Path::new("test.toml"))
    }

    /// The fields of every problem in a file, sorted.
    fn problem_fields(text: &str) -> Vec<String> {
        let err = load(text).expect_err("the file should be refused");
        let mut fields: Vec<String> = err.problems().iter().map(|p| p.field.clone()).collect();
        fields.sort();
        fields
    }

    /// The error and its causes, as the binary prints them.
    fn chain(err: ConfigError) -> String {
        format!("{:#}", anyhow::Error::from(err))
    }

    fn with(replace: &str, by: &str) -> String {
        assert!(GOOD.contains(replace), "test fixture lacks {replace:?}");
        GOOD.replacen(replace, by, 1)
    }

    #[test]
    fn a_good_file_gives_typed_values_and_defaults() {
        let c = load(GOOD).unwrap();
        assert_eq!(c.archive.bucket.as_str(), "acme-cloudtrail-archive");
        assert_eq!(c.archive.kms_key.region().unwrap().as_str(), "eu-west-1");
        assert_eq!(c.queues[1].url.region().as_str(), "us-east-1");
        assert_eq!(c.queues[0].url.account().as_str(), "111111111111");
        assert_eq!(
            c.accounts[0].reader_role_arn.account().as_str(),
            "222222222222"
        );
        assert_eq!(
            c.retention.lock.period,
            crate::retention::policy::RetentionPeriod::Years(7)
        );
        assert_eq!(c.worker.max_in_flight.get(), 32);
        assert_eq!(c.worker.visibility_timeout, Duration::from_secs(300));
        assert_eq!(c.telemetry.log_format, LogFormat::Text);
        assert_eq!(
            c.account_for_bucket("payments-prod-cloudtrail-us")
                .unwrap()
                .name,
            "payments-prod"
        );
        assert!(c.account_for_bucket("someone-else").is_none());
    }

    #[test]
    fn the_effective_configuration_reads_back_as_itself() {
        let c = load(GOOD).unwrap();
        let text = toml::to_string(&c.to_raw()).unwrap();
        assert_eq!(load(&text).unwrap(), c);
    }

    #[test]
    fn an_unknown_field_is_named() {
        let err = chain(load(&with("key_prefix", "key_prefx")).unwrap_err());
        assert!(err.contains("unknown field `key_prefx`"), "{err}");
        let err = chain(load(&with("[retention]", "[retention]\nmonths = 3")).unwrap_err());
        assert!(err.contains("unknown field `months`"), "{err}");
    }

    #[test]
    fn a_missing_section_or_field_is_named() {
        let err = chain(load(&with("bucket = \"acme-cloudtrail-archive\"", "")).unwrap_err());
        assert!(err.contains("missing field `bucket`"), "{err}");
    }

    #[test]
    fn each_bad_value_names_its_field() {
        let cases: &[(&str, &str, &str)] = &[
            ("\"222222222222\"", "\"22222\"", "accounts[0].id"),
            (
                "arn:aws:iam::222222222222:role/trailvault-reader",
                "arn:aws:iam::222222222222:user/trailvault-reader",
                "accounts[0].reader_role_arn",
            ),
            (
                "arn:aws:iam::222222222222:role/trailvault-reader",
                "arn:aws:iam::333333333333:role/trailvault-reader",
                "accounts[0].reader_role_arn",
            ),
            ("trailvault-0a1b2c", "x", "accounts[0].external_id"),
            ("acme-cloudtrail-archive", "Acme_Archive", "archive.bucket"),
            (
                "region = \"eu-west-1\"",
                "region = \"europe\"",
                "archive.region",
            ),
            ("key/1234abcd", "kee/1234abcd", "archive.kms_key"),
            ("kms:eu-west-1", "kms:us-east-1", "archive.kms_key"),
            (
                "alias/trailvault-manifest",
                "alias/aws/s3",
                "archive.signing_key",
            ),
            ("\"cloudtrail/\"", "\"/cloudtrail\"", "archive.key_prefix"),
            (
                "payments-prod-cloudtrail-us",
                "payments-prod-cloudtrail",
                "accounts[0].buckets[1].name",
            ),
            ("trailvault-eu-west-1", "trailvault.fifo", "queues[0].url"),
            (
                "/111111111111/trailvault-eu-west-1",
                "/1111/trailvault-eu-west-1",
                "queues[0].url",
            ),
            ("years = 7", "years = 101", "retention.years"),
            ("years = 7", "days = 0", "retention.days"),
            ("years = 7", "years = 7\ndays = 30", "retention"),
            ("years = 7", "", "retention"),
            (
                "[retention]",
                "[worker]\nvisibility_timeout_secs = 50000\n[retention]",
                "worker.visibility_timeout_secs",
            ),
            (
                "[retention]",
                "[worker]\nmax_in_flight = 0\n[retention]",
                "worker.max_in_flight",
            ),
            (
                "[retention]",
                "[telemetry]\nmetrics_address = \"localhost\"\n[retention]",
                "telemetry.metrics_address",
            ),
            (
                "[retention]",
                "[aws]\nendpoint_url = \"localhost:4566\"\n[retention]",
                "aws.endpoint_url",
            ),
        ];
        for (from, to, field) in cases {
            let fields = problem_fields(&with(from, to));
            assert_eq!(
                fields,
                vec![field.to_string()],
                "replacing {from:?} by {to:?}"
            );
        }
    }

    #[test]
    fn a_duplicate_account_is_refused() {
        let twice = format!(
            "{GOOD}\n[[accounts]]\nid = \"222222222222\"\nreader_role_arn = \
             \"arn:aws:iam::222222222222:role/other\"\nexternal_id = \"xyz-123\"\n\
             [[accounts.buckets]]\nname = \"another-bucket\"\nregion = \"eu-west-1\"\n"
        );
        let err = load(&twice).unwrap_err();
        assert_eq!(err.problems().len(), 1, "{err}");
        assert_eq!(err.problems()[0].field, "accounts[1].id");
        assert!(err.to_string().contains("already accounts[0]"), "{err}");
    }

    #[test]
    fn a_queue_region_must_be_known() {
        let local = with(
            "https://sqs.eu-west-1.amazonaws.com/111111111111/trailvault-eu-west-1",
            "http://127.0.0.1:4566/111111111111/trailvault-eu-west-1",
        );
        let err = load(&local).unwrap_err();
        assert_eq!(err.problems()[0].field, "queues[0].url");
        assert!(
            err.to_string().contains("set region for this queue"),
            "{err}"
        );

        let fixed = local.replace(
            "/trailvault-eu-west-1\"",
            "/trailvault-eu-west-1\"\nregion = \"eu-west-1\"",
        );
        assert_eq!(
            load(&fixed).unwrap().queues[0].url.region().as_str(),
            "eu-west-1"
        );

        let disagree = with(
            "trailvault-eu-west-1\"",
            "trailvault-eu-west-1\"\nregion = \"us-east-1\"",
        );
        assert_eq!(problem_fields(&disagree), vec!["queues[0].url"]);
    }

    #[test]
    fn every_bucket_region_needs_a_queue() {
        let text = with("region = \"us-east-1\"", "region = \"ap-south-1\"");
        let err = load(&text).unwrap_err();
        assert_eq!(err.problems()[0].field, "accounts[0].buckets[1].region");
        assert!(
            err.to_string()
                .contains("add a [[queues]] entry for ap-south-1"),
            "{err}"
        );
    }

    #[test]
    fn all_problems_are_reported_at_once() {
        let text = with("\"222222222222\"", "\"2\"").replace("years = 7", "years = 0");
        assert_eq!(
            problem_fields(&text),
            vec!["accounts[0].id", "retention.years"]
        );
    }

    #[test]
    fn the_archive_bucket_is_not_a_source() {
        let text = with(
            "\"payments-prod-cloudtrail\"",
            "\"acme-cloudtrail-archive\"",
        );
        assert_eq!(problem_fields(&text), vec!["accounts[0].buckets[0].name"]);
    }

    #[test]
    fn identifiers() {
        for ok in ["us-east-1", "us-gov-west-1", "cn-north-1", "eu-isoe-west-1"] {
            assert!(Region::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["", "us-east", "US-EAST-1", "us_east_1", "east-1"] {
            assert!(Region::parse(bad).is_err(), "{bad}");
        }
        for ok in [
            "abc",
            "my.bucket-1",
            "a23456789012345678901234567890123456789012345678901234567890123",
        ] {
            assert!(BucketName::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "ab",
            "-abc",
            "abc-",
            "a..b",
            "a.-b",
            "192.168.1.1",
            "ABC",
            "a_b",
        ] {
            assert!(BucketName::parse(bad).is_err(), "{bad}");
        }
        for ok in [
            "1234abcd-12ab-34cd-56ef-1234567890ab",
            "mrk-1234abcd12ab34cd56ef1234567890ab",
            "alias/archive",
            "arn:aws:kms:us-east-1:111111111111:alias/archive",
            "arn:aws-us-gov:kms:us-gov-west-1:111111111111:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        ] {
            assert!(KmsKey::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "archive",
            "alias/",
            "alias/aws/s3",
            "arn:aws:kms:us-east-1:1:key/x",
        ] {
            assert!(KmsKey::parse(bad).is_err(), "{bad}");
        }
        assert!(RoleArn::parse("arn:aws:iam::111111111111:role/path/to/reader").is_ok());
        for bad in [
            "arn:aws:iam:us-east-1:111111111111:role/r",
            "arn:aws:sts::111111111111:role/r",
            "arn:aws:iam::111111111111:role/",
            "arn:aws:iam::11111111111:role/r",
        ] {
            assert!(RoleArn::parse(bad).is_err(), "{bad}");
        }
        for (url, region) in [
            (
                "https://sqs.eu-west-1.amazonaws.com/111111111111/q",
                "eu-west-1",
            ),
            (
                "https://eu-west-1.queue.amazonaws.com/111111111111/q",
                "eu-west-1",
            ),
            ("https://queue.amazonaws.com/111111111111/q", "us-east-1"),
            (
                "https://sqs.cn-north-1.amazonaws.com.cn/111111111111/q",
                "cn-north-1",
            ),
        ] {
            assert_eq!(
                QueueUrl::parse(url, None).unwrap().region().as_str(),
                region
            );
        }
    }
}
