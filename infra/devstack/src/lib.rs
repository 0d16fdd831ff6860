//! The devstack: a simulated AWS Organization running CloudTrail, provisioned into the local
//! emulator (moto) for trailvault's demo and tests. Not part of the product.
//!
//! - [`provision::up`] creates the organization: a security account with the archive bucket,
//!   KMS keys, queues and the worker's identity; member accounts with CloudTrail buckets,
//!   reader roles and notifications;
//! - [`deliver::deliver`] runs CloudTrail: log files, Insights files and signed digests into
//!   every member bucket, each write's notification onto its region's central queue;
//! - [`status::status`] reports what was delivered and what waits.
//!
//! The state of a stack lives in a directory (see [`state`]).

pub mod deliver;
pub mod provision;
pub mod records;
pub mod session;
pub mod state;
pub mod status;
pub mod timefmt;
pub mod trail;
