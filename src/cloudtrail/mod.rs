//! CloudTrail's formats: key layout, digest files and signatures, and decompression.

pub mod digest;
pub mod gzip;
pub mod key;
