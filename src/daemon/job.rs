//! One scheduled run of one policy: record the fire, take the policy's lock, list, then
//! [`runner::run_policy`] (plan, guards, deletions, journal), and report the outcome in the
//! logs and the metrics. I/O: the journal, the provider.

use super::clock::Clock;
use super::metrics::{Metrics, RunFigures};
use super::scheduler::{Entry, Fire, Runner};
use crate::executor::Stop;
use crate::journal::Journal;
use crate::policy::Config;
use crate::provider::{BoxFuture, Registry};
use crate::render::PolicyReport;
use crate::runner;
use crate::visible::Visible;
use jiff::Timestamp;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tracing::{Instrument, error, info, warn};

/// One loaded config: what runs started now use. A reload makes a new one; runs already
/// started keep theirs.
pub struct Context {
    pub config: Config,
    /// HTTP clients (and concurrency caps) per account, shared by this config's policies.
    pub registry: Mutex<Registry>,
    /// The policies of this config, as scheduled.
    pub entries: Vec<Entry>,
}

/// Runs policies for the scheduler.
pub struct Jobs {
    context: Mutex<Arc<Context>>,
    metrics: Arc<Metrics>,
    clock: Arc<dyn Clock>,
    stop: Stop,
    /// Called when a run starts or ends (systemd's `STATUS=`).
    on_change: Box<dyn Fn() + Send + Sync>,
}

impl Jobs {
    pub fn new(
        context: Arc<Context>,
        metrics: Arc<Metrics>,
        clock: Arc<dyn Clock>,
        stop: Stop,
        on_change: Box<dyn Fn() + Send + Sync>,
    ) -> Jobs {
        Jobs {
            context: Mutex::new(context),
            metrics,
            clock,
            stop,
            on_change,
        }
    }

    pub fn context(&self) -> Arc<Context> {
        self.context
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Runs started from now on use `context`.
    pub fn swap(&self, context: Arc<Context>) {
        *self.context.lock().unwrap_or_else(|e| e.into_inner()) = context;
    }
}

// On the `Arc`: each run's future owns a handle to the jobs, so it can outlive the call.
impl Runner for Arc<Jobs> {
    fn last_fire(&self, policy: &str) -> Option<Timestamp> {
        let context = self.context();
        Journal::open_config(&context.config)
            .and_then(|journal| journal.last_fire(policy))
            .map_err(|e| warn!(policy, "cannot read the last scheduled fire: {e}"))
            .ok()
            .flatten()
    }

    fn run(&self, entry: Arc<Entry>, fire: Fire) -> BoxFuture<'static, ()> {
        let jobs = self.clone();
        let span = tracing::info_span!(
            "run",
            policy = %entry.policy.name,
            account = %entry.policy.account,
            run_id = tracing::field::Empty,
        );
        Box::pin(
            async move {
                let started = jobs.clock.now();
                let timer = Instant::now();
                jobs.metrics.run_started();
                (jobs.on_change)();
                let context = jobs.context();
                if let Err(figures) =
                    run_once(&jobs, &context, &entry, fire, (started, timer)).await
                {
                    jobs.metrics.run_finished(&entry.policy.name, figures);
                }
                (jobs.on_change)();
            }
            .instrument(span),
        )
    }

    fn skipped(&self, policy: &str, fire: Fire) {
        warn!(
            policy,
            scheduled = %fire.scheduled,
            "fire skipped: the policy's previous run is still going"
        );
        self.metrics.skipped(policy);
    }

    fn next_runs(&self, next: &[(String, Timestamp)]) {
        self.metrics.set_next_runs(next);
    }
}

