//! `retentiond hold`: keep backups whatever the policies say (an incident, a legal hold),
//! recorded in the journal (on PostgreSQL, the whole fleet's at once); list and release them.

use super::shared::{
    Failure, Outcome, config_policies, journal_failure, open_journal, require_config, write_failure,
};
use super::{Cli, Format};
use crate::exit;
use crate::journal::holds::{Hold, NewHold, Scope};
use crate::journal::{Journal, JournalError};
use crate::policy::{self, Config, Policy};
use crate::retention::CalendarDuration;
use crate::visible::Visible;
use jiff::Timestamp;
use jiff::tz::TimeZone;
use std::io::Write;

/// What `hold add` was told.
pub(super) struct AddArgs<'a> {
    pub(super) backups: &'a [String],
    pub(super) policy: Option<&'a str>,
    pub(super) account: Option<&'a str>,
    pub(super) reason: &'a str,
    pub(super) until: Option<&'a str>,
    pub(super) period: Option<&'a str>,
    pub(super) ticket: Option<&'a str>,
    pub(super) by: Option<&'a str>,
}

/// Who is acting (`--by`, `$SUDO_USER`, `$USER`), or `unknown`.
fn who(by: Option<&str>) -> String {
    super::shared::who(by).unwrap_or_else(|| "unknown".to_string())
}

fn usage(message: String) -> Failure {
    Failure::new(exit::USAGE, message)
}

/// A reason that says something: refused when empty.
fn reason<'a>(flag: &str, text: &'a str) -> Result<&'a str, Failure> {
    match text.trim() {
        "" => Err(usage(format!(
            "{flag} is empty: say why (a ticket, an incident, a legal matter), for whoever reads the journal later"
        ))),
        text => Ok(text),
    }
}

/// The scope `--policy` or `--account` names, checked against the config.
fn scope(config: &Config, policies: &[Policy], args: &AddArgs) -> Result<Scope, Failure> {
    match (args.policy, args.account) {
        (Some(name), None) => match policies.iter().any(|p| p.name == name) {
            true => Ok(Scope::Policy(name.to_string())),
            false => {
                let hint = policy::diag::did_you_mean(name, policies.iter().map(|p| p.name.as_str()));
                Err(Failure::new(
                    exit::INVALID,
                    format!("--policy {name}: the config has no policy of that name{hint}"),
                ))
            }
        },
        (None, Some(name)) => match config.accounts.contains_key(name) {
            true => Ok(Scope::Account(name.to_string())),
            false => {
                let hint = policy::diag::did_you_mean(name, config.accounts.keys().map(String::as_str));
                Err(Failure::new(
                    exit::INVALID,
                    format!("--account {name}: the config has no account of that name{hint}"),
                ))
            }
        },
        _ => Err(usage(
            "say whose backups these are: --policy NAME (one policy) or --account NAME (every policy of the account)".into(),
        )),
    }
}

/// `--until WHEN` or `--for DURATION`: when the hold lapses, in the future.
fn until(args: &AddArgs, now: Timestamp) -> Result<Option<Timestamp>, Failure> {
    let at = match (args.until, args.period) {
        (None, None) => return Ok(None),
        (Some(text), _) => text.parse::<Timestamp>().map_err(|e| {
            usage(format!(
                "--until {text}: {e}; write RFC 3339, e.g. 2027-01-31T00:00:00Z (or use --for 30d)"
            ))
        })?,
        (None, Some(text)) => {
            let d = CalendarDuration::parse(text)
                .map_err(|e| usage(format!("--for {text}: {e}; e.g. 7d, 12h, 6mo")))?;
            if d.is_zero() {
                return Err(usage(format!(
                    "--for {text}: a hold for no time holds nothing; leave --for out to hold until released"
                )));
            }
            d.after(now, &TimeZone::UTC)
        }
    };
    if at <= now {
        return Err(usage(format!(
            "--until {at} is not in the future: the hold would lapse at once"
        )));
    }
    Ok(Some(at))
}

/// The policies a hold of `scope` is on.
fn covered<'p>(scope: &Scope, policies: &'p [Policy]) -> Vec<&'p Policy> {
    policies
        .iter()
        .filter(|p| match scope {
            Scope::Policy(name) => p.name == *name,
            Scope::Account(name) => p.account == *name,
        })
        .collect()
}

/// Why a hold on `id` may hold nothing: none of its policies' last listed runs had the id.
/// `None` when one did, or when none of them has run yet (nothing to check against).
fn not_listed(
    journal: &Journal,
    scope: &Scope,
    id: &str,
    policies: &[Policy],
) -> Result<Option<String>, JournalError> {
    let mut runs = Vec::new();
    for p in covered(scope, policies) {
        match journal.last_listing_has(&p.name, &[id])? {
            Some((_, found)) if !found.is_empty() => return Ok(None),
            Some((run, _)) => runs.push(format!("{} (run #{run})", p.name)),
            None => {}
        }
    }
    Ok((!runs.is_empty()).then(|| {
        format!(
            "backup {} is not in the last listing of {}: is the id right? (`retentiond list` shows the ids)",
            Visible(id),
            runs.join(", ")
        )
    }))
}

