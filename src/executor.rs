//! Carries out a plan: deletes exactly the plan's `delete` set through a provider, with the
//! provider's batching and concurrency cap, and reports each outcome. The only place that
//! deletes. Refuses a blocked plan. Deletions whose failure may mean "already gone" are
//! settled by one fresh listing at the end: what it no longer shows counts as deleted.
//!
//! Every delete call goes through a [`Ledger`]: the intent is recorded before the call is sent
//! (a call whose intent cannot be recorded is not sent) and each outcome once it is settled.

use crate::model::{Backup, Text};
use crate::plan::{Action, PolicyPlan};
use crate::provider::{BoxFuture, DeleteOutcome, ErrorKind, Provider, ProviderError};
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use serde::Serialize;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

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

/// The backups a run deleted. What [`execute`] deleted are positions in its plan's
/// decisions (four bytes a deletion: a run that deletes a million does not copy their ids);
/// what [`resume`] settled, from the journal, are ids.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ids {
    Planned(Vec<u32>),
    Named(Vec<String>),
}

impl Default for Ids {
    fn default() -> Ids {
        Ids::Named(Vec::new())
    }
}

/// [`Ids::Named`] as a list; [`Ids::Planned`] needs its plan ([`Ids::serialize`]).
impl Serialize for Ids {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Ids::Named(ids) => ids.serialize(s),
            Ids::Planned(_) => Err(serde::ser::Error::custom(
                "the ids of a plan's deletions are written with their plan",
            )),
        }
    }
}

impl Ids {
    pub fn len(&self) -> usize {
        match self {
            Ids::Planned(positions) => positions.len(),
            Ids::Named(ids) => ids.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The ids, read from `plan` (the plan the execution carried out) where they are its
    /// positions.
    pub fn iter<'a>(
        &'a self,
        plan: Option<&'a PolicyPlan<'_>>,
    ) -> Box<dyn Iterator<Item = &'a str> + 'a> {
        match (self, plan) {
            (Ids::Named(ids), _) => Box::new(ids.iter().map(String::as_str)),
            (Ids::Planned(positions), Some(plan)) => Box::new(
                positions
                    .iter()
                    .map(|&p| plan.decisions[p as usize].backup.id.as_str()),
            ),
            (Ids::Planned(_), None) => unreachable!("planned ids are read with their plan"),
        }
    }

    /// The ids as a list, read from `plan` where they are its positions.
    pub fn with_plan<'a>(&'a self, plan: Option<&'a PolicyPlan<'_>>) -> impl Serialize + 'a {
        struct List<'a>(&'a Ids, Option<&'a PolicyPlan<'a>>);
        impl Serialize for List<'_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_seq(self.0.iter(self.1))
            }
        }
        List(self, plan)
    }
}

/// What happened to the deletions of one plan.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Execution {
    pub deleted: Ids,
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
    /// Its intent was recorded but its call never sent (the run stopped first).
    NotSent(&'a str),
}

/// An outcome to record: the token the ledger gave the deletion's intent, and the backup.
#[derive(Clone, Copy, Debug)]
pub struct Outcome<'a> {
    pub token: u64,
    pub backup: &'a Backup,
    pub settled: Settled<'a>,
}

/// Where deletions are recorded: the journal, or nothing (tests, previews).
pub trait Ledger: Send + Sync {
    /// Records, in one commit where the ledger can, the outcomes `settled` and the intents
    /// of `intents`; a token for each intent, in order, that its outcome later names.
    /// Called before the intents' calls are sent: an error means none of the intents is
    /// recorded, and their calls are not sent.
    fn record(&self, settled: &[Outcome], intents: &[&Backup]) -> Result<Vec<u64>, String>;

    /// The last line of defence, asked just before `intents` are recorded: which of them
    /// must not be deleted after all (a hold made since the plan), as `(index, why)`. An
    /// error refuses them all.
    fn refused(&self, _intents: &[&Backup]) -> Result<Vec<(usize, String)>, String> {
        Ok(Vec::new())
    }

    /// How many deletions' intents may be recorded ahead of their calls at most ([`AHEAD`]
    /// unless the ledger says otherwise): each waits as a copy of its backup until its
    /// outcome is recorded, so a ledger whose commits are cheap keeps the window small.
    fn ahead(&self) -> usize {
        AHEAD
    }
}

