//! What the commands share: failures and exit codes, finding and loading the config and its
//! policies, opening providers and the journal, the async runtime, and the end of a run
//! (failures on stderr, the exit code).

use super::Cli;
use super::terminal::Requests;
use crate::exit;
use crate::journal::{Journal, JournalError, PolicyLock};
use crate::model::Backup;
use crate::policy::{self, Config, Diagnostic, Policy};
use crate::provider::{self, Provider, ProviderError, Registry};
use crate::render::PolicyReport;
use crate::runner;
use crate::visible::Visible;
use jiff::Timestamp;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

pub(super) const DEFAULT_CONFIG: &str = "/etc/retentiond/retentiond.yaml";

/// A command's failure: an exit code and what to print on stderr.
pub(super) struct Failure {
    pub(super) code: u8,
    pub(super) messages: Vec<String>,
}

impl Failure {
    pub(super) fn new(code: u8, message: impl Into<String>) -> Failure {
        Failure {
            code,
            messages: vec![message.into()],
        }
    }

    pub(super) fn invalid(diagnostics: Vec<Diagnostic>) -> Failure {
        let count = diagnostics.len();
        let mut messages: Vec<String> = diagnostics.iter().map(Diagnostic::render).collect();
        messages.push(format!(
            "{count} error{}",
            if count == 1 { "" } else { "s" }
        ));
        Failure {
            code: exit::INVALID,
            messages,
        }
    }
}

pub(super) type Outcome = Result<u8, Failure>;

pub(super) fn write_failure(e: io::Error) -> Failure {
    if e.kind() == io::ErrorKind::BrokenPipe {
        // The reader went away (`plan | head`): stop quietly, as a Unix tool ended by SIGPIPE.
        return Failure {
            code: exit::CLOSED_PIPE,
            messages: Vec::new(),
        };
    }
    Failure::new(exit::INVALID, format!("cannot write output: {e}"))
}

/// Who acts, as the journal records it: `by` (a `--by` flag), else `$SUDO_USER` (a person
/// behind sudo), else `$USER`.
pub(super) fn who(by: Option<&str>) -> Option<String> {
    by.map(str::to_string)
        .or_else(|| std::env::var("SUDO_USER").ok())
        .or_else(|| std::env::var("USER").ok())
        .filter(|w| !w.trim().is_empty())
}

/// The config named by --config or $RETENTIOND_CONFIG, or the default path if it exists.
pub(super) fn config_path(cli: &Cli) -> Option<(PathBuf, bool)> {
    match &cli.config {
        Some(path) => Some((path.clone(), true)),
        None => Path::new(DEFAULT_CONFIG)
            .exists()
            .then(|| (PathBuf::from(DEFAULT_CONFIG), false)),
    }
}

pub(super) fn require_config(cli: &Cli, hint: &str) -> Result<Config, Failure> {
    let Some((path, _)) = config_path(cli) else {
        return Err(Failure::new(
            exit::INVALID,
            format!(
                "no config file at {DEFAULT_CONFIG}; pass --config PATH or set RETENTIOND_CONFIG{hint}"
            ),
        ));
    };
    policy::load_config(&path).map_err(Failure::invalid)
}

/// The config's policies, validated against it.
pub(super) fn config_policies(config: &Config) -> Result<Vec<Policy>, Failure> {
    let (policies, mut errors) = policy::load_policies(&config.policies);
    errors.extend(policy::check_against_config(&policies, config));
    if errors.is_empty() && policies.is_empty() && !terminal().quiet {
        let folders: Vec<String> = config
            .policies
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        eprintln!(
            "note: no policy in {} (the config's `policies`): nothing to plan or run; add a policy file (*.yaml)",
            folders.join(", ")
        );
    }
    if errors.is_empty() {
        Ok(policies)
    } else {
        Err(Failure::invalid(errors))
    }
}

/// The policies named with --policy (all when none), in file order.
pub(super) fn select_policies(
    policies: Vec<Policy>,
    names: &[String],
) -> Result<Vec<Policy>, Failure> {
    for name in names {
        if !policies.iter().any(|p| &p.name == name) {
            let known: Vec<&str> = policies.iter().map(|p| p.name.as_str()).collect();
            let hint = policy::diag::did_you_mean(name, known.iter().copied());
            return Err(Failure::new(
                exit::INVALID,
                format!(
                    "no policy named `{name}`{hint} (policies: {})",
                    known.join(", ")
                ),
            ));
        }
    }
    Ok(policies
        .into_iter()
        .filter(|p| names.is_empty() || names.contains(&p.name))
        .collect())
}

/// Runs provider calls: one runtime for the process, made on first use.
pub(super) fn block_on<F: std::future::Future>(future: F) -> F::Output {
    runtime().block_on(future)
}

pub(super) fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("the async runtime starts")
    })
}

pub(super) type Opened = Result<Arc<dyn Provider>, ProviderError>;

/// A provider per policy; policies of one account share its HTTP client and cap.
/// How this process talks on the terminal: set once by the dispatch from `--quiet`,
/// `--verbose` and whether standard error is a terminal.
pub(super) struct Terminal {
    pub(super) quiet: bool,
    /// A progress line may be drawn on standard error.
    pub(super) progress: bool,
    /// The provider requests of the listings (progress, `--verbose`).
    pub(super) requests: Arc<Requests>,
}

static TERMINAL: OnceLock<Terminal> = OnceLock::new();

pub(super) fn set_terminal(terminal: Terminal) {
    let _ = TERMINAL.set(terminal);
}

