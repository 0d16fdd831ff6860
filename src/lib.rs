//! trailvault keeps one tamper-evident, long-term archive of an AWS Organization's CloudTrail
//! logs.
//!
//! CloudTrail in every member account writes gzip JSON log files, and hourly signed digest
//! files, into that account's own bucket. S3 notifies a queue in the security account; the
//! worker reads the notification, assumes the member account's reader role, copies the object
//! byte-for-byte into the central archive bucket under the security account's KMS key and
//! Object Lock, and only then deletes the message. Auditors verify the archive from the
//! archive alone.
//!
//! The data moves one way, and the modules follow it:
//!
//! - [`config`]: the deployment, validated once at start-up;
//! - [`aws`]: the SDK clients, one base configuration, one assumed role per member account;
//! - [`cloudtrail`]: CloudTrail's key layout, digest format and signatures;
//! - [`commands`]: one module per subcommand; [`cli`] declares them.

pub mod alerts;
pub mod archive;
pub mod aws;
pub mod cli;
pub mod cloudtrail;
pub mod commands;
pub mod completeness;
pub mod config;
pub mod failpoint;
pub mod manifest;
pub mod notification;
pub mod retention;
pub mod shutdown;
pub mod telemetry;
pub mod verify;
pub mod worker;
