//! The command line: the clap definitions and the dispatch to one file per command
//! (`validate.rs`, `plan.rs`, `run.rs`, ...), with what they share in `shared.rs`. Thin by
//! design; every decision lives in the modules the commands call.

mod apply;
mod approve;
mod daemon;
mod diff;
mod docs;
mod docspace;
mod history;
mod hold;
mod journal;
mod list;
mod notify;
mod plan;
mod run;
mod schema;
mod shared;
mod simulate;
mod status;
mod terminal;
mod validate;

use crate::journal::HistoryFilter;
use apply::apply;
use approve::approve;
use clap::{Args, Parser, Subcommand, ValueEnum};
use docspace::purge_history;
use history::{history, when};
use journal::compact_journal;
use list::list;
use plan::{PlanArgs, plan_command};
use run::run;
use shared::{Outcome, write_failure};
use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use terminal::ColorChoice;
use validate::validate;

const EXIT_CODES: &str = "Exit codes:
  0  success
  1  invalid config, policy or listing file, or unknown policy name
  2  command-line usage error
  3  a listing failed; nothing was deleted for that policy
  4  some deletions failed
  5  a guard blocked a policy; nothing was deleted for it
  6  apply: the reviewed plan no longer holds; nothing was deleted for that policy
  7  the journal could not be used (state_dir, the PostgreSQL database, a run lock that
     cannot be taken or was lost mid-run), or another process is running the policy;
     nothing was deleted for it
  8  diff: the change would delete backups that the base keeps
  9  a policy selected no backup at all (an empty listing, or a select that matches none
     of it): nothing was kept or deleted
  130  run/apply interrupted by Ctrl-C: the deletions in flight finished, no more were sent
  141  standard output was closed by its reader (plan | head); nothing is printed
When several apply, the first of 7, 130, 3, 6, 4, 5, 9 wins.";

/// Where the options every command takes are listed in each command's help, apart from its
/// own.
const GLOBAL: &str = "Global options";