/// The run itself, logged and recorded in the metrics; `Err` with the figures to record when
/// it could not start (no journal, or another process runs the policy).
async fn run_once(
    jobs: &Jobs,
    context: &Context,
    entry: &Entry,
    fire: Fire,
    (started, timer): (Timestamp, Instant),
) -> Result<(), RunFigures> {
    let policy = &entry.policy;
    let catch_up = if fire.catch_up {
        " (catching up a fire missed while the daemon was down)"
    } else {
        ""
    };
    let journal = Journal::open_config(&context.config).map_err(|e| {
        error!("{e}; nothing was deleted");
        jobs.metrics.journal_failed(&e.to_string());
        RunFigures::not_started(started, "journal-failed")
    })?;
    if jobs.metrics.journal_ok() {
        info!("the journal answers again");
    }
    let journal = Arc::new(journal);
    match journal.claim_fire(&policy.name, fire.scheduled) {
        Ok(None) => {}
        Ok(Some(host)) => {
            info!(
                "fire of {} at {} ran on {host}; skipped here",
                policy.name, fire.scheduled
            );
            let last = journal.last_run(&policy.name).ok().flatten();
            jobs.metrics
                .ran_elsewhere(&policy.name, fire.scheduled, last.as_ref());
            return Ok(());
        }
        Err(e) => {
            error!("{e}; nothing was deleted");
            jobs.metrics.journal_failed(&e.to_string());
            return Err(RunFigures::not_started(started, "journal-failed"));
        }
    }
    // Only now, with the tick this host's: a fleet host whose tick ran elsewhere starts nothing.
    info!(scheduled = %fire.scheduled, "run started{catch_up}");
    if let Err(e) = journal.record_fire(&policy.name, fire.scheduled, started) {
        warn!("{e}");
    }
    let stop = jobs.stop.for_run();
    let _lock = match journal.lock_watched(&policy.name, stop.lock_flag()) {
        Ok(lock) => lock,
        // Another process runs the policy right now (a manual run): its run is the one.
        Err(e) if e.is_lock_held() => {
            warn!("{e}");
            return Err(RunFigures::not_started(started, "locked"));
        }
        // A lock that cannot be taken at all (its file unreadable for this user): a failed
        // run, in the log, /healthz, the metrics and the journal, not a quiet skip.
        Err(e) => {
            error!("{e}; nothing was deleted");
            jobs.metrics.journal_failed(&e.to_string());
            record_not_started(&journal, policy, started, &e);
            return Err(RunFigures::not_started(started, "journal-failed"));
        }
    };
    let account = context
        .config
        .accounts
        .get(&policy.account)
        .expect("accounts were checked against the config");
    let provider = context
        .registry
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .open(
            account,
            policy,
            &crate::runner::zone(policy, Some(&context.config)),
        );
    let listing = match &provider {
        Ok(provider) => provider.list().await,
        Err(e) => Err(e.clone()),
    };
    let policies: Vec<_> = context
        .entries
        .iter()
        .map(|e| (*e.policy).clone())
        .collect();
    let places = context.config.places();
    let options = runner::Options {
        command: "daemon",
        dry_run: runner::dry_run_reason(policy, false, &context.config),
        accept_listing_drop: false,
        accept_max_delete: false,
        approve: false,
        policies: &policies,
        places: &places,
        reviewed: None,
        started_at: started,
        now: jobs.clock.now(),
        stop,
        watch: None,
        journal_keep: context.config.journal_keep,
        default_grace: context.config.default_grace,
    };
    let report =
        runner::run_policy(&journal, policy, &entry.tz, &provider, &listing, &options).await;
    tracing::Span::current().record("run_id", report.run_id);
    if options.stop.lock_lost() {
        error!(
            "the run lock's database session was lost: no more deletions were sent; the next run settles what was in flight"
        );
        jobs.metrics.lock_lost();
    }
    if let Some(e) = &report.journal_error {
        jobs.metrics.journal_failed(e);
    }
    // Recorded before the run's last log line, so that whoever reads that line finds /metrics
    // already saying so.
    let figures = RunFigures::of(&report, started, timer.elapsed());
    jobs.metrics.run_finished(&policy.name, figures);
    log_report(&report);
    notify(
        &context.config.notify,
        &journal,
        policy,
        &report,
        &jobs.metrics,
    )
    .await;
    Ok(())
}