pub(super) fn add(cli: &Cli, args: &AddArgs, out: &mut dyn Write) -> Outcome {
    let why = reason("--reason", args.reason)?;
    let config = require_config(cli, "")?;
    let policies = config_policies(&config)?;
    let scope = scope(&config, &policies, args)?;
    // Whole seconds: the journal and the plans show them.
    let now = Timestamp::from_second(Timestamp::now().as_second()).unwrap_or(Timestamp::now());
    let until = until(args, now)?;
    let mut ids: Vec<String> = Vec::new();
    for id in args.backups {
        if id.trim().is_empty() {
            return Err(usage("a backup id is empty".into()));
        }
        if !ids.contains(id) {
            ids.push(id.clone());
        }
    }
    let journal = open_journal(&config)?;
    let by = who(args.by);
    let new = NewHold {
        scope: &scope,
        reason: why,
        ticket: args.ticket.map(str::trim).filter(|t| !t.is_empty()),
        by: &by,
        at: now,
        until,
    };
    let added = journal.add_holds(&new, &ids).map_err(journal_failure)?;
    for h in &added {
        writeln!(
            out,
            "hold #{} on backup {} of {}: {}",
            h.id,
            Visible(&h.backup_id),
            h.scope,
            Visible(&h.describe(|at| at.to_string()))
        )
        .map_err(write_failure)?;
        if let Some(warning) =
            not_listed(&journal, &h.scope, &h.backup_id, &policies).map_err(journal_failure)?
        {
            eprintln!("warning: hold #{}: {warning}", h.id);
        }
    }
    Ok(exit::OK)
}

/// A hold's state at `now`, as `hold list` says it.
fn state(h: &Hold, now: Timestamp) -> String {
    match (&h.released, h.until) {
        (Some(r), _) => format!(
            "released by {} at {}: {}",
            Visible(&r.by),
            r.at,
            Visible(&r.reason)
        ),
        (None, Some(until)) if until <= now => format!("lapsed at {until}"),
        (None, Some(until)) => format!("active until {until}"),
        (None, None) => "active until released".to_string(),
    }
}

pub(super) fn list(cli: &Cli, all: bool, format: Format, out: &mut dyn Write) -> Outcome {
    let config = require_config(cli, "")?;
    let journal = Journal::open_config_read_only(&config).map_err(journal_failure)?;
    let holds = match &journal {
        Some(journal) => journal.holds(all).map_err(journal_failure)?,
        None => Vec::new(),
    };
    let policies = policy::load_policies(&config.policies).0;
    let now = Timestamp::now();
    let mut shown = Vec::new();
    for h in &holds {
        let warning = match (&journal, h.active(now)) {
            (Some(journal), true) => {
                not_listed(journal, &h.scope, &h.backup_id, &policies).map_err(journal_failure)?
            }
            _ => None,
        };
        let warning = match covered(&h.scope, &policies).is_empty() {
            true if h.active(now) => Some(format!(
                "the config has no {} now: the hold keeps nothing",
                h.scope
            )),
            _ => warning,
        };
        shown.push((h, state(h, now), warning));
    }
    match format {
        Format::Json => {
            let items: Vec<serde_json::Value> = shown
                .iter()
                .map(|(h, state, warning)| {
                    let mut v = serde_json::to_value(h).unwrap_or_default();
                    v["active"] = h.active(now).into();
                    v["state"] = state.as_str().into();
                    if let Some(w) = warning {
                        v["warning"] = w.as_str().into();
                    }
                    v
                })
                .collect();
            serde_json::to_writer_pretty(&mut *out, &serde_json::json!({ "holds": items }))
                .map_err(|e| write_failure(e.into()))?;
            writeln!(out).map_err(write_failure)?;
        }
        Format::Text if shown.is_empty() => {
            let which = if all { "" } else { " (not released)" };
            writeln!(out, "no holds{which} in the journal").map_err(write_failure)?;
        }
        Format::Text => {
            for (h, state, warning) in &shown {
                let ticket = h
                    .ticket
                    .as_deref()
                    .map(|t| format!(" [{}]", Visible(t)))
                    .unwrap_or_default();
                writeln!(
                    out,
                    "#{}  {}  backup {}  {}{ticket}  (by {} at {}; {state})",
                    h.id,
                    h.scope,
                    Visible(&h.backup_id),
                    Visible(&h.reason),
                    Visible(&h.by),
                    h.at
                )
                .map_err(write_failure)?;
                if let Some(w) = warning {
                    writeln!(out, "    WARNING: {w}").map_err(write_failure)?;
                }
            }
        }
    }
    Ok(exit::OK)
}

pub(super) fn release(
    cli: &Cli,
    id: i64,
    why: &str,
    by: Option<&str>,
    out: &mut dyn Write,
) -> Outcome {
    let why = reason("--reason", why)?;
    let config = require_config(cli, "")?;
    let journal = open_journal(&config)?;
    let by = who(by);
    let held = journal.release_hold(id, &by, why).map_err(|e| {
        let code = match e.0.starts_with("there is no hold") || e.0.contains("was released already")
        {
            true => exit::INVALID,
            false => exit::JOURNAL,
        };
        Failure::new(code, e.to_string())
    })?;
    writeln!(
        out,
        "released hold #{} on backup {} of {} (by {by}: {}); the next run of its policies may delete the backup",
        held.id,
        Visible(&held.backup_id),
        held.scope,
        Visible(why)
    )
    .map_err(write_failure)?;
    Ok(exit::OK)
}
