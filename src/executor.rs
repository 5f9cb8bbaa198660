//! Carries out a plan: deletes exactly the plan's `delete` set through a provider, with the
//! provider's batching and concurrency cap, and reports each outcome. The only place that
//! deletes. Refuses a blocked plan. Deletions whose failure may mean "already gone" are
//! settled by one fresh listing at the end: what it no longer shows counts as deleted.
//!
//! Every delete call goes through a [`Ledger`]: the intent is recorded before the call is sent
//! (a call whose intent cannot be recorded is not sent) and each outcome once it is settled.

use crate::model::{Backup, Text};
use crate::plan::PolicyPlan;
use crate::provider::{DeleteOutcome, ErrorKind, Provider, ProviderError};
use serde::Serialize;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::Semaphore;

/// Set when the daemon is stopping, or when a run's lock was lost (its PostgreSQL session
/// went away, so another host may take the policy): deletions already sent finish and are
/// recorded, no new delete call is sent. Clones share the flags.
#[derive(Clone, Debug, Default)]
pub struct Stop {
    stop: Arc<AtomicBool>,
    lock_lost: Arc<AtomicBool>,
}

impl Stop {
    pub fn set(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }

    pub fn is_set(&self) -> bool {
        self.stop.load(Ordering::SeqCst) || self.lock_lost()
    }

    /// Whether it was set because a run lock was lost.
    pub fn lock_lost(&self) -> bool {
        self.lock_lost.load(Ordering::SeqCst)
    }

    /// The flag a run lock sets when it is lost.
    pub fn lock_flag(&self) -> Arc<AtomicBool> {
        self.lock_lost.clone()
    }

    /// A stop for one run: set with this one, and by its own lock's loss.
    pub fn for_run(&self) -> Stop {
        Stop {
            stop: self.stop.clone(),
            lock_lost: Arc::default(),
        }
    }
}

/// What happened to the deletions of one plan.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Execution {
    pub deleted: Vec<String>,
    pub failed: Vec<FailedDeletion>,
    /// Never sent because the daemon was stopping; the next run plans them again.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_sent: Vec<String>,
    /// Accepted by the provider but not finished by its deadline; a later run settles them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pending: Vec<PendingDeletion>,
    /// Why sending stopped early: deletions kept failing the same way (a systemic failure such
    /// as permission denied on every file). The backups not tried are in `not_sent`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub halted: Option<String>,
    /// Outcomes the ledger could not record (the deletions themselves are reported above).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ledger_errors: Vec<String>,
}

