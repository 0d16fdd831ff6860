//! Small wrappers around the AWS SDK clients, all built from one `SdkConfig`.

pub mod clients;

pub use clients::{Aws, MemberClients};
