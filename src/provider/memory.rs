//! An in-memory provider for tests of the planner and executor: holds backups, records
//! deletions, and fails the ids it is told to fail. No I/O.

use super::{Provider, ProviderError};
use crate::model::Backup;
use std::sync::Mutex;

#[derive(Default)]
pub struct MemoryProvider {
    pub backups: Mutex<Vec<Backup>>,
    pub deleted: Mutex<Vec<String>>,
    /// Ids whose deletion fails with a provider error.
    pub failing: Vec<String>,
}

impl MemoryProvider {
    pub fn new(backups: Vec<Backup>) -> MemoryProvider {
        MemoryProvider {
            backups: Mutex::new(backups),
            ..MemoryProvider::default()
        }
    }

    fn error(&self, call: &str, message: &str) -> ProviderError {
        ProviderError {
            account: "memory".into(),
            call: call.into(),
            message: message.into(),
        }
    }
}

impl Provider for MemoryProvider {
    fn list(&self) -> Result<Vec<Backup>, ProviderError> {
        Ok(self.backups.lock().expect("memory provider lock").clone())
    }

    fn delete(&self, backup: &Backup) -> Result<(), ProviderError> {
        if self.failing.contains(&backup.id) {
            return Err(self.error(&format!("delete {}", backup.id), "injected failure"));
        }
        self.backups
            .lock()
            .expect("memory provider lock")
            .retain(|b| b.id != backup.id);
        self.deleted
            .lock()
            .expect("memory provider lock")
            .push(backup.id.clone());
        Ok(())
    }
}
