//! Small wrappers around the AWS SDK clients, all built from one `SdkConfig`.

pub mod clients;
pub mod errors;
pub mod hash;
pub mod head;
pub mod listing;
pub mod versions;

pub use clients::{Aws, MemberClients, Members};
pub use errors::Failure;
pub use head::Head;
pub use versions::{Version, Versions};
