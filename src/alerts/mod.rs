//! Alerts on what the logs say: CloudWatch Logs filter patterns ([`pattern`]) evaluated on
//! CloudTrail records, and the CIS benchmark's monitoring rules as a built-in set ([`cis`]).

pub mod cis;
pub mod deliver;
pub mod eval;
pub mod pattern;
