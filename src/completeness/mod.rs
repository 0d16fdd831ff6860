//! Completeness: what the member buckets hold that the archive lacks, found by listing and
//! archived through the same archive layer as every notification.
//!
//! - [`inventory`]: the member buckets and the archive listed by CloudTrail's date layout;
//! - [`backfill`]: `trailvault backfill`, one pass of compare-and-archive;
//! - [`sweep`]: the worker's periodic pass over recent days (missed notifications);
//! - [`discovery`]: the organization's accounts and their trail buckets, found by listing.

pub mod backfill;
pub mod discovery;
pub mod inventory;
pub mod sweep;
