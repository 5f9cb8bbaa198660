//! One policy run, from a fresh listing to the journal: settle what an interrupted run left
//! open, plan, apply the listing-drop guard, check a reviewed plan (`apply`), record the
//! decisions and listing counts, delete through the executor (intent and outcome journaled),
//! record the end. `run`, `apply` and the daemon all go through here; the caller holds the
//! policy's lock.

use crate::executor::{self, Ledger, Settled};
use crate::journal::holds::{Hold, Scope};
use crate::journal::{self, Journal, JournalError, RunEnd, RunStart};
use crate::model::{Backup, Status};
use crate::plan::{self, PolicyPlan};
use crate::policy::{Config, Mode, Places, Policy};
use crate::provider::{Provider, ProviderError};
use crate::render::PolicyReport;
use crate::retention::CalendarDuration;
use jiff::Timestamp;
use jiff::tz::TimeZone;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Told of a run's progress as it happens (`run` prints each deletion at once).
pub trait Watch: Send + Sync {
    /// The plan is made and recorded (`report.plan` is set; on PostgreSQL its decisions may
    /// still be on their way, beside the deletions); none of its deletions is sent yet.
    fn planned(&self, report: &PolicyReport);
    /// Deletions ended (their outcomes just went to the journal, in one commit): this run's,
    /// or ones an earlier run left pending (those settle before the plan is made). Never one
    /// that was not sent.
    fn settled(&self, outcomes: &[executor::Outcome]);
}

/// How a run goes.
#[derive(Clone)]
pub struct Options<'a> {
    /// `run`, `apply` or `daemon`, as the journal records it.
    pub command: &'static str,
    /// Why nothing is deleted, if nothing is (the two-yeses rule).
    pub dry_run: Option<String>,
    /// Skips the listing-drop guard once, making this listing the new baseline.
    pub accept_listing_drop: bool,
    /// Lets a plan over `max_delete` or `max_delete_fraction` through once.
    pub accept_max_delete: bool,
    /// Approves this version of the policy for this run (`run --approve`).
    pub approve: bool,
    /// Every policy of the config, to find another one selecting the same backups.
    pub policies: &'a [Policy],
    /// Where each account's backups are (`Config::places`).
    pub places: &'a Places,
    /// `apply`: the reviewed delete set, `(group, id)`.
    pub reviewed: Option<&'a [(String, String)]>,
    pub started_at: Timestamp,
    pub now: Timestamp,
    /// Set when the daemon stops: deletions in flight finish, no new one is sent.
    pub stop: executor::Stop,
    /// Told of the plan and of each deletion as it happens.
    pub watch: Option<Arc<dyn Watch>>,
    /// The config's `journal_keep`: at the end of the run, the journal forgets what runs of
    /// the policy older than that decided (`None`: never).
    pub journal_keep: Option<CalendarDuration>,
    /// The config's `defaults.grace`, for policies without `guard.grace`.
    pub default_grace: Option<CalendarDuration>,
}

impl Options<'_> {
    /// The guards this run lets through once, as the journal records them.
    fn overrides(&self) -> Vec<&'static str> {
        [
            (self.approve, "approve"),
            (self.accept_max_delete, "accept-max-delete"),
            (self.accept_listing_drop, "accept-listing-drop"),
        ]
        .into_iter()
        .filter_map(|(on, name)| on.then_some(name))
        .collect()
    }
}

/// The policy's zone: its own, else the config's default, else UTC.
pub fn zone(policy: &Policy, config: Option<&Config>) -> TimeZone {
    policy
        .timezone
        .clone()
        .or_else(|| config.and_then(|c| c.default_timezone.clone()))
        .unwrap_or(TimeZone::UTC)
}

/// Why a policy may not delete in this run, if it may not: the two-yeses rule. `flag` is
/// `--dry-run`.
pub fn dry_run_reason(policy: &Policy, flag: bool, config: &Config) -> Option<String> {
    if flag {
        Some("--dry-run".into())
    } else if config.dry_run {
        Some(format!("dry_run: true in {}", config.file.display()))
    } else if policy.mode == Mode::DryRun {
        Some("mode: dry-run".into())
    } else {
        None
    }
}

