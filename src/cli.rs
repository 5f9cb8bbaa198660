//! The command line: parses arguments, loads files, calls the planner and executor, prints.
//! Thin by design; every decision lives in the modules it calls.

use crate::executor;
use crate::journal::{HistoryFilter, Journal, JournalError, PolicyLock, RunEnd, RunStart};
use crate::model::{Backup, Listing};
use crate::plan;
use crate::policy::{self, Config, Diagnostic, Policy};
use crate::provider::{self, Provider, ProviderError, Registry};
use crate::render::{self, PolicyReport};
use crate::retention::CalendarDuration;
use crate::runner;
use clap::{Args, Parser, Subcommand, ValueEnum};
use jiff::Timestamp;
use jiff::tz::TimeZone;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex, OnceLock};

/// Exit codes; when several apply, the first of 7, 130, 3, 6, 4, 5 in this order wins.
pub mod exit {
    pub const OK: u8 = 0;
    /// Invalid config, policy or listing files, or an unknown policy name.
    pub const INVALID: u8 = 1;
    /// Command-line usage error.
    pub const USAGE: u8 = 2;
    /// A listing failed: nothing was deleted for that policy.
    pub const LISTING_FAILED: u8 = 3;
    /// Some deletions failed.
    pub const DELETE_FAILED: u8 = 4;
    /// A guard blocked a policy: nothing was deleted for it.
    pub const BLOCKED: u8 = 5;
    /// `apply`: the reviewed plan no longer holds (or its policy changed): nothing was deleted
    /// for that policy.
    pub const REFUSED: u8 = 6;
    /// The journal could not be used, or another process is running the policy: nothing was
    /// deleted for that policy.
    pub const JOURNAL: u8 = 7;
    /// Standard output was closed by its reader (`plan | head`): 128 + SIGPIPE, as a shell
    /// reports a tool that SIGPIPE ended. Nothing is printed.
    pub const CLOSED_PIPE: u8 = 141;
    /// `run`/`apply` interrupted by Ctrl-C (SIGINT): what was sent finished and is recorded.
    pub const INTERRUPTED: u8 = 130;
}

const DEFAULT_CONFIG: &str = "/etc/retentiond/retentiond.yaml";

const EXIT_CODES: &str = "Exit codes:
  0  success
  1  invalid config, policy or listing file, or unknown policy name
  2  command-line usage error
  3  a listing failed; nothing was deleted for that policy
  4  some deletions failed
  5  a guard blocked a policy; nothing was deleted for it
  6  apply: the reviewed plan no longer holds; nothing was deleted for that policy
  7  the journal in state_dir could not be used, or another process is running the
     policy; nothing was deleted for it
  130  run/apply interrupted by Ctrl-C: the deletions in flight finished, no more were sent
  141  standard output was closed by its reader (plan | head); nothing is printed
When several apply, the first of 7, 130, 3, 6, 4, 5 wins.";

