//! `retentiond history`: the journal's runs, decisions and deletions.

use super::shared::{Failure, Outcome, journal_failure, require_config, write_failure};
use super::{Cli, Format};
use crate::exit;
use crate::journal::holds::{HoldEvent, Scope};
use crate::journal::{HistoryFilter, Journal};
use crate::policy;
use crate::render;
use crate::retention::CalendarDuration;
use crate::runner;
use jiff::Timestamp;
use jiff::tz::TimeZone;
use std::io::Write;

pub(super) fn history(
    cli: &Cli,
    filter: &HistoryFilter,
    format: Format,
    out: &mut dyn Write,
) -> Outcome {
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
    let journal = Journal::open_config_read_only(&config).map_err(journal_failure)?;
    // A name is known when the config has the policy, or the journal has runs of it (a
    // policy removed since).
    let loaded = policy::load_policies(&config.policies).0;
    // Text shows times in each policy's zone, like `plan` (UTC for a policy removed since).
    let accounts: std::collections::HashMap<String, String> = loaded
        .iter()
        .map(|p| (p.name.clone(), p.account.clone()))
        .collect();
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
    let holds = hold_events(&journal, filter, &accounts)?;
    match format {
        Format::Text => render::history_text(out, &runs, decisions.as_deref(), &|policy| {
            zones.get(policy).cloned().unwrap_or(TimeZone::UTC)
        })
        .and_then(|()| render::hold_events_text(out, &holds)),
        Format::Json => render::history_json(out, &runs, decisions.as_deref(), &holds),
    }
    .map_err(write_failure)?;
    Ok(exit::OK)
}

/// What happened to holds, newest first: on the named policies (and their accounts) when
/// some are named, between `--since` and `--until`. None for one run (`--run`) or for runs of
/// some outcomes (`--outcome`).
fn hold_events(
    journal: &Journal,
    filter: &HistoryFilter,
    accounts: &std::collections::HashMap<String, String>,
) -> Result<Vec<HoldEvent>, Failure> {
    if filter.run.is_some() || !filter.outcomes.is_empty() {
        return Ok(Vec::new());
    }
    let now = Timestamp::now();
    let mut events: Vec<HoldEvent> = journal
        .holds(true)
        .map_err(journal_failure)?
        .iter()
        .flat_map(|h| h.events(now))
        .filter(|e| {
            filter.policies.is_empty()
                || filter.policies.iter().any(|p| match &e.scope {
                    Scope::Policy(name) => name == p,
                    Scope::Account(name) => accounts.get(p) == Some(name),
                })
        })
        .filter(|e| filter.since.is_none_or(|t| e.at >= t))
        .filter(|e| filter.until.is_none_or(|t| e.at <= t))
        .collect();
    events.sort_by_key(|e| std::cmp::Reverse((e.at, e.hold)));
    Ok(events)
}

/// `--since`/`--until`: RFC 3339, or a duration before now.
pub(super) fn when(flag: &str, text: &str) -> Result<Timestamp, Failure> {
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
