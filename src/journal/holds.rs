//! Holds: a person's word that one backup is kept (an incident, a legal hold), stored in the
//! journal so that on PostgreSQL every host of a fleet honours it at once. A hold names a
//! backup id of one policy, or of every policy of one account; it lasts until it is released
//! (with a reason) or its `until` passes (it lapses by itself). Several holds on one backup
//! are released one by one.

use super::{Journal, Result, from_ms, ms};
use crate::sql_params;
use jiff::Timestamp;
use serde::Serialize;

/// Schema version (SQLite) from which the journal has holds.
pub(super) const HOLDS: i64 = 6;

/// What a hold is on: one policy's backups, or every policy's of one account.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "scope", content = "name", rename_all = "lowercase")]
pub enum Scope {
    Policy(String),
    Account(String),
}

impl Scope {
    fn kind(&self) -> &'static str {
        match self {
            Scope::Policy(_) => "policy",
            Scope::Account(_) => "account",
        }
    }

    fn name(&self) -> &str {
        match self {
            Scope::Policy(name) | Scope::Account(name) => name,
        }
    }
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "{} {}", self.kind(), self.name())
    }
}

/// A hold to record (`hold add`).
#[derive(Clone, Debug)]
pub struct NewHold<'a> {
    pub scope: &'a Scope,
    pub reason: &'a str,
    pub ticket: Option<&'a str>,
    pub by: &'a str,
    pub at: Timestamp,
    pub until: Option<Timestamp>,
}

/// A hold as the journal has it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Hold {
    pub id: i64,
    #[serde(flatten)]
    pub scope: Scope,
    pub backup_id: String,
    pub reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ticket: Option<String>,
    pub by: String,
    pub at: Timestamp,
    /// When it lapses by itself; `None`: until released.
    pub until: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub released: Option<Release>,
}

/// Who released a hold, when and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Release {
    pub by: String,
    pub at: Timestamp,
    pub reason: String,
}

impl Hold {
    /// Whether it keeps its backup at `now`: not released, and not past its `until`.
    pub fn active(&self, now: Timestamp) -> bool {
        self.released.is_none() && self.until.is_none_or(|until| until > now)
    }

    /// Whether it lapsed by itself (its `until` passed before anyone released it).
    pub fn lapsed(&self, now: Timestamp) -> bool {
        self.released.is_none() && self.until.is_some_and(|until| until <= now)
    }

    /// Whether it is on `policy`'s backups (its own, or its account's).
    pub fn covers(&self, policy: &str, account: &str) -> bool {
        match &self.scope {
            Scope::Policy(name) => name == policy,
            Scope::Account(name) => name == account,
        }
    }

    /// How a plan words the hold: `held: REASON [TICKET] (by WHO until WHEN, hold #N)`, the
    /// time written by `when`.
    pub fn describe(&self, when: impl Fn(Timestamp) -> String) -> String {
        let ticket = self
            .ticket
            .as_deref()
            .map(|t| format!(" [{t}]"))
            .unwrap_or_default();
        let until = self
            .until
            .map(|u| format!(" until {}", when(u)))
            .unwrap_or_default();
        format!(
            "held: {}{ticket} (by {}{until}, hold #{})",
            self.reason, self.by, self.id
        )
    }
}

const COLUMNS: &str = "id, scope, target, backup_id, reason, ticket, held_by, held_at, until,
                       released_at, released_by, release_reason";

fn hold(r: &super::store::Row) -> Hold {
    let name = r.text(2);
    Hold {
        id: r.int(0),
        scope: match r.text(1).as_str() {
            "account" => Scope::Account(name),
            _ => Scope::Policy(name),
        },
        backup_id: r.text(3),
        reason: r.text(4),
        ticket: r.opt_text(5),
        by: r.text(6),
        at: from_ms(r.int(7)),
        until: r.opt_int(8).map(from_ms),
        released: r.opt_int(9).map(|at| Release {
            at: from_ms(at),
            by: r.opt_text(10).unwrap_or_default(),
            reason: r.opt_text(11).unwrap_or_default(),
        }),
    }
}

impl Journal {
    fn has_holds(&self) -> Result<bool> {
        Ok(self.version()? >= HOLDS)
    }

