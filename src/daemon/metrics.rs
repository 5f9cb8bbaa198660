//! The daemon's figures: per-policy runs, deletion errors, provider requests and config
//! reloads, rendered as Prometheus text; `/healthz` and systemd's `STATUS=` line are judged
//! from them. No I/O.

use crate::http::RequestObserver;
use crate::journal::LastRun;
use crate::model::Status;
use crate::plan::{Action, PolicyPlan};
use crate::render::PolicyReport;
use crate::retention::Reason;
use jiff::Timestamp;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

/// Upper bounds of the request-latency histogram, in seconds.
const LATENCY_BUCKETS: [f64; 10] = [0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

/// A policy the daemon has loaded.
#[derive(Clone, Debug)]
pub struct Loaded {
    pub name: String,
    pub account: String,
    pub provider: &'static str,
    /// The time between two fires; `None`: not scheduled.
    pub interval: Option<Duration>,
}

/// What one run came to.
#[derive(Clone, Debug)]
pub struct RunFigures {
    pub at: Timestamp,
    pub took: Duration,
    /// The journal's outcome (`ok`, `dry-run`, `blocked`, ...), or `locked`/`journal-failed`
    /// when the run could not start.
    pub outcome: &'static str,
    pub kept: u64,
    pub deleted: u64,
    /// Planned deletions not carried out: dry-run, blocked, or stopped.
    pub would_delete: u64,
    pub blocked: bool,
    /// The kind of each failed deletion.
    pub deletion_errors: Vec<&'static str>,
    /// The newest complete backup the policy selected, per group.
    pub newest: BTreeMap<String, Timestamp>,
    /// Backups a hold (or the provider's lock) kept; `None`: not known (a run recorded by
    /// an earlier daemon).
    pub held: Option<u64>,
    /// Doomed backups waiting for the grace period.
    pub waiting: u64,
}

impl RunFigures {
    /// The figures of a finished run's report.
    pub fn of(report: &PolicyReport, at: Timestamp, took: Duration) -> RunFigures {
        let summary = report.plan.as_ref().map(|p| p.summary);
        let executions = report.execution.iter().chain(&report.resumed);
        let deleted = executions.clone().map(|e| e.deleted.len() as u64).sum();
        let planned = summary.map_or(0, |s| s.delete as u64);
        let done_now = report.execution.as_ref().map_or(0, |e| {
            (e.deleted.len() + e.failed.len() + e.pending.len()) as u64
        });
        RunFigures {
            at,
            took,
            outcome: report.outcome.unwrap_or("journal-failed"),
            kept: summary.map_or(0, |s| s.keep as u64),
            deleted,
            would_delete: planned.saturating_sub(done_now),
            blocked: report.plan.as_ref().is_some_and(|p| p.blocked.is_some()),
            deletion_errors: executions.flat_map(|e| &e.failed).map(|f| f.kind).collect(),
            newest: report.plan.as_ref().map(newest).unwrap_or_default(),
            held: report.plan.as_ref().map(|p| {
                p.decisions
                    .iter()
                    .filter(|d| d.reasons().iter().any(|r| matches!(r, Reason::Held(_))))
                    .count() as u64
            }),
            waiting: summary.map_or(0, |s| s.waiting as u64),
        }
    }

    /// The figures of a policy's last run as the journal recorded it (a restarted daemon).
    pub fn recorded(last: &LastRun) -> RunFigures {
        RunFigures {
            at: last.started_at,
            took: last.took,
            outcome: last.outcome,
            kept: last.keep,
            deleted: 0,
            would_delete: last.would_delete,
            blocked: last.outcome == "blocked",
            deletion_errors: Vec::new(),
            newest: last.newest.clone(),
            held: None,
            waiting: 0,
        }
    }

    /// A run that could not start (the journal, or another process holds the policy).
    pub fn not_started(at: Timestamp, outcome: &'static str) -> RunFigures {
        RunFigures {
            at,
            took: Duration::ZERO,
            outcome,
            kept: 0,
            deleted: 0,
            would_delete: 0,
            blocked: false,
            deletion_errors: Vec::new(),
            newest: BTreeMap::new(),
            held: None,
            waiting: 0,
        }
    }

    /// Whether the policy did what it should: planned, and deleted what it was allowed to.
    pub fn succeeded(&self) -> bool {
        matches!(self.outcome, "ok" | "dry-run")
    }
}

/// The newest complete backup a plan selected, per group.
fn newest(plan: &PolicyPlan) -> BTreeMap<String, Timestamp> {
    let mut newest: BTreeMap<String, Timestamp> = BTreeMap::new();
    for d in plan
        .decisions
        .iter()
        .filter(|d| d.backup.status == Status::Complete && d.action != Action::Ignore)
    {
        let at = newest
            .entry(d.backup.group.to_string())
            .or_insert(d.backup.created_at);
        *at = (*at).max(d.backup.created_at);
    }
    newest
}

/// Groups up to which a policy's newest backup age is exported per group (beyond, only the
/// stalest group's age is, to keep the series count bounded).
pub const GROUP_SERIES_LIMIT: usize = 100;

#[derive(Debug)]
struct PolicyState {
    loaded: Loaded,
    loaded_at: Timestamp,
    last: Option<RunFigures>,
    last_success: Option<Timestamp>,
    deleted_total: u64,
    runs: BTreeMap<&'static str, u64>,
    skipped_fires: u64,
    /// Fires another host of the fleet claimed first (a shared PostgreSQL journal).
    fires_elsewhere: u64,
    /// The newest fire another host claimed: that host runs it (and its own `/healthz`
    /// reports how it went), so this host does not count the time since as its silence.
    claimed_elsewhere: Option<Timestamp>,
    /// When the scheduler runs it next (jitter included).
    next_run: Option<Timestamp>,
}

#[derive(Debug, Default)]
struct Histogram {
    buckets: [u64; LATENCY_BUCKETS.len()],
    sum: f64,
    count: u64,
}

#[derive(Debug, Default)]
struct Reload {
    /// The last reload's errors; empty when it succeeded (or none happened).
    errors: Vec<String>,
    at: Option<Timestamp>,
    last_success: Option<Timestamp>,
    successes: u64,
    failures: u64,
}

#[derive(Debug, Default)]
struct State {
    policies: BTreeMap<String, PolicyState>,
    deletion_errors: BTreeMap<(&'static str, &'static str), u64>,
    requests: BTreeMap<(String, &'static str, &'static str), u64>,
    latency: BTreeMap<(String, &'static str), Histogram>,
    reload: Reload,
    running: usize,
    /// Why the journal could not be reached at the last attempt (a shared PostgreSQL journal
    /// that is down); `None` once it answers again.
    journal_down: Option<String>,
    journal_errors: u64,
    /// Runs that lost their PostgreSQL run lock's session mid-run.
    locks_lost: u64,
    /// Notifications by sink and outcome (`sent`, `failed`).
    notifications: BTreeMap<(String, &'static str), u64>,
}

/// The daemon's figures, shared by the runner, the reloader and the HTTP endpoint.
#[derive(Debug, Default)]
pub struct Metrics {
    state: Mutex<State>,
}

/// What `/healthz` says.
#[derive(Debug, PartialEq, Eq)]
pub struct Health {
    /// Empty when healthy.
    pub problems: Vec<String>,
}

impl Metrics {
    pub fn new() -> Metrics {
        Metrics::default()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The policy set now loaded; a new policy's health clock starts at `now`.
    pub fn set_policies(&self, loaded: Vec<Loaded>, now: Timestamp) {
        let mut state = self.state();
        let mut old = std::mem::take(&mut state.policies);
        for policy in loaded {
            let entry = match old.remove(&policy.name) {
                Some(existing) => PolicyState {
                    loaded: policy,
                    ..existing
                },
                None => PolicyState {
                    loaded: policy,
                    loaded_at: now,
                    last: None,
                    last_success: None,
                    deleted_total: 0,
                    runs: BTreeMap::new(),
                    skipped_fires: 0,
                    fires_elsewhere: 0,
                    claimed_elsewhere: None,
                    next_run: None,
                },
            };
            state.policies.insert(entry.loaded.name.clone(), entry);
        }
    }

    /// The set the daemon started with was loaded at `now` (not counted as a reload).
    pub fn started(&self, now: Timestamp) {
        let mut state = self.state();
        state.reload.at = Some(now);
        state.reload.last_success = Some(now);
    }

    /// A reload attempt: `Ok`, or every error.
    pub fn reloaded(&self, now: Timestamp, result: Result<(), Vec<String>>) {
        let mut state = self.state();
        let reload = &mut state.reload;
        reload.at = Some(now);
        match result {
            Ok(()) => {
                reload.errors.clear();
                reload.last_success = Some(now);
                reload.successes += 1;
            }
            Err(errors) => {
                reload.errors = errors;
                reload.failures += 1;
            }
        }
    }

    pub fn run_started(&self) {
        self.state().running += 1;
    }

    pub fn run_finished(&self, policy: &str, figures: RunFigures) {
        let mut state = self.state();
        state.running = state.running.saturating_sub(1);
        let provider = state.policies.get(policy).map_or("", |p| p.loaded.provider);
        for kind in &figures.deletion_errors {
            *state.deletion_errors.entry((provider, kind)).or_default() += 1;
        }
        if let Some(p) = state.policies.get_mut(policy) {
            *p.runs.entry(figures.outcome).or_default() += 1;
            p.deleted_total += figures.deleted;
            if figures.succeeded() {
                p.last_success = Some(figures.at);
            }
            p.last = Some(figures);
        }
    }

    /// What the journal knows of a policy the daemon has no run of yet (after a restart):
    /// its last run and last success, so that the series do not wait for its next run.
    pub fn seed(&self, policy: &str, last: &LastRun) {
        if let Some(p) = self.state().policies.get_mut(policy)
            && p.last.is_none()
        {
            p.last = Some(RunFigures::recorded(last));
            p.last_success = p.last_success.or(last.last_success);
        }
    }

    /// When each scheduled policy runs next; the others have no next run.
    pub fn set_next_runs(&self, next: &[(String, Timestamp)]) {
        let mut state = self.state();
        for (name, p) in &mut state.policies {
            p.next_run = next.iter().find(|(n, _)| n == name).map(|(_, at)| *at);
        }
    }

    pub fn skipped(&self, policy: &str) {
        if let Some(p) = self.state().policies.get_mut(policy) {
            p.skipped_fires += 1;
        }
    }

    /// A fire another host of the fleet ran; `last` is the fleet's last finished run of the
    /// policy in the shared journal, which this host's figures follow.
    pub fn ran_elsewhere(&self, policy: &str, fire: Timestamp, last: Option<&LastRun>) {
        let mut state = self.state();
        state.running = state.running.saturating_sub(1);
        if let Some(p) = state.policies.get_mut(policy) {
            p.fires_elsewhere += 1;
            p.claimed_elsewhere = p.claimed_elsewhere.max(Some(fire));
            if let Some(last) = last {
                p.last = Some(RunFigures::recorded(last));
                p.last_success = p.last_success.max(last.last_success);
            }
        }
    }

    /// Unhealthy when the last reload failed, or a scheduled policy has not succeeded for
    /// longer than twice its interval (counted from when it was loaded if it never has).
    /// A notification was delivered to `sink` (`sent`) or not (`failed`).
    pub fn notified(&self, sink: &str, outcome: &'static str) {
        *self
            .state()
            .notifications
            .entry((sink.to_string(), outcome))
            .or_default() += 1;
    }

    /// A run could not open or write the journal.
    pub fn journal_failed(&self, error: &str) {
        let mut state = self.state();
        state.journal_errors += 1;
        state.journal_down = Some(error.to_string());
    }

    /// The journal answered; true when it had not before (it was down).
    pub fn journal_ok(&self) -> bool {
        self.state().journal_down.take().is_some()
    }

    /// A run lost its run lock's database session and stopped sending deletions.
    pub fn lock_lost(&self) {
        self.state().locks_lost += 1;
    }

    pub fn health(&self, now: Timestamp) -> Health {
        let state = self.state();
        let mut problems = Vec::new();
        if let Some(error) = &state.journal_down {
            problems.push(format!("the journal cannot be reached: {error}"));
        }
        if !state.reload.errors.is_empty() {
            problems.push(format!(
                "the last reload failed ({} error{}), the previous policies keep running: {}",
                state.reload.errors.len(),
                if state.reload.errors.len() == 1 {
                    ""
                } else {
                    "s"
                },
                state.reload.errors.join("; ")
            ));
        }
        for (name, p) in &state.policies {
            let Some(interval) = p.loaded.interval else {
                continue;
            };
            // A fire another host claimed is that host's to run and report: the silence here
            // counts from it (a run still going there has no outcome in the journal yet).
            let since = p
                .last_success
                .max(p.claimed_elsewhere)
                .unwrap_or(p.loaded_at);
            let quiet = Duration::try_from(now.duration_since(since)).unwrap_or_default();
            if quiet > interval * 2 {
                let last = match (&p.last, p.last_success) {
                    (Some(last), _) => format!("last run: {}", last.outcome),
                    (None, _) => "it has not run".to_string(),
                };
                let when = match p.last_success {
                    Some(at) => format!("since {at}"),
                    None => format!("since it was loaded at {since}"),
                };
                problems.push(format!(
                    "policy {name} has not succeeded {when}, more than twice its schedule interval ({}s); {last}",
                    interval.as_secs()
                ));
            }
        }
        Health { problems }
    }

    /// systemd's one-line `STATUS=`.
    pub fn status_line(&self) -> String {
        let state = self.state();
        let scheduled = state
            .policies
            .values()
            .filter(|p| p.loaded.interval.is_some())
            .count();
        let failing: Vec<&str> = state
            .policies
            .iter()
            .filter(|(_, p)| p.last.as_ref().is_some_and(|l| !l.succeeded()))
            .map(|(name, _)| name.as_str())
            .collect();
        let mut line = format!(
            "{} policies ({scheduled} scheduled), {} running",
            state.policies.len(),
            state.running
        );
        if !state.reload.errors.is_empty() {
            line.push_str("; LAST RELOAD FAILED, previous policies running");
        }
        if !failing.is_empty() {
            let _ = write!(line, "; last run not ok: {}", failing.join(", "));
        }
        line
    }

    /// Prometheus text exposition format, version 0.0.4.
    pub fn render(&self, now: Timestamp) -> String {
        let healthy = self.health(now).problems.is_empty();
        let state = self.state();
        let mut out = Exposition::default();
        self.render_policies(&state, &mut out);
        render_freshness(&state, now, &mut out);
        out.family(
            "retentiond_deletion_errors_total",
            "counter",
            "Deletions that failed, by provider and error kind.",
        );
        for ((provider, kind), n) in &state.deletion_errors {
            out.sample(
                "retentiond_deletion_errors_total",
                &[("provider", provider), ("kind", kind)],
                *n as f64,
            );
        }
        out.family(
            "retentiond_notifications_total",
            "counter",
            "Notifications by sink and outcome (sent, or failed after retries).",
        );
        for ((sink, outcome), n) in &state.notifications {
            out.sample(
                "retentiond_notifications_total",
                &[("sink", sink), ("outcome", outcome)],
                *n as f64,
            );
        }
        render_requests(&state, &mut out);
        render_reload(&state.reload, &mut out);
        out.family(
            "retentiond_journal_errors_total",
            "counter",
            "Runs that could not open or write the journal (a shared database that is down).",
        );
        out.sample(
            "retentiond_journal_errors_total",
            &[],
            state.journal_errors as f64,
        );
        out.family(
            "retentiond_run_locks_lost_total",
            "counter",
            "Runs that lost their run lock's database session and stopped sending deletions.",
        );
        out.sample(
            "retentiond_run_locks_lost_total",
            &[],
            state.locks_lost as f64,
        );
        out.gauge(
            "retentiond_healthy",
            "1 when /healthz reports healthy.",
            &[],
            f64::from(u8::from(healthy)),
        );
        out.text
    }

    fn render_policies(&self, state: &State, out: &mut Exposition) {
        let policies = &state.policies;
        out.gauge(
            "retentiond_policies",
            "Policies loaded.",
            &[],
            policies.len() as f64,
        );
        out.family(
            "retentiond_policy_info",
            "gauge",
            "Each loaded policy, with its account and provider; always 1.",
        );
        for (name, p) in policies {
            let labels = [
                ("policy", name.as_str()),
                ("account", p.loaded.account.as_str()),
                ("provider", p.loaded.provider),
            ];
            out.sample("retentiond_policy_info", &labels, 1.0);
        }
        type Figure = fn(&PolicyState) -> Option<f64>;
        let figures: [(&str, &str, &str, Figure); 12] = [
            (
                "retentiond_policy_last_run_timestamp_seconds",
                "gauge",
                "When the policy's last run started.",
                |p| p.last.as_ref().map(|l| seconds(l.at)),
            ),
            (
                "retentiond_policy_last_success_timestamp_seconds",
                "gauge",
                "When the policy last ran successfully (ok or dry-run).",
                |p| p.last_success.map(seconds),
            ),
            (
                "retentiond_policy_last_run_duration_seconds",
                "gauge",
                "How long the policy's last run took.",
                |p| p.last.as_ref().map(|l| l.took.as_secs_f64()),
            ),
            (
                "retentiond_policy_backups_kept",
                "gauge",
                "Backups the policy's last run kept.",
                |p| p.last.as_ref().map(|l| l.kept as f64),
            ),
            (
                "retentiond_policy_backups_would_delete",
                "gauge",
                "Backups the last run planned to delete but did not (dry-run, blocked, stopped).",
                |p| p.last.as_ref().map(|l| l.would_delete as f64),
            ),
            (
                "retentiond_holds",
                "gauge",
                "Backups that holds (retentiond hold; S3 Object Lock) kept in the policy's last run.",
                |p| p.last.as_ref().and_then(|l| l.held.map(|n| n as f64)),
            ),
            (
                "retentiond_policy_backups_waiting",
                "gauge",
                "Backups the last run planned to delete once their grace period (guard.grace) ends.",
                |p| p.last.as_ref().map(|l| l.waiting as f64),
            ),
            (
                "retentiond_policy_backups_deleted_total",
                "counter",
                "Backups the policy deleted since the daemon started.",
                |p| Some(p.deleted_total as f64),
            ),
            (
                "retentiond_policy_blocked",
                "gauge",
                "1 when a guard blocked the policy's last run.",
                |p| p.last.as_ref().map(|l| f64::from(u8::from(l.blocked))),
            ),
            (
                "retentiond_policy_last_run_success",
                "gauge",
                "1 when the policy's last run succeeded (ok or dry-run).",
                |p| p.last.as_ref().map(|l| f64::from(u8::from(l.succeeded()))),
            ),
            (
                "retentiond_policy_skipped_fires_total",
                "counter",
                "Fires not started because the policy's previous run was still going.",
                |p| Some(p.skipped_fires as f64),
            ),
            (
                "retentiond_policy_fires_run_elsewhere_total",
                "counter",
                "Fires skipped because another host of the fleet claimed them first.",
                |p| Some(p.fires_elsewhere as f64),
            ),
        ];
        for (name, kind, help, figure) in figures {
            out.family(name, kind, help);
            for (policy, p) in policies {
                if let Some(value) = figure(p) {
                    out.sample(name, &[("policy", policy)], value);
                }
            }
        }
        out.family(
            "retentiond_policy_runs_total",
            "counter",
            "Runs of the policy, by outcome.",
        );
        for (policy, p) in policies {
            for (outcome, n) in &p.runs {
                out.sample(
                    "retentiond_policy_runs_total",
                    &[("policy", policy), ("outcome", outcome)],
                    *n as f64,
                );
            }
        }
    }
}

/// When each policy runs next, and how old the newest backup of its groups is (computed at
/// scrape time from the last listing).
fn render_freshness(state: &State, now: Timestamp, out: &mut Exposition) {
    let policies = &state.policies;
    out.family(
        "retentiond_policy_schedule_interval_seconds",
        "gauge",
        "The time between two fires of the policy's schedule (alerts compare the last success with it).",
    );
    for (name, p) in policies {
        if let Some(interval) = p.loaded.interval {
            out.sample(
                "retentiond_policy_schedule_interval_seconds",
                &[("policy", name)],
                interval.as_secs_f64(),
            );
        }
    }
    out.family(
        "retentiond_policy_next_run_timestamp_seconds",
        "gauge",
        "When the daemon runs the policy next (its schedule and jitter).",
    );
    for (name, p) in policies {
        if let Some(at) = p.next_run {
            out.sample(
                "retentiond_policy_next_run_timestamp_seconds",
                &[("policy", name)],
                seconds(at),
            );
        }
    }
    let age = |at: &Timestamp| now.duration_since(*at).as_secs_f64().max(0.0);
    out.family(
        "retentiond_policy_newest_backup_age_seconds",
        "gauge",
        "Age of the newest complete backup in the policy's stalest group, at its last listing.",
    );
    for (name, p) in policies {
        let stalest = p.last.as_ref().and_then(|l| l.newest.values().min());
        if let Some(at) = stalest {
            out.sample(
                "retentiond_policy_newest_backup_age_seconds",
                &[("policy", name)],
                age(at),
            );
        }
    }
    out.family(
        "retentiond_group_newest_backup_age_seconds",
        "gauge",
        "Age of each group's newest complete backup, at the policy's last listing (policies of at most 100 groups).",
    );
    for (name, p) in policies {
        let Some(last) = &p.last else { continue };
        if last.newest.len() > GROUP_SERIES_LIMIT {
            continue;
        }
        for (group, at) in &last.newest {
            out.sample(
                "retentiond_group_newest_backup_age_seconds",
                &[("policy", name), ("group", group)],
                age(at),
            );
        }
    }
}

fn render_requests(state: &State, out: &mut Exposition) {
    let name = "retentiond_provider_requests_total";
    out.family(name, "counter", "HTTP requests to providers, by result.");
    for ((account, provider, result), n) in &state.requests {
        let labels = [
            ("account", account.as_str()),
            ("provider", provider),
            ("result", result),
        ];
        out.sample(name, &labels, *n as f64);
    }
    let name = "retentiond_provider_request_duration_seconds";
    out.family(name, "histogram", "How long provider HTTP requests took.");
    for ((account, provider), h) in &state.latency {
        let labels = [("account", account.as_str()), ("provider", provider)];
        let mut cumulative = 0;
        for (bound, n) in LATENCY_BUCKETS.iter().zip(h.buckets) {
            cumulative += n;
            let le = bound.to_string();
            let with_le = [labels[0], labels[1], ("le", le.as_str())];
            out.sample(&format!("{name}_bucket"), &with_le, cumulative as f64);
        }
        let inf = [labels[0], labels[1], ("le", "+Inf")];
        out.sample(&format!("{name}_bucket"), &inf, h.count as f64);
        out.sample(&format!("{name}_sum"), &labels, h.sum);
        out.sample(&format!("{name}_count"), &labels, h.count as f64);
    }
}

fn render_reload(reload: &Reload, out: &mut Exposition) {
    out.gauge(
        "retentiond_config_last_reload_successful",
        "1 when the last config reload succeeded (or none was tried).",
        &[],
        f64::from(u8::from(reload.errors.is_empty())),
    );
    if let Some(at) = reload.at {
        out.gauge(
            "retentiond_config_last_reload_timestamp_seconds",
            "When the config and policies were last (re)loaded, successfully or not.",
            &[],
            seconds(at),
        );
    }
    if let Some(at) = reload.last_success {
        out.gauge(
            "retentiond_config_last_reload_success_timestamp_seconds",
            "When the config and policies were last loaded successfully.",
            &[],
            seconds(at),
        );
    }
    let name = "retentiond_config_reloads_total";
    out.family(
        name,
        "counter",
        "Config reloads after the start, by result.",
    );
    out.sample(name, &[("result", "success")], reload.successes as f64);
    out.sample(name, &[("result", "failure")], reload.failures as f64);
}

impl RequestObserver for Metrics {
    fn request(&self, account: &str, provider: &'static str, result: &'static str, took: Duration) {
        let mut state = self.state();
        *state
            .requests
            .entry((account.to_string(), provider, result))
            .or_default() += 1;
        let h = state
            .latency
            .entry((account.to_string(), provider))
            .or_default();
        let secs = took.as_secs_f64();
        if let Some(i) = LATENCY_BUCKETS.iter().position(|bound| secs <= *bound) {
            h.buckets[i] += 1;
        }
        h.sum += secs;
        h.count += 1;
    }
}

fn seconds(at: Timestamp) -> f64 {
    at.as_millisecond() as f64 / 1000.0
}

/// Builds the text format: `# HELP`/`# TYPE` once per family, then samples.
#[derive(Default)]
struct Exposition {
    text: String,
}

impl Exposition {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.text, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.text.push_str(name);
        if !labels.is_empty() {
            self.text.push('{');
            for (i, (key, value)) in labels.iter().enumerate() {
                if i > 0 {
                    self.text.push(',');
                }
                let _ = write!(self.text, "{key}=\"{}\"", escape(value));
            }
            self.text.push('}');
        }
        let _ = writeln!(self.text, " {value}");
    }

    fn gauge(&mut self, name: &str, help: &str, labels: &[(&str, &str)], value: f64) {
        self.family(name, "gauge", help);
        self.sample(name, labels, value);
    }
}

/// Label values escape `\`, `"` and newlines.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests;