/// What the guards beyond the plan itself look at: what the journal knows of the policy, what
/// the command line lets through once, and the config's other policies.
#[derive(Clone, Copy, Debug, Default)]
pub struct Checks<'a> {
    /// The last accepted listing, for the listing-drop guard.
    pub baseline: Option<&'a plan::Baseline>,
    /// Skips the listing-drop guard once, making this listing the new baseline.
    pub accept_listing_drop: bool,
    /// Lets a plan over `max_delete` or `max_delete_fraction` through once.
    pub accept_max_delete: bool,
    /// Whether this version of the policy may delete beyond the bound for new and changed
    /// policies (approved, run before, or `--approve`); `None` when that is not known (a
    /// saved listing, an unreadable journal): not checked.
    pub approved: Option<bool>,
    /// Every policy of the config, to find another one selecting the same backups.
    pub policies: &'a [Policy],
    /// Where each account's backups are, to find another policy on the same backups through
    /// another account; `None` (no config): accounts are compared by name.
    pub places: Option<&'a Places>,
    /// Entries the provider saw that the selection does not match (see
    /// `Provider::unmatched`), for a listing that selected nothing.
    pub unmatched: Option<usize>,
    /// The holds on the policy's backups that no one released (`Journal::holds_on`).
    pub holds: Option<&'a [Hold]>,
    /// The provider's own locks on backups (S3 Object Lock), by backup id, in their words.
    pub locks: Option<&'a BTreeMap<String, String>>,
    /// `guard.grace` (or the config's default) and when each doomed backup was first
    /// planned for deletion (`Journal::doomed_since`).
    pub grace: Option<(CalendarDuration, &'a plan::DoomedSince)>,
}

/// The policy's grace period: its `guard.grace`, else `default` (the config's
/// `defaults.grace`); `None` when neither sets one, or it is zero.
pub fn grace(policy: &Policy, default: Option<CalendarDuration>) -> Option<CalendarDuration> {
    policy.guard.grace.or(default).filter(|g| !g.is_zero())
}

/// The holds on a policy's backups as its plan uses them (active ones keep, lapsed ones are
/// noted), and a warning for each of the policy's own holds whose backup is not in the
/// listing.
pub fn plan_holds(
    policy: &Policy,
    holds: &[Hold],
    backups: &[Backup],
    now: Timestamp,
    tz: &TimeZone,
) -> (plan::Holds, Vec<String>) {
    let mut held = plan::Holds::default();
    let mut warnings = Vec::new();
    let when = |at: Timestamp| crate::render::local_time(tz, at);
    let relevant = holds
        .iter()
        .filter(|h| h.covers(&policy.name, &policy.account));
    for h in relevant {
        if h.active(now) {
            held.hold(&h.backup_id, h.describe(when));
        } else if let Some(until) = h.until.filter(|_| h.lapsed(now)) {
            held.lapsed
                .entry(h.backup_id.clone())
                .or_default()
                .push(format!(
                    "hold #{} ({}, by {}) lapsed at {}",
                    h.id,
                    h.reason,
                    h.by,
                    when(until)
                ));
        }
    }
    let own: Vec<&Hold> = holds
        .iter()
        .filter(|h| h.active(now) && h.scope == Scope::Policy(policy.name.clone()))
        .collect();
    if !own.is_empty() {
        let listed: std::collections::HashSet<&str> =
            backups.iter().map(|b| b.id.as_str()).collect();
        for h in own
            .into_iter()
            .filter(|h| !listed.contains(h.backup_id.as_str()))
        {
            warnings.push(format!(
                "hold #{} is on backup {}, which this listing does not have (a wrong id, or the backup is gone); release it with `retentiond hold release {} --reason ...` if it is not needed",
                h.id, h.backup_id, h.id
            ));
        }
    }
    (held, warnings)
}

