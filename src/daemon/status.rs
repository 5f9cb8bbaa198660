//! What `retentiond status` and the daemon's status page show: every policy of the config
//! with its mode, schedule and next fire, its last run from the journal (as `history` has it:
//! outcome, host, time, counts), whether it is blocked or awaits approval and the command that
//! lifts it, its holds, and the notifications still open. Read from the config and the
//! journal only, so any host of a fleet shows the same.

use super::schedule;
use crate::journal::holds::Hold;
use crate::journal::{HistoryFilter, Journal, JournalError, RunRecord};
use crate::policy::{Config, Mode, Policy};
use jiff::Timestamp;
use serde::Serialize;

#[derive(Clone, Debug, Serialize)]
pub struct PolicyStatus {
    pub name: String,
    pub account: String,
    pub mode: &'static str,
    pub file: String,
    pub timezone: String,
    pub schedule: Option<String>,
    /// The next scheduled fire (before jitter), RFC 3339; `next_run_local` in the policy's zone.
    pub next_run: Option<Timestamp>,
    pub next_run_local: Option<String>,
    pub last_run: Option<LastRunStatus>,
    /// Why the last run was blocked, if it was.
    pub blocked: Option<String>,
    /// Whether this version of the policy (enforce) still needs a person's approval to delete
    /// beyond the bound for new and changed policies.
    pub awaiting_approval: bool,
    /// The command that lifts the block or gives the approval, when one does.
    pub unblock: Option<String>,
    pub holds: Vec<Hold>,
    /// Notifications told and not resolved: `(event, title)`.
    pub open_notices: Vec<(String, String)>,
}

#[derive(Clone, Debug, Serialize)]
pub struct LastRunStatus {
    pub id: i64,
    pub command: String,
    pub outcome: String,
    pub host: Option<String>,
    pub started_at: Timestamp,
    pub started_local: String,
    pub ended_at: Option<Timestamp>,
    pub kept: Option<u64>,
    pub deleted: usize,
    pub would_delete: Option<u64>,
    pub waiting: Option<u64>,
    pub message: Option<String>,
}

/// A time in `tz`, as the text plan shows it.
fn local(tz: &jiff::tz::TimeZone, at: Timestamp) -> String {
    crate::render::local_time(tz, at)
}

/// The status of each of `policies`, at `now`.
pub fn status(
    config: &Config,
    policies: &[Policy],
    journal: Option<&Journal>,
    now: Timestamp,
) -> Result<Vec<PolicyStatus>, JournalError> {
    let mut out = Vec::new();
    for policy in policies {
        let tz = crate::runner::zone(policy, Some(config));
        let next = policy
            .schedule
            .as_ref()
            .and_then(|s| schedule::next_after(s, &tz, now));
        let last: Option<RunRecord> = match journal {
            Some(j) => j
                .history(&HistoryFilter {
                    policies: vec![policy.name.clone()],
                    limit: 1,
                    ..HistoryFilter::default()
                })?
                .into_iter()
                .next(),
            None => None,
        };
        let approved = match journal {
            Some(j) => j.approved(&policy.name, &policy.fingerprint)?,
            None => false,
        };
        let awaiting_approval = policy.mode == Mode::Enforce && !approved;
        let holds: Vec<Hold> = match journal {
            Some(j) => j
                .holds_on(&policy.name, &policy.account)?
                .into_iter()
                .filter(|h| h.active(now))
                .collect(),
            None => Vec::new(),
        };
        let open_notices = match journal {
            Some(j) => j
                .notices(&policy.name)?
                .into_iter()
                .map(|n| (n.event, n.title))
                .collect(),
            None => Vec::new(),
        };
        let blocked = last
            .as_ref()
            .filter(|r| r.outcome.as_deref() == Some("blocked"))
            .and_then(|r| r.message.clone());
        let lift = blocked.as_deref().and_then(|m| {
            let at = m.find("`retentiond ")?;
            let rest = &m[at + 1..];
            Some(rest[..rest.find('`')?].to_string())
        });
        let unblock = match (&lift, awaiting_approval, &blocked) {
            (Some(command), _, _) => Some(command.clone()),
            (None, true, _) => Some(format!("retentiond approve {}", policy.name)),
            _ => None,
        };
        out.push(PolicyStatus {
            name: policy.name.clone(),
            account: policy.account.clone(),
            mode: policy.mode.as_str(),
            file: policy.file.display().to_string(),
            timezone: tz.iana_name().unwrap_or("UTC").to_string(),
            schedule: policy.schedule.as_ref().map(|s| s.text.clone()),
            next_run: next,
            next_run_local: next.map(|at| local(&tz, at)),
            last_run: last.map(|r| LastRunStatus {
                id: r.id,
                command: r.command.clone(),
                outcome: r.outcome.clone().unwrap_or_else(|| "unfinished".into()),
                host: r.host.clone(),
                started_at: r.started_at,
                started_local: local(&tz, r.started_at),
                ended_at: r.ended_at,
                kept: r.summary.map(|s| s.keep),
                deleted: r
                    .deletions
                    .iter()
                    .filter(|d| d.outcome.as_deref() == Some("deleted"))
                    .count(),
                would_delete: r.summary.map(|s| s.delete),
                waiting: r.summary.map(|s| s.waiting).filter(|n| *n > 0),
                message: r.message.clone(),
            }),
            blocked,
            awaiting_approval,
            unblock,
            holds,
            open_notices,
        });
    }
    Ok(out)
}