#[derive(Parser)]
#[command(
    name = "retentiond",
    version,
    about = "Declarative retention policies for backups: plan what each policy keeps and deletes, with reasons, and apply it",
    after_help = EXIT_CODES
)]
struct Cli {
    /// Daemon config [default: /etc/retentiond/retentiond.yaml]
    #[arg(long, global = true, env = "RETENTIOND_CONFIG", value_name = "PATH")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Format {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Check config and/or policy files or folders; exit 0 valid, 1 invalid
    Validate {
        /// Files or folders; a file with top-level `accounts`, `policies`, `state_dir` or
        /// `dry_run` is read as the daemon config.
        /// None: the config and its policies.
        paths: Vec<PathBuf>,
        /// Do not resolve the config's secret references (checking a config on a machine
        /// that does not hold its secrets, such as the CI of a config repository)
        #[arg(long)]
        skip_secrets: bool,
    },
    /// Print the listing each policy sees (JSON: the format `plan --listing` reads)
    List {
        /// Only this policy (repeatable)
        #[arg(long, value_name = "NAME")]
        policy: Vec<String>,
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
    /// Show what every policy keeps and deletes, and why; never deletes
    Plan {
        /// Only this policy (repeatable)
        #[arg(long, value_name = "NAME")]
        policy: Vec<String>,
        /// Policy files or folder instead of the config's `policies`
        #[arg(long, value_name = "PATH")]
        policies: Option<PathBuf>,
        /// Evaluate against a saved listing instead of calling the provider; with --policies
        /// no config, credentials or network are needed
        #[arg(long, value_name = "FILE")]
        listing: Option<PathBuf>,
        /// The clock, RFC 3339 (default: the real time)
        #[arg(long, value_name = "RFC3339")]
        now: Option<String>,
        /// Also write the plan (JSON) to FILE, for review and `retentiond apply FILE`
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Plan as if the listing-drop guard accepted today's listing
        #[arg(long)]
        accept_listing_drop: bool,
        /// Plan as if max_delete and max_delete_fraction let this plan through
        #[arg(long)]
        accept_max_delete: bool,
        /// Plan as if this version of each policy were approved (see `approve`)
        #[arg(long)]
        approve: bool,
        /// Text: per policy the group counts and the summary, not a line per backup
        #[arg(long)]
        summary: bool,
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
    /// Evaluate now and delete what policies in `mode: enforce` no longer keep
    Run {
        /// Only this policy (repeatable)
        #[arg(long, value_name = "NAME")]
        policy: Vec<String>,
        #[command(flatten)]
        settings: RunArgs,
    },
    /// Delete exactly what a reviewed plan (`plan --out FILE`) deletes, after re-listing;
    /// refuses a policy whose plan no longer holds
    Apply {
        /// The plan file written by `plan --out`
        plan: PathBuf,
        #[command(flatten)]
        settings: RunArgs,
    },
    /// Approve the current version of policies: a new or changed policy deletes more than
    /// guard.unapproved_max_delete (10) or guard.unapproved_max_delete_fraction (10% of a
    /// group) only once approved; recorded in the journal
    Approve {
        /// The policies to approve (their current version, as the config loads them)
        #[arg(required_unless_present = "all", value_name = "POLICY")]
        policies: Vec<String>,
        /// Every policy of the config
        #[arg(long, conflicts_with = "policies")]
        all: bool,
    },
    /// Show the journal: runs, newest first, with their deletions
    History {
        /// Only this policy (repeatable)
        #[arg(long, value_name = "NAME")]
        policy: Vec<String>,
        /// Runs started at or after this: RFC 3339, or a duration ago such as 7d
        #[arg(long, value_name = "WHEN")]
        since: Option<String>,
        /// Runs started at or before this: RFC 3339, or a duration ago
        #[arg(long, value_name = "WHEN")]
        until: Option<String>,
        /// Only runs with this outcome (repeatable): ok, dry-run, blocked, refused,
        /// listing-failed, deletions-failed, journal-failed, interrupted, unfinished
        #[arg(long, value_name = "OUTCOME")]
        outcome: Vec<String>,
        /// One run, with every decision it recorded
        #[arg(long, value_name = "ID")]
        run: Option<i64>,
        /// At most this many runs
        #[arg(long, value_name = "N", default_value_t = 20)]
        limit: usize,
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
    /// Run every policy on its schedule until SIGTERM/SIGINT; SIGHUP or a changed file
    /// reloads the config and policies (a broken set is refused, the running one kept)
    Daemon {
        /// Log lines as text (without timestamps under journald) or JSON
        #[arg(long, value_enum, default_value = "text")]
        log_format: crate::daemon::log::LogFormat,
    },
    /// Print the JSON Schema of policy files
    Schema,
    /// Operator commands for ONLYOFFICE DocSpace portals (never used by policies)
    Docspace {
        #[command(subcommand)]
        command: DocspaceCommand,
    },
    /// Look after the journal in state_dir
    Journal {
        #[command(subcommand)]
        command: JournalCommand,
    },
}

#[derive(Subcommand)]
enum JournalCommand {
    /// Forget what runs older than journal_keep decided (every policy the journal knows, as
    /// each run does for its own policy), then give the space back to the file system (VACUUM)
    Compact {
        /// Instead of the config's journal_keep, e.g. `30d`
        #[arg(long)]
        keep: Option<String>,
    },
}

/// What `run` and `apply` share.
#[derive(Args, Clone, Copy)]
struct RunArgs {
    /// Delete nothing, whatever the policies' mode
    #[arg(long)]
    dry_run: bool,
    /// Accept a listing whose complete backups fell sharply since the last run (once; it
    /// becomes the new baseline)
    #[arg(long)]
    accept_listing_drop: bool,
    /// Let a plan over guard.max_delete or guard.max_delete_fraction through, this run only
    /// (journaled)
    #[arg(long)]
    accept_max_delete: bool,
    /// Approve the current version of each policy for this run only: a new or changed
    /// policy may then delete beyond guard.unapproved_max_delete (journaled)
    #[arg(long)]
    approve: bool,
    /// Text: print per policy the counts only, not every deletion (for large plans)
    #[arg(long)]
    summary: bool,
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
}

#[derive(Subcommand)]
enum DocspaceCommand {
    /// Show a portal's whole backup history and, with --yes, delete all of it
    /// (`deletebackuphistory`). Policies never call this; it is for decommissioning a portal.
    PurgeHistory {
        /// The onlyoffice-docspace account of the config
        #[arg(long)]
        account: String,
        /// The server-wide dump history instead of the portal's (self-hosted, space admin)
        #[arg(long)]
        dump: bool,
        /// Delete the history shown; without it nothing is deleted
        #[arg(long)]
        yes: bool,
    },
}

/// A command's failure: an exit code and what to print on stderr.
struct Failure {
    code: u8,
    messages: Vec<String>,
}

impl Failure {
    fn new(code: u8, message: impl Into<String>) -> Failure {
        Failure {
            code,
            messages: vec![message.into()],
        }
    }

    fn invalid(diagnostics: Vec<Diagnostic>) -> Failure {
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

type Outcome = Result<u8, Failure>;

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let code = match dispatch(&cli) {
        Ok(code) => code,
        Err(failure) => {
            let stderr = io::stderr();
            let mut err = stderr.lock();
            for message in failure.messages {
                let _ = writeln!(err, "{message}");
            }
            failure.code
        }
    };
    ExitCode::from(code)
}

fn dispatch(cli: &Cli) -> Outcome {
    let stdout = io::stdout();
    let mut out = io::BufWriter::with_capacity(1 << 16, stdout.lock());
    let code = match &cli.command {
        Command::Validate {
            paths,
            skip_secrets,
        } => validate(cli, paths, *skip_secrets, &mut out),
        Command::List { policy, format } => list(cli, policy, *format, &mut out),
        Command::Plan {
            policy,
            policies,
            listing,
            now,
            out: file,
            accept_listing_drop,
            accept_max_delete,
            approve,
            summary,
            format,
        } => {
            let args = PlanArgs {
                names: policy,
                policies: policies.as_deref(),
                listing: listing.as_deref(),
                now: now.as_deref(),
                out: file.as_deref(),
                accept_listing_drop: *accept_listing_drop,
                accept_max_delete: *accept_max_delete,
                approve: *approve,
                summary: *summary,
                format: *format,
            };
            plan_command(cli, args, &mut out)
        }
        Command::Run { policy, settings } => run(cli, policy, *settings, &mut out),
        Command::Apply { plan, settings } => apply(cli, plan, *settings, &mut out),
        Command::Approve { policies, .. } => approve(cli, policies, &mut out),
        Command::History {
            policy,
            since,
            until,
            outcome,
            run,
            limit,
            format,
        } => {
            let filter = HistoryFilter {
                policies: policy.clone(),
                since: since.as_deref().map(|t| when("--since", t)).transpose()?,
                until: until.as_deref().map(|t| when("--until", t)).transpose()?,
                outcomes: outcome.clone(),
                run: *run,
                limit: *limit,
            };
            history(cli, &filter, *format, &mut out)
        }
        Command::Docspace {
            command: DocspaceCommand::PurgeHistory { account, dump, yes },
        } => purge_history(cli, account, *dump, *yes, &mut out),
        Command::Journal {
            command: JournalCommand::Compact { keep },
        } => compact_journal(cli, keep.as_deref(), &mut out),
        Command::Daemon { log_format } => {
            let Some((path, _)) = config_path(cli) else {
                return Err(Failure::new(
                    exit::INVALID,
                    format!(
                        "no config file at {DEFAULT_CONFIG}; pass --config PATH or set RETENTIOND_CONFIG"
                    ),
                ));
            };
            Ok(crate::daemon::main(path, *log_format))
        }
        Command::Schema => {
            let schema = policy::schema::policy_file_schema();
            serde_json::to_writer_pretty(&mut out, &schema)
                .map_err(io::Error::from)
                .and_then(|_| writeln!(out))
                .map_err(write_failure)?;
            Ok(exit::OK)
        }
    }?;
    out.flush().map_err(write_failure)?;
    Ok(code)
}

fn write_failure(e: io::Error) -> Failure {
    if e.kind() == io::ErrorKind::BrokenPipe {
        // The reader went away (`plan | head`): stop quietly, as a Unix tool ended by SIGPIPE.
        return Failure {
            code: exit::CLOSED_PIPE,
            messages: Vec::new(),
        };
    }
    Failure::new(exit::INVALID, format!("cannot write output: {e}"))
}

/// The config named by --config or $RETENTIOND_CONFIG, or the default path if it exists.
fn config_path(cli: &Cli) -> Option<(PathBuf, bool)> {
    match &cli.config {
        Some(path) => Some((path.clone(), true)),
        None => Path::new(DEFAULT_CONFIG)
            .exists()
            .then(|| (PathBuf::from(DEFAULT_CONFIG), false)),
    }
}

fn require_config(cli: &Cli, hint: &str) -> Result<Config, Failure> {
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
fn config_policies(config: &Config) -> Result<Vec<Policy>, Failure> {
    let (policies, mut errors) = policy::load_policies(&config.policies);
    errors.extend(policy::check_against_config(&policies, config));
    if errors.is_empty() {
        Ok(policies)
    } else {
        Err(Failure::invalid(errors))
    }
}

/// The policies named with --policy (all when none), in file order.
fn select_policies(policies: Vec<Policy>, names: &[String]) -> Result<Vec<Policy>, Failure> {
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
fn block_on<F: std::future::Future>(future: F) -> F::Output {
    runtime().block_on(future)
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("the async runtime starts")
    })
}

type Opened = Result<Arc<dyn Provider>, ProviderError>;

/// A provider per policy; policies of one account share its HTTP client and cap.
fn open_providers(policies: &[Policy], config: &Config) -> Vec<Opened> {
    let mut registry = Registry::new();
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
fn list_policies(providers: &[Opened]) -> Vec<Result<Vec<Backup>, ProviderError>> {
    block_on(provider::list_all(providers))
}

fn validate(cli: &Cli, paths: &[PathBuf], skip_secrets: bool, out: &mut dyn Write) -> Outcome {
    let (configs, policy_paths): (Vec<PathBuf>, Vec<PathBuf>) = paths
        .iter()
        .cloned()
        .partition(|p| p.is_file() && policy::file_is_config(p));
    let config_file = configs
        .first()
        .cloned()
        .or_else(|| config_path(cli).map(|(p, _)| p));
    if paths.is_empty() && config_file.is_none() {
        return Err(Failure::new(
            exit::INVALID,
            format!(
                "nothing to validate: give policy files or folders, or a config (--config PATH; none at {DEFAULT_CONFIG})"
            ),
        ));
    }
    let mut errors = Vec::new();
    let config = config_file.and_then(|path| {
        policy::load_config(&path)
            .map_err(|e| errors.extend(e))
            .ok()
    });
    let policy_paths = match (&config, policy_paths.is_empty()) {
        (Some(config), true) => config.policies.clone(),
        _ => policy_paths,
    };
    let (policies, policy_errors) = policy::load_policies(&policy_paths);
    errors.extend(policy_errors);
    if let Some(config) = &config {
        errors.extend(policy::check_against_config(&policies, config));
        // The unit's ExecStartPre and ExecReload: a secret the daemon could not read must
        // fail here, not after `systemctl reload` reported success.
        if !skip_secrets {
            errors.extend(config.check_secrets());
        }
    }
    if !errors.is_empty() {
        return Err(Failure::invalid(errors));
    }
    let config_warnings = config.iter().flat_map(Config::warnings);
    for warning in policy::overlap_warnings(&policies)
        .into_iter()
        .chain(config_warnings)
    {
        eprintln!("warning: {warning}");
    }
    let checked = config
        .as_ref()
        .map(|c| format!(", accounts checked against {}", c.file.display()))
        .unwrap_or_default();
    writeln!(out, "ok: {} policies valid{checked}", policies.len()).map_err(write_failure)?;
    Ok(exit::OK)
}

fn list(cli: &Cli, names: &[String], format: Format, out: &mut dyn Write) -> Outcome {
    let config = require_config(cli, "")?;
    let policies = select_policies(config_policies(&config)?, names)?;
    let mut code = exit::OK;
    let mut union: Vec<Backup> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let listings = list_policies(&open_providers(&policies, &config));
    for (policy, listing) in policies.iter().zip(listings) {
        match (listing, format) {
            (Err(e), _) => {
                eprintln!("policy {}: {e}", policy.name);
                code = exit::LISTING_FAILED;
            }
            (Ok(mut backups), Format::Text) => {
                // As `plan` shows them: groups in name order, the newest first in each.
                backups.sort_by(|a, b| {
                    (a.group.as_str(), b.created_at).cmp(&(b.group.as_str(), a.created_at))
                });
                writeln!(out, "policy {} (account {})", policy.name, policy.account)
                    .map_err(write_failure)?;
                render::listing_text(out, &backups).map_err(write_failure)?;
            }
            (Ok(backups), Format::Json) => {
                for b in backups {
                    if seen.insert((b.group.clone(), b.id.clone())) {
                        union.push(b);
                    }
                }
            }
        }
    }
    if let Format::Json = format {
        serde_json::to_writer_pretty(&mut *out, &Listing { backups: union })
            .map_err(io::Error::from)
            .map_err(write_failure)?;
        writeln!(out).map_err(write_failure)?;
    }
    Ok(code)
}

struct PlanArgs<'a> {
    names: &'a [String],
    policies: Option<&'a Path>,
    listing: Option<&'a Path>,
    now: Option<&'a str>,
    out: Option<&'a Path>,
    accept_listing_drop: bool,
    accept_max_delete: bool,
    approve: bool,
    summary: bool,
    format: Format,
}

fn journal_failure(e: JournalError) -> Failure {
    Failure::new(exit::JOURNAL, format!("{e}; nothing was deleted"))
}

/// The config's journal, created if needed: `run` and `apply` delete nothing without it.
fn open_journal(config: &Config) -> Result<Arc<Journal>, Failure> {
    Journal::open(&config.state_dir)
        .map(Arc::new)
        .map_err(journal_failure)
}

/// Takes each policy's run lock. Policies another process is running are reported and left
/// out.
fn lock_policies<'a>(
    journal: &Journal,
    policies: Vec<Policy>,
) -> (Vec<Policy>, Vec<PolicyLock>, Vec<PolicyReport<'a>>) {
    let (mut runnable, mut locks, mut skipped) = (Vec::new(), Vec::new(), Vec::new());
    for policy in policies {
        match journal.lock(&policy.name) {
            Ok(lock) => {
                locks.push(lock);
                runnable.push(policy);
            }
            Err(e) => skipped.push(runner::not_run(&policy, &e)),
        }
    }
    (runnable, locks, skipped)
}

fn plan_command(cli: &Cli, args: PlanArgs, out: &mut dyn Write) -> Outcome {
    let now = match args.now {
        Some(text) => text.parse::<Timestamp>().map_err(|e| {
            Failure::new(
                exit::USAGE,
                format!("--now {text}: {e}; write RFC 3339 such as 2026-11-23T03:30:00Z"),
            )
        })?,
        None => Timestamp::now(),
    };
    let offline = args.policies.is_some() && args.listing.is_some();
    // Offline, the config is still used when there is one (its default zone), but not
    // required.
    let config = match (config_path(cli), offline) {
        (None, true) => None,
        _ => Some(require_config(
            cli,
            "; or plan offline with --policies and --listing",
        )?),
    };
    let policies = match (args.policies, &config) {
        (Some(path), _) => {
            let (policies, mut errors) = policy::load_policies(&[path.to_path_buf()]);
            if let Some(config) = &config {
                errors.extend(policy::check_against_config(&policies, config));
            }
            if !errors.is_empty() {
                return Err(Failure::invalid(errors));
            }
            policies
        }
        (None, Some(config)) => config_policies(config)?,
        (None, None) => unreachable!("a config is loaded unless --policies is given"),
    };
    let all_policies = policies.clone();
    let policies = select_policies(policies, args.names)?;
    let saved = match args.listing {
        Some(path) => Some(Listing::read(path).map_err(|e| Failure::new(exit::INVALID, e))?),
        None => None,
    };
    let opened = match (&saved, &config) {
        (None, Some(config)) => open_providers(&policies, config),
        _ => Vec::new(),
    };
    let listings: Vec<Result<Vec<Backup>, ProviderError>> = match (&saved, &config) {
        (Some(_), _) => policies.iter().map(|_| Ok(Vec::new())).collect(),
        (None, Some(_)) => list_policies(&opened),
        (None, None) => unreachable!("a config is loaded unless --listing is given"),
    };
    // A live listing is checked against the journal's last one and the policy's approvals
    // (read only; plan writes nothing). A journal that cannot be read (another user's
    // state_dir) only loses those guards here.
    let mut unchecked = None;
    let mut not_checked = |e: JournalError| {
        unchecked = Some(format!(
            "the listing-drop guard was not checked: {e} (run and apply check it); nor was the approval of new and changed policies"
        ));
    };
    let (journal, journal_read) = match (&saved, &config) {
        (None, Some(config)) => match Journal::open_read_only(&config.state_dir) {
            Ok(journal) => (journal, true),
            Err(e) => {
                not_checked(e);
                (None, false)
            }
        },
        _ => (None, false),
    };
    let mut reports = Vec::new();
    for (i, (policy, listing)) in policies.iter().zip(&listings).enumerate() {
        let backups = match (&saved, listing) {
            (Some(saved), _) => Ok(saved.backups.as_slice()),
            (None, Ok(backups)) => Ok(backups.as_slice()),
            (None, Err(e)) => Err(e.to_string()),
        };
        let baseline = journal
            .as_ref()
            .and_then(|j| {
                j.baseline(&policy.name, None)
                    .map_err(&mut not_checked)
                    .ok()
            })
            .flatten();
        // Live: a policy with no journal yet never ran, so it is unapproved.
        let approved = match (&journal, &saved) {
            _ if args.approve => Some(true),
            (Some(j), _) => j
                .approved(&policy.name, &policy.fingerprint)
                .map_err(&mut not_checked)
                .ok(),
            (None, None) if journal_read => Some(false),
            _ => None,
        };
        let mut report = PolicyReport::new(policy);
        match backups {
            Ok(backups) => {
                let checks = runner::Checks {
                    baseline: baseline.as_ref(),
                    accept_listing_drop: args.accept_listing_drop,
                    accept_max_delete: args.accept_max_delete,
                    approved,
                    policies: &all_policies,
                    unmatched: match (backups.is_empty(), opened.get(i)) {
                        (true, Some(Ok(provider))) => provider.unmatched(),
                        _ => None,
                    },
                };
                let (plan, _, _) = runner::guarded_plan(
                    policy,
                    backups,
                    now,
                    &runner::zone(policy, config.as_ref()),
                    &checks,
                );
                if config.is_none() && policy.timezone.is_none() {
                    eprintln!(
                        "note: policy {} has no `timezone` and no config was found (--config, $RETENTIOND_CONFIG, {DEFAULT_CONFIG}) for a default: its days, weeks, months and years are computed in UTC",
                        policy.name
                    );
                }
                report.plan = Some(plan);
            }
            Err(e) => report.error = Some(e),
        }
        reports.push(report);
    }
    if let Some(warning) = unchecked {
        eprintln!("warning: {warning}");
        for plan in reports.iter_mut().filter_map(|r| r.plan.as_mut()) {
            plan.warnings.push(warning.clone());
        }
    }
    match args.format {
        Format::Text => render::plan_text(out, &reports, args.summary),
        Format::Json => render::json(out, &reports),
    }
    .map_err(write_failure)?;
    if let Some(path) = args.out {
        write_plan_file(path, &reports)?;
    }
    Ok(finish(&reports))
}

/// Writes the plan JSON to `path` whole or not at all (a temporary file, then a rename).
fn write_plan_file(path: &Path, reports: &[PolicyReport]) -> Result<(), Failure> {
    let failure = |e: io::Error| {
        Failure::new(
            exit::INVALID,
            format!("cannot write the plan to {}: {e}", path.display()),
        )
    };
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    let temporary = path.with_file_name(name);
    let mut file = io::BufWriter::new(std::fs::File::create(&temporary).map_err(failure)?);
    render::json(&mut file, reports).map_err(failure)?;
    file.into_inner()
        .map_err(|e| failure(e.into_error()))?
        .sync_all()
        .map_err(failure)?;
    std::fs::rename(&temporary, path).map_err(failure)
}

/// Listing errors, blocks, refusals, failed deletions and journal errors also go to stderr,
/// whatever the output format.
fn report_failures(reports: &[PolicyReport]) {
    for report in reports {
        let name = &report.name;
        if let Some(error) = &report.error {
            eprintln!("policy {name}: {error}; nothing was deleted");
        }
        if let Some(error) = &report.journal_error {
            eprintln!("policy {name}: {error}");
        }
        if let Some(blocked) = report.plan.as_ref().and_then(|p| p.blocked.as_ref()) {
            eprintln!("policy {name}: BLOCKED, nothing was deleted: {blocked}");
        }
        if !report.refused.is_empty() {
            eprintln!(
                "policy {name}: REFUSED, the reviewed plan no longer holds; nothing was deleted:"
            );
            for change in &report.refused {
                eprintln!("  - {change}");
            }
        }
        for failed in executions(report).flat_map(|e| &e.failed) {
            eprintln!(
                "policy {name}: FAILED to delete {}: {}",
                failed.id, failed.error
            );
        }
        for error in executions(report).flat_map(|e| &e.ledger_errors) {
            eprintln!("policy {name}: journal: {error}");
        }
        for halted in executions(report).filter_map(|e| e.halted.as_ref()) {
            eprintln!("policy {name}: {halted}");
        }
    }
}

/// What a report deleted: this run's plan, and deletions resumed from earlier runs.
fn executions<'r>(r: &'r PolicyReport) -> impl Iterator<Item = &'r crate::executor::Execution> {
    r.execution.iter().chain(&r.resumed)
}

/// Reports failures on stderr; the exit code for the reports.
fn finish(reports: &[PolicyReport]) -> u8 {
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
    } else {
        exit::OK
    }
}