/// The terminal settings (quiet and without progress until the dispatch sets them).
pub(super) fn terminal() -> &'static Terminal {
    TERMINAL.get_or_init(|| Terminal {
        quiet: true,
        progress: false,
        requests: Arc::new(Requests::new(false, false)),
    })
}

pub(super) fn open_providers(policies: &[Policy], config: &Config) -> Vec<Opened> {
    let mut registry = Registry::observed(terminal().requests.clone());
    policies
        .iter()
        .map(|policy| {
            let account = config
                .accounts
                .get(&policy.account)
                .expect("accounts were checked against the config");
            registry.open(account, policy, &runner::zone(policy, Some(config)))
        })
        .collect()
}

/// Every policy's listing, fetched concurrently.
pub(super) fn list_policies(providers: &[Opened]) -> Vec<Result<Vec<Backup>, ProviderError>> {
    let listings = block_on(provider::list_all(providers));
    terminal().requests.done();
    listings
}

/// A time given on the command line (RFC 3339), or now.
pub(super) fn instant(flag: &str, text: Option<&str>) -> Result<Timestamp, Failure> {
    match text {
        Some(text) => text.parse::<Timestamp>().map_err(|e| {
            Failure::new(
                exit::USAGE,
                format!("{flag} {text}: {e}; write RFC 3339 such as 2026-11-23T03:30:00Z"),
            )
        }),
        None => Ok(Timestamp::now()),
    }
}

pub(super) fn journal_failure(e: JournalError) -> Failure {
    Failure::new(exit::JOURNAL, format!("{e}; nothing was deleted"))
}

/// The config's journal, created if needed: `run` and `apply` delete nothing without it.
pub(super) fn open_journal(config: &Config) -> Result<Arc<Journal>, Failure> {
    Journal::open_config(config)
        .map(Arc::new)
        .map_err(journal_failure)
}

/// Takes each policy's run lock. Policies another process is running are reported and left
/// out.
/// A lock lost on the way (PostgreSQL) sets `stop`.
pub(super) fn lock_policies<'a>(
    journal: &Journal,
    policies: Vec<Policy>,
    stop: &crate::executor::Stop,
) -> (Vec<Policy>, Vec<PolicyLock>, Vec<PolicyReport<'a>>) {
    let (mut runnable, mut locks, mut skipped) = (Vec::new(), Vec::new(), Vec::new());
    for policy in policies {
        match journal.lock_watched(&policy.name, stop.lock_flag()) {
            Ok(lock) => {
                locks.push(lock);
                runnable.push(policy);
            }
            Err(e) => skipped.push(runner::not_run(&policy, &e)),
        }
    }
    (runnable, locks, skipped)
}

/// Listing errors, blocks, refusals, failed deletions and journal errors also go to stderr,
/// whatever the output format.
pub(super) fn report_failures(reports: &[PolicyReport]) {
    // Errors and blocks quote backup names and provider messages: shown with their control
    // characters visible.
    let say = |line: String| eprintln!("{}", Visible(&line));
    for report in reports {
        let name = &report.name;
        if let Some(error) = &report.error {
            say(format!("policy {name}: {error}; nothing was deleted"));
        }
        if let Some(error) = &report.journal_error {
            say(format!("policy {name}: {error}"));
        }
        if let Some(blocked) = report.plan.as_ref().and_then(|p| p.blocked.as_ref()) {
            say(format!(
                "policy {name}: BLOCKED, nothing was deleted: {blocked}"
            ));
        }
        if !report.refused.is_empty() {
            say(format!(
                "policy {name}: REFUSED, the reviewed plan no longer holds; nothing was deleted:"
            ));
            for change in &report.refused {
                say(format!("  - {change}"));
            }
        }
        for failed in executions(report).flat_map(|e| &e.failed) {
            say(format!(
                "policy {name}: FAILED to delete {}: {}",
                failed.id, failed.error
            ));
        }
        for error in executions(report).flat_map(|e| &e.ledger_errors) {
            say(format!("policy {name}: journal: {error}"));
        }
        for halted in executions(report).filter_map(|e| e.halted.as_ref()) {
            say(format!("policy {name}: {halted}"));
        }
    }
}

/// What a report deleted: this run's plan, and deletions resumed from earlier runs.
pub(super) fn executions<'r>(
    r: &'r PolicyReport,
) -> impl Iterator<Item = &'r crate::executor::Execution> {
    r.execution.iter().chain(&r.resumed)
}

/// Reports failures on stderr; the exit code for the reports.
pub(super) fn finish(reports: &[PolicyReport]) -> u8 {
    report_failures(reports);
    let any = |f: &dyn Fn(&PolicyReport) -> bool| reports.iter().any(f);
    if any(&|r| r.journal_error.is_some() || executions(r).any(|e| !e.ledger_errors.is_empty())) {
        exit::JOURNAL
    } else if any(&|r| r.error.is_some()) {
        exit::LISTING_FAILED
    } else if any(&|r| !r.refused.is_empty()) {
        exit::REFUSED
    } else if any(&|r| executions(r).any(|e| !e.failed.is_empty())) {
        exit::DELETE_FAILED
    } else if any(&|r| r.plan.as_ref().is_some_and(|p| p.blocked.is_some())) {
        exit::BLOCKED
    } else if any(&|r| {
        r.plan
            .as_ref()
            .is_some_and(|p| p.selected_nothing.is_some())
    }) {
        exit::NOTHING_SELECTED
    } else {
        exit::OK
    }
}