/// The plan of a listing with every guard: the plan's own, another policy on the same
/// backups, the bound for unapproved policies, and the listing-drop guard. Returns the plan,
/// the listing's complete backups per group, and whether the listing itself is suspect (the
/// listing-drop guard, or a repeated backup), so that it is no baseline for the next run.
pub fn guarded_plan<'a>(
    policy: &Policy,
    backups: &'a [Backup],
    now: Timestamp,
    tz: &TimeZone,
    checks: &Checks,
) -> (PolicyPlan<'a>, BTreeMap<String, u64>, bool) {
    let (mut held, hold_warnings) = match checks.holds {
        Some(holds) => plan_holds(policy, holds, backups, now, tz),
        None => Default::default(),
    };
    for (id, words) in checks.locks.into_iter().flatten() {
        held.hold(id, words.clone());
    }
    let mut plan = plan::plan_held(policy, backups, now, tz, &held);
    plan.warnings.extend(hold_warnings.iter().cloned());
    // The one-run overrides that would lift this plan's blocks, and whether a block no
    // override lifts (a repeated backup, an overlap) is among them.
    let mut lifts = Vec::new();
    let mut stuck = false;
    if plan.blocked.is_some() && !checks.accept_max_delete {
        lifts.push("--accept-max-delete");
    }
    if checks.accept_max_delete
        && let Some(limits) = plan.blocked.take()
    {
        // The plan's own blocks are `max_delete` and `max_delete_fraction`: plan again
        // without them, and say what was let through.
        let mut unlimited = policy.clone();
        unlimited.guard.max_delete = None;
        unlimited.guard.max_delete_fraction = None;
        plan = plan::plan_held(&unlimited, backups, now, tz, &held);
        plan.warnings.extend(hold_warnings);
        plan.warnings
            .push(format!("accepted once with --accept-max-delete: {limits}"));
    }
    let repeated = plan::repeated_backups(backups);
    let listing_suspect = repeated.is_some();
    if let Some(reason) = repeated {
        plan.block(reason);
        stuck = true;
    }
    let by_name = Places::default();
    let places = checks.places.unwrap_or(&by_name);
    if let Some(reason) = plan::overlap(policy, backups, checks.policies, places) {
        plan.block(reason);
        stuck = true;
    }
    if policy.mode == Mode::Enforce
        && checks.approved == Some(false)
        && let Some(reason) = plan::unapproved_excess(policy, &plan)
    {
        plan.block(reason);
        lifts.insert(0, "--approve");
    }
    plan.selected_nothing = plan::nothing_selected(&plan, checks.unmatched.unwrap_or(0));
    plan.warnings.extend(plan.selected_nothing.clone());
    let counts = plan::complete_counts(backups);
    plan.warnings.extend(plan::vanished_groups(
        policy,
        &plan,
        checks.baseline,
        &counts,
    ));
    let dropped = match checks.baseline {
        Some(baseline) if !checks.accept_listing_drop => {
            plan::listing_drop(baseline, &counts, policy.guard.max_listing_drop)
        }
        _ => None,
    };
    let blocked = listing_suspect || dropped.is_some();
    if let Some(reason) = dropped {
        plan.block(reason);
        lifts.push("--accept-listing-drop");
    }
    // Last: the guards above count waiting backups as doomed (a wrong change is blocked when
    // it is made, not when its grace period ends).
    if let Some((period, since)) = checks.grace {
        plan::wait_for_grace(&mut plan, period, since, now, tz);
    }
    if plan.blocked.is_some() && !stuck && !lifts.is_empty() {
        // The one command that lifts exactly the guards that tripped, so that following one
        // message does not run into the next guard.
        plan.block(format!(
            "to let one run through once all the same: `retentiond run --policy {} {}`",
            policy.name,
            lifts.join(" ")
        ));
    }
    (plan, counts, blocked)
}

