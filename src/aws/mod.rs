//! Small wrappers around the AWS SDK clients, all built from one `SdkConfig`.

pub mod clients;
pub mod errors;
pub mod versions;

pub use clients::{Aws, MemberClients};
pub use errors::Failure;
pub use versions::{Version, Versions};