/// `status` as text: a block per policy.
pub fn text(out: &mut dyn std::io::Write, all: &[PolicyStatus]) -> std::io::Result<()> {
    use crate::visible::Visible;
    if all.is_empty() {
        return writeln!(out, "no policies in the config");
    }
    for p in all {
        let schedule = match (&p.schedule, &p.next_run_local) {
            (Some(s), Some(next)) => format!("schedule \"{s}\", next run {next}"),
            (Some(s), None) => format!("schedule \"{s}\", no next run"),
            (None, _) => "no schedule (run by hand)".to_string(),
        };
        writeln!(
            out,
            "policy {} (account {}, mode {}, zone {}): {schedule}",
            p.name, p.account, p.mode, p.timezone
        )?;
        match &p.last_run {
            None => writeln!(out, "  last run: none yet")?,
            Some(r) => {
                let host = r
                    .host
                    .as_deref()
                    .map(|h| format!(" on {h}"))
                    .unwrap_or_default();
                let counts = match (r.kept, r.would_delete) {
                    (Some(k), Some(d)) => {
                        let waiting = r
                            .waiting
                            .map(|w| format!(", waiting {w}"))
                            .unwrap_or_default();
                        format!(": kept {k}, deleted {} of {d}{waiting}", r.deleted)
                    }
                    _ => String::new(),
                };
                writeln!(
                    out,
                    "  last run: #{} {} {}{host} at {}{counts}",
                    r.id, r.command, r.outcome, r.started_local
                )?;
            }
        }
        if let Some(blocked) = &p.blocked {
            writeln!(out, "  BLOCKED: {}", Visible(blocked))?;
        }
        if p.awaiting_approval {
            writeln!(
                out,
                "  this version is not approved: a run that deletes more than guard.unapproved_max_delete waits for `retentiond approve {}`",
                p.name
            )?;
        }
        if let Some(command) = &p.unblock {
            writeln!(out, "  to unblock: {command}")?;
        }
        for h in &p.holds {
            writeln!(
                out,
                "  hold #{} on {}: {}",
                h.id,
                Visible(&h.backup_id),
                Visible(&h.describe(|at| at.to_string()))
            )?;
        }
        for (event, title) in &p.open_notices {
            writeln!(out, "  notified ({event}): {}", Visible(title))?;
        }
    }
    Ok(())
}