    /// Records a hold on each of `backup_ids`; returns the holds, in their order.
    pub fn add_holds(&self, new: &NewHold, backup_ids: &[String]) -> Result<Vec<Hold>> {
        self.tx("record the holds", |tx| {
            let mut added = Vec::with_capacity(backup_ids.len());
            for id in backup_ids {
                let row = tx.query_one(
                    &format!(
                        "INSERT INTO holds (scope, target, backup_id, reason, ticket, held_by,
                                            held_at, until)
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {COLUMNS}"
                    ),
                    sql_params![
                        new.scope.kind(),
                        new.scope.name(),
                        id.as_str(),
                        new.reason,
                        new.ticket,
                        new.by,
                        ms(new.at),
                        new.until.map(ms)
                    ],
                )?;
                added.extend(row.as_ref().map(hold));
            }
            Ok(added)
        })
    }

    /// Every hold, oldest first: all of them with `all`, else those not released (active or
    /// lapsed).
    pub fn holds(&self, all: bool) -> Result<Vec<Hold>> {
        if !self.has_holds()? {
            return Ok(Vec::new());
        }
        self.tx("read the holds", |tx| {
            let rows = tx.query(
                &format!(
                    "SELECT {COLUMNS} FROM holds WHERE $1 = 1 OR released_at IS NULL ORDER BY id"
                ),
                sql_params![all],
            )?;
            Ok(rows.iter().map(hold).collect())
        })
    }

    /// The holds on `policy`'s backups (its own and its account's) that no one released:
    /// active ones and lapsed ones (a plan says a hold lapsed).
    pub fn holds_on(&self, policy: &str, account: &str) -> Result<Vec<Hold>> {
        if !self.has_holds()? {
            return Ok(Vec::new());
        }
        self.tx("read the policy's holds", |tx| {
            let rows = tx.query(
                &format!(
                    "SELECT {COLUMNS} FROM holds WHERE released_at IS NULL
                       AND ((scope = 'policy' AND target = $1)
                         OR (scope = 'account' AND target = $2))
                     ORDER BY id"
                ),
                sql_params![policy, account],
            )?;
            Ok(rows.iter().map(hold).collect())
        })
    }

    /// Releases hold `id`: who, why, now. Returns the hold as it was before, or an error that
    /// says why not (no such hold, released already).
    pub fn release_hold(&self, id: i64, by: &str, reason: &str) -> Result<Hold> {
        let refused = |why: String| super::JournalError(why);
        let found = match self.has_holds()? {
            true => self.tx("read the hold", |tx| {
                Ok(tx
                    .query_one(
                        &format!("SELECT {COLUMNS} FROM holds WHERE id = $1"),
                        sql_params![id],
                    )?
                    .as_ref()
                    .map(hold))
            })?,
            false => None,
        };
        let Some(held) = found else {
            return Err(refused(format!(
                "there is no hold #{id} (see `retentiond hold list --all`)"
            )));
        };
        let already = |r: &Release| {
            refused(format!(
                "hold #{id} was released already, by {} at {}: {}",
                r.by, r.at, r.reason
            ))
        };
        if let Some(r) = &held.released {
            return Err(already(r));
        }
        let now = Timestamp::now();
        let changed = self.tx("release the hold", |tx| {
            tx.execute(
                "UPDATE holds SET released_at = $2, released_by = $3, release_reason = $4
                 WHERE id = $1 AND released_at IS NULL",
                sql_params![id, ms(now), by, reason],
            )
        })?;
        if changed == 0 {
            // Released by someone else in between.
            let again = self.holds(true)?.into_iter().find(|h| h.id == id);
            if let Some(r) = again.and_then(|h| h.released) {
                return Err(already(&r));
            }
        }
        Ok(held)
    }
}