/// Tells the config's notification routes what this run changed (README, "Notifications");
/// a delivery that fails is logged and counted, never the run's failure.
async fn notify(
    notify: &crate::policy::notify::Notify,
    journal: &Journal,
    policy: &crate::policy::Policy,
    report: &PolicyReport<'_>,
    metrics: &crate::daemon::metrics::Metrics,
) {
    if notify.routes.is_empty() {
        return;
    }
    match crate::notify::after_run(notify, journal, policy, report).await {
        Ok(sent) => {
            for (sink, kind, delivery) in sent {
                match delivery {
                    crate::notify::Delivery::Sent => {
                        info!(sink = %sink, kind, "notification sent");
                        metrics.notified(&sink, "sent");
                    }
                    crate::notify::Delivery::Failed(e) => {
                        warn!(sink = %sink, kind, "notification not delivered: {e}");
                        metrics.notified(&sink, "failed");
                    }
                }
            }
        }
        Err(e) => warn!("notifications: {e}"),
    }
}

/// Records a run that could not start, as `journal-failed` with its reason.
fn record_not_started(
    journal: &Journal,
    policy: &crate::policy::Policy,
    started: Timestamp,
    e: &crate::journal::JournalError,
) {
    let start = crate::journal::RunStart {
        policy,
        command: "daemon",
        dry_run: None,
        started_at: started,
        overrides: Vec::new(),
    };
    let message = format!("{e}; nothing was deleted");
    let end = crate::journal::RunEnd {
        outcome: "journal-failed",
        message: Some(&message),
    };
    if let Err(e) = journal
        .begin_run(&start)
        .and_then(|run| journal.finish_run(run, &end))
    {
        warn!("{e}");
    }
}

/// What a run did, in the log: each deletion, each failure, blocks, and a summary line.
fn log_report(report: &PolicyReport) {
    // Names and provider messages with their control characters visible: a name holding a
    // newline must not add a line of its own to the log.
    let v = |text: &str| Visible(text).to_string();
    if let Some(e) = &report.error {
        error!("{}; nothing was deleted", v(e));
    }
    if let Some(e) = &report.journal_error {
        error!("{}", v(e));
    }
    if let Some(blocked) = report.plan.as_ref().and_then(|p| p.blocked.as_ref()) {
        warn!("BLOCKED, nothing was deleted: {}", v(blocked));
    }
    for warning in report.plan.iter().flat_map(|p| &p.warnings) {
        warn!("{}", v(warning));
    }
    for execution in report.execution.iter().chain(&report.resumed) {
        for id in execution.deleted.iter(report.plan.as_ref()) {
            info!(backup = %Visible(id), "deleted");
        }
        for failed in &execution.failed {
            warn!(backup = %Visible(&failed.id), kind = failed.kind, "FAILED to delete: {}", v(&failed.error));
        }
        for pending in &execution.pending {
            info!(backup = %Visible(&pending.id), "deletion still in progress at the provider: {}", v(&pending.detail));
        }
        for error in &execution.ledger_errors {
            error!("journal: {}", v(error));
        }
        if let Some(halted) = &execution.halted {
            error!("{}", v(halted));
        }
    }
    let summary = report.plan.as_ref().map(|p| p.summary).unwrap_or_default();
    let outcome = report.outcome.unwrap_or("journal-failed");
    match &report.dry_run {
        Some(reason) => info!(
            %outcome,
            keep = summary.keep,
            would_delete = summary.delete,
            ignore = summary.ignore,
            "run finished, nothing deleted ({reason})"
        ),
        None => info!(
            %outcome,
            keep = summary.keep,
            delete = summary.delete,
            ignore = summary.ignore,
            "run finished"
        ),
    }
}