/// Locks, lists and runs each policy (with its reviewed delete set for `apply`), then prints
/// what happened.
fn run_policies(
    config: &Config,
    all_policies: &[Policy],
    policies: Vec<(Policy, Option<ReviewedSet>)>,
    reports: Vec<PolicyReport<'static>>,
    command: &'static str,
    settings: RunArgs,
    out: &mut dyn Write,
) -> Outcome {
    let mut reports: Vec<PolicyReport> = reports;
    let journal = open_journal(config)?;
    let (reviewed, policies): (Vec<_>, Vec<_>) = policies
        .into_iter()
        .map(|(policy, reviewed)| ((policy.name.clone(), reviewed), policy))
        .unzip();
    let (policies, _locks, skipped) = lock_policies(&journal, policies);
    reports.extend(skipped);
    let started_at = Timestamp::now();
    let providers = open_providers(&policies, config);
    let listings = list_policies(&providers);
    // From here on Ctrl-C lets the deletions in flight finish and sends no more.
    let stop = executor::Stop::default();
    stop_on_interrupt(&stop);
    let text = settings.format == Format::Text;
    if text {
        render::run_text(out, &reports, settings.summary).map_err(write_failure)?;
    }
    for ((policy, provider), listing) in policies.iter().zip(&providers).zip(&listings) {
        if stop.is_set() {
            let mut report = PolicyReport::new(policy);
            report.skipped =
                Some("interrupted before this policy ran: nothing was planned or deleted".into());
            if text {
                render::run_text(out, std::slice::from_ref(&report), settings.summary)
                    .map_err(write_failure)?;
            }
            reports.push(report);
            continue;
        }
        let reviewed = reviewed
            .iter()
            .find(|(name, _)| name == &policy.name)
            .and_then(|(_, set)| set.as_deref());
        let (sender, mut printed_live) = tokio::sync::mpsc::unbounded_channel();
        let options = runner::Options {
            command,
            dry_run: runner::dry_run_reason(policy, settings.dry_run, config),
            accept_listing_drop: settings.accept_listing_drop,
            accept_max_delete: settings.accept_max_delete,
            approve: settings.approve,
            policies: all_policies,
            reviewed,
            started_at,
            now: Timestamp::now(),
            stop: stop.clone(),
            watch: text.then(|| {
                Arc::new(LivePrinter {
                    sender,
                    summary: settings.summary,
                    state: Mutex::default(),
                }) as Arc<dyn runner::Watch>
            }),
            journal_keep: config.journal_keep,
        };
        let tz = runner::zone(policy, Some(config));
        // The run and the printing of what it reports as it happens, side by side.
        let (report, written) = block_on(async {
            let run = async {
                let report =
                    runner::run_policy(&journal, policy, &tz, provider, listing, &options).await;
                drop(options);
                report
            };
            let print = async {
                let mut result = Ok(());
                while let Some(text) = printed_live.recv().await {
                    if result.is_ok() {
                        result = out.write_all(text.as_bytes()).and_then(|_| out.flush());
                    }
                }
                result
            };
            tokio::join!(run, print)
        });
        if text {
            written
                .and_then(|_| match report.plan {
                    Some(_) => render::run_tail(out, &report),
                    None => render::run_text(out, std::slice::from_ref(&report), settings.summary),
                })
                .map_err(write_failure)?;
        }
        reports.push(report);
    }
    if !text {
        render::json(out, &reports).map_err(write_failure)?;
    }
    let code = finish(&reports);
    Ok(match stop.is_set() && code != exit::JOURNAL {
        true => exit::INTERRUPTED,
        false => code,
    })
}