/// The settled outcome of one deletion.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Settled<'a> {
    Deleted,
    Failed(&'a str),
    /// Accepted, carried out by the provider; recorded before waiting for the end.
    Pending(&'a str),
}

/// Where deletions are recorded: the journal, or nothing (tests, previews).
pub trait Ledger: Send + Sync {
    /// Called before a delete call is sent; an error keeps the call from being sent.
    fn intent(&self, batch: &[Backup]) -> Result<(), String>;
    /// The settled outcome of a backup whose intent was recorded.
    fn outcome(&self, backup: &Backup, outcome: Settled) -> Result<(), String>;
    /// Several settled outcomes at once (one transaction where the ledger can); the errors.
    fn outcomes(&self, settled: &[(&Backup, Settled)]) -> Vec<String> {
        settled
            .iter()
            .filter_map(|(backup, outcome)| self.outcome(backup, *outcome).err())
            .collect()
    }
}

/// Records nothing.
pub struct NoLedger;

impl Ledger for NoLedger {
    fn intent(&self, _: &[Backup]) -> Result<(), String> {
        Ok(())
    }

    fn outcome(&self, _: &Backup, _: Settled) -> Result<(), String> {
        Ok(())
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct FailedDeletion {
    pub id: String,
    pub error: String,
    /// What kind of failure: the provider error's kind (`server`, `rate_limited`, ...),
    /// `journal` when the intent could not be recorded, `other`.
    pub kind: &'static str,
}

#[derive(Clone, Debug, Serialize)]
pub struct PendingDeletion {
    pub id: String,
    pub detail: String,
}

fn describe(error: &ProviderError) -> String {
    format!("{}: {}", error.call, error.message)
}

/// Why a batch was not sent.
#[derive(Clone)]
enum Unsent {
    /// Its intent could not be recorded.
    Ledger(String),
    Stopping,
    /// Deletions kept failing the same way; this one was not tried.
    Halted,
}

/// After this many deletions in a row fail with the same kind of error (one that retrying
/// does not cure), the failure is
/// systemic (permission denied on every file, credentials without delete rights): the rest
/// are not sent, and the run reports one line instead of thousands.
pub const SYSTEMIC_FAILURES: usize = 10;

/// Counts deletions failing in a row with one kind of error, across the run's tasks.
#[derive(Default)]
struct Breaker {
    state: std::sync::Mutex<(usize, Option<&'static str>, Option<String>)>,
}

impl Breaker {
    /// Records an outcome; a success resets the count.
    fn record(&self, outcome: &DeleteOutcome) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        match outcome {
            // Throttling, 5xx and timeouts were retried already and may pass; a failure
            // that says the request itself is refused (forbidden, rejected, our own error
            // such as permission denied on a file) repeats for every backup.
            DeleteOutcome::Failed(e)
                if matches!(
                    e.kind,
                    ErrorKind::RateLimited
                        | ErrorKind::Server
                        | ErrorKind::Timeout
                        | ErrorKind::Connection
                ) =>
            {
                *state = (0, None, None)
            }
            DeleteOutcome::Failed(e) => {
                let kind = e.kind.as_str();
                if state.1 == Some(kind) {
                    state.0 += 1;
                } else {
                    *state = (1, Some(kind), None);
                }
                if state.0 >= SYSTEMIC_FAILURES && state.2.is_none() {
                    state.2 = Some(describe(e));
                }
            }
            DeleteOutcome::Deleted | DeleteOutcome::Pending(_) => *state = (0, None, None),
            DeleteOutcome::Unconfirmed(_) => {}
        }
    }

    /// The last error of the run of failures, once it is long enough to stop sending.
    fn tripped(&self) -> Option<String> {
        self.state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .2
            .clone()
    }
}

/// What a person should do about a systemic failure, when the error says it.
fn systemic_hint(error: &str) -> &'static str {
    if error.contains("Permission denied") || error.contains("Read-only file system") {
        "; retentiond may not write the backup folder: check its owner and mode, and under systemd add the folder to the unit's `ReadWritePaths=` (systemd/README.md)"
    } else if error.contains("forbidden") || error.contains("403") || error.contains("credentials")
    {
        "; check that the account's credentials may delete backups"
    } else {
        ""
    }
}

/// Deletes the plan's `delete` set, recording each call in `ledger`. A blocked plan deletes
/// nothing; once `stop` is set no further call is sent.
pub async fn execute(
    plan: &PolicyPlan<'_>,
    provider: Arc<dyn Provider>,
    ledger: Arc<dyn Ledger>,
    stop: &Stop,
) -> Execution {
    let mut execution = Execution::default();
    if plan.blocked.is_some() {
        return execution;
    }
    let doomed: Vec<Backup> = plan.deletions().cloned().collect();
    if doomed.is_empty() {
        return execution;
    }
    let permits = Arc::new(Semaphore::new(provider.delete_concurrency().max(1)));
    let breaker = Arc::new(Breaker::default());
    let mut tasks = tokio::task::JoinSet::new();
    for batch in provider.batches(doomed) {
        let (provider, permits, ledger) = (provider.clone(), permits.clone(), ledger.clone());
        let (stop, breaker) = (stop.clone(), breaker.clone());
        tasks.spawn(async move {
            // An account-wide task slot (CSBS: 5) is held until the deletion is settled.
            let _slot = match provider.task_slots() {
                Some(slots) => Some(slots.acquire_owned().await.expect("never closed")),
                None => None,
            };
            let _permit = permits.acquire().await.expect("never closed");
            let mut ledger_errors = Vec::new();
            if stop.is_set() {
                return (batch, Err(Unsent::Stopping), ledger_errors);
            }
            if breaker.tripped().is_some() {
                return (batch, Err(Unsent::Halted), ledger_errors);
            }
            let outcomes = match ledger.intent(&batch) {
                Ok(()) => {
                    let mut outcomes = provider.delete(&batch).await;
                    for (backup, outcome) in batch.iter().zip(outcomes.iter_mut()) {
                        if let DeleteOutcome::Pending(detail) = outcome {
                            if let Err(e) = ledger.outcome(backup, Settled::Pending(detail)) {
                                ledger_errors.push(e);
                            }
                            *outcome = provider.settle(backup).await;
                        }
                    }
                    for outcome in &outcomes {
                        breaker.record(outcome);
                    }
                    Ok(outcomes)
                }
                Err(e) => Err(Unsent::Ledger(e)),
            };
            (batch, outcomes, ledger_errors)
        });
    }
    let mut outcomes: HashMap<(Text, Text), DeleteOutcome> = HashMap::new();
    // Backups whose call was never sent: their intent could not be recorded, or the daemon
    // is stopping.
    let mut unsent: HashMap<(Text, Text), Unsent> = HashMap::new();
    let record = |backup: &Backup, outcome: Settled, execution: &mut Execution| {
        if let Err(e) = ledger.outcome(backup, outcome) {
            execution.ledger_errors.push(e);
        }
    };
    while let Some(joined) = tasks.join_next().await {
        // The outcomes of every task finished by now are recorded together.
        let mut finished = vec![joined];
        while let Some(more) = tasks.try_join_next() {
            finished.push(more);
        }
        let mut answered: Vec<(Backup, DeleteOutcome)> = Vec::new();
        for joined in finished {
            let (batch, results, ledger_errors) = joined.expect("a deletion task never panics");
            execution.ledger_errors.extend(ledger_errors);
            match results {
                Ok(results) => answered.extend(batch.into_iter().zip(results)),
                Err(e) => {
                    for backup in batch {
                        unsent.insert((backup.group, backup.id), e.clone());
                    }
                }
            }
        }
        let errors: Vec<String> = answered
            .iter()
            .map(|(_, outcome)| match outcome {
                DeleteOutcome::Failed(e) => describe(e),
                _ => String::new(),
            })
            .collect();
        let settled: Vec<(&Backup, Settled)> = answered
            .iter()
            .zip(&errors)
            .filter_map(|((backup, outcome), error)| match outcome {
                DeleteOutcome::Deleted => Some((backup, Settled::Deleted)),
                DeleteOutcome::Failed(_) => Some((backup, Settled::Failed(error))),
                DeleteOutcome::Pending(detail) => Some((backup, Settled::Pending(detail))),
                // Settled below, against a fresh listing.
                DeleteOutcome::Unconfirmed(_) => None,
            })
            .collect();
        execution.ledger_errors.extend(ledger.outcomes(&settled));
        drop(settled);
        for (backup, outcome) in answered {
            outcomes.insert((backup.group, backup.id), outcome);
        }
    }
    let unsettled = outcomes
        .values()
        .any(|o| matches!(o, DeleteOutcome::Unconfirmed(_)));
    // One fresh listing settles every unconfirmed deletion.
    let still_listed: Result<HashSet<(Text, Text)>, ProviderError> = if unsettled {
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
            Some(DeleteOutcome::Pending(detail)) => {
                execution.pending.push(PendingDeletion {
                    id: backup.id.to_string(),
                    detail,
                });
                continue;
            }
            Some(DeleteOutcome::Deleted) => None,
            Some(DeleteOutcome::Failed(e)) => Some((describe(&e), e.kind.as_str())),
            Some(DeleteOutcome::Unconfirmed(e)) => {
                let failure = match &still_listed {
                    Ok(listed) if !listed.contains(&key) => None,
                    Ok(_) => Some((describe(&e), e.kind.as_str())),
                    Err(list_error) => Some((
                        format!(
                            "{}; a fresh listing to check whether it is gone failed too: {}",
                            describe(&e),
                            describe(list_error)
                        ),
                        e.kind.as_str(),
                    )),
                };
                let settled = match &failure {
                    None => Settled::Deleted,
                    Some((error, _)) => Settled::Failed(error),
                };
                record(backup, settled, &mut execution);
                failure
            }
            None => match unsent.remove(&key) {
                Some(Unsent::Stopping) | Some(Unsent::Halted) => {
                    execution.not_sent.push(backup.id.to_string());
                    continue;
                }
                Some(Unsent::Ledger(e)) => Some((format!("not sent: {e}"), "journal")),
                None => Some((
                    "the provider reported no outcome for this backup".into(),
                    "other",
                )),
            },
        };
        match failure {
            None => execution.deleted.push(backup.id.to_string()),
            Some((error, kind)) => execution.failed.push(FailedDeletion {
                id: backup.id.to_string(),
                error,
                kind,
            }),
        }
    }
    if let Some(error) = breaker.tripped()
        && !execution.not_sent.is_empty()
        && !stop.is_set()
    {
        execution.halted = Some(format!(
            "stopped after {SYSTEMIC_FAILURES} deletions in a row failed the same way ({error}); {} more were not tried{}",
            execution.not_sent.len(),
            systemic_hint(&error)
        ));
    }
    execution
}

/// Waits for deletions an earlier run left pending (the journal knows them), without sending
/// them again; records each outcome.
pub async fn resume(
    pending: Vec<Backup>,
    provider: Arc<dyn Provider>,
    ledger: Arc<dyn Ledger>,
) -> Execution {
    let mut execution = Execution::default();
    let mut tasks = tokio::task::JoinSet::new();
    for backup in pending {
        let provider = provider.clone();
        tasks.spawn(async move {
            let _slot = match provider.task_slots() {
                Some(slots) => Some(slots.acquire_owned().await.expect("never closed")),
                None => None,
            };
            let outcome = provider.settle(&backup).await;
            (backup, outcome)
        });
    }
    while let Some(joined) = tasks.join_next().await {
        let (backup, outcome) = joined.expect("a settling task never panics");
        let (error, kind) = match &outcome {
            DeleteOutcome::Failed(e) | DeleteOutcome::Unconfirmed(e) => {
                (describe(e), e.kind.as_str())
            }
            _ => (String::new(), "other"),
        };
        let settled = match &outcome {
            DeleteOutcome::Deleted => Settled::Deleted,
            DeleteOutcome::Pending(detail) => Settled::Pending(detail),
            _ => Settled::Failed(&error),
        };
        if let Err(e) = ledger.outcome(&backup, settled) {
            execution.ledger_errors.push(e);
        }
        match outcome {
            DeleteOutcome::Deleted => execution.deleted.push(backup.id.into()),
            DeleteOutcome::Pending(detail) => execution.pending.push(PendingDeletion {
                id: backup.id.into(),
                detail,
            }),
            DeleteOutcome::Failed(_) | DeleteOutcome::Unconfirmed(_) => {
                execution.failed.push(FailedDeletion {
                    id: backup.id.into(),
                    error,
                    kind,
                })
            }
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
        run_with(plan, provider, Arc::new(NoLedger), &Stop::default())
    }

    fn run_with(
        plan: &PolicyPlan,
        provider: Arc<MemoryProvider>,
        ledger: Arc<dyn Ledger>,
        stop: &Stop,
    ) -> Execution {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime.block_on(execute(plan, provider, ledger, stop))
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
            &policy("guard: {max_delete_fraction: 1}"),
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
            &policy("guard: {max_delete_fraction: 1}"),
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
            &policy("guard: {max_delete: 2, max_delete_fraction: 1}"),
            &listing,
            jiff::Timestamp::now(),
            &TimeZone::UTC,
        );
        assert!(plan.blocked.is_some());
        let execution = run(&plan, provider.clone());
        assert!(execution.deleted.is_empty() && execution.failed.is_empty());
        assert!(provider.deleted.lock().unwrap().is_empty());
    }

    /// A ledger that stops the run once the first intent is recorded, as SIGTERM would.
    struct StopAfterFirst(Stop);

    impl Ledger for StopAfterFirst {
        fn intent(&self, _: &[Backup]) -> Result<(), String> {
            self.0.set();
            Ok(())
        }

        fn outcome(&self, _: &Backup, _: Settled) -> Result<(), String> {
            Ok(())
        }
    }

    #[test]
    fn once_stopping_no_new_deletion_is_sent_and_the_one_in_flight_finishes() {
        let listing = backups(6);
        let provider = Arc::new(MemoryProvider::new(listing.clone()));
        let plan = plan(
            &policy("guard: {max_delete_fraction: 1}"),
            &listing,
            jiff::Timestamp::now(),
            &TimeZone::UTC,
        );
        let stop = Stop::default();
        let ledger = Arc::new(StopAfterFirst(stop.clone()));
        let execution = run_with(&plan, provider.clone(), ledger, &stop);
        assert_eq!(execution.deleted, ["b2"]);
        assert_eq!(execution.not_sent, ["b3", "b4", "b5"]);
        assert!(execution.failed.is_empty());
        assert_eq!(*provider.deleted.lock().unwrap(), ["b2"]);
    }
}
