//! The member accounts the worker serves: the configured ones, and (with discovery) those the
//! organization lists. Readers take a snapshot; discovery swaps in a new one whole, so that a
//! copy never sees an account half added.

use std::sync::{Arc, RwLock};

use crate::config::{Account, Config};

/// The accounts, as one replaceable snapshot.
#[derive(Debug)]
pub struct Directory {
    current: RwLock<Arc<Vec<Account>>>,
}

impl Directory {
    /// The configured accounts.
    pub fn new(config: &Config) -> Directory {
        Directory {
            current: RwLock::new(Arc::new(config.accounts.clone())),
        }
    }

    pub fn snapshot(&self) -> Arc<Vec<Account>> {
        self.current.read().expect("directory lock").clone()
    }

    pub fn replace(&self, accounts: Vec<Account>) {
        *self.current.write().expect("directory lock") = Arc::new(accounts);
    }
}