/// [`guarded_plan`], then, for a provider with its own locks (S3 Object Lock), the locks of
/// what that plan would delete looked up and the plan made again with them kept. A lookup
/// that fails blocks the plan: what is locked is not known.
pub async fn locked_plan<'a>(
    policy: &Policy,
    backups: &'a [Backup],
    now: Timestamp,
    tz: &TimeZone,
    checks: &Checks<'_>,
    provider: &dyn Provider,
) -> (PolicyPlan<'a>, BTreeMap<String, u64>, bool) {
    let first = guarded_plan(policy, backups, now, tz, checks);
    if !provider.has_locks() {
        return first;
    }
    let doomed: Vec<&Backup> = first
        .0
        .decisions
        .iter()
        .filter(|d| matches!(d.action, plan::Action::Delete | plan::Action::Wait))
        .map(|d| d.backup)
        .collect();
    if doomed.is_empty() {
        return first;
    }
    match provider.locks(&doomed).await {
        Ok(locks) if locks.is_empty() => first,
        Ok(locks) => {
            let checks = Checks {
                locks: Some(&locks),
                ..*checks
            };
            guarded_plan(policy, backups, now, tz, &checks)
        }
        Err(e) => {
            let (mut plan, counts, suspect) = first;
            plan.block(format!(
                "the Object Lock of the backups to delete could not be read ({e}), so nothing is deleted: a locked one is not known"
            ));
            (plan, counts, suspect)
        }
    }
}

/// A report for a policy that could not run at all; nothing was listed or deleted.
pub fn not_run<'a>(policy: &Policy, error: &JournalError) -> PolicyReport<'a> {
    let mut report = PolicyReport::new(policy);
    report.journal_error = Some(error.to_string());
    report
}