/// `run`'s text output as it happens: each policy's head once its plan is made, then every
/// deletion when it is recorded (deletions resumed from an earlier run, which settle before
/// the plan, right after the head).
struct LivePrinter {
    sender: tokio::sync::mpsc::UnboundedSender<String>,
    /// `--summary`: the head only.
    summary: bool,
    /// Whether the head is out, and the resumed lines waiting for it.
    state: Mutex<(bool, Vec<String>)>,
}

impl runner::Watch for LivePrinter {
    fn planned(&self, report: &PolicyReport) {
        let mut head = Vec::new();
        // Writing into a Vec cannot fail.
        let _ = render::run_head(&mut head, report);
        let mut text = String::from_utf8_lossy(&head).into_owned();
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.0 = true;
        for line in state.1.drain(..) {
            text.push_str(&line);
        }
        let _ = self.sender.send(text);
    }

    fn settled(&self, backup: &Backup, outcome: &executor::Settled) {
        if self.summary {
            return;
        }
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let line = render::settled_line(&backup.id, outcome, !state.0) + "\n";
        match state.0 {
            true => {
                let _ = self.sender.send(line);
            }
            false => state.1.push(line),
        }
    }
}

/// On Ctrl-C (SIGINT), `stop` is set: the deletions in flight finish and are recorded, no more
/// are sent, and the run prints what it did. A second Ctrl-C quits at once (the next run
/// settles what was in flight from the journal).
fn stop_on_interrupt(stop: &executor::Stop) {
    let stop = stop.clone();
    runtime().spawn(async move {
        if tokio::signal::ctrl_c().await.is_err() {
            return;
        }
        stop.set();
        eprintln!(
            "interrupted: finishing the deletions in flight and sending no more (Ctrl-C again quits at once)"
        );
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!(
                "interrupted again: quitting; the next run settles the deletions that were in flight"
            );
            std::process::exit(i32::from(exit::INTERRUPTED));
        }
    });
}

