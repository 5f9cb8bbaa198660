//! The command line: parses arguments, loads files, calls the planner and executor, prints.
//! Thin by design; every decision lives in the modules it calls.

use crate::executor::{self, Execution};
use crate::model::{Backup, Listing};
use crate::plan;
use crate::policy::{self, Config, Diagnostic, Mode, Policy};
use crate::provider::{self, Provider, ProviderError, Registry};
use crate::render::{self, PolicyReport};
use clap::{Parser, Subcommand, ValueEnum};
use jiff::Timestamp;
use jiff::tz::TimeZone;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, OnceLock};

/// Exit codes; when several apply, the first of 3, 4, 5 in this order wins.
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
}

const DEFAULT_CONFIG: &str = "/etc/retentiond/retentiond.yaml";

const EXIT_CODES: &str = "Exit codes:
  0  success
  1  invalid config, policy or listing file, or unknown policy name
  2  command-line usage error
  3  a listing failed; nothing was deleted for that policy
  4  some deletions failed
  5  a guard blocked a policy; nothing was deleted for it
When several apply, 3 wins over 4, and 4 over 5.";

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

#[derive(Clone, Copy, Debug, ValueEnum)]
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
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
    /// Evaluate now and delete what policies in `mode: enforce` no longer keep
    Run {
        /// Only this policy (repeatable)
        #[arg(long, value_name = "NAME")]
        policy: Vec<String>,
        /// Delete nothing, whatever the policies' mode
        #[arg(long)]
        dry_run: bool,
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
    /// Print the JSON Schema of policy files
    Schema,
    /// Operator commands for ONLYOFFICE DocSpace portals (never used by policies)
    Docspace {
        #[command(subcommand)]
        command: DocspaceCommand,
    },
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
        Command::Validate { paths } => validate(cli, paths, &mut out),
        Command::List { policy, format } => list(cli, policy, *format, &mut out),
        Command::Plan {
            policy,
            policies,
            listing,
            now,
            format,
        } => {
            let args = PlanArgs {
                names: policy,
                policies: policies.as_deref(),
                listing: listing.as_deref(),
                now: now.as_deref(),
                format: *format,
            };
            plan_command(cli, args, &mut out)
        }
        Command::Run {
            policy,
            dry_run,
            format,
        } => run(cli, policy, *dry_run, *format, &mut out),
        Command::Docspace {
            command: DocspaceCommand::PurgeHistory { account, dump, yes },
        } => purge_history(cli, account, *dump, *yes, &mut out),
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

fn zone(policy: &Policy, config: Option<&Config>) -> TimeZone {
    policy
        .timezone
        .clone()
        .or_else(|| config.and_then(|c| c.default_timezone.clone()))
        .unwrap_or(TimeZone::UTC)
}

/// Runs provider calls: one runtime for the process, made on first use.
fn block_on<F: std::future::Future>(future: F) -> F::Output {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("the async runtime starts")
        })
        .block_on(future)
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
            registry.open(account, policy)
        })
        .collect()
}

/// Every policy's listing, fetched concurrently.
fn list_policies(providers: &[Opened]) -> Vec<Result<Vec<Backup>, ProviderError>> {
    block_on(provider::list_all(providers))
}

fn validate(cli: &Cli, paths: &[PathBuf], out: &mut dyn Write) -> Outcome {
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
    }
    if !errors.is_empty() {
        return Err(Failure::invalid(errors));
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
            (Ok(backups), Format::Text) => {
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
    format: Format,
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
    let config = match (&cli.config, offline) {
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
    let policies = select_policies(policies, args.names)?;
    let saved = match args.listing {
        Some(path) => Some(Listing::read(path).map_err(|e| Failure::new(exit::INVALID, e))?),
        None => None,
    };
    let listings: Vec<Result<Vec<Backup>, ProviderError>> = match (&saved, &config) {
        (Some(_), _) => policies.iter().map(|_| Ok(Vec::new())).collect(),
        (None, Some(config)) => list_policies(&open_providers(&policies, config)),
        (None, None) => unreachable!("a config is loaded unless --listing is given"),
    };
    let mut reports = Vec::new();
    for (policy, listing) in policies.iter().zip(&listings) {
        let backups = match (&saved, listing) {
            (Some(saved), _) => Ok(saved.backups.as_slice()),
            (None, Ok(backups)) => Ok(backups.as_slice()),
            (None, Err(e)) => Err(e.to_string()),
        };
        reports.push(report(policy, backups, now, zone(policy, config.as_ref())));
    }
    match args.format {
        Format::Text => render::plan_text(out, &reports),
        Format::Json => render::json(out, &reports),
    }
    .map_err(write_failure)?;
    Ok(finish(&reports))
}

fn report<'a>(
    policy: &Policy,
    backups: Result<&'a [Backup], String>,
    now: Timestamp,
    tz: TimeZone,
) -> PolicyReport<'a> {
    let (plan, error) = match backups {
        Ok(backups) => (Some(plan::plan(policy, backups, now, &tz)), None),
        Err(e) => (None, Some(e)),
    };
    PolicyReport {
        name: policy.name.clone(),
        account: policy.account.clone(),
        plan,
        error,
        execution: None,
        dry_run: None,
    }
}

/// Listing errors and failed deletions also go to stderr, whatever the output format.
fn report_failures(reports: &[PolicyReport]) {
    for report in reports {
        if let Some(error) = &report.error {
            eprintln!("policy {}: {error}; nothing was deleted", report.name);
        }
        for failed in report.execution.iter().flat_map(|e| &e.failed) {
            eprintln!(
                "policy {}: FAILED to delete {}: {}",
                report.name, failed.id, failed.error
            );
        }
    }
}

/// Reports failures on stderr; the exit code for the reports.
fn finish(reports: &[PolicyReport]) -> u8 {
    report_failures(reports);
    let any = |f: &dyn Fn(&PolicyReport) -> bool| reports.iter().any(f);
    if any(&|r| r.error.is_some()) {
        exit::LISTING_FAILED
    } else if any(&|r| r.execution.as_ref().is_some_and(|e| !e.failed.is_empty())) {
        exit::DELETE_FAILED
    } else if any(&|r| r.plan.as_ref().is_some_and(|p| p.blocked.is_some())) {
        exit::BLOCKED
    } else {
        exit::OK
    }
}

/// Why a policy may not delete in this run, if it may not: the two-yeses rule.
fn dry_run_reason(policy: &Policy, flag: bool, config: &Config) -> Option<String> {
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

fn run(cli: &Cli, names: &[String], dry_run: bool, format: Format, out: &mut dyn Write) -> Outcome {
    let config = require_config(cli, "")?;
    let policies = select_policies(config_policies(&config)?, names)?;
    let now = Timestamp::now();
    let providers = open_providers(&policies, &config);
    let listings = list_policies(&providers);
    let mut reports = Vec::new();
    for ((policy, provider), listing) in policies.iter().zip(&providers).zip(&listings) {
        let backups = listing
            .as_ref()
            .map(Vec::as_slice)
            .map_err(ToString::to_string);
        let mut report = report(policy, backups, now, zone(policy, Some(&config)));
        if let (Some(plan), Ok(provider)) = (&report.plan, provider) {
            report.dry_run = dry_run_reason(policy, dry_run, &config);
            if report.dry_run.is_none() {
                let execution: Execution = block_on(executor::execute(plan, provider.clone()));
                report.execution = Some(execution);
            }
        }
        reports.push(report);
    }
    match format {
        Format::Text => render::run_text(out, &reports),
        Format::Json => render::json(out, &reports),
    }
    .map_err(write_failure)?;
    Ok(finish(&reports))
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