/// Runs one policy over its fresh listing. Nothing is deleted unless the run is recorded.
pub async fn run_policy<'a>(
    journal: &Arc<Journal>,
    policy: &Policy,
    tz: &TimeZone,
    provider: &Result<Arc<dyn Provider>, ProviderError>,
    listing: &'a Result<Vec<Backup>, ProviderError>,
    options: &Options<'_>,
) -> PolicyReport<'a> {
    let mut report = PolicyReport::new(policy);
    let start = RunStart {
        policy,
        command: options.command,
        dry_run: options.dry_run.as_deref(),
        started_at: options.started_at,
        overrides: options.overrides(),
    };
    let run = match journal.begin_run(&start) {
        Ok(run) => run,
        Err(e) => {
            report.journal_error = Some(e.to_string());
            return report;
        }
    };
    report.run_id = Some(run);
    let (backups, provider) = match (listing, provider) {
        (Ok(backups), Ok(provider)) => (backups, provider),
        (Err(e), _) | (_, Err(e)) => {
            report.error = Some(e.to_string());
            end(
                journal,
                run,
                &mut report,
                "listing-failed",
                Some(&e.to_string()),
            );
            return report;
        }
    };
    let ledger = Arc::new(JournalLedger {
        journal: journal.clone(),
        run,
        policy: policy.name.clone(),
        account: policy.account.clone(),
        watch: options.watch.clone(),
        holds: std::sync::Mutex::new(None),
        decisions_failed: std::sync::OnceLock::new(),
    });
    let grace = grace(policy, options.default_grace);
    let prepared = journal
        .reconcile(&policy.name, run, backups)
        .and_then(|settled| {
            report.reconciled = settled;
            settle_pending(journal, &policy.name, backups)
        })
        .and_then(|waiting| {
            let baseline = journal.baseline(&policy.name, Some(run))?;
            let approved =
                options.approve || journal.approved(&policy.name, &policy.fingerprint)?;
            let holds = journal.holds_on(&policy.name, &policy.account)?;
            let since = match grace {
                Some(_) => journal.doomed_since(&policy.name)?,
                None => Default::default(),
            };
            Ok((waiting, baseline, approved, holds, since))
        });
    let (waiting, baseline, approved, holds, since) = match prepared {
        Ok(prepared) => prepared,
        Err(e) => return journal_failed(journal, run, report, e),
    };
    if !waiting.is_empty() {
        report.resumed = Some(executor::resume(waiting, provider.clone(), ledger.clone()).await);
    }
    let checks = Checks {
        baseline: baseline.as_ref(),
        accept_listing_drop: options.accept_listing_drop,
        accept_max_delete: options.accept_max_delete,
        // A dry run deletes nothing, so the bound has nothing to hold back (`plan` shows it).
        approved: Some(approved || options.dry_run.is_some()),
        policies: options.policies,
        places: Some(options.places),
        unmatched: match backups.is_empty() {
            true => provider.unmatched(),
            false => None,
        },
        holds: Some(&holds),
        locks: None,
        grace: grace.map(|g| (g, &since)),
    };
    let (mut plan, counts, drop_blocked) =
        locked_plan(policy, backups, options.now, tz, &checks, provider.as_ref()).await;
    if let Some(reviewed) = options.reviewed {
        report.refused = plan.restrict_to(reviewed);
    }
    let deleting = options.dry_run.is_none() && plan.blocked.is_none() && report.refused.is_empty();
    // On a database server a plan's decisions are recorded beside its deletions, on a thread
    // of their own (the runtime's other workers take this one's tasks meanwhile).
    let aside = deleting && journal.decisions_aside() && multi_threaded();
    let recorded = match aside {
        true => journal.record_counts(run, &plan, &counts, drop_blocked),
        false => journal.record_plan(run, &plan, &counts, drop_blocked),
    };
    if let Err(e) = recorded {
        report.plan = Some(plan);
        return journal_failed(journal, run, report, e);
    }
    report.dry_run = options.dry_run.clone();
    report.plan = Some(plan);
    let plan = report.plan.as_ref().expect("set above");
    if let Some(watch) = &options.watch {
        watch.planned(&report);
    }
    let deletions = || executor::execute(plan, provider.clone(), ledger.clone(), &options.stop);
    let (execution, decided) = match (deleting, aside) {
        (false, _) => (None, Ok(())),
        (true, false) => (Some(deletions().await), Ok(())),
        (true, true) => {
            let decisions = || {
                let decided = journal.record_decisions(run, plan);
                if let Err(e) = &decided {
                    // No intent is recorded after this (`JournalLedger::refused`).
                    let _ = ledger.decisions_failed.set(e.to_string());
                }
                decided
            };
            let (execution, decided) = beside(decisions, deletions());
            (Some(execution), decided)
        }
    };
    if let Err(e) = decided {
        let execution = execution.expect("only beside deletions");
        let sent = execution.deleted.len() + execution.failed.len() + execution.pending.len();
        let message = format!(
            "{e}; no deletion was sent once that was known ({sent} of {} were sent before, each with its intent recorded)",
            plan.summary.delete
        );
        report.journal_error = Some(message.clone());
        report.execution = Some(execution);
        end(journal, run, &mut report, "journal-failed", Some(&message));
        return report;
    }
    let (outcome, message) = if !report.refused.is_empty() {
        (
            "refused",
            Some(format!(
                "the reviewed plan no longer holds: {}",
                report.refused.join("; ")
            )),
        )
    } else if let Some(blocked) = &plan.blocked {
        ("blocked", Some(blocked.clone()))
    } else if let Some(why) = &plan.selected_nothing {
        ("nothing-selected", Some(why.clone()))
    } else if let Some(reason) = &options.dry_run {
        ("dry-run", Some(reason.clone()))
    } else {
        match &execution {
            Some(e) if e.halted.is_some() => ("deletions-failed", e.halted.clone()),
            Some(e) if !e.not_sent.is_empty() && options.stop.lock_lost() => (
                "stopped",
                Some(format!(
                    "the run lock's database session was lost (another host may take the policy): no deletion was sent after that, {} of {} were not sent; the next run settles what was in flight and plans the rest again",
                    e.not_sent.len(),
                    plan.summary.delete
                )),
            ),
            Some(e) if !e.not_sent.is_empty() => (
                "stopped",
                Some(format!(
                    "retentiond stopped before {} of {} deletions were sent; the next run plans them again",
                    e.not_sent.len(),
                    plan.summary.delete
                )),
            ),
            Some(e) if !e.failed.is_empty() => (
                "deletions-failed",
                Some(format!(
                    "{} of {} deletions failed",
                    e.failed.len(),
                    plan.summary.delete
                )),
            ),
            _ => ("ok", None),
        }
    };
    report.execution = execution;
    end(journal, run, &mut report, outcome, message.as_deref());
    if let Some(keep) = &options.journal_keep
        && let Err(e) = journal.prune(&policy.name, keep.before(options.now, tz))
        && let Some(plan) = report.plan.as_mut()
    {
        plan.warnings
            .push(format!("{e}; it grows until this works"));
    }
    report
}