/// The `(group, id)` pairs a reviewed plan deletes.
type ReviewedSet = Vec<(String, String)>;

fn run(cli: &Cli, names: &[String], settings: RunArgs, out: &mut dyn Write) -> Outcome {
    let config = require_config(cli, "")?;
    let all_policies = config_policies(&config)?;
    let policies = select_policies(all_policies.clone(), names)?;
    let policies = policies.into_iter().map(|p| (p, None)).collect();
    run_policies(
        &config,
        &all_policies,
        policies,
        Vec::new(),
        "run",
        settings,
        out,
    )
}

fn apply(cli: &Cli, file: &Path, settings: RunArgs, out: &mut dyn Write) -> Outcome {
    let reviewed = plan::file::read(file).map_err(|e| Failure::new(exit::INVALID, e))?;
    let config = require_config(cli, "")?;
    let policies = config_policies(&config)?;
    let mut runnable = Vec::new();
    let mut reports = Vec::new();
    for entry in reviewed {
        let Some(policy) = policies.iter().find(|p| p.name == entry.name) else {
            let known: Vec<&str> = policies.iter().map(|p| p.name.as_str()).collect();
            reports.push(PolicyReport {
                name: entry.name.clone(),
                refused: vec![format!(
                    "policy {} of the plan is no longer among the config's policies{}",
                    entry.name,
                    policy::diag::did_you_mean(&entry.name, known.iter().copied())
                )],
                ..Default::default()
            });
            continue;
        };
        let mut report = PolicyReport::new(policy);
        if policy.fingerprint != entry.fingerprint {
            let what = match &entry.as_written {
                Some(before) => {
                    let mut changes = policy::definition::changes(before, &policy.as_written);
                    if changes.len() > 10 {
                        let more = changes.len() - 9;
                        changes.truncate(9);
                        changes.push(format!("{more} more"));
                    }
                    format!(": {}", changes.join(", "))
                }
                None => String::new(),
            };
            report.refused.push(format!(
                "policy {} in {} changed since the plan was made{}{what}; make and review a new plan",
                policy.name,
                policy.file.display(),
                entry
                    .evaluated_at
                    .map(|at| format!(" (evaluated at {at})"))
                    .unwrap_or_default()
            ));
            journal_refusal(&config, policy, &mut report);
            reports.push(report);
        } else if let Some(why) = entry.not_applicable {
            report.skipped = Some(format!("nothing to apply: {why}"));
            reports.push(report);
        } else if entry.deletions.is_empty() {
            report.skipped = Some("nothing to apply: the reviewed plan deletes nothing".into());
            reports.push(report);
        } else {
            runnable.push((policy.clone(), Some(entry.deletions)));
        }
    }
    run_policies(
        &config, &policies, runnable, reports, "apply", settings, out,
    )
}

