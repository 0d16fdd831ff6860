//! CloudTrail's formats: key layout, log files, digest files and signatures, decompression.

pub mod digest;
pub mod gzip;
pub mod key;
pub mod logfile;
