//! Carries out a plan: deletes exactly the plan's `delete` set through a provider, with the
//! provider's batching and concurrency cap, and reports each outcome. The only place that
//! deletes. Refuses a blocked plan. Deletions whose failure may mean "already gone" are
//! settled by one fresh listing at the end: what it no longer shows counts as deleted.

use crate::model::Backup;
use crate::plan::PolicyPlan;
use crate::provider::{DeleteOutcome, Provider, ProviderError};
use serde::Serialize;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use tokio::sync::Semaphore;

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

fn describe(error: &ProviderError) -> String {
    format!("{}: {}", error.call, error.message)
}

/// Deletes the plan's `delete` set. A blocked plan deletes nothing.
pub async fn execute(plan: &PolicyPlan<'_>, provider: Arc<dyn Provider>) -> Execution {
    let mut execution = Execution::default();
    if plan.blocked.is_some() {
        return execution;
    }
    let doomed: Vec<Backup> = plan.deletions().cloned().collect();
    if doomed.is_empty() {
        return execution;
    }
    let permits = Arc::new(Semaphore::new(provider.delete_concurrency().max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    for batch in provider.batches(doomed) {
        let (provider, permits) = (provider.clone(), permits.clone());
        tasks.spawn(async move {
            let _permit = permits.acquire().await.expect("never closed");
            let outcomes = provider.delete(&batch).await;
            (batch, outcomes)
        });
    }
    let mut outcomes: HashMap<(String, String), DeleteOutcome> = HashMap::new();
    while let Some(joined) = tasks.join_next().await {
        let (batch, results) = joined.expect("a deletion task never panics");
        for (backup, outcome) in batch.into_iter().zip(results) {
            outcomes.insert((backup.group, backup.id), outcome);
        }
    }
    let unsettled = outcomes
        .values()
        .any(|o| matches!(o, DeleteOutcome::Unconfirmed(_)));
    // One fresh listing settles every unconfirmed deletion.
    let still_listed: Result<HashSet<(String, String)>, ProviderError> = if unsettled {
        provider
            .list()
            .await
            .map(|backups| backups.into_iter().map(|b| (b.group, b.id)).collect())
    } else {
        Ok(HashSet::new())
    };
    for backup in plan.deletions() {
        let key = (backup.group.clone(), backup.id.clone());
        let failure = match outcomes.remove(&key) {
            Some(DeleteOutcome::Deleted) => None,
            Some(DeleteOutcome::Failed(e)) => Some(describe(&e)),
            Some(DeleteOutcome::Unconfirmed(e)) => match &still_listed {
                Ok(listed) if !listed.contains(&key) => None,
                Ok(_) => Some(describe(&e)),
                Err(list_error) => Some(format!(
                    "{}; a fresh listing to check whether it is gone failed too: {}",
                    describe(&e),
                    describe(list_error)
                )),
            },
            None => Some("the provider reported no outcome for this backup".into()),
        };
        match failure {
            None => execution.deleted.push(backup.id.clone()),
            Some(error) => execution.failed.push(FailedDeletion {
                id: backup.id.clone(),
                error,
            }),
        }
    }
    execution
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Backup, Status};
    use crate::plan::plan;
    use crate::policy::policies_from_str;
    use crate::provider::memory::MemoryProvider;
    use jiff::tz::TimeZone;

    fn backups(n: i64) -> Vec<Backup> {
        (0..n)
            .map(|i| {
                Backup::new(
                    &format!("b{i}"),
                    "g",
                    jiff::Timestamp::from_second(1_700_000_000 - i * 86_400).unwrap(),
                    Status::Complete,
                )
            })
            .collect()
    }

    fn policy(guard: &str) -> crate::policy::Policy {
        let text = format!("name: p\naccount: a\nkeep: {{last: 2}}\n{guard}");
        policies_from_str(std::path::Path::new("p.yaml"), &text)
            .0
            .remove(0)
    }

    fn run(plan: &PolicyPlan, provider: Arc<MemoryProvider>) -> Execution {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime.block_on(execute(plan, provider))
    }

    #[test]
    fn deletes_exactly_the_delete_set_and_reports_each_failure() {
        let listing = backups(6);
        let provider = Arc::new(MemoryProvider {
            failing: vec!["b3".into()],
            concurrency: 3,
            ..MemoryProvider::new(listing.clone())
        });
        let plan = plan(
            &policy(""),
            &listing,
            jiff::Timestamp::now(),
            &TimeZone::UTC,
        );
        let execution = run(&plan, provider.clone());
        assert_eq!(execution.deleted, ["b2", "b4", "b5"]);
        assert_eq!(execution.failed.len(), 1);
        assert_eq!(execution.failed[0].id, "b3");
        assert_eq!(execution.failed[0].error, "delete b3: injected failure");
        assert_eq!(provider.ids(), ["b0", "b1", "b3"]);
    }

    #[test]
    fn unconfirmed_deletions_are_settled_by_a_fresh_listing() {
        let listing = backups(5);
        let provider = Arc::new(MemoryProvider {
            unconfirmed: vec!["b3".into(), "b4".into()],
            ..MemoryProvider::new(listing.clone())
        });
        // b4 vanished by other means: its failed deletion counts as done; b3 is still there.
        provider.backups.lock().unwrap().retain(|b| b.id != "b4");
        let plan = plan(
            &policy(""),
            &listing,
            jiff::Timestamp::now(),
            &TimeZone::UTC,
        );
        let execution = run(&plan, provider.clone());
        assert_eq!(execution.deleted, ["b2", "b4"]);
        assert_eq!(execution.failed.len(), 1);
        assert_eq!(execution.failed[0].id, "b3");
        assert_eq!(
            execution.failed[0].error,
            "delete b3: injected unconfirmed failure"
        );
    }

    #[test]
    fn a_blocked_plan_deletes_nothing() {
        let listing = backups(5);
        let provider = Arc::new(MemoryProvider::new(listing.clone()));
        let plan = plan(
            &policy("guard: {max_delete: 2}"),
            &listing,
            jiff::Timestamp::now(),
            &TimeZone::UTC,
        );
        assert!(plan.blocked.is_some());
        let execution = run(&plan, provider.clone());
        assert!(execution.deleted.is_empty() && execution.failed.is_empty());
        assert!(provider.deleted.lock().unwrap().is_empty());
    }
}
