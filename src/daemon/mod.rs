//! `retentiond daemon`: runs each policy on its schedule, reloads on SIGHUP and on file
//! changes (a broken set is refused and the running one kept), speaks systemd's notify
//! protocol, serves metrics and health, and stops cleanly on SIGTERM/SIGINT.
//!
//! The loop here only turns events into actions: signals and file changes into reloads,
//! reloads into a new policy set for the [`scheduler`], SIGTERM into a drain. Runs go
//! through [`job`], figures into [`metrics`].

pub mod clock;
pub mod job;
pub mod log;
pub mod metrics;
pub mod page;
pub mod schedule;
pub mod scheduler;
pub mod server;
pub mod status;
pub mod systemd;
pub mod watch;

use crate::executor::Stop;
use crate::exit;
use crate::journal::Journal;
use crate::policy::{self, Config, Policy};
use crate::provider::Registry;
use crate::runner;
use clock::Clock;
use job::{Context, Jobs};
use metrics::{Loaded, Metrics};
use scheduler::{Control, Entry, Heartbeat, Scheduler};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use systemd::Notifier;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::{error, info, warn};

/// A file change starts a reload once the files have been quiet this long (an editor's save,
/// a `git checkout` burst)...
const QUIET: Duration = Duration::from_millis(300);
/// ... or this long after the first change, whichever comes first.
const MOST_DELAY: Duration = Duration::from_secs(2);

/// What the daemon is asked to do from outside.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    /// SIGHUP.
    Reload,
    /// SIGTERM, SIGINT.
    Stop,
}

/// `retentiond daemon`: logging, the runtime, the signals; returns the exit code.
pub fn main(config: PathBuf, format: log::LogFormat) -> u8 {
    log::init(format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            error!("cannot start the async runtime: {e}");
            return exit::INVALID;
        }
    };
    runtime.block_on(async {
        let signals = match signals() {
            Ok(signals) => signals,
            Err(e) => {
                error!("cannot handle signals: {e}");
                return exit::INVALID;
            }
        };
        let notifier = match Notifier::from_env() {
            Ok(notifier) => Arc::new(notifier),
            Err(e) => {
                error!("NOTIFY_SOCKET is set but unusable: {e}");
                return exit::INVALID;
            }
        };
        run(&config, Arc::new(clock::SystemClock), signals, notifier).await
    })
}

/// SIGHUP, SIGTERM and SIGINT as [`Signal`]s.
fn signals() -> std::io::Result<mpsc::UnboundedReceiver<Signal>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hangup = signal(SignalKind::hangup())?;
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let signal = tokio::select! {
                _ = hangup.recv() => Signal::Reload,
                _ = terminate.recv() => Signal::Stop,
                _ = interrupt.recv() => Signal::Stop,
            };
            if tx.send(signal).is_err() {
                break;
            }
        }
    });
    Ok(rx)
}

/// A config and its policies, validated, with every account's credentials resolved.
struct LoadedSet {
    config: Config,
    policies: Vec<Policy>,
    registry: Registry,
}