/// Whether this thread's runtime has other workers to take its tasks while it blocks.
fn multi_threaded() -> bool {
    tokio::runtime::Handle::try_current()
        .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread)
}

/// Runs `work` on a thread of its own while this thread drives `future` (both may borrow
/// from the caller); their results once both are done. Needs a multi-threaded runtime.
fn beside<T: Send, U>(
    work: impl FnOnce() -> T + Send,
    future: impl std::future::Future<Output = U>,
) -> (U, T) {
    tokio::task::block_in_place(|| {
        std::thread::scope(|scope| {
            let worker = scope.spawn(work);
            let done = tokio::runtime::Handle::current().block_on(future);
            let worked = worker
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            (done, worked)
        })
    })
}

fn end(
    journal: &Journal,
    run: i64,
    report: &mut PolicyReport,
    outcome: &'static str,
    message: Option<&str>,
) {
    report.outcome = Some(outcome);
    if let Err(e) = journal.finish_run(run, &RunEnd { outcome, message }) {
        report.journal_error = Some(e.to_string());
    }
}

fn journal_failed<'a>(
    journal: &Journal,
    run: i64,
    mut report: PolicyReport<'a>,
    error: JournalError,
) -> PolicyReport<'a> {
    let message = format!("{error}; nothing was deleted");
    report.journal_error = Some(message.clone());
    end(journal, run, &mut report, "journal-failed", Some(&message));
    report
}

/// Deletions an earlier run left pending (accepted by the provider, which deletes on its
/// own): the ones the fresh listing no longer shows are done, the ones it shows as being
/// deleted are returned to wait for (never sent again), the others ended without deleting.
fn settle_pending(
    journal: &Journal,
    policy: &str,
    backups: &[Backup],
) -> Result<Vec<(u64, Backup)>, JournalError> {
    let mut waiting = Vec::new();
    for (row, group, id) in journal.pending(policy)? {
        match backups.iter().find(|b| b.group == group && b.id == id) {
            None => journal.outcome(
                row,
                journal::Outcome::Deleted,
                Some("the provider finished deleting it: a later listing no longer shows it"),
            )?,
            Some(b) if b.status == Status::InProgress => waiting.push((row as u64, b.clone())),
            Some(b) => journal.outcome(
                row,
                journal::Outcome::Failed,
                Some(&format!(
                    "the provider's deletion task ended but the backup is listed as {}; it is planned again",
                    b.status.as_str()
                )),
            )?,
        }
    }
    Ok(waiting)
}

/// The executor's ledger for one run: its tokens are the journal's deletion rows.
struct JournalLedger {
    journal: Arc<Journal>,
    run: i64,
    policy: String,
    account: String,
    watch: Option<Arc<dyn Watch>>,
    /// The holds as last read, and when: read again at most every [`HOLDS_READ`].
    holds: std::sync::Mutex<Option<(std::time::Instant, Vec<Hold>)>>,
    /// Why the plan's decisions, recorded beside the deletions, could not be: no intent is
    /// recorded once it is set.
    decisions_failed: std::sync::OnceLock<String>,
}

/// How often a run reads the journal's holds again while it deletes: a hold made during a
/// long run keeps its backup from then on, at the cost of one query a second (not one per
/// group of intents, a round trip each to a fleet's database).
const HOLDS_READ: std::time::Duration = std::time::Duration::from_secs(1);