/// Records an `apply` refused before anything was listed (the policy changed) as a run of
/// the policy ending `refused`, with the reason.
fn journal_refusal(config: &Config, policy: &Policy, report: &mut PolicyReport) {
    let message = report.refused.join("; ");
    let recorded = open_journal(config)
        .map_err(|f| f.messages.join("; "))
        .and_then(|journal| {
            let start = RunStart {
                policy,
                command: "apply",
                dry_run: None,
                started_at: Timestamp::now(),
                overrides: Vec::new(),
            };
            let run = journal.begin_run(&start).map_err(|e| e.to_string())?;
            let end = RunEnd {
                outcome: "refused",
                message: Some(&message),
            };
            journal.finish_run(run, &end).map_err(|e| e.to_string())?;
            Ok(run)
        });
    match recorded {
        Ok(run) => {
            report.run_id = Some(run);
            report.outcome = Some("refused");
        }
        Err(e) => report.journal_error = Some(e),
    }
}

/// Records a person's approval of each named policy's current version in the journal.
fn approve(cli: &Cli, names: &[String], out: &mut dyn Write) -> Outcome {
    let config = require_config(cli, "")?;
    let policies = select_policies(config_policies(&config)?, names)?;
    let journal = open_journal(&config)?;
    let by = std::env::var("SUDO_USER")
        .or_else(|_| std::env::var("USER"))
        .ok();
    for policy in &policies {
        let fingerprint = &policy.fingerprint[..policy.fingerprint.len().min(12)];
        let new = journal
            .approve(policy, by.as_deref())
            .map_err(|e| Failure::new(exit::JOURNAL, e.to_string()))?;
        let already = if new {
            ""
        } else {
            " (it was approved already)"
        };
        writeln!(
            out,
            "approved policy {} as in {} (fingerprint {fingerprint}){already}: its runs may delete more than guard.unapproved_max_delete; a change to the policy needs a new approval",
            policy.name,
            policy.file.display()
        )
        .map_err(write_failure)?;
    }
    Ok(exit::OK)
}