/// Records nothing.
pub struct NoLedger;

impl Ledger for NoLedger {
    fn record(&self, _: &[Outcome], intents: &[&Backup]) -> Result<Vec<u64>, String> {
        Ok(vec![0; intents.len()])
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

/// How far intents run ahead of the calls at most: up to this many deletions (or, for a
/// provider of wide calls, twice what it may have in flight) are recorded before their
/// turn. Once half of the window is sent, the next half is recorded in one commit (with the
/// outcomes settled since the last) while the other half is sent, so that neither a fast
/// provider nor a slow one waits for a commit. (A local folder deletes 2,048 files in about
/// 20 ms, as long as a PostgreSQL 2 ms away takes to commit their intents and outcomes.) A
/// ledger whose commits cost less may ask for fewer ([`Ledger::ahead`]).
pub const AHEAD: usize = 4096;

/// How long settled outcomes wait for company once no intents are left to record them with.
const OUTCOMES_WAIT: Duration = Duration::from_millis(50);

/// Where a deletion stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Not recorded yet, or recorded and waiting for its turn.
    Waiting,
    Deleted,
    Failed,
    Pending,
    /// Failed in a way that may mean "already gone"; a fresh listing decides.
    Unconfirmed,
    /// Never sent: the run was stopping.
    Stopping,
    /// Never sent: deletions kept failing the same way.
    Halted,
    /// Never sent: its intent could not be recorded.
    Ledger,
}

/// An outcome waiting for the next commit.
struct Unrecorded {
    token: u64,
    backup: Backup,
    settled: Owned,
}

/// [`Settled`], owning its text.
enum Owned {
    Deleted,
    Failed(String),
    Pending(String),
    NotSent(String),
}

impl Unrecorded {
    fn view(&self) -> Outcome<'_> {
        let settled = match &self.settled {
            Owned::Deleted => Settled::Deleted,
            Owned::Failed(e) => Settled::Failed(e),
            Owned::Pending(d) => Settled::Pending(d),
            Owned::NotSent(why) => Settled::NotSent(why),
        };
        Outcome {
            token: self.token,
            backup: &self.backup,
            settled,
        }
    }
}

/// What finished: a commit of the ledger, or a delete call.
enum Done {
    Recorded {
        /// The first batch whose intents it recorded.
        first: usize,
        group: Vec<Vec<Backup>>,
        /// Intents the ledger refused to record (index in the group, why).
        refused: Vec<(usize, String)>,
        result: Result<Vec<u64>, String>,
        outcomes: usize,
    },
    Sent {
        positions: Vec<u32>,
        backups: Vec<Backup>,
        tokens: Vec<u64>,
        outcomes: Vec<DeleteOutcome>,
        ledger_errors: Vec<String>,
    },
}

/// Records `outcomes` (no intents) on a thread that may block.
async fn record_outcomes(ledger: &Arc<dyn Ledger>, outcomes: Vec<Unrecorded>) -> Option<String> {
    if outcomes.is_empty() {
        return None;
    }
    let ledger = ledger.clone();
    let recorded = tokio::task::spawn_blocking(move || {
        let settled: Vec<Outcome> = outcomes.iter().map(Unrecorded::view).collect();
        ledger
            .record(&settled, &[])
            .err()
            .map(|e| plural_outcomes(e, settled.len()))
    });
    recorded.await.expect("a ledger never panics")
}

fn plural_outcomes(error: String, n: usize) -> String {
    match n {
        1 => error,
        n => format!("{error} (the outcomes of {n} deletions)"),
    }
}