#[derive(Parser)]
#[command(
    name = "retentiond",
    version,
    about = "Declarative retention policies for backups: plan what each policy keeps and deletes, with reasons, and apply it",
    after_help = EXIT_CODES
)]
struct Cli {
    /// Daemon config [default: /etc/retentiond/retentiond.yaml]
    #[arg(long, global = true, env = "RETENTIOND_CONFIG", value_name = "PATH", help_heading = GLOBAL)]
    config: Option<PathBuf>,
    /// No progress line and no notes on stderr (warnings and errors still)
    #[arg(long, short, global = true, conflicts_with = "verbose", help_heading = GLOBAL)]
    quiet: bool,
    /// Also a line on stderr for every provider request, with its result and time (list,
    /// plan, diff, run, apply; the daemon follows RUST_LOG)
    #[arg(long, short, global = true, help_heading = GLOBAL)]
    verbose: bool,
    /// Colour in text plans and history
    #[arg(
        long,
        global = true,
        value_enum,
        default_value = "auto",
        value_name = "WHEN",
        help_heading = GLOBAL
    )]
    color: ColorChoice,
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
        #[arg(long, value_name = "NAME", value_hint = clap::ValueHint::Other)]
        policy: Vec<String>,
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
    /// Show what every policy keeps and deletes, and why; never deletes
    Plan {
        /// Only this policy (repeatable)
        #[arg(long, value_name = "NAME", value_hint = clap::ValueHint::Other)]
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
        /// Also draw the plan as an SVG timeline (a row per group, marks by rule)
        #[arg(long, value_name = "FILE")]
        svg: Option<PathBuf>,
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
    /// Compare two versions of the policies on the same listing: what changes in what they
    /// delete (for reviewing a pull request); never deletes
    Diff {
        /// The base: the policy folder as it is at this git revision (e.g. origin/main)
        #[arg(long, value_name = "GIT-REV", conflicts_with = "base_policies")]
        base: Option<String>,
        /// The base: another policy folder or file
        #[arg(long, value_name = "PATH")]
        base_policies: Option<PathBuf>,
        /// The config of the base [default: the config at --base when it is in the git
        /// checkout, else the current config for both sides]
        #[arg(long, value_name = "PATH")]
        base_config: Option<PathBuf>,
        /// The current policies instead of the config's `policies`
        #[arg(long, value_name = "PATH")]
        policies: Option<PathBuf>,
        /// Evaluate both on a saved listing instead of calling providers
        #[arg(long, value_name = "FILE")]
        listing: Option<PathBuf>,
        /// The clock, RFC 3339 (default: the real time)
        #[arg(long, value_name = "RFC3339")]
        now: Option<String>,
        #[arg(long, value_enum, default_value = "text")]
        format: DiffFormat,
    },
    /// Run a policy over time on generated backups, as the daemon would: what it holds, how
    /// old, and when the count settles; never deletes
    Simulate {
        /// The policy to simulate
        #[arg(long, value_name = "NAME", value_hint = clap::ValueHint::Other)]
        policy: String,
        /// Policy files or folder instead of the config's `policies`
        #[arg(long, value_name = "PATH")]
        policies: Option<PathBuf>,
        /// When backups are made, a cron line in the policy's zone [default: the policy's
        /// schedule, else `0 3 * * *`]
        #[arg(long, value_name = "CRON")]
        cadence: Option<String>,
        /// How long to simulate, e.g. `2y`, `18mo`, `6w`
        #[arg(long = "for", value_name = "DURATION", default_value = "2y")]
        period: String,
        /// The start, RFC 3339 (default: now)
        #[arg(long, value_name = "RFC3339")]
        from: Option<String>,
        /// Groups (servers, databases) with their own backups
        #[arg(long, value_name = "N", default_value_t = 1)]
        groups: usize,
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
        /// Also draw what is held and what was deleted as an SVG timeline
        #[arg(long, value_name = "FILE")]
        svg: Option<PathBuf>,
    },
    /// Evaluate now and delete what policies in `mode: enforce` no longer keep
    Run {
        /// Only this policy (repeatable)
        #[arg(long, value_name = "NAME", value_hint = clap::ValueHint::Other)]
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
        /// The policies to approve (their current version, as the config loads them); with
        /// --list, whose approvals to list
        #[arg(required_unless_present_any = ["all", "list"], value_name = "POLICY", value_hint = clap::ValueHint::Other)]
        policies: Vec<String>,
        /// Every policy of the config
        #[arg(long, conflicts_with_all = ["policies", "list"])]
        all: bool,
        /// List the approvals in the journal (who, when, which version of which file), newest
        /// first, instead of approving
        #[arg(long)]
        list: bool,
        /// With --list: text or JSON (`{"approvals": [...]}`)
        #[arg(long, value_enum, default_value = "text", requires = "list")]
        format: Format,
    },
    /// Keep backups whatever the policies say (an incident, a legal hold), until released or
    /// until a time; recorded in the journal, so a fleet on PostgreSQL honours it at once
    Hold {
        #[command(subcommand)]
        command: HoldCommand,
    },
    /// Every policy at a glance: mode, schedule and next run, last run (outcome, host, counts),
    /// blocked or awaiting approval with the command that lifts it, holds; from the config and
    /// the journal (the same on every host of a fleet)
    Status {
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
    /// Notifications (the config's `notify:` section)
    Notify {
        #[command(subcommand)]
        command: NotifyCommand,
    },
    /// Show the journal: runs, newest first, with their deletions, and what happened to holds
    History {
        /// Only this policy (repeatable)
        #[arg(long, value_name = "NAME", value_hint = clap::ValueHint::Other)]
        policy: Vec<String>,
        /// Runs started at or after this: RFC 3339, or a duration ago such as 7d
        #[arg(long, value_name = "WHEN")]
        since: Option<String>,
        /// Runs started at or before this: RFC 3339, or a duration ago
        #[arg(long, value_name = "WHEN")]
        until: Option<String>,
        /// Only runs with this outcome (repeatable): ok, dry-run, blocked, nothing-selected,
        /// refused, listing-failed, deletions-failed, journal-failed, interrupted, stopped,
        /// unfinished
        #[arg(long, value_name = "OUTCOME", value_hint = clap::ValueHint::Other)]
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
    /// Print the man page, or write every page (one per command) into a folder
    Man {
        /// Write retentiond.1 and retentiond-COMMAND.1 for every command here
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
    /// Print the shell completion script
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
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

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum DiffFormat {
    Text,
    Json,
    /// A compact report for a pull-request comment
    Markdown,
}

#[derive(Subcommand)]
enum NotifyCommand {
    /// Send a sample message to one sink (exit 1 when it is unknown or not delivered)
    Test {
        /// The sink's name under notify.sinks
        #[arg(value_name = "SINK", value_hint = clap::ValueHint::Other)]
        sink: String,
    },
}

#[derive(Subcommand)]
enum HoldCommand {
    /// Hold backups: plan, run, apply and the daemon keep them (`held: REASON (by WHO until
    /// WHEN, hold #N)`), and no deletion of them is sent while the hold lasts
    Add {
        /// The backup ids, as `retentiond list` shows them
        #[arg(required = true, value_name = "BACKUP-ID")]
        backups: Vec<String>,
        /// The policy whose backups these are
        #[arg(long, value_name = "NAME", required_unless_present = "account", conflicts_with = "account", value_hint = clap::ValueHint::Other)]
        policy: Option<String>,
        /// Instead of --policy: every policy of this account
        #[arg(long, value_name = "NAME", value_hint = clap::ValueHint::Other)]
        account: Option<String>,
        /// Why (required): the journal keeps it, plans show it
        #[arg(long, value_name = "TEXT")]
        reason: String,
        /// The hold lapses by itself at this time (RFC 3339) [default: held until released]
        #[arg(long, value_name = "WHEN", conflicts_with = "period")]
        until: Option<String>,
        /// The hold lapses by itself after this long, e.g. 30d
        #[arg(long = "for", value_name = "DURATION")]
        period: Option<String>,
        /// A ticket or case reference, shown with the reason
        #[arg(long, value_name = "REF")]
        ticket: Option<String>,
        /// Who holds them [default: $SUDO_USER, else $USER]
        #[arg(long, value_name = "WHO")]
        by: Option<String>,
    },
    /// List the holds not released (active and lapsed), oldest first, with a warning for one
    /// whose backup its policies' last listing did not have
    List {
        /// Also released holds
        #[arg(long)]
        all: bool,
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
    /// Release a hold: its backup is again its policies' to keep or delete
    Release {
        /// The hold's number (`hold list`)
        #[arg(value_name = "HOLD-ID")]
        id: i64,
        /// Why (required): the journal keeps it
        #[arg(long, value_name = "TEXT")]
        reason: String,
        /// Who releases it [default: $SUDO_USER, else $USER]
        #[arg(long, value_name = "WHO")]
        by: Option<String>,
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

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let code = match dispatch(&cli) {
        Ok(code) => code,
        Err(failure) => {
            let stderr = io::stderr();
            let mut err = stderr.lock();
            // Line by line (a diagnostic shows its source line and a caret below it), each
            // with control characters from a provider's answer or a name made visible.
            for line in failure.messages.iter().flat_map(|m| m.lines()) {
                let _ = writeln!(err, "{}", crate::visible::Visible(line));
            }
            failure.code
        }
    };
    ExitCode::from(code)
}

fn dispatch(cli: &Cli) -> Outcome {
    let progress = terminal::progress_allowed(cli.quiet);
    shared::set_terminal(shared::Terminal {
        quiet: cli.quiet,
        progress,
        requests: std::sync::Arc::new(terminal::Requests::new(progress, cli.verbose)),
    });
    crate::render::set_colour(terminal::colour(cli.color));
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
            svg,
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
                svg: svg.as_deref(),
                format: *format,
            };
            plan_command(cli, args, &mut out)
        }
        Command::Diff {
            base,
            base_policies,
            base_config,
            policies,
            listing,
            now,
            format,
        } => {
            let args = diff::DiffArgs {
                base: base.as_deref(),
                base_policies: base_policies.as_deref(),
                base_config: base_config.as_deref(),
                policies: policies.as_deref(),
                listing: listing.as_deref(),
                now: now.as_deref(),
                format: *format,
            };
            diff::diff(cli, args, &mut out)
        }
        Command::Simulate {
            policy,
            policies,
            cadence,
            period,
            from,
            groups,
            format,
            svg,
        } => {
            let args = simulate::SimulateArgs {
                policy,
                policies: policies.as_deref(),
                cadence: cadence.as_deref(),
                period,
                from: from.as_deref(),
                groups: *groups,
                format: *format,
                svg: svg.as_deref(),
            };
            simulate::simulate(cli, args, &mut out)
        }
        Command::Run { policy, settings } => run(cli, policy, *settings, &mut out),
        Command::Apply { plan, settings } => apply(cli, plan, *settings, &mut out),
        Command::Approve {
            policies,
            list: true,
            format,
            ..
        } => approve::list(cli, policies, *format, &mut out),
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
        Command::Hold {
            command:
                HoldCommand::Add {
                    backups,
                    policy,
                    account,
                    reason,
                    until,
                    period,
                    ticket,
                    by,
                },
        } => hold::add(
            cli,
            &hold::AddArgs {
                backups,
                policy: policy.as_deref(),
                account: account.as_deref(),
                reason,
                until: until.as_deref(),
                period: period.as_deref(),
                ticket: ticket.as_deref(),
                by: by.as_deref(),
            },
            &mut out,
        ),
        Command::Status { format } => status::status_command(cli, *format, &mut out),
        Command::Notify {
            command: NotifyCommand::Test { sink },
        } => notify::test(cli, sink, &mut out),
        Command::Hold {
            command: HoldCommand::List { all, format },
        } => hold::list(cli, *all, *format, &mut out),
        Command::Hold {
            command: HoldCommand::Release { id, reason, by },
        } => hold::release(cli, *id, reason, by.as_deref(), &mut out),
        Command::Docspace {
            command: DocspaceCommand::PurgeHistory { account, dump, yes },
        } => purge_history(cli, account, *dump, *yes, &mut out),
        Command::Journal {
            command: JournalCommand::Compact { keep },
        } => compact_journal(cli, keep.as_deref(), &mut out),
        Command::Daemon { log_format } => daemon::daemon(cli, *log_format),
        Command::Schema => schema::schema(&mut out),
        Command::Man { dir } => docs::man(dir.as_deref(), &mut out),
        Command::Completions { shell } => docs::completions(*shell, &mut out),
    }?;
    out.flush().map_err(write_failure)?;
    Ok(code)
}