/// `--since`/`--until`: RFC 3339, or a duration before now.
fn when(flag: &str, text: &str) -> Result<Timestamp, Failure> {
    if let Ok(at) = text.parse::<Timestamp>() {
        return Ok(at);
    }
    CalendarDuration::parse(text)
        .map(|d| d.before(Timestamp::now(), &TimeZone::UTC))
        .map_err(|e| {
            Failure::new(
                exit::USAGE,
                format!("{flag} {text}: {e}; write RFC 3339 (2026-11-23T03:30:00Z) or a duration ago (7d, 12h)"),
            )
        })
}

/// `journal compact`: prunes every policy of the journal by `journal_keep`, then vacuums.
fn compact_journal(cli: &Cli, keep: Option<&str>, out: &mut dyn Write) -> Outcome {
    let config = require_config(cli, "")?;
    let keep = match keep {
        Some(text) => Some(
            CalendarDuration::parse(text)
                .map_err(|e| Failure::new(exit::USAGE, format!("--keep {text}: {e}")))?,
        ),
        None => config.journal_keep,
    };
    let journal = open_journal(&config)?;
    let now = Timestamp::now();
    let mut forgotten = 0;
    if let Some(keep) = keep {
        let tz = config.default_timezone.clone().unwrap_or(TimeZone::UTC);
        let cutoff = keep.before(now, &tz);
        for name in journal.policies().map_err(journal_failure)? {
            forgotten += journal.prune(&name, cutoff).map_err(journal_failure)?;
        }
    }
    let (before, after) = journal.vacuum().map_err(journal_failure)?;
    let kept = match keep {
        Some(keep) => format!("runs older than {keep} forgotten: {forgotten}"),
        None => "journal_keep: forever, no run forgotten".to_string(),
    };
    writeln!(
        out,
        "journal {}: {kept}; {} before, {} after",
        journal.path().display(),
        render::bytes(before),
        render::bytes(after)
    )
    .map_err(write_failure)?;
    Ok(exit::OK)
}

