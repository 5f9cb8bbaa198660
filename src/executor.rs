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

    #[test]
    fn deletes_exactly_the_delete_set_and_reports_each_failure() {
        let listing = backups(5);
        let provider = MemoryProvider {
            failing: vec!["b3".into()],
            ..MemoryProvider::new(listing.clone())
        };
        let plan = plan(
            &policy(""),
            &listing,
            jiff::Timestamp::now(),
            &TimeZone::UTC,
        );
        let execution = execute(&plan, &provider);
        assert_eq!(execution.deleted, ["b2", "b4"]);
        assert_eq!(execution.failed.len(), 1);
        assert_eq!(execution.failed[0].id, "b3");
        assert_eq!(execution.failed[0].error, "delete b3: injected failure");
        let left: Vec<String> = provider.list().unwrap().into_iter().map(|b| b.id).collect();
        assert_eq!(left, ["b0", "b1", "b3"]);
    }

    #[test]
    fn a_blocked_plan_deletes_nothing() {
        let listing = backups(5);
        let provider = MemoryProvider::new(listing.clone());
        let plan = plan(
            &policy("guard: {max_delete: 2}"),
            &listing,
            jiff::Timestamp::now(),
            &TimeZone::UTC,
        );
        assert!(plan.blocked.is_some());
        let execution = execute(&plan, &provider);
        assert!(execution.deleted.is_empty() && execution.failed.is_empty());
        assert!(provider.deleted.lock().unwrap().is_empty());
    }
}