impl Journal {
    /// For `guard.grace`: when each backup that `policy`'s last listed run planned to delete
    /// (or kept waiting for its grace period) was first planned so, without a listed run in
    /// between that decided otherwise. From the decision spans: a span's runs decided alike,
    /// and spans that follow one another without a gap (the listed run before a span's first
    /// is the last of another doomed span) are one stretch. Where a stretch's first run was
    /// pruned by `journal_keep`, the oldest run still known stands for it (a later time: a
    /// longer wait, never a shorter one).
    pub fn doomed_since(&self, policy: &str) -> Result<crate::plan::DoomedSince> {
        if self.version()? < super::SPANS {
            return Ok(Default::default());
        }
        let (runs, spans) = self.tx("read when backups were first planned for deletion", |tx| {
            let runs: Vec<(i64, i64)> = tx
                .query(
                    "SELECT id, started_at FROM runs WHERE policy = $1 AND listed = 1 ORDER BY id",
                    sql_params![policy],
                )?
                .iter()
                .map(|r| (r.int(0), r.int(1)))
                .collect();
            let Some(&(last, _)) = runs.last() else {
                return Ok((runs, Vec::new()));
            };
            // Only backups whose newest span is doomed and reaches the last listed run.
            let spans = tx.query(
                "SELECT s.grp, s.backup_id, s.first_run, s.last_run FROM decision_spans s
                 WHERE s.policy = $1 AND s.action IN ('delete', 'wait')
                   AND EXISTS (SELECT 1 FROM decision_spans n
                               WHERE n.policy = $1 AND n.last_run = $2 AND n.grp = s.grp
                                 AND n.backup_id = s.backup_id
                                 AND n.action IN ('delete', 'wait'))
                 ORDER BY s.grp, s.backup_id, s.first_run",
                sql_params![policy, last],
            )?;
            Ok((runs, spans))
        })?;
        let mut since = crate::plan::DoomedSince::new();
        let Some(&(last, _)) = runs.last() else {
            return Ok(since);
        };
        // The listed run just before `run` (which may have been pruned), if any.
        let before = |run: i64| {
            let at = runs.partition_point(|(id, _)| *id < run);
            at.checked_sub(1).map(|i| runs[i].0)
        };
        // When `run` started; a pruned run: the first known run after it.
        let started = |run: i64| {
            let at = runs.partition_point(|(id, _)| *id < run);
            runs.get(at).map(|r| from_ms(r.1))
        };
        let mut i = 0;
        while i < spans.len() {
            let key = (spans[i].text(0), spans[i].text(1));
            let mut j = i;
            while j < spans.len() && spans[j].text(0) == key.0 && spans[j].text(1) == key.1 {
                j += 1;
            }
            let mine = &spans[i..j];
            i = j;
            // Back from the span that reaches the last listed run.
            let Some(mut first) = mine.iter().find(|s| s.int(3) == last).map(|s| s.int(2)) else {
                continue;
            };
            while let Some(previous) = before(first)
                && let Some(earlier) = mine.iter().find(|s| s.int(3) == previous)
            {
                first = earlier.int(2);
            }
            if let Some(at) = started(first) {
                since.entry(key.0).or_default().insert(key.1, at);
            }
        }
        Ok(since)
    }
}

/// Something that happened to a hold, for `history`.
#[derive(Clone, Debug, Serialize)]
pub struct HoldEvent {
    pub at: Timestamp,
    /// `added`, `released` or `lapsed` (its `until` passed before anyone released it).
    pub event: &'static str,
    pub hold: i64,
    #[serde(flatten)]
    pub scope: Scope,
    pub backup_id: String,
    /// Who added or released it (for `lapsed`: who added it).
    pub by: String,
    /// Why it was added or released.
    pub reason: String,
}

impl Hold {
    /// What happened to the hold up to `now`, oldest first.
    pub fn events(&self, now: Timestamp) -> Vec<HoldEvent> {
        let event = |at, event, by: &str, reason: &str| HoldEvent {
            at,
            event,
            hold: self.id,
            scope: self.scope.clone(),
            backup_id: self.backup_id.clone(),
            by: by.to_string(),
            reason: reason.to_string(),
        };
        let mut events = vec![event(self.at, "added", &self.by, &self.reason)];
        let ended = self.released.as_ref().map_or(now, |r| r.at);
        if let Some(until) = self.until.filter(|u| *u <= ended) {
            events.push(event(until, "lapsed", &self.by, &self.reason));
        }
        if let Some(r) = &self.released {
            events.push(event(r.at, "released", &r.by, &r.reason));
        }
        events
    }
}

impl Journal {
    /// Which of `ids` the last listed run of `policy` had (its decision spans): `None` when
    /// the policy has no listed run yet.
    pub fn last_listing_has(
        &self,
        policy: &str,
        ids: &[&str],
    ) -> Result<Option<(i64, Vec<String>)>> {
        if self.version()? < super::SPANS {
            return Ok(None);
        }
        self.tx("read the last listing", |tx| {
            let Some(run) = tx
                .query_one(
                    "SELECT max(id) FROM runs WHERE policy = $1 AND listed = 1",
                    sql_params![policy],
                )?
                .and_then(|r| r.opt_int(0))
            else {
                return Ok(None);
            };
            let mut found = Vec::new();
            for id in ids {
                let listed = tx.query_one(
                    "SELECT 1 FROM decision_spans WHERE policy = $1 AND last_run = $2
                       AND backup_id = $3 LIMIT 1",
                    sql_params![policy, run, *id],
                )?;
                if listed.is_some() {
                    found.push(id.to_string());
                }
            }
            Ok(Some((run, found)))
        })
    }
}