/// Deletes the plan's `delete` set, recording each call in `ledger`. A blocked plan deletes
/// nothing; once `stop` is set no further call is sent.
///
/// Intents are committed in groups ahead of their calls ([`AHEAD`]), each commit carrying the
/// outcomes settled since the one before (up to [`Ledger::ahead`] deletions ahead); no call is
/// sent before the commit of its intent returned. Intents recorded but never sent (the run
/// stopped) are recorded as not sent.
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
    let mut doomed: Vec<&Backup> = Vec::with_capacity(plan.summary.delete);
    doomed.extend(plan.deletions());
    if doomed.is_empty() {
        return execution;
    }
    let batches = provider.batches(&doomed);
    let cap = provider.delete_concurrency().max(1);
    let widest = batches.iter().map(<[u32]>::len).max().unwrap_or(1);
    // The window of intents recorded ahead: twice what the provider may have in flight to
    // begin with, doubled each time the provider had to wait for a commit, up to `most`. A
    // slow provider keeps a small window (few calls go out after the journal is lost); a
    // fast one soon records its intents a thousand at a time.
    let most = ledger.ahead().max(2 * cap * widest);
    let mut ahead = (2 * cap * widest).min(most);
    let (mut waited, mut started) = (false, false);
    let mut state = vec![State::Waiting; doomed.len()];
    // Only for the deletions that need them: failures, pending details, unconfirmed ones.
    let mut failures: HashMap<u32, (String, &'static str)> = HashMap::new();
    let mut details: HashMap<u32, String> = HashMap::new();
    let mut unconfirmed: Vec<(u32, u64, Backup, ProviderError)> = Vec::new();
    // Batches `next..` are not recorded yet; `ready` are recorded and wait for their turn.
    let mut next = 0;
    // Each with the positions of its backups in `doomed` (a refused one leaves a gap).
    let mut ready: VecDeque<(Vec<u32>, Vec<Backup>, Vec<u64>)> = VecDeque::new();
    let mut ready_len = 0;
    let mut recording = false;
    let mut in_flight = 0;
    let mut unrecorded: Vec<Unrecorded> = Vec::new();
    let mut waiting_since = None;
    let breaker = Breaker::default();
    // Polled here, not spawned: a provider's call finishing wakes no other thread. The
    // ledger's commits run on a thread that may block, alongside the calls.
    let mut tasks: FuturesUnordered<BoxFuture<'static, Done>> = FuturesUnordered::new();
    loop {
        let stopping = stop.is_set() || breaker.tripped().is_some();
        // Refilled once half the window is sent: groups of at least half of it.
        let intents_due = !stopping && next < batches.len() && ready_len <= ahead / 2;
        // Outcomes ride with the next intents; alone only once no intents are left to record,
        // and then once half a window of them or [`OUTCOMES_WAIT`] gathered them.
        let outcomes_due = !unrecorded.is_empty()
            && (stopping || next >= batches.len())
            && (unrecorded.len() >= ahead / 2
                || waiting_since.is_some_and(|t: Instant| t.elapsed() >= OUTCOMES_WAIT));
        if !recording && (intents_due || outcomes_due) {
            let mut end = next;
            if intents_due {
                let mut size = 0;
                while end < batches.len()
                    && (end == next || size + batches.get(end).len() <= ahead - ready_len)
                {
                    size += batches.get(end).len();
                    end += 1;
                }
            }
            let group: Vec<Vec<Backup>> = (next..end)
                .map(|k| {
                    let positions = batches.get(k).iter();
                    positions.map(|&p| doomed[p as usize].clone()).collect()
                })
                .collect();
            let outcomes = std::mem::take(&mut unrecorded);
            waiting_since = None;
            let (ledger, first) = (ledger.clone(), next);
            next = end;
            recording = true;
            let commit = tokio::task::spawn_blocking(move || {
                let intents: Vec<&Backup> = group.iter().flatten().collect();
                let settled: Vec<Outcome> = outcomes.iter().map(Unrecorded::view).collect();
                let (refused, result) = match ledger.refused(&intents) {
                    Ok(refused) => {
                        let allowed: Vec<&Backup> = intents
                            .iter()
                            .enumerate()
                            .filter(|(i, _)| !refused.iter().any(|(r, _)| r == i))
                            .map(|(_, b)| *b)
                            .collect();
                        (refused, ledger.record(&settled, &allowed))
                    }
                    // The outcomes are recorded all the same; none of the intents is.
                    Err(e) => {
                        let recorded = ledger.record(&settled, &[]);
                        let e = match recorded {
                            Ok(_) => e,
                            Err(also) => format!("{e}; {also}"),
                        };
                        (Vec::new(), Err(e))
                    }
                };
                drop(intents);
                Done::Recorded {
                    first,
                    outcomes: settled.len(),
                    group,
                    refused,
                    result,
                }
            });
            tasks.push(Box::pin(async move {
                commit.await.expect("a ledger never panics")
            }));
        }
        while in_flight < cap && !stop.is_set() && breaker.tripped().is_none() {
            let Some((positions, backups, tokens)) = ready.pop_front() else {
                // The provider is idle, waiting for the commit under way.
                waited |= recording && started;
                break;
            };
            ready_len -= backups.len();
            in_flight += 1;
            started = true;
            let (provider, ledger) = (provider.clone(), ledger.clone());
            tasks.push(Box::pin(async move {
                // An account-wide task slot (CSBS: 5) is held until the deletion is settled.
                let _slot = match provider.task_slots() {
                    Some(slots) => Some(slots.acquire_owned().await.expect("never closed")),
                    None => None,
                };
                let mut ledger_errors = Vec::new();
                let mut outcomes = provider.delete(&backups).await;
                for ((backup, token), outcome) in
                    backups.iter().zip(&tokens).zip(outcomes.iter_mut())
                {
                    if let DeleteOutcome::Pending(detail) = outcome {
                        let pending = Outcome {
                            token: *token,
                            backup,
                            settled: Settled::Pending(detail),
                        };
                        if let Err(e) = ledger.record(&[pending], &[]) {
                            ledger_errors.push(e);
                        }
                        *outcome = provider.settle(backup).await;
                    }
                }
                Done::Sent {
                    positions,
                    backups,
                    tokens,
                    outcomes,
                    ledger_errors,
                }
            }));
        }
        // Nothing running: every batch was sent and settled, or no more will be.
        let Some(done) = tasks.next().await else {
            break;
        };
        // A provider whose calls end at once (local files) would keep this loop from ever
        // giving the thread back: what runs beside it in the same task (`run`'s printer of
        // each deletion) would wait to the end, and its lines would pile up (70 MB for a
        // million deletions). Tokio's budget gives the thread back every 128 steps.
        tokio::task::coop::consume_budget().await;
        match done {
            Done::Recorded {
                first,
                group,
                refused,
                result,
                outcomes,
            } => {
                recording = false;
                if std::mem::take(&mut waited) {
                    ahead = (2 * ahead).min(most);
                }
                let intents = group.iter().map(Vec::len).sum::<usize>() - refused.len();
                // A token for each intent, or none is taken as recorded.
                let result = result.and_then(|tokens| match tokens.len() == intents {
                    true => Ok(tokens),
                    false => Err(format!(
                        "the ledger answered {} tokens for {intents} intents",
                        tokens.len()
                    )),
                });
                match result {
                    Ok(tokens) => {
                        let mut tokens = tokens.into_iter();
                        let mut index = 0;
                        for (k, backups) in (first..).zip(group) {
                            let mut kept = (Vec::new(), Vec::new(), Vec::new());
                            for (backup, &p) in backups.into_iter().zip(batches.get(k)) {
                                let why = refused.iter().find(|(r, _)| *r == index);
                                index += 1;
                                if let Some((_, why)) = why {
                                    state[p as usize] = State::Failed;
                                    failures.insert(p, (format!("not sent: {why}"), "held"));
                                    continue;
                                }
                                kept.0.push(p);
                                kept.1.push(backup);
                                kept.2.extend(tokens.next());
                            }
                            if !kept.1.is_empty() {
                                ready_len += kept.1.len();
                                ready.push_back(kept);
                            }
                        }
                    }
                    Err(e) => {
                        for k in first..first + group.len() {
                            for &p in batches.get(k) {
                                state[p as usize] = State::Ledger;
                                failures.insert(p, (format!("not sent: {e}"), "journal"));
                            }
                        }
                        if outcomes > 0 {
                            execution.ledger_errors.push(plural_outcomes(e, outcomes));
                        }
                    }
                }
            }
            Done::Sent {
                positions,
                backups,
                tokens,
                outcomes,
                ledger_errors,
            } => {
                in_flight -= 1;
                execution.ledger_errors.extend(ledger_errors);
                for (((backup, token), outcome), &p) in backups
                    .into_iter()
                    .zip(tokens)
                    .zip(outcomes)
                    .zip(&positions)
                {
                    breaker.record(&outcome);
                    let settled = match outcome {
                        DeleteOutcome::Deleted => {
                            state[p as usize] = State::Deleted;
                            Owned::Deleted
                        }
                        DeleteOutcome::Failed(e) => {
                            state[p as usize] = State::Failed;
                            let error = describe(&e);
                            failures.insert(p, (error.clone(), e.kind.as_str()));
                            Owned::Failed(error)
                        }
                        DeleteOutcome::Pending(detail) => {
                            state[p as usize] = State::Pending;
                            details.insert(p, detail.clone());
                            Owned::Pending(detail)
                        }
                        // Settled below, against a fresh listing.
                        DeleteOutcome::Unconfirmed(e) => {
                            state[p as usize] = State::Unconfirmed;
                            unconfirmed.push((p, token, backup, e));
                            continue;
                        }
                    };
                    unrecorded.push(Unrecorded {
                        token,
                        backup,
                        settled,
                    });
                    waiting_since.get_or_insert_with(Instant::now);
                }
            }
        }
    }
    // What was never sent: not recorded, or recorded and never sent (closed in the journal).
    let unsent = match breaker.tripped().is_some() && !stop.is_set() {
        true => State::Halted,
        false => State::Stopping,
    };
    let why = match unsent {
        State::Halted => "not sent: deletions kept failing the same way",
        _ => "not sent: the run stopped first",
    };
    for (positions, backups, tokens) in ready {
        for ((backup, token), &p) in backups.into_iter().zip(tokens).zip(&positions) {
            state[p as usize] = unsent;
            unrecorded.push(Unrecorded {
                token,
                backup,
                settled: Owned::NotSent(why.into()),
            });
        }
    }
    for k in next..batches.len() {
        for &p in batches.get(k) {
            state[p as usize] = unsent;
        }
    }
    // One fresh listing settles every unconfirmed deletion.
    if !unconfirmed.is_empty() {
        let still_listed: Result<HashSet<(Text, Text)>, ProviderError> = provider
            .list()
            .await
            .map(|backups| backups.into_iter().map(|b| (b.group, b.id)).collect());
        for (p, token, backup, e) in unconfirmed {
            let failure = match &still_listed {
                Ok(listed) if !listed.contains(&(backup.group.clone(), backup.id.clone())) => None,
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
            let settled = match failure {
                None => {
                    state[p as usize] = State::Deleted;
                    Owned::Deleted
                }
                Some((error, kind)) => {
                    state[p as usize] = State::Failed;
                    failures.insert(p, (error.clone(), kind));
                    Owned::Failed(error)
                }
            };
            unrecorded.push(Unrecorded {
                token,
                backup,
                settled,
            });
        }
    }
    execution
        .ledger_errors
        .extend(record_outcomes(&ledger, unrecorded).await);
    // What a run must hold at its end: what it did to each backup, not its calls.
    drop(batches);
    let n = state.iter().filter(|s| **s == State::Deleted).count();
    let mut deleted = Vec::with_capacity(n);
    // `doomed` is the plan's deletions, in the plan's order.
    let planned = plan.decisions.iter().enumerate();
    let positions = planned.filter(|(_, d)| d.action == Action::Delete);
    for ((p, backup), (position, _)) in doomed.iter().enumerate().zip(positions) {
        let id = || backup.id.to_string();
        match state[p] {
            State::Deleted => deleted.push(position as u32),
            State::Pending => execution.pending.push(PendingDeletion {
                id: id(),
                detail: details.remove(&(p as u32)).unwrap_or_default(),
            }),
            State::Stopping | State::Halted => execution.not_sent.push(id()),
            State::Failed | State::Ledger | State::Unconfirmed | State::Waiting => {
                let (error, kind) = failures.remove(&(p as u32)).unwrap_or_else(|| {
                    (
                        "the provider reported no outcome for this backup".into(),
                        "other",
                    )
                });
                execution.failed.push(FailedDeletion {
                    id: id(),
                    error,
                    kind,
                });
            }
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
    execution.deleted = Ids::Planned(deleted);
    execution
}

/// Waits for deletions an earlier run left pending (the journal knows them: each with the
/// token of its intent), without sending them again; records each outcome.
pub async fn resume(
    pending: Vec<(u64, Backup)>,
    provider: Arc<dyn Provider>,
    ledger: Arc<dyn Ledger>,
) -> Execution {
    let mut execution = Execution::default();
    let mut deleted = Vec::new();
    let mut tasks = tokio::task::JoinSet::new();
    for (token, backup) in pending {
        let provider = provider.clone();
        tasks.spawn(async move {
            let _slot = match provider.task_slots() {
                Some(slots) => Some(slots.acquire_owned().await.expect("never closed")),
                None => None,
            };
            let outcome = provider.settle(&backup).await;
            (token, backup, outcome)
        });
    }
    while let Some(joined) = tasks.join_next().await {
        let (token, backup, outcome) = joined.expect("a settling task never panics");
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
        let recorded = Outcome {
            token,
            backup: &backup,
            settled,
        };
        if let Err(e) = ledger.record(&[recorded], &[]) {
            execution.ledger_errors.push(e);
        }
        match outcome {
            DeleteOutcome::Deleted => deleted.push(backup.id.to_string()),
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
    execution.deleted = Ids::Named(deleted);
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

    /// The plan of `listing` that deletes all but its newest two, unbounded.
    fn all_but_two(listing: &[Backup]) -> PolicyPlan<'_> {
        let policy = policy("guard: {max_delete_fraction: 1, max_delete: 100000}");
        plan(&policy, listing, jiff::Timestamp::now(), &TimeZone::UTC)
    }

    fn two_workers() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .unwrap()
    }

    /// What `execution` deleted of `plan`, by id.
    fn ids<'a>(execution: &'a Execution, plan: &'a PolicyPlan) -> Vec<&'a str> {
        execution.deleted.iter(Some(plan)).collect()
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
        assert_eq!(ids(&execution, &plan), ["b2", "b4", "b5"]);
        assert_eq!(execution.failed.len(), 1);
        assert_eq!(execution.failed[0].id, "b3");
        assert_eq!(execution.failed[0].error, "delete b3: injected failure");
        assert_eq!(provider.ids(), ["b0", "b1", "b3"]);
    }

    #[test]
    fn a_provider_that_answers_at_once_still_gives_the_task_back() {
        // `run` prints each deletion from a future beside the execution, in the same task:
        // the execution must give the thread back while it works, or the lines pile up.
        let listing = backups(6_002);
        let provider = Arc::new(MemoryProvider::new(listing.clone()));
        let plan = plan(
            &policy("guard: {max_delete_fraction: 1, max_delete: 10000}"),
            &listing,
            jiff::Timestamp::now(),
            &TimeZone::UTC,
        );
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let finished = AtomicBool::new(false);
        // The most deletions done between two turns of the future beside it.
        let widest_gap = runtime.block_on(async {
            let run = async {
                let execution = execute(
                    &plan,
                    provider.clone(),
                    Arc::new(NoLedger),
                    &Stop::default(),
                )
                .await;
                finished.store(true, Ordering::SeqCst);
                execution
            };
            let beside = async {
                let (mut last, mut widest) = (0, 0);
                while !finished.load(Ordering::SeqCst) {
                    let done = provider.deleted.lock().unwrap().len();
                    widest = widest.max(done - last);
                    last = done;
                    tokio::task::yield_now().await;
                }
                widest
            };
            let (execution, widest) = tokio::join!(run, beside);
            assert_eq!(execution.deleted.len(), 6_000);
            widest
        });
        assert!(widest_gap <= 256, "{widest_gap} deletions without a turn");
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
        assert_eq!(ids(&execution, &plan), ["b2", "b4"]);
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

    /// A ledger that stops the run once the first intents are recorded, as SIGTERM would.
    struct StopAfterFirst(Stop, std::sync::Mutex<Vec<String>>);

    impl Ledger for StopAfterFirst {
        fn record(&self, settled: &[Outcome], intents: &[&Backup]) -> Result<Vec<u64>, String> {
            self.0.set();
            let mut log = self.1.lock().unwrap();
            for o in settled {
                log.push(format!("{} {:?}", o.backup.id, o.settled));
            }
            Ok(vec![0; intents.len()])
        }
    }

    #[test]
    fn once_stopping_no_new_deletion_is_sent_and_recorded_intents_are_closed() {
        let listing = backups(6);
        let provider = Arc::new(MemoryProvider::new(listing.clone()));
        let plan = plan(
            &policy("guard: {max_delete_fraction: 1}"),
            &listing,
            jiff::Timestamp::now(),
            &TimeZone::UTC,
        );
        let stop = Stop::default();
        let ledger = Arc::new(StopAfterFirst(stop.clone(), Default::default()));
        let execution = run_with(&plan, provider.clone(), ledger.clone(), &stop);
        // The stop came with the first commit, before any call was sent.
        assert_eq!(execution.not_sent, ["b2", "b3", "b4", "b5"]);
        assert!(execution.deleted.is_empty() && execution.failed.is_empty());
        assert!(provider.deleted.lock().unwrap().is_empty());
        // The first window's intents (twice the cap of 1) were recorded: closed as not sent.
        assert_eq!(
            *ledger.1.lock().unwrap(),
            ["b2", "b3"].map(|id| format!("{id} NotSent(\"not sent: the run stopped first\")"))
        );
    }

    /// A ledger that keeps what it recorded, and a provider that refuses a deletion whose
    /// intent was not committed before its call.
    #[derive(Default)]
    struct Strict {
        committed: std::sync::Mutex<HashSet<String>>,
        commits: std::sync::atomic::AtomicUsize,
        outcomes: std::sync::Mutex<Vec<String>>,
        /// What [`Ledger::ahead`] answers (`None`: the default).
        ahead: Option<usize>,
        /// The most intents one commit recorded.
        largest: std::sync::atomic::AtomicUsize,
    }

    impl Ledger for Strict {
        fn ahead(&self) -> usize {
            self.ahead.unwrap_or(AHEAD)
        }

        fn record(&self, settled: &[Outcome], intents: &[&Backup]) -> Result<Vec<u64>, String> {
            self.commits.fetch_add(1, Ordering::SeqCst);
            self.largest.fetch_max(intents.len(), Ordering::SeqCst);
            // What a synced commit takes.
            std::thread::sleep(std::time::Duration::from_millis(2));
            let mut committed = self.committed.lock().unwrap();
            for o in settled {
                assert!(
                    committed.contains(o.backup.id.as_str()),
                    "an outcome before its intent"
                );
                self.outcomes.lock().unwrap().push(o.backup.id.to_string());
            }
            committed.extend(intents.iter().map(|b| b.id.to_string()));
            Ok((0..intents.len() as u64).collect())
        }
    }

    struct Checked(Arc<Strict>, MemoryProvider);

    impl Provider for Checked {
        fn list(&self) -> crate::provider::BoxFuture<'_, Result<Vec<Backup>, ProviderError>> {
            self.1.list()
        }

        fn delete<'a>(
            &'a self,
            batch: &'a [Backup],
        ) -> crate::provider::BoxFuture<'a, Vec<DeleteOutcome>> {
            for b in batch {
                assert!(
                    self.0.committed.lock().unwrap().contains(b.id.as_str()),
                    "{} sent before its intent was committed",
                    b.id
                );
            }
            self.1.delete(batch)
        }

        fn delete_concurrency(&self) -> usize {
            4
        }
    }

    #[test]
    fn intents_are_committed_in_groups_before_their_calls_and_every_outcome_follows() {
        let n = 3 * AHEAD as i64;
        let listing = backups(n);
        let ledger = Arc::new(Strict::default());
        let provider = Arc::new(Checked(
            ledger.clone(),
            MemoryProvider::new(listing.clone()),
        ));
        let plan = all_but_two(&listing);
        let runtime = two_workers();
        let execution = runtime.block_on(execute(
            &plan,
            provider.clone(),
            ledger.clone(),
            &Stop::default(),
        ));
        assert_eq!(execution.deleted.len(), n as usize - 2);
        assert_eq!(provider.1.ids(), ["b0", "b1"]);
        let mut outcomes = ledger.outcomes.lock().unwrap().clone();
        outcomes.sort();
        let mut expected: Vec<String> = execution
            .deleted
            .iter(Some(&plan))
            .map(String::from)
            .collect();
        expected.sort();
        assert_eq!(outcomes, expected, "one outcome per deletion");
        // Far fewer commits than deletions: intents and outcomes travel in groups.
        let commits = ledger.commits.load(Ordering::SeqCst);
        assert!(
            commits * 20 < n as usize,
            "{commits} commits for {n} deletions"
        );
    }

    /// A provider whose deletions end at once (a local folder's, near enough), refusing one
    /// whose intent was not committed.
    struct Prompt(Arc<Strict>);

    impl Provider for Prompt {
        fn list(&self) -> crate::provider::BoxFuture<'_, Result<Vec<Backup>, ProviderError>> {
            Box::pin(async { Ok(Vec::new()) })
        }

        fn delete<'a>(
            &'a self,
            batch: &'a [Backup],
        ) -> crate::provider::BoxFuture<'a, Vec<DeleteOutcome>> {
            let committed = self.0.committed.lock().unwrap();
            let outcomes = batch
                .iter()
                .map(|b| {
                    assert!(committed.contains(b.id.as_str()), "{} sent first", b.id);
                    DeleteOutcome::Deleted
                })
                .collect();
            Box::pin(async move { outcomes })
        }
    }

    #[test]
    fn a_ledger_bounds_how_many_intents_are_recorded_ahead_of_their_calls() {
        let n = 3 * AHEAD as i64;
        let listing = backups(n);
        let plan = all_but_two(&listing);
        let runtime = two_workers();
        // The largest commit of intents, and what was deleted, with the ledger's window.
        let largest = |ahead: Option<usize>| {
            let ledger = Arc::new(Strict {
                ahead,
                ..Strict::default()
            });
            let provider = Arc::new(Prompt(ledger.clone()));
            let execution =
                runtime.block_on(execute(&plan, provider, ledger.clone(), &Stop::default()));
            assert_eq!(execution.deleted.len(), n as usize - 2);
            ledger.largest.load(Ordering::SeqCst)
        };
        let bounded = largest(Some(256));
        assert!(
            (128..=256).contains(&bounded),
            "commits of up to {bounded} intents with a window of 256"
        );
        // The default window outgrows it (the provider waits for commits, so it doubles).
        let unbounded = largest(None);
        assert!(
            unbounded > 512,
            "commits of up to {unbounded} intents by default"
        );
    }

    /// A ledger that refuses the intents of held backups, as the journal does for a hold
    /// made after the plan.
    struct Holding(Vec<&'static str>, std::sync::Mutex<Vec<String>>);

    impl Ledger for Holding {
        fn record(&self, _: &[Outcome], intents: &[&Backup]) -> Result<Vec<u64>, String> {
            let mut recorded = self.1.lock().unwrap();
            recorded.extend(intents.iter().map(|b| b.id.to_string()));
            Ok(vec![0; intents.len()])
        }

        fn refused(&self, intents: &[&Backup]) -> Result<Vec<(usize, String)>, String> {
            Ok(intents
                .iter()
                .enumerate()
                .filter(|(_, b)| self.0.contains(&b.id.as_str()))
                .map(|(i, _)| (i, "held: incident (by alice, hold #1)".to_string()))
                .collect())
        }
    }

    #[test]
    fn a_backup_the_ledger_holds_is_never_sent_nor_recorded() {
        let listing = backups(8);
        let provider = Arc::new(MemoryProvider {
            concurrency: 2,
            ..MemoryProvider::new(listing.clone())
        });
        let plan = plan(
            &policy("guard: {max_delete_fraction: 1}"),
            &listing,
            jiff::Timestamp::now(),
            &TimeZone::UTC,
        );
        let ledger = Arc::new(Holding(vec!["b3", "b6"], Default::default()));
        let execution = run_with(&plan, provider.clone(), ledger.clone(), &Stop::default());
        assert_eq!(ids(&execution, &plan), ["b2", "b4", "b5", "b7"]);
        let failed: Vec<(&str, &str, &str)> = execution
            .failed
            .iter()
            .map(|f| (f.id.as_str(), f.kind, f.error.as_str()))
            .collect();
        let why = "not sent: held: incident (by alice, hold #1)";
        assert_eq!(failed, [("b3", "held", why), ("b6", "held", why)]);
        assert_eq!(provider.ids(), ["b0", "b1", "b3", "b6"]);
        assert_eq!(*ledger.1.lock().unwrap(), ["b2", "b4", "b5", "b7"]);
    }
}