fn history(cli: &Cli, filter: &HistoryFilter, format: Format, out: &mut dyn Write) -> Outcome {
    for outcome in &filter.outcomes {
        if !crate::journal::RUN_OUTCOMES.contains(&outcome.as_str()) {
            let hint =
                policy::diag::did_you_mean(outcome, crate::journal::RUN_OUTCOMES.iter().copied());
            return Err(Failure::new(
                exit::INVALID,
                format!(
                    "--outcome {outcome}: no such outcome{hint} (outcomes: {})",
                    crate::journal::RUN_OUTCOMES.join(", ")
                ),
            ));
        }
    }
    let config = require_config(cli, "")?;
    let journal = Journal::open_read_only(&config.state_dir).map_err(journal_failure)?;
    // A name is known when the config has the policy, or the journal has runs of it (a
    // policy removed since).
    let loaded = policy::load_policies(&config.policies).0;
    // Text shows times in each policy's zone, like `plan` (UTC for a policy removed since).
    let zones: std::collections::HashMap<String, TimeZone> = loaded
        .iter()
        .map(|p| (p.name.clone(), runner::zone(p, Some(&config))))
        .collect();
    let mut known: Vec<String> = loaded.into_iter().map(|p| p.name).collect();
    if let Some(journal) = &journal {
        known.extend(journal.policies().map_err(journal_failure)?);
    }
    known.sort();
    known.dedup();
    for name in &filter.policies {
        if !known.contains(name) {
            let hint = policy::diag::did_you_mean(name, known.iter().map(String::as_str));
            return Err(Failure::new(
                exit::INVALID,
                format!(
                    "no policy named `{name}`{hint}, neither in the config nor in the journal (policies: {})",
                    known.join(", ")
                ),
            ));
        }
    }
    let Some(journal) = journal else {
        return match format {
            Format::Text => {
                writeln!(
                    out,
                    "no journal yet in {} (nothing has run)",
                    config.state_dir.display()
                )
                .map_err(write_failure)?;
                Ok(exit::OK)
            }
            Format::Json => {
                writeln!(out, "{{\"runs\": []}}").map_err(write_failure)?;
                Ok(exit::OK)
            }
        };
    };
    let runs = journal.history(filter).map_err(journal_failure)?;
    let decisions = match filter.run {
        Some(run) => Some(journal.decisions(run).map_err(journal_failure)?),
        None => None,
    };
    match format {
        Format::Text => render::history_text(out, &runs, decisions.as_deref(), &|policy| {
            zones.get(policy).cloned().unwrap_or(TimeZone::UTC)
        }),
        Format::Json => render::history_json(out, &runs, decisions.as_deref()),
    }
    .map_err(write_failure)?;
    Ok(exit::OK)
}

fn purge_history(cli: &Cli, name: &str, dump: bool, yes: bool, out: &mut dyn Write) -> Outcome {
    let config = require_config(cli, "")?;
    let docspace: Vec<&str> = config
        .accounts
        .values()
        .filter(|a| a.kind == policy::select::ProviderKind::Docspace)
        .map(|a| a.name.as_str())
        .collect();
    let account = config
        .accounts
        .get(name)
        .filter(|a| a.kind == policy::select::ProviderKind::Docspace)
        .ok_or_else(|| {
            let hint = policy::diag::did_you_mean(name, docspace.iter().copied());
            Failure::new(
                exit::INVALID,
                format!(
                    "no onlyoffice-docspace account `{name}` in {}{hint} (docspace accounts: {})",
                    config.file.display(),
                    if docspace.is_empty() {
                        "none".to_string()
                    } else {
                        docspace.join(", ")
                    }
                ),
            )
        })?;
    let policy::AccountSettings::Docspace { base_url, auth } = &account.settings else {
        unreachable!("the account kind was checked");
    };
    let provider = Registry::new()
        .http(
            account,
            || provider::docspace::authorization(auth),
            provider::docspace::HINT,
        )
        .and_then(|http| {
            provider::docspace::DocspaceProvider::new(http, base_url, &Default::default())
        })
        .map_err(|e| Failure::new(exit::LISTING_FAILED, e.to_string()))?;
    let which = if dump {
        "dump history"
    } else {
        "backup history"
    };
    let history = block_on(provider.history(dump))
        .map_err(|e| Failure::new(exit::LISTING_FAILED, e.to_string()))?;
    writeln!(out, "{which} of account {name} ({base_url}):").map_err(write_failure)?;
    render::listing_text(out, &history).map_err(write_failure)?;
    if history.is_empty() {
        writeln!(out, "nothing to delete").map_err(write_failure)?;
        return Ok(exit::OK);
    }
    if !yes || config.dry_run {
        let why = if yes {
            format!("dry_run: true in {}", config.file.display())
        } else {
            "add --yes to delete all of them".to_string()
        };
        writeln!(out, "dry run: nothing deleted ({why})").map_err(write_failure)?;
        return Ok(exit::OK);
    }
    block_on(provider.purge_history(dump))
        .map_err(|e| Failure::new(exit::DELETE_FAILED, e.to_string()))?;
    let left = block_on(provider.history(dump)).map_err(|e| {
        Failure::new(
            exit::LISTING_FAILED,
            format!("deleted, but the re-listing failed: {e}"),
        )
    })?;
    writeln!(
        out,
        "deleted the {which}: {} backups before, {} listed now",
        history.len(),
        left.len()
    )
    .map_err(write_failure)?;
    Ok(if left.is_empty() {
        exit::OK
    } else {
        exit::DELETE_FAILED
    })
}
