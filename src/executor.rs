//! Carries out a plan: deletes exactly the plan's `delete` set through a provider, and reports
//! each outcome. The only place that deletes. Refuses a blocked plan.

use crate::plan::PolicyPlan;
use crate::provider::{Provider, ProviderError};
use serde::Serialize;

/// What happened to the deletions of one plan.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Execution {
    pub deleted: Vec<String>,
    pub failed: Vec<FailedDeletion>,
}

#[derive(Clone, Debug, Serialize)]
pub struct FailedDeletion {
    pub id: String,
    pub error: String,
}

/// Deletes the plan's `delete` set. A blocked plan deletes nothing.
pub fn execute(plan: &PolicyPlan, provider: &dyn Provider) -> Execution {
    let mut execution = Execution::default();
    if plan.blocked.is_some() {
        return execution;
    }
    for backup in plan.deletions() {
        match provider.delete(backup) {
            Ok(()) => execution.deleted.push(backup.id.clone()),
            Err(ProviderError { message, call, .. }) => execution.failed.push(FailedDeletion {
                id: backup.id.clone(),
                error: format!("{call}: {message}"),
            }),
        }
    }
    execution
}
