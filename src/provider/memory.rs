//! An in-memory provider for tests of the planner and executor: holds backups, records
//! deletions, and fails the ids it is told to fail. No I/O.

use super::{BoxFuture, DeleteOutcome, Provider, ProviderError};
use crate::model::Backup;
use std::sync::Mutex;

#[derive(Default)]
pub struct MemoryProvider {
    pub backups: Mutex<Vec<Backup>>,
    pub deleted: Mutex<Vec<String>>,
    /// Ids whose deletion fails with a provider error.
    pub failing: Vec<String>,
    /// Ids whose deletion fails in a way that may mean "already gone".
    pub unconfirmed: Vec<String>,
    /// Delete calls allowed in flight.
    pub concurrency: usize,
}

impl MemoryProvider {
    pub fn new(backups: Vec<Backup>) -> MemoryProvider {
        MemoryProvider {
            backups: Mutex::new(backups),
            concurrency: 1,
            ..MemoryProvider::default()
        }
    }

    pub fn ids(&self) -> Vec<String> {
        let backups = self.backups.lock().expect("memory provider lock");
        backups.iter().map(|b| b.id.to_string()).collect()
    }

    fn delete_one(&self, backup: &Backup) -> DeleteOutcome {
        let call = format!("delete {}", backup.id);
        if self.failing.iter().any(|id| *id == backup.id) {
            return DeleteOutcome::Failed(ProviderError::new("memory", &call, "injected failure"));
        }
        if self.unconfirmed.iter().any(|id| *id == backup.id) {
            return DeleteOutcome::Unconfirmed(ProviderError::new(
                "memory",
                &call,
                "injected unconfirmed failure",
            ));
        }
        self.backups
            .lock()
            .expect("memory provider lock")
            .retain(|b| b.id != backup.id);
        self.deleted
            .lock()
            .expect("memory provider lock")
            .push(backup.id.to_string());
        DeleteOutcome::Deleted
    }
}

impl Provider for MemoryProvider {
    fn list(&self) -> BoxFuture<'_, Result<Vec<Backup>, ProviderError>> {
        let backups = self.backups.lock().expect("memory provider lock").clone();
        Box::pin(async move { Ok(backups) })
    }

    fn delete<'a>(&'a self, batch: &'a [Backup]) -> BoxFuture<'a, Vec<DeleteOutcome>> {
        Box::pin(async move { batch.iter().map(|b| self.delete_one(b)).collect() })
    }

    fn delete_concurrency(&self) -> usize {
        self.concurrency.max(1)
    }
}
