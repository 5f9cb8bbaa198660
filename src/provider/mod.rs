//! The provider seam: list a policy's selection completely, delete one backup. One module per
//! provider; each converts to the one [`Backup`] model.

pub mod local;
pub mod memory;

use crate::model::Backup;
use crate::policy::{Account, AccountSettings, Policy};
use std::fmt;

/// A provider call that failed. Names the account and the call; never holds a secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProviderError {
    pub account: String,
    pub call: String,
    pub message: String,
}

impl fmt::Display for ProviderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "account {}: {}: {}",
            self.account, self.call, self.message
        )
    }
}

impl std::error::Error for ProviderError {}

pub trait Provider {
    /// Every backup of the selection, or an error: a listing that is not known to be complete
    /// is never returned.
    fn list(&self) -> Result<Vec<Backup>, ProviderError>;

    /// Deletes one backup. A backup that is already gone counts as deleted.
    fn delete(&self, backup: &Backup) -> Result<(), ProviderError>;
}

/// The provider for a policy's account and selection.
pub fn open(account: &Account, policy: &Policy) -> Result<Box<dyn Provider>, ProviderError> {
    match &account.settings {
        AccountSettings::Local { path } => Ok(Box::new(local::LocalProvider::new(
            &account.name,
            path,
            policy.select.local.clone(),
        ))),
        _ => Err(ProviderError {
            account: account.name.clone(),
            call: "open".into(),
            message: format!(
                "the {} provider is not available in this version of retentiond yet; its accounts validate, but list, plan and run need the local provider",
                account.kind
            ),
        }),
    }
}