/// How many deletions' intents are recorded ahead of their calls at most on a SQLite journal
/// ([`Ledger::ahead`]).
const SQLITE_AHEAD: usize = 2048;

impl Ledger for JournalLedger {
    /// A hold made after the plan (or before a saved plan that `apply` carries out) still
    /// keeps its backup: the journal's holds are read again before the first group of
    /// intents, and then at most every [`HOLDS_READ`].
    fn refused(&self, intents: &[&Backup]) -> Result<Vec<(usize, String)>, String> {
        if let Some(e) = self.decisions_failed.get() {
            return Err(format!(
                "{e}: no deletion is sent once the plan's decisions could not be recorded"
            ));
        }
        let now = Timestamp::now();
        let mut cached = self.holds.lock().unwrap_or_else(|e| e.into_inner());
        if cached
            .as_ref()
            .is_none_or(|(at, _)| at.elapsed() >= HOLDS_READ)
        {
            let holds = self
                .journal
                .holds_on(&self.policy, &self.account)
                .map_err(|e| format!("{e} (reading the holds before deleting)"))?;
            *cached = Some((std::time::Instant::now(), holds));
        }
        let holds = cached
            .as_ref()
            .map(|(_, h)| h.as_slice())
            .unwrap_or_default();
        let active: Vec<&Hold> = holds.iter().filter(|h| h.active(now)).collect();
        if active.is_empty() {
            return Ok(Vec::new());
        }
        Ok(intents
            .iter()
            .enumerate()
            .filter_map(|(i, b)| {
                let words: Vec<String> = active
                    .iter()
                    .filter(|h| h.backup_id == b.id.as_str())
                    .map(|h| h.describe(|at| at.to_string()))
                    .collect();
                (!words.is_empty()).then(|| (i, words.join("; ")))
            })
            .collect())
    }

    /// On SQLite a commit is a local sync of a few milliseconds, which half the window's
    /// local deletions (about 10 µs each) outlast: fewer copies of backups wait (a run of
    /// 50,000 local deletions held 1.5 MB less on the heap at its peak, in the same time; a
    /// window of 1,024 made a million deletions 5 to 10 % slower).
    fn ahead(&self) -> usize {
        match self.journal.on_server() {
            true => executor::AHEAD,
            false => SQLITE_AHEAD,
        }
    }

    fn record(
        &self,
        settled: &[executor::Outcome],
        intents: &[&Backup],
    ) -> Result<Vec<u64>, String> {
        let mut records: Vec<(i64, journal::Outcome, Option<&str>)> = Vec::new();
        let mut withdrawn = Vec::new();
        for o in settled {
            let row = o.token as i64;
            match o.settled {
                Settled::Deleted => records.push((row, journal::Outcome::Deleted, None)),
                Settled::Failed(e) => records.push((row, journal::Outcome::Failed, Some(e))),
                Settled::Pending(detail) => {
                    records.push((row, journal::Outcome::Pending, Some(detail)))
                }
                Settled::NotSent(_) => withdrawn.push(row),
            }
        }
        let recorded = self.journal.record_deletions(
            self.run,
            &self.policy,
            &self.account,
            &journal::Settled {
                outcomes: &records,
                withdrawn: &withdrawn,
            },
            intents,
        );
        // Told whether or not the journal took them: the deletions happened either way (a
        // journal error is reported with the run).
        if let Some(watch) = &self.watch {
            let sent: Vec<executor::Outcome> = settled
                .iter()
                .filter(|o| !matches!(o.settled, Settled::NotSent(_)))
                .copied()
                .collect();
            if !sent.is_empty() {
                watch.settled(&sent);
            }
        }
        match recorded {
            Ok(rows) => Ok(rows.into_iter().map(|row| row as u64).collect()),
            Err(e) if intents.is_empty() => Err(e.to_string()),
            Err(e) if settled.is_empty() => Err(e.to_string()),
            Err(e) => Err(format!(
                "{e} (with the outcomes of {} deletions)",
                settled.len()
            )),
        }
    }
}