/// Loads and checks the whole set; every error, rendered `file:line:col: message`.
fn load(path: &Path, metrics: &Arc<Metrics>) -> Result<LoadedSet, Vec<String>> {
    let render = |errors: Vec<policy::Diagnostic>| -> Vec<String> {
        errors.iter().map(policy::Diagnostic::render).collect()
    };
    let config = policy::load_config(path).map_err(render)?;
    let (policies, mut errors) = policy::load_policies(&config.policies);
    errors.extend(policy::check_against_config(&policies, &config));
    if !errors.is_empty() {
        return Err(render(errors));
    }
    // Resolving credentials now makes a missing secret a reload error, not a failed run.
    let mut registry = Registry::observed(metrics.clone());
    let mut problems = Vec::new();
    for policy in &policies {
        let account = &config.accounts[&policy.account];
        if let Err(e) = registry.open(account, policy, &runner::zone(policy, Some(&config))) {
            problems.push(format!(
                "{}: policy {}: {e}",
                policy.file.display(),
                policy.name
            ));
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(LoadedSet {
        config,
        policies,
        registry,
    })
}

/// Runs the daemon until a [`Signal::Stop`]; returns the exit code.
pub async fn run(
    config_path: &Path,
    clock: Arc<dyn Clock>,
    mut signals: mpsc::UnboundedReceiver<Signal>,
    notifier: Arc<Notifier>,
) -> u8 {
    let metrics = Arc::new(Metrics::new());
    let set = match load(config_path, &metrics) {
        Ok(set) => set,
        Err(errors) => {
            for e in &errors {
                error!("{e}");
            }
            error!("not started: {}", count(errors.len(), "error"));
            return exit::INVALID;
        }
    };
    // A journal URL that can never work refuses the start; a server that is down is waited for.
    if let Err(e) = Journal::check_target(&set.config) {
        error!("not started: {e}");
        return exit::INVALID;
    }
    // One daemon per journal: a second one would run every policy twice.
    let _instance = match crate::journal::lock_daemon(&set.config.state_dir) {
        Ok(lock) => lock,
        Err(e) => {
            error!("not started: {e}");
            return exit::JOURNAL;
        }
    };
    let pages = Arc::new(server::Pages::default());
    let server = match serve_metrics(&set.config, &metrics, &clock, &pages).await {
        Ok(server) => server,
        Err(code) => return code,
    };
    let stop = Stop::default();
    let status: Box<dyn Fn() + Send + Sync> = {
        let (metrics, notifier) = (metrics.clone(), notifier.clone());
        Box::new(move || send(&notifier, &format!("STATUS={}", metrics.status_line())))
    };
    let (entries, context) = prepare(set, &metrics, clock.now());
    metrics.started(clock.now());
    tokio::spawn(probe_journal(context.clone(), metrics.clone()));
    let jobs = Arc::new(Jobs::new(
        context,
        metrics.clone(),
        clock.clone(),
        stop.clone(),
        status,
    ));
    pages.set(jobs.clone());
    let (changed, changes) = mpsc::unbounded_channel();
    let (control, control_rx) = mpsc::unbounded_channel();
    let mut daemon = Daemon {
        config_path: config_path.to_path_buf(),
        clock: clock.clone(),
        metrics,
        notifier: notifier.clone(),
        jobs: jobs.clone(),
        control: control.clone(),
        changed,
        watch: None,
    };
    daemon.rewatch();
    let heartbeat = systemd::watchdog_interval().map(|every| {
        let notifier = notifier.clone();
        Heartbeat {
            every,
            beat: Box::new(move || send(&notifier, "WATCHDOG=1")),
        }
    });
    let scheduler = Scheduler::new(clock, Arc::new(jobs), entries, heartbeat);
    // READY before the first run can start, so it is the first message systemd gets.
    send(
        &notifier,
        &format!("READY=1\nSTATUS={}", daemon.metrics.status_line()),
    );
    info!("ready: {}", daemon.metrics.status_line());
    let mut scheduled = tokio::spawn(scheduler.run(control_rx));
    if !daemon.serve(&mut signals, changes, &mut scheduled).await {
        return exit::INVALID;
    }
    send(&notifier, "STOPPING=1\nSTATUS=stopping");
    let deadline = daemon.jobs.context().config.shutdown_timeout;
    drain(deadline, &stop, &control, scheduled).await;
    if let Some(server) = server {
        server.abort();
    }
    info!("stopped");
    exit::OK
}

/// Opens the journal once at start, which applies its migrations. While it cannot be opened
/// (a PostgreSQL server down or unreachable) the daemon stays up rather than exiting into a
/// restart loop: the error is logged, `/healthz` says why, scheduled runs fail without deleting
/// anything, and the opening is tried again after 1 s, doubling up to once a minute.
async fn probe_journal(context: Arc<Context>, metrics: Arc<Metrics>) {
    let mut delay = Duration::from_secs(1);
    let mut failed = false;
    loop {
        let opening = context.clone();
        let opened =
            tokio::task::spawn_blocking(move || Journal::open_config(&opening.config).map(drop))
                .await;
        match opened {
            Ok(Ok(())) => {
                if metrics.journal_ok() {
                    info!("the journal answers again");
                }
                if failed {
                    seed_metrics(&metrics, &context.config, &context.entries);
                }
                return;
            }
            Ok(Err(e)) => {
                error!(
                    "the journal cannot be reached: {e}; trying again in {}s (scheduled runs delete nothing until it answers)",
                    delay.as_secs()
                );
                metrics.journal_failed(&e.to_string());
                failed = true;
            }
            Err(e) => {
                error!("the journal probe failed: {e}");
                return;
            }
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(60));
    }
}

/// Binds `metrics.listen` and serves it; `Err` is the exit code when it cannot be bound.
async fn serve_metrics(
    config: &Config,
    metrics: &Arc<Metrics>,
    clock: &Arc<dyn Clock>,
    pages: &Arc<server::Pages>,
) -> Result<Option<tokio::task::JoinHandle<()>>, u8> {
    let Some(address) = config.metrics_listen else {
        return Ok(None);
    };
    for warning in config.warnings() {
        warn!("{warning}");
    }
    let listener = tokio::net::TcpListener::bind(address).await.map_err(|e| {
        error!(
            "not started: cannot listen on {address} (metrics.listen in {}): {e}",
            config.file.display()
        );
        exit::INVALID
    })?;
    // The bound address: `metrics.listen` may name port 0.
    let address = listener.local_addr().unwrap_or(address);
    info!(
        "metrics on http://{address}/metrics, health on http://{address}/healthz, status page on http://{address}/"
    );
    Ok(Some(tokio::spawn(server::serve(
        listener,
        metrics.clone(),
        clock.clone(),
        pages.clone(),
    ))))
}

/// Stops scheduling and deleting, and waits up to `deadline` for running policies.
async fn drain(
    deadline: Duration,
    stop: &Stop,
    control: &mpsc::UnboundedSender<Control>,
    scheduled: tokio::task::JoinHandle<scheduler::Stopped>,
) {
    info!(
        "stopping: no new runs or deletions; waiting up to {}s for running policies",
        deadline.as_secs()
    );
    // Deletions check the flag before each call: the ones in flight finish and are journaled.
    stop.set();
    let _ = control.send(Control::Stop { deadline });
    match scheduled.await {
        Ok(stopped) if !stopped.unfinished.is_empty() => warn!(
            "stopped {} still running after {}s: {}; their next run settles what they left open",
            stopped.unfinished.len(),
            deadline.as_secs(),
            stopped.unfinished.join(", ")
        ),
        Ok(_) => {}
        Err(e) => error!("the scheduler failed: {e}"),
    }
}

/// "1 error", "2 errors".
fn count(n: usize, what: &str) -> String {
    format!("{n} {what}{}", if n == 1 { "" } else { "s" })
}

fn send(notifier: &Notifier, message: &str) {
    if let Err(e) = notifier.send(message) {
        warn!("cannot notify systemd ({message:?}): {e}");
    }
}

/// The daemon's state between events.
struct Daemon {
    config_path: PathBuf,
    clock: Arc<dyn Clock>,
    metrics: Arc<Metrics>,
    notifier: Arc<Notifier>,
    jobs: Arc<Jobs>,
    control: mpsc::UnboundedSender<Control>,
    changed: mpsc::UnboundedSender<()>,
    watch: Option<watch::Watch>,
}

impl Daemon {
    /// Waits for signals and file changes until told to stop (true), or until the scheduler
    /// ends on its own, which is a bug (false).
    async fn serve(
        &mut self,
        signals: &mut mpsc::UnboundedReceiver<Signal>,
        mut changes: mpsc::UnboundedReceiver<()>,
        scheduled: &mut tokio::task::JoinHandle<scheduler::Stopped>,
    ) -> bool {
        // (first change, reload at) while changes are being debounced.
        let mut pending: Option<(Instant, Instant)> = None;
        loop {
            let reload_at = pending.map(|(_, at)| at);
            tokio::select! {
                signal = signals.recv() => match signal {
                    Some(Signal::Reload) => {
                        pending = None;
                        self.reload("SIGHUP");
                    }
                    Some(Signal::Stop) | None => return true,
                },
                Some(()) = changes.recv() => {
                    let now = Instant::now();
                    let first = pending.map_or(now, |(first, _)| first);
                    pending = Some((first, (now + QUIET).min(first + MOST_DELAY)));
                }
                () = tokio::time::sleep_until(reload_at.unwrap_or_else(Instant::now)), if reload_at.is_some() => {
                    pending = None;
                    match self.empty_policy_file() {
                        // An editor or a deploy truncates, then writes: the write is another
                        // change, and the reload happens then.
                        Some(file) => info!(
                            "{} is empty (being written?): the reload waits for its content",
                            file.display()
                        ),
                        None => self.reload("files changed"),
                    }
                }
                result = &mut *scheduled => {
                    error!("the scheduler ended unexpectedly: {result:?}");
                    return false;
                }
            }
        }
    }

    /// A policy file of the config in force that is empty (or only whitespace), if any.
    fn empty_policy_file(&self) -> Option<PathBuf> {
        let folders = self.jobs.context().config.policies.clone();
        let (files, _) = policy::expand_paths(&folders);
        files.into_iter().find(|file| {
            std::fs::read(file).is_ok_and(|text| text.iter().all(u8::is_ascii_whitespace))
        })
    }

    /// Watches the files of the config in force (again: folders may have been replaced).
    fn rewatch(&mut self) {
        self.watch = None;
        let policies = self.jobs.context().config.policies.clone();
        self.watch = watch::watch(&self.config_path, &policies, self.changed.clone())
            .map_err(|e| warn!("{e}; reload with SIGHUP (systemctl reload)"))
            .ok();
    }

    /// Loads the whole set again; swaps it in if it is valid, else keeps the one in force.
    fn reload(&mut self, why: &str) {
        send(&self.notifier, "RELOADING=1");
        info!("reloading ({why})");
        let now = self.clock.now();
        match load(&self.config_path, &self.metrics) {
            Ok(mut set) => {
                self.keep_restart_settings(&mut set.config);
                let before = fingerprints(&self.jobs.context().entries);
                let (entries, context) = prepare(set, &self.metrics, now);
                let after = fingerprints(&entries);
                self.jobs.swap(context);
                self.rewatch();
                let _ = self.control.send(Control::Replace(entries));
                self.metrics.reloaded(now, Ok(()));
                info!("reloaded: {}", change_summary(&before, &after));
            }
            Err(errors) => {
                for e in &errors {
                    error!("{e}");
                }
                let summary = count(errors.len(), "error");
                // Recorded before the summary line, so that whoever reads that line finds
                // /healthz and /metrics already saying so.
                self.metrics.reloaded(now, Err(errors));
                error!("reload failed with {summary}; the previous policies keep running");
            }
        }
        send(
            &self.notifier,
            &format!("READY=1\nSTATUS={}", self.metrics.status_line()),
        );
    }

    /// `state_dir` and `metrics.listen` are bound at start; a change waits for a restart.
    fn keep_restart_settings(&self, config: &mut Config) {
        let context = self.jobs.context();
        let in_force = &context.config;
        if config.state_dir != in_force.state_dir {
            warn!(
                "state_dir changed to {}: it takes effect at the next restart; {} stays in use",
                config.state_dir.display(),
                in_force.state_dir.display()
            );
            config.state_dir = in_force.state_dir.clone();
        }
        if config.metrics_listen != in_force.metrics_listen {
            warn!("metrics.listen changed: it takes effect at the next restart");
            config.metrics_listen = in_force.metrics_listen;
        }
    }
}

/// Makes the scheduler's entries and the jobs' context of a loaded set, and tells the
/// metrics which policies are loaded.
fn prepare(set: LoadedSet, metrics: &Metrics, now: jiff::Timestamp) -> (Vec<Entry>, Arc<Context>) {
    let LoadedSet {
        config,
        policies,
        registry,
    } = set;
    let entries: Vec<Entry> = policies
        .into_iter()
        .map(|policy| Entry {
            tz: runner::zone(&policy, Some(&config)),
            policy: Arc::new(policy),
        })
        .collect();
    let loaded = entries
        .iter()
        .map(|e| {
            let policy = &e.policy;
            if policy.schedule.is_none() {
                info!(
                    policy = %policy.name,
                    "no schedule: the daemon does not run it (retentiond run --policy {})",
                    policy.name
                );
            }
            Loaded {
                name: policy.name.clone(),
                account: policy.account.clone(),
                provider: config.accounts[&policy.account].kind.name(),
                interval: policy
                    .schedule
                    .as_ref()
                    .and_then(|s| schedule::interval(s, &e.tz, now)),
            }
        })
        .collect();
    metrics.set_policies(loaded, now);
    seed_metrics(metrics, &config, &entries);
    let context = Arc::new(Context {
        config,
        registry: Mutex::new(registry),
        entries: entries.clone(),
    });
    (entries, context)
}

/// Seeds the figures of policies the daemon has not run yet from the journal (their last run
/// and last success survive a restart). A journal that cannot be read only loses the seeds.
fn seed_metrics(metrics: &Metrics, config: &policy::Config, entries: &[Entry]) {
    let journal = match Journal::open_config_read_only(config) {
        Ok(Some(journal)) => journal,
        Ok(None) => return,
        Err(e) => {
            warn!("metrics start empty: {e}");
            return;
        }
    };
    for entry in entries {
        match journal.last_run(&entry.policy.name) {
            Ok(Some(last)) => metrics.seed(&entry.policy.name, &last),
            Ok(None) => {}
            Err(e) => warn!(policy = %entry.policy.name, "metrics start empty: {e}"),
        }
    }
}

/// Each policy's name and the hash of its file, to tell what a reload changed.
fn fingerprints(entries: &[Entry]) -> BTreeMap<String, String> {
    entries
        .iter()
        .map(|e| (e.policy.name.clone(), e.policy.file_sha256.clone()))
        .collect()
}

/// "3 policies; added a; removed b; changed c".
fn change_summary(before: &BTreeMap<String, String>, after: &BTreeMap<String, String>) -> String {
    let list = |names: Vec<&String>| {
        names
            .iter()
            .map(|n| n.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let added: Vec<&String> = after.keys().filter(|n| !before.contains_key(*n)).collect();
    let removed: Vec<&String> = before.keys().filter(|n| !after.contains_key(*n)).collect();
    let changed: Vec<&String> = after
        .iter()
        .filter(|(n, sha)| before.get(*n).is_some_and(|old| old != *sha))
        .map(|(n, _)| n)
        .collect();
    let mut summary = format!("{} policies", after.len());
    for (what, names) in [("added", added), ("removed", removed), ("changed", changed)] {
        if !names.is_empty() {
            summary.push_str(&format!("; {what} {}", list(names)));
        }
    }
    summary
}
