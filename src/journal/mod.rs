//! The journal: durable local state in `state_dir/journal.sqlite` (SQLite, WAL, fsync on every
//! commit). It records every run (policy, its file's hash and git commit, start, end, outcome),
//! every decision, the complete-backup count of each group listed, and every deletion: the
//! intent is committed before the delete call is sent and the outcome after it, so a crash at
//! any point leaves an intent that the next run of the policy settles against a fresh listing.
//!
//! The schema is migrated forward by `PRAGMA user_version`; a journal written by a newer
//! version is refused, never rewritten. One process runs a policy at a time: [`Journal::lock`]
//! takes a file lock per policy under `state_dir/locks`.

/// Migration 7 of SQLite and 5 of PostgreSQL, in the SQL both understand: open intents are
/// found through their runs (see [`Journal::reconcile`]), not by an index on `outcome`.
macro_rules! open_by_run {
    () => {
        "ALTER TABLE runs ADD COLUMN intents_recorded BIGINT NOT NULL DEFAULT 0;
        ALTER TABLE runs ADD COLUMN intents_checked BIGINT NOT NULL DEFAULT 0;
        UPDATE runs SET intents_recorded = 1
        WHERE id IN (SELECT run_id FROM deletions WHERE outcome IS NULL);
        CREATE INDEX runs_unchecked ON runs (policy) WHERE intents_recorded > intents_checked;
        DROP INDEX deletions_open;"
    };
}

pub mod files;
pub mod git;
pub mod holds;
pub mod notices;
pub mod pg;
pub mod store;

use crate::model::{Backup, Status};
use crate::plan::{Baseline, PolicyPlan};
use crate::sql_params;
use files::create_private_dir;
use jiff::Timestamp;
use rusqlite::{Connection, OpenFlags};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use store::{Tx, Value};

pub const FILE: &str = "journal.sqlite";

/// Each entry moves the schema one version forward; never edit a released entry, add one.
const MIGRATIONS: &[&str] = &[
    // 1: runs, their listing counts and decisions, deletions with intent and outcome.
    "CREATE TABLE runs (
        id INTEGER PRIMARY KEY,
        policy TEXT NOT NULL,
        account TEXT NOT NULL,
        command TEXT NOT NULL,
        mode TEXT NOT NULL,
        dry_run TEXT,
        policy_file TEXT NOT NULL,
        policy_sha256 TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        git_commit TEXT,
        pid INTEGER NOT NULL,
        started_at INTEGER NOT NULL,
        ended_at INTEGER,
        outcome TEXT,
        message TEXT,
        listed INTEGER NOT NULL DEFAULT 0,
        listing_drop_blocked INTEGER NOT NULL DEFAULT 0,
        keep INTEGER,
        delete_count INTEGER,
        ignore INTEGER
    );
    CREATE INDEX runs_policy ON runs (policy, id);
    CREATE TABLE listing_counts (
        run_id INTEGER NOT NULL REFERENCES runs (id),
        grp TEXT NOT NULL,
        complete INTEGER NOT NULL,
        PRIMARY KEY (run_id, grp)
    );
    CREATE TABLE decisions (
        run_id INTEGER NOT NULL REFERENCES runs (id),
        backup_id TEXT NOT NULL,
        grp TEXT NOT NULL,
        created_at TEXT NOT NULL,
        status TEXT NOT NULL,
        action TEXT NOT NULL,
        reasons TEXT NOT NULL,
        note TEXT
    );
    CREATE INDEX decisions_run ON decisions (run_id);
    CREATE TABLE deletions (
        id INTEGER PRIMARY KEY,
        run_id INTEGER NOT NULL REFERENCES runs (id),
        policy TEXT NOT NULL,
        account TEXT NOT NULL,
        backup_id TEXT NOT NULL,
        grp TEXT NOT NULL,
        created_at TEXT NOT NULL,
        intent_at INTEGER NOT NULL,
        outcome TEXT,
        outcome_at INTEGER,
        error TEXT,
        reconciled INTEGER NOT NULL DEFAULT 0,
        detail TEXT
    );
    CREATE INDEX deletions_run ON deletions (run_id);
    CREATE INDEX deletions_open ON deletions (policy) WHERE outcome IS NULL;",
    // 2: the daemon's last scheduled fire of each policy, for catching up after downtime.
    "CREATE TABLE fires (
        policy TEXT PRIMARY KEY,
        scheduled_at INTEGER NOT NULL,
        started_at INTEGER NOT NULL
    );",
    // 3: approvals of a policy version (its fingerprint) to delete beyond the bound for new
    // and changed policies; the one-run overrides (`--approve`, `--accept-max-delete`,
    // `--accept-listing-drop`) a run was given.
    "CREATE TABLE approvals (
        policy TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        approved_at INTEGER NOT NULL,
        approved_by TEXT,
        policy_file TEXT NOT NULL,
        PRIMARY KEY (policy, fingerprint)
    );
    ALTER TABLE runs ADD COLUMN overrides TEXT;",
    // 4: decisions stored once per span of runs in which a backup's decision did not change
    // (an hourly policy over 100,000 backups wrote 100,000 rows an hour before); runs pruned
    // by `journal_keep` leave their spans.
    "CREATE TABLE decision_spans (
        policy TEXT NOT NULL,
        first_run INTEGER NOT NULL,
        last_run INTEGER NOT NULL,
        backup_id TEXT NOT NULL,
        grp TEXT NOT NULL,
        created_at TEXT NOT NULL,
        status TEXT NOT NULL,
        action TEXT NOT NULL,
        reasons TEXT NOT NULL,
        note TEXT
    );
    CREATE INDEX decision_spans_open ON decision_spans (policy, last_run, grp, backup_id);
    INSERT INTO decision_spans (policy, first_run, last_run, backup_id, grp, created_at, status,
                                action, reasons, note)
        SELECT r.policy, d.run_id, d.run_id, d.backup_id, d.grp, d.created_at, d.status,
               d.action, d.reasons, d.note
        FROM decisions d JOIN runs r ON r.id = d.run_id ORDER BY d.rowid;
    DROP TABLE decisions;",
    // 5: the host each run ran on, and the fleet's claims of scheduled fires (a fleet shares
    // one journal on PostgreSQL; SQLite has them too, so both stores run the same SQL).
    "ALTER TABLE runs ADD COLUMN host TEXT;
    CREATE TABLE fire_claims (
        policy TEXT NOT NULL,
        scheduled_at INTEGER NOT NULL,
        host TEXT NOT NULL,
        claimed_at INTEGER NOT NULL,
        PRIMARY KEY (policy, scheduled_at)
    );",
    // 6: holds on backups (`retentiond hold`): who, when, why, until when, and their release;
    // what each run held back for its grace period; what notifications last said.
    "CREATE TABLE holds (
        id INTEGER PRIMARY KEY,
        scope TEXT NOT NULL,
        target TEXT NOT NULL,
        backup_id TEXT NOT NULL,
        reason TEXT NOT NULL,
        ticket TEXT,
        held_by TEXT NOT NULL,
        held_at INTEGER NOT NULL,
        until INTEGER,
        released_at INTEGER,
        released_by TEXT,
        release_reason TEXT
    );
    CREATE INDEX holds_open ON holds (target) WHERE released_at IS NULL;
    ALTER TABLE runs ADD COLUMN waiting INTEGER;
    CREATE TABLE notifications (
        policy TEXT NOT NULL,
        event TEXT NOT NULL,
        key TEXT NOT NULL,
        title TEXT NOT NULL,
        since INTEGER NOT NULL,
        PRIMARY KEY (policy, event, key)
    );",
    // 7: open intents are found through their runs, not by an index on `outcome`: each
    // commit of intents counts itself on its run, and reconciling a run records the count it
    // checked. On PostgreSQL an outcome then updates its row in place (BENCHMARKS.md).
    open_by_run!(),
];

/// Schema version from which runs record their host.
const HOSTS: i64 = 5;

/// How often a PostgreSQL run lock's session is checked.
const LOCK_CHECK: Duration = Duration::from_secs(1);

/// Schema version from which decisions are stored as spans.
const SPANS: i64 = 4;

/// The rows of one multi-row statement: a long list is cut into chunks of these sizes, so
/// that few distinct statements are prepared.
const CHUNKS: [usize; 4] = [64, 16, 4, 1];

/// `rows` cut into the chunks of multi-row statements: sizes from [`CHUNKS`], largest first.
fn multi_row<T>(mut rows: &[T]) -> impl Iterator<Item = &[T]> {
    std::iter::from_fn(move || {
        let size = CHUNKS.into_iter().find(|size| *size <= rows.len())?;
        let (chunk, rest) = rows.split_at(size);
        rows = rest;
        Some(chunk)
    })
}

/// The statement recording the intents of `chunk` (one row each), returning each row's id
/// with its group and backup id.
fn intents_statement(
    run: i64,
    policy: &str,
    account: &str,
    now: i64,
    chunk: &[&Backup],
) -> (String, Vec<Value>) {
    let rows: Vec<String> = (0..chunk.len())
        .map(|r| {
            let at = 5 + 3 * r;
            format!("($1, $2, $3, ${at}, ${}, ${}, $4)", at + 1, at + 2)
        })
        .collect();
    let sql = format!(
        "INSERT INTO deletions (run_id, policy, account, backup_id, grp, created_at, intent_at)
         VALUES {} RETURNING id, grp, backup_id",
        rows.join(", ")
    );
    let mut params = Vec::with_capacity(4 + 3 * chunk.len());
    params.extend(sql_params![run, policy, account, now].iter().cloned());
    for b in chunk {
        params.push(Value::from(&b.id));
        params.push(Value::from(&b.group));
        params.push(Value::Text(b.created_at.to_string()));
    }
    (sql, params)
}

/// The id of each intent's row among the rows its statements `answered`, matched by group
/// and id (the rows of a multi-row insert come back in its order, but the databases do not
/// promise it).
fn intent_rows(
    intents: &[&Backup],
    answered: &[store::Row],
) -> std::result::Result<Vec<i64>, String> {
    let mut by_backup: HashMap<(String, String), i64> = HashMap::new();
    let mut rows = Vec::with_capacity(intents.len());
    for (i, b) in intents.iter().enumerate() {
        let row = answered
            .get(i)
            .filter(|r| r.text(1) == b.group && r.text(2) == b.id);
        match row {
            Some(row) => rows.push(row.int(0)),
            None => {
                if by_backup.is_empty() {
                    by_backup = answered
                        .iter()
                        .map(|r| ((r.text(1), r.text(2)), r.int(0)))
                        .collect();
                }
                let key = (b.group.to_string(), b.id.to_string());
                rows.extend(by_backup.get(&key));
            }
        }
    }
    match rows.len() == intents.len() {
        true => Ok(rows),
        false => Err(format!("{} rows for {} intents", rows.len(), intents.len())),
    }
}

/// Sorted, distinct `ids` as the ranges of at least [`RANGE`] consecutive ids, `(first,
/// last)`, and the ids in no such range.
fn ranges(ids: &[i64]) -> (Vec<(i64, i64)>, Vec<i64>) {
    let (mut ranges, mut scattered) = (Vec::new(), Vec::new());
    let mut rest = ids;
    while let Some(&first) = rest.first() {
        let n = rest
            .iter()
            .zip(first..)
            .take_while(|(id, expected)| **id == *expected)
            .count();
        match n >= RANGE {
            true => ranges.push((first, rest[n - 1])),
            false => scattered.extend_from_slice(&rest[..n]),
        }
        rest = &rest[n..];
    }
    (ranges, scattered)
}

/// The fewest consecutive ids updated as a range rather than listed.
const RANGE: usize = 4;

/// The parameters `$first`, `$first+1`, ... of `n` values, comma-separated.
fn placeholders(first: usize, n: usize) -> String {
    let each: Vec<String> = (first..first + n).map(|i| format!("${i}")).collect();
    each.join(", ")
}

/// Decisions recorded per batch of statements when a plan is recorded: a large plan's
/// statements are held a chunk at a time.
const PLAN_CHUNK: usize = 4096;

/// `runs.listed` of a run whose listing counts and plan summary are recorded, its decisions
/// not yet ([`Journal::record_counts`]): its listing is a baseline, its decisions are not read.
const COUNTED: i64 = 2;
/// `runs.listed` of a run whose decisions are recorded too.
const LISTED: i64 = 1;

/// The listing counts of `run` and its plan's summary; the run marked `listed` (the last
/// statement goes with the commit, in its round trip on PostgreSQL).
fn counts_in(
    tx: &mut dyn Tx,
    run: i64,
    plan: &PolicyPlan,
    counts: &BTreeMap<String, u64>,
    listing_drop_blocked: bool,
    listed: i64,
) -> std::result::Result<(), String> {
    let counted: Vec<Vec<Value>> = counts
        .iter()
        .map(|(group, n)| sql_params![run, group, *n].to_vec())
        .collect();
    tx.execute_each(
        "INSERT INTO listing_counts (run_id, grp, complete) VALUES ($1, $2, $3)",
        &counted,
    )?;
    let s = plan.summary;
    tx.execute_each(
        "UPDATE runs SET listed = $7, listing_drop_blocked = $2, keep = $3,
                         delete_count = $4, ignore = $5, waiting = $6
         WHERE id = $1",
        &[sql_params![
            run,
            listing_drop_blocked,
            s.keep,
            s.delete,
            s.ignore,
            s.waiting,
            listed
        ]
        .to_vec()],
    )
}

/// The decisions of `run`'s plan: a decision the policy's previous listed run made the same
/// way extends that run's span to this run; any other starts a span.
fn decisions_in(tx: &mut dyn Tx, run: i64, plan: &PolicyPlan) -> std::result::Result<(), String> {
    let previous = tx
        .query_one(
            "SELECT max(id) FROM runs WHERE policy = $1 AND listed = 1 AND id < $2",
            sql_params![&plan.name, run],
        )?
        .and_then(|r| r.opt_int(0));
    // A decision's span, as the columns of `decision_spans` below.
    let span = |d: &crate::plan::Decision| {
        let reasons: Vec<String> = d.reasons().iter().map(ToString::to_string).collect();
        sql_params![
            &plan.name,
            run,
            run,
            &d.backup.id,
            &d.backup.group,
            d.backup.created_at.to_string(),
            d.backup.status.as_str(),
            d.action.as_str(),
            serde_json::to_string(&reasons).unwrap_or_default(),
            d.note(),
        ]
        .to_vec()
    };
    // The decisions a chunk at a time (what the statements hold stays small for a large
    // plan), in the reverse of the plan's order, oldest first: a backup's id mostly grows
    // with its time, and the spans' index (`decision_spans_open`, ending in the id) takes
    // growing keys at its edge (on PostgreSQL, 100,000 spans by `COPY` in 0.55 s of the
    // server's time and 9 MB of index, instead of 0.80 s and 16 MB newest first).
    let chunks = || plan.decisions.rchunks(PLAN_CHUNK).map(|c| c.iter().rev());
    // Which decisions extended a span, in that order.
    let mut extended = Vec::new();
    if let Some(previous) = previous {
        extended.reserve(plan.decisions.len());
        for chunk in chunks() {
            let spans: Vec<Vec<Value>> = chunk
                .map(|d| {
                    let mut span = span(d);
                    span[2] = Value::Int(previous);
                    span
                })
                .collect();
            let counts = tx.execute_all(
                "UPDATE decision_spans SET last_run = $2 WHERE rowid = (
                    SELECT rowid FROM decision_spans
                    WHERE policy = $1 AND last_run = $3 AND grp = $5 AND backup_id = $4
                      AND created_at = $6 AND status = $7 AND action = $8
                      AND reasons = $9 AND note IS NOT DISTINCT FROM $10
                    LIMIT 1)",
                &spans,
            )?;
            extended.extend(counts.iter().map(|n| *n != 0));
        }
    }
    // The others start spans, in one stream of rows (one `COPY` on PostgreSQL).
    for (k, chunk) in chunks().enumerate() {
        let started: Vec<Vec<Value>> = chunk
            .enumerate()
            .filter(|(i, _)| !extended.get(k * PLAN_CHUNK + i).copied().unwrap_or(false))
            .map(|(_, d)| span(d))
            .collect();
        tx.insert_rows(
            "decision_spans (policy, first_run, last_run, backup_id, grp, created_at,
                             status, action, reasons, note)",
            &started,
        )?;
    }
    Ok(())
}

/// The run whose listing is a policy's listing-drop baseline (`$1` the policy, before the
/// run `$2`), and its start: [`Journal::baseline`].
const BASELINE_RUN: &str = "SELECT id, started_at FROM runs
     WHERE policy = $1 AND listed != 0 AND listing_drop_blocked = 0 AND id < $2
     ORDER BY id DESC LIMIT 1";

/// What went wrong with the journal; the message names the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JournalError(pub String);

impl fmt::Display for JournalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for JournalError {}

/// How a refusal because another process holds a policy's run lock reads.
const LOCK_HELD: &str = "is being run by another retentiond process";

impl JournalError {
    /// Whether the error is another process holding the run lock (it runs the policy now),
    /// not a lock that cannot be taken at all.
    pub fn is_lock_held(&self) -> bool {
        self.0.contains(LOCK_HELD)
    }
}

type Result<T> = std::result::Result<T, JournalError>;

/// How a deletion ended, as the journal records it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Deleted,
    Failed,
    /// Still there after an interrupted run (reconciled).
    NotDeleted,
    /// Accepted by the provider, which deletes on its own (CSBS); a later run settles it.
    Pending,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Deleted => "deleted",
            Outcome::Failed => "failed",
            Outcome::NotDeleted => "not_deleted",
            Outcome::Pending => "pending",
        }
    }
}

/// What became of recorded intents: outcomes `(deletion row, outcome, error)`, and the rows
/// of intents whose calls were never sent (the run stopped first), which are removed: the
/// journal keeps the deletions that were attempted.
#[derive(Clone, Copy, Debug, Default)]
pub struct Settled<'a> {
    pub outcomes: &'a [(i64, Outcome, Option<&'a str>)],
    pub withdrawn: &'a [i64],
}

/// A run as it starts.
pub struct RunStart<'a> {
    pub policy: &'a crate::policy::Policy,
    /// `run`, `apply`, `daemon`.
    pub command: &'a str,
    /// Why the run deletes nothing, if it does not (the two-yeses rule).
    pub dry_run: Option<&'a str>,
    pub started_at: Timestamp,
    /// The guards this run was told to let through once (`approve`, `accept-max-delete`,
    /// `accept-listing-drop`); empty for most runs.
    pub overrides: Vec<&'static str>,
}

/// A run as it ends.
pub struct RunEnd<'a> {
    /// `ok`, `dry-run`, `blocked`, `refused`, `listing-failed`, `deletions-failed`.
    pub outcome: &'a str,
    pub message: Option<&'a str>,
}

/// A deletion whose outcome an interrupted run never recorded, settled now.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Reconciled {
    pub id: String,
    pub group: String,
    pub run: i64,
    pub outcome: &'static str,
}

/// Every outcome a run can have, as `history --outcome` takes them (`unfinished`: none yet).
pub const RUN_OUTCOMES: &[&str] = &[
    "ok",
    "dry-run",
    "blocked",
    "nothing-selected",
    "refused",
    "listing-failed",
    "deletions-failed",
    "journal-failed",
    "interrupted",
    "stopped",
    "unfinished",
];

/// The filters of `retentiond history`.
#[derive(Clone, Debug, Default)]
pub struct HistoryFilter {
    pub policies: Vec<String>,
    pub since: Option<Timestamp>,
    pub until: Option<Timestamp>,
    pub outcomes: Vec<String>,
    pub run: Option<i64>,
    pub limit: usize,
}

#[derive(Clone, Debug, Serialize)]
pub struct RunRecord {
    pub id: i64,
    pub policy: String,
    pub account: String,
    pub command: String,
    pub mode: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dry_run: Option<String>,
    pub started_at: Timestamp,
    pub ended_at: Option<Timestamp>,
    /// `None` while the run is going on, or when it was interrupted and its policy has not run
    /// since.
    pub outcome: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    pub policy_file: String,
    pub policy_sha256: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub git_commit: Option<String>,
    pub summary: Option<RunSummary>,
    /// Guards this run was told to let through once: `approve`, `accept-max-delete`,
    /// `accept-listing-drop`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub overrides: Vec<String>,
    /// The host the run ran on (journals before schema 5 did not record it).
    pub host: Option<String>,
    /// Who approved the version of the policy the run ran, and when (`retentiond approve`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approved: Option<Approval>,
    /// Complete backups listed per group.
    pub listing: BTreeMap<String, u64>,
    pub deletions: Vec<DeletionRecord>,
}

/// A person's approval of one version of a policy.
#[derive(Clone, Debug, Serialize)]
pub struct Approval {
    /// `$SUDO_USER`, `$USER` or `--by`, when known.
    pub by: Option<String>,
    pub at: Timestamp,
    /// The policy's fingerprint: the version approved.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub fingerprint: String,
    /// `approve --list` only: the policy and its file when approved.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub policy: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub policy_file: String,
}

#[derive(Clone, Copy, Debug, Serialize)]
pub struct RunSummary {
    pub keep: u64,
    pub delete: u64,
    /// Doomed, waiting for the grace period (absent when none).
    #[serde(skip_serializing_if = "is_zero")]
    pub waiting: u64,
    pub ignore: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

#[derive(Clone, Debug, Serialize)]
pub struct DeletionRecord {
    pub id: String,
    pub group: String,
    pub policy: String,
    pub account: String,
    pub created_at: String,
    pub intent_at: Timestamp,
    /// `deleted`, `failed`, `not_deleted`; `None`: the intent is not settled yet.
    pub outcome: Option<String>,
    pub outcome_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Settled by a later run's fresh listing after an interruption.
    pub reconciled: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct DecisionRecord {
    pub id: String,
    pub group: String,
    pub created_at: String,
    pub status: String,
    pub action: String,
    pub reasons: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// What the journal knows of a policy's last run, to seed the daemon's metrics at start.
#[derive(Clone, Debug, PartialEq)]
pub struct LastRun {
    pub started_at: Timestamp,
    pub took: Duration,
    pub outcome: &'static str,
    pub keep: u64,
    /// Planned deletions not carried out (dry-run, blocked, stopped).
    pub would_delete: u64,
    /// When a run of the policy last ended `ok` or `dry-run`.
    pub last_success: Option<Timestamp>,
    /// The newest complete backup the policy selected, per group, in its last listed run.
    pub newest: BTreeMap<String, Timestamp>,
}

/// Held while a policy runs; dropping it releases the lock: a file lock in `state_dir`, or
/// with a PostgreSQL journal an advisory lock on a session of its own.
#[derive(Debug)]
pub struct PolicyLock {
    _file: Option<File>,
    pg: Option<pg::PgLock>,
}

impl PolicyLock {
    /// Whether the lock's database session was lost (PostgreSQL only): another host may take
    /// the lock.
    pub fn lost(&self) -> bool {
        self.pg.as_ref().is_some_and(pg::PgLock::lost)
    }
}

pub struct Journal {
    store: Store,
    dir: PathBuf,
    /// What errors name: the SQLite file, or the PostgreSQL database.
    path: PathBuf,
}

/// The database behind the journal.
enum Store {
    Sqlite(Mutex<Connection>),
    Postgres(Box<pg::Pg>),
}

/// Puts the journal in WAL mode. On a fresh file two openers race for the switch, and SQLite
/// answers "database is locked" at once rather than through the busy timeout: the loser
/// waits and looks again (the winner's switch is what it wanted).
/// The page cache of a writable SQLite journal, in KiB (SQLite's default is 2,000).
const WRITER_CACHE_KIB: i64 = 512;

fn switch_to_wal(conn: &Connection) -> rusqlite::Result<()> {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let mode: rusqlite::Result<String> =
            conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0));
        match mode {
            Ok(_) => return Ok(()),
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::DatabaseBusy
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => return Err(e),
        }
    }
}

fn sql_error(path: &Path, what: &str) -> impl Fn(rusqlite::Error) -> JournalError {
    let path = path.display().to_string();
    let what = what.to_string();
    move |e| JournalError(format!("journal {path}: cannot {what}: {e}"))
}

fn ms(at: Timestamp) -> i64 {
    at.as_millisecond()
}

fn from_ms(ms: i64) -> Timestamp {
    Timestamp::from_millisecond(ms).unwrap_or(Timestamp::UNIX_EPOCH)
}

impl Journal {
    /// Opens (creating `state_dir` and the journal if needed) and migrates the journal.
    pub fn open(state_dir: &Path) -> Result<Journal> {
        create_private_dir(state_dir)?;
        let path = state_dir.join(FILE);
        files::prepare_journal(state_dir, &path)?;
        let flags = OpenFlags::default() | OpenFlags::SQLITE_OPEN_NOFOLLOW;
        let conn =
            Connection::open_with_flags(&path, flags).map_err(sql_error(&path, "open it"))?;
        let journal = Journal::configure(conn, state_dir, path, true)?;
        journal.migrate()?;
        Ok(journal)
    }

    /// Opens the journal the config names: PostgreSQL (`journal.postgres`), else SQLite in
    /// `state_dir`.
    pub fn open_config(config: &crate::policy::Config) -> Result<Journal> {
        let Some(postgres) = &config.postgres else {
            return Journal::open(&config.state_dir);
        };
        create_private_dir(&config.state_dir)?;
        let url = postgres
            .url
            .resolve()
            .map_err(|e| JournalError(format!("journal.postgres: {e}")))?;
        let target = pg::Target::parse(url.expose(), postgres.ca_file.as_deref())
            .map_err(|e| JournalError(format!("journal.postgres: {e}")))?;
        let name = target.name.clone();
        let pg = pg::Pg::open(target)
            .map_err(|e| JournalError(format!("journal {name}: cannot open it: {e}")))?;
        Ok(Journal {
            store: Store::Postgres(Box::new(pg)),
            dir: config.state_dir.clone(),
            path: PathBuf::from(name),
        })
    }

    /// Checks the config's PostgreSQL URL (its secret resolved, the URL readable, its TLS
    /// settings allowed) without connecting: a URL that can never work is a config error, not
    /// a server to wait for.
    pub fn check_target(config: &crate::policy::Config) -> Result<()> {
        let Some(postgres) = &config.postgres else {
            return Ok(());
        };
        let url = postgres
            .url
            .resolve()
            .map_err(|e| JournalError(format!("journal.postgres: {e}")))?;
        pg::Target::parse(url.expose(), postgres.ca_file.as_deref())
            .map(drop)
            .map_err(|e| JournalError(format!("journal.postgres: {e}")))
    }

    /// Opens the config's journal for reading; `None` when there is none yet (SQLite only:
    /// a PostgreSQL journal is opened as for writing).
    pub fn open_config_read_only(config: &crate::policy::Config) -> Result<Option<Journal>> {
        match &config.postgres {
            None => Journal::open_read_only(&config.state_dir),
            Some(_) => Journal::open_config(config).map(Some),
        }
    }

    /// Whether the journal is shared by a fleet (PostgreSQL).
    pub fn shared(&self) -> bool {
        matches!(self.store, Store::Postgres(_))
    }

    /// Opens an existing journal for reading; `None` when there is none yet.
    pub fn open_read_only(state_dir: &Path) -> Result<Option<Journal>> {
        let path = state_dir.join(FILE);
        // Only a journal that is not there means "nothing has run": one this user may not
        // see (another user's 0700 state folder) is an error that says so.
        match path.try_exists() {
            Ok(true) => {}
            Ok(false) => return Ok(None),
            Err(e) => return Err(files::unreadable(state_dir, &path, &e)),
        }
        if let Err(e) = fs::File::open(&path) {
            return Err(files::unreadable(state_dir, &path, &e));
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NOFOLLOW;
        let conn =
            Connection::open_with_flags(&path, flags).map_err(sql_error(&path, "open it"))?;
        let journal = Journal::configure(conn, state_dir, path, false)?;
        let version = journal.version()?;
        if version > MIGRATIONS.len() as i64 {
            return Err(journal.too_new(version));
        }
        if version < 1 {
            // Created but never migrated: nothing recorded yet.
            return Ok(None);
        }
        // An older journal is read as it is (the next run migrates it): reads use the tables
        // of version 1, and `last_fire` finds no fire in a journal without `fires`.
        Ok(Some(journal))
    }

    fn configure(conn: Connection, dir: &Path, path: PathBuf, writable: bool) -> Result<Journal> {
        conn.busy_timeout(Duration::from_secs(10))
            .map_err(sql_error(&path, "set a busy timeout"))?;
        if writable {
            // WAL lets `history` read while a run writes; FULL syncs every commit, so an
            // intent is on disk before its delete call is sent.
            switch_to_wal(&conn).map_err(sql_error(&path, "switch to WAL"))?;
            conn.pragma_update(None, "synchronous", "FULL")
                .map_err(sql_error(&path, "set synchronous=FULL"))?;
            conn.pragma_update(None, "foreign_keys", "ON")
                .map_err(sql_error(&path, "enable foreign keys"))?;
            // A writer's transactions append (decisions, intents) and touch the few pages
            // they just wrote (outcomes): SQLite's default cache of 2 MiB, kept for the life
            // of the connection, was 40 bytes of every deletion's peak in a run of 50,000
            // (BENCHMARKS.md, "eleventh session") and no faster than this.
            conn.pragma_update(None, "cache_size", -WRITER_CACHE_KIB)
                .map_err(sql_error(&path, "set the page cache's size"))?;
        }
        Ok(Journal {
            store: Store::Sqlite(Mutex::new(conn)),
            dir: dir.to_path_buf(),
            path,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The SQLite connection, for tests that look inside or rewind the schema.
    #[cfg(test)]
    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        let Store::Sqlite(conn) = &self.store else {
            panic!("a SQLite journal");
        };
        conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `work` in one transaction of the journal's store; an error says what it was
    /// doing (`what`) and names the journal.
    fn tx<T: Send>(
        &self,
        what: &str,
        work: impl FnOnce(&mut dyn Tx) -> std::result::Result<T, String> + Send,
    ) -> Result<T> {
        let name = self.path.display().to_string();
        match &self.store {
            Store::Sqlite(conn) => {
                // A panic while holding the lock leaves SQLite consistent (transactions roll
                // back).
                let mut conn = conn.lock().unwrap_or_else(|e| e.into_inner());
                store::sqlite_transaction(&mut conn, work).map_err(store::error(&name, what))
            }
            Store::Postgres(pg) => pg
                .transaction(|tx| work(tx))
                .map_err(store::error(&name, what)),
        }
    }

    /// The schema version of the journal (PostgreSQL's is always the latest).
    fn version(&self) -> Result<i64> {
        match &self.store {
            Store::Sqlite(conn) => conn
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .query_row("PRAGMA user_version", [], |r| r.get(0))
                .map_err(sql_error(&self.path, "read its schema version")),
            Store::Postgres(_) => Ok(MIGRATIONS.len() as i64),
        }
    }

    fn too_new(&self, version: i64) -> JournalError {
        JournalError(format!(
            "journal {}: schema version {version} was written by a newer retentiond (this one knows up to {}); upgrade retentiond, nothing was changed",
            self.path.display(),
            MIGRATIONS.len()
        ))
    }

    fn migrate(&self) -> Result<()> {
        let version = self.version()?;
        if version > MIGRATIONS.len() as i64 {
            return Err(self.too_new(version));
        }
        let Store::Sqlite(conn) = &self.store else {
            return Ok(());
        };
        if version == MIGRATIONS.len() as i64 {
            return Ok(());
        }
        // Every migration in one exclusive transaction that reads the version again inside
        // it: processes and threads opening a fresh journal at once wait for the first (the
        // busy timeout), then find the schema made and do nothing.
        let mut conn = conn.lock().unwrap_or_else(|e| e.into_inner());
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Exclusive)
            .map_err(sql_error(&self.path, "migrate"))?;
        let version: i64 = tx
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .map_err(sql_error(&self.path, "read the schema version"))?;
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(version.max(0) as usize) {
            tx.execute_batch(sql)
                .and_then(|_| tx.pragma_update(None, "user_version", i as i64 + 1))
                .map_err(sql_error(
                    &self.path,
                    &format!("migrate to schema version {}", i + 1),
                ))?;
        }
        tx.commit().map_err(sql_error(&self.path, "migrate"))
    }

    /// Takes the policy's run lock, or says which process holds it.
    pub fn lock(&self, policy: &str) -> Result<PolicyLock> {
        self.lock_watched(policy, Arc::default())
    }

    /// Takes the policy's run lock; with PostgreSQL, `lost` is set the moment the lock's
    /// session is found gone (the run must send no more deletions).
    pub fn lock_watched(&self, policy: &str, lost: Arc<AtomicBool>) -> Result<PolicyLock> {
        if let Store::Postgres(pg) = &self.store {
            let taken = pg
                .try_lock(pg::policy_key(policy), LOCK_CHECK, lost)
                .map_err(|e| {
                    JournalError(format!(
                        "journal {}: cannot take the run lock of policy {policy}: {e}",
                        self.path.display()
                    ))
                })?;
            return match taken {
                Some(lock) => {
                    if let Err(e) = self.record_holder(policy) {
                        tracing::warn!("{e}");
                    }
                    Ok(PolicyLock {
                        _file: None,
                        pg: Some(lock),
                    })
                }
                None => {
                    let holder = self.holder(policy).ok().flatten().unwrap_or_default();
                    Err(JournalError(format!(
                        "policy {policy} {LOCK_HELD}{holder}; skipped"
                    )))
                }
            };
        }
        let locks = files::private_subdir(&self.dir, "locks")?;
        // Policy names are letters, digits, `.`, `_` and `-`, never `.` or `..` alone.
        let path = locks.join(format!("{policy}.lock"));
        take_lock(&self.dir, &path, |pid| {
            format!("policy {policy} {LOCK_HELD}{pid}; skipped")
        })
    }

    /// Records this process as the holder of `policy`'s run lock (PostgreSQL), as it takes it.
    fn record_holder(&self, policy: &str) -> Result<()> {
        let host = host_name().unwrap_or_else(|| "unknown".into());
        self.tx("record the run lock's holder", |tx| {
            tx.execute(
                "INSERT INTO run_locks (policy, host, pid, taken_at) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (policy) DO UPDATE
                 SET host = EXCLUDED.host, pid = EXCLUDED.pid, taken_at = EXCLUDED.taken_at",
                sql_params![
                    policy,
                    &host,
                    i64::from(std::process::id()),
                    ms(Timestamp::now())
                ],
            )
            .map(drop)
        })
    }

    /// Who holds `policy`'s run lock, as its holder recorded it when it took it:
    /// ` (pid N on HOST since T)`.
    fn holder(&self, policy: &str) -> Result<Option<String>> {
        self.tx("read the run lock's holder", |tx| {
            Ok(tx
                .query_one(
                    "SELECT host, pid, taken_at FROM run_locks WHERE policy = $1",
                    sql_params![policy],
                )?
                .map(|r| {
                    format!(
                        " (pid {} on {} since {})",
                        r.int(1),
                        r.text(0),
                        from_ms(r.int(2))
                    )
                }))
        })
    }

    /// Claims a scheduled fire of `policy` for this host: `Ok(None)` when the claim is this
    /// host's, `Ok(Some(host))` when another host of the fleet claimed the same tick first.
    /// Ticks are the schedule's times, not the hosts' clocks: hosts a few seconds apart claim
    /// the same tick.
    pub fn claim_fire(&self, policy: &str, scheduled: Timestamp) -> Result<Option<String>> {
        let host = host_name().unwrap_or_else(|| "unknown".into());
        self.tx("claim a scheduled fire", |tx| {
            let claimed = tx.query_one(
                "INSERT INTO fire_claims (policy, scheduled_at, host, claimed_at)
                 VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING host",
                sql_params![policy, ms(scheduled), &host, ms(Timestamp::now())],
            )?;
            if claimed.is_some() {
                return Ok(None);
            }
            Ok(tx
                .query_one(
                    "SELECT host FROM fire_claims WHERE policy = $1 AND scheduled_at = $2",
                    sql_params![policy, ms(scheduled)],
                )?
                .map(|r| r.text(0)))
        })
    }

    pub fn begin_run(&self, run: &RunStart) -> Result<i64> {
        let policy = run.policy;
        let commit = git::head_commit(&policy.file);
        let host = host_name();
        self.tx("record the start of a run", |tx| {
            let row = tx.query_one(
                "INSERT INTO runs (policy, account, command, mode, dry_run, policy_file,
                                   policy_sha256, fingerprint, git_commit, pid, started_at,
                                   overrides, host)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING id",
                sql_params![
                    &policy.name,
                    &policy.account,
                    run.command,
                    policy.mode.as_str(),
                    run.dry_run,
                    absolute(&policy.file),
                    &policy.file_sha256,
                    &policy.fingerprint,
                    commit,
                    std::process::id() as i64,
                    ms(run.started_at),
                    (!run.overrides.is_empty()).then(|| run.overrides.join(",")),
                    host,
                ],
            )?;
            Ok(row.map_or(0, |r| r.int(0)))
        })
    }

    /// Records what a run's plan decided and how many complete backups each group listed, in
    /// one transaction.
    pub fn record_plan(
        &self,
        run: i64,
        plan: &PolicyPlan,
        counts: &BTreeMap<String, u64>,
        listing_drop_blocked: bool,
    ) -> Result<()> {
        self.tx("record the plan", |tx| {
            decisions_in(tx, run, plan)?;
            // With the inserts and the commit, in one round trip on PostgreSQL.
            counts_in(tx, run, plan, counts, listing_drop_blocked, LISTED)
        })
    }

    /// Whether a run records its plan's decisions beside its deletions
    /// ([`Journal::record_counts`], then [`Journal::record_decisions`] on a session of their
    /// own while the deletions go): on a database server, whose work on a large plan's
    /// decisions would otherwise hold back the first deletion (BENCHMARKS.md). SQLite takes
    /// one writer at a time: [`Journal::record_plan`] there.
    pub fn decisions_aside(&self) -> bool {
        self.on_server()
    }

    /// Whether the journal is on a database server (PostgreSQL), where a commit costs a round
    /// trip; on SQLite it costs a local sync.
    pub fn on_server(&self) -> bool {
        matches!(self.store, Store::Postgres(_))
    }

    /// What must be durable before a run deletes anything when its decisions are recorded
    /// beside the deletions: the listing counts (the next run's listing-drop baseline) and
    /// the plan's summary. The run is counted, not yet listed: what reads decisions looks at
    /// listed runs only, so a process that stops before [`Journal::record_decisions`]
    /// commits leaves a run they pass over, as if it had not listed (the grace period's
    /// clock, and the next run's spans, go on from the listed run before it).
    pub fn record_counts(
        &self,
        run: i64,
        plan: &PolicyPlan,
        counts: &BTreeMap<String, u64>,
        listing_drop_blocked: bool,
    ) -> Result<()> {
        self.tx("record the listing counts", |tx| {
            counts_in(tx, run, plan, counts, listing_drop_blocked, COUNTED)
        })
    }

    /// The rest of [`Journal::record_counts`]: the plan's decisions, in one transaction that
    /// marks the run listed as it commits.
    pub fn record_decisions(&self, run: i64, plan: &PolicyPlan) -> Result<()> {
        self.tx("record the plan's decisions", |tx| {
            decisions_in(tx, run, plan)?;
            // Last, with the commit: the run's row stays free for its intents' commits.
            tx.execute_each(
                "UPDATE runs SET listed = 1 WHERE id = $1",
                &[sql_params![run].to_vec()],
            )
        })
    }

    pub fn finish_run(&self, run: i64, end: &RunEnd) -> Result<()> {
        self.tx("record the end of a run", |tx| {
            tx.execute(
                "UPDATE runs SET ended_at = $2, outcome = $3, message = $4 WHERE id = $1",
                sql_params![run, ms(Timestamp::now()), end.outcome, end.message],
            )
            .map(drop)
        })
    }

    /// Records the intent to delete `batch`, committed before the call is sent. Returns the
    /// deletion rows, in the batch's order.
    pub fn intent(
        &self,
        run: i64,
        policy: &str,
        account: &str,
        batch: &[Backup],
    ) -> Result<Vec<i64>> {
        let intents: Vec<&Backup> = batch.iter().collect();
        self.record_deletions(run, policy, account, &Settled::default(), &intents)
    }

    pub fn outcome(&self, deletion: i64, outcome: Outcome, error: Option<&str>) -> Result<()> {
        let settled = Settled {
            outcomes: &[(deletion, outcome, error)],
            withdrawn: &[],
        };
        self.record_deletions(0, "", "", &settled, &[]).map(drop)
    }

    /// In one transaction (one round trip on PostgreSQL): what became of earlier intents
    /// (`settled`), and the intents to delete `intents`, committed before their calls are
    /// sent. Returns the intents' deletion rows, in their order.
    pub fn record_deletions(
        &self,
        run: i64,
        policy: &str,
        account: &str,
        settled: &Settled,
        intents: &[&Backup],
    ) -> Result<Vec<i64>> {
        let Settled {
            outcomes: settled,
            withdrawn,
        } = *settled;
        if settled.is_empty() && withdrawn.is_empty() && intents.is_empty() {
            return Ok(Vec::new());
        }
        let now = ms(Timestamp::now());
        // Deleted without a word (nearly all of them): one statement per range of consecutive
        // rows (a commit's intents take consecutive ids, and their outcomes mostly come back
        // together), and one per chunk of the rows left over.
        let (plain, worded): (Vec<_>, Vec<_>) = settled
            .iter()
            .partition(|(_, outcome, error)| *outcome == Outcome::Deleted && error.is_none());
        let mut plain: Vec<i64> = plain.iter().map(|(deletion, _, _)| *deletion).collect();
        plain.sort_unstable();
        let (ranges, scattered) = ranges(&plain);
        let mut updates: Vec<(String, Vec<Value>)> = Vec::new();
        for (first, last) in ranges {
            updates.push((
                "UPDATE deletions SET outcome = $1, outcome_at = $2, error = NULL
                 WHERE id BETWEEN $3 AND $4"
                    .into(),
                sql_params![Outcome::Deleted.as_str(), now, first, last].to_vec(),
            ));
        }
        for chunk in multi_row(&scattered) {
            let sql = format!(
                "UPDATE deletions SET outcome = $1, outcome_at = $2, error = NULL WHERE id IN ({})",
                placeholders(3, chunk.len())
            );
            let mut params = sql_params![Outcome::Deleted.as_str(), now].to_vec();
            params.extend(chunk.iter().map(|deletion| Value::Int(*deletion)));
            updates.push((sql, params));
        }
        for chunk in multi_row(withdrawn) {
            let sql = format!(
                "DELETE FROM deletions WHERE id IN ({})",
                placeholders(1, chunk.len())
            );
            updates.push((sql, chunk.iter().map(|id| Value::Int(*id)).collect()));
        }
        const UPDATE: &str =
            "UPDATE deletions SET outcome = $2, outcome_at = $3, error = $4 WHERE id = $1";
        for (deletion, outcome, error) in worded {
            let params = sql_params![deletion, outcome.as_str(), now, error].to_vec();
            updates.push((UPDATE.to_string(), params));
        }
        // Intents: their run counts the commit (a reconcile checks the runs that count more
        // commits than it checked); one multi-row statement per chunk, whose `$1`-`$4` are
        // the same for each row.
        if !intents.is_empty() {
            updates.push((
                "UPDATE runs SET intents_recorded = intents_recorded + 1 WHERE id = $1".into(),
                sql_params![run].to_vec(),
            ));
        }
        let what = match intents {
            [] => "record a deletion outcome",
            _ => "record a deletion intent",
        };
        let failed = |e: String| store::error(&self.path.display().to_string(), what)(e);
        let rows = match &self.store {
            // One chunk's statement at a time: a commit of thousands of intents does not hold
            // all their parameters and answers at once (0.4 MB of a run's heap at 50,000).
            Store::Sqlite(_) => self.tx(what, |tx| {
                for (sql, params) in &updates {
                    tx.execute(sql, params)?;
                }
                let mut rows = Vec::with_capacity(intents.len());
                for chunk in multi_row(intents) {
                    let (sql, params) = intents_statement(run, policy, account, now, chunk);
                    rows.extend(intent_rows(chunk, &tx.query(&sql, &params)?)?);
                }
                Ok(rows)
            })?,
            // Every statement in one round trip.
            Store::Postgres(pg) => {
                let inserts: Vec<(String, Vec<Value>)> = multi_row(intents)
                    .map(|chunk| intents_statement(run, policy, account, now, chunk))
                    .collect();
                let answered = pg.committed_all(&updates, &inserts).map_err(failed)?;
                intent_rows(intents, &answered).map_err(failed)?
            }
        };
        Ok(rows)
    }

    /// Settles what interrupted runs of `policy` left open, against a fresh listing of the
    /// policy (`listed`: its `(group, id)` pairs): an intent whose backup is no longer listed
    /// is recorded as deleted, one still listed as not deleted. Earlier runs of the policy
    /// that never finished are marked `interrupted`. Call with the policy's lock held and
    /// before this run deletes anything.
    pub fn reconcile(
        &self,
        policy: &str,
        current_run: i64,
        listed: &[Backup],
    ) -> Result<Vec<Reconciled>> {
        let now = ms(Timestamp::now());
        self.tx("reconcile interrupted deletions", |tx| {
            // Runs whose intents were not all checked yet; each with the count of its commits
            // of intents, recorded as checked below. A commit after this read (a run that lost
            // its lock and has not noticed yet) leaves its run to the next reconcile.
            let unchecked = tx.query(
                "SELECT id, intents_recorded FROM runs
                 WHERE policy = $1 AND intents_recorded > intents_checked AND id != $2
                 ORDER BY id",
                sql_params![policy, current_run],
            )?;
            let mut open = Vec::new();
            for run in &unchecked {
                open.extend(tx.query(
                    "SELECT id, run_id, backup_id, grp FROM deletions
                     WHERE run_id = $1 AND outcome IS NULL ORDER BY id",
                    sql_params![run.int(0)],
                )?);
            }
            // The listed status of each open intent's backup, found in one pass: nothing the
            // size of the listing is built.
            let mut status: HashMap<(String, String), Option<Status>> = open
                .iter()
                .map(|row| ((row.text(3), row.text(2)), None))
                .collect();
            if !status.is_empty() {
                for b in listed {
                    if let Some(s) = status.get_mut(&(b.group.to_string(), b.id.to_string())) {
                        *s = Some(b.status);
                    }
                }
            }
            let mut settled = Vec::new();
            for row in open {
                let (deletion, run, id, group) = (row.int(0), row.int(1), row.text(2), row.text(3));
                let interrupted = format!(
                    "run #{run} was interrupted before recording this outcome; run #{current_run}'s fresh listing"
                );
                let (outcome, note) = match status[&(group.clone(), id.clone())] {
                    None => (
                        Outcome::Deleted,
                        format!("{interrupted} no longer shows the backup"),
                    ),
                    // The provider is deleting it (a CSBS task): wait for it, never resend.
                    Some(Status::InProgress) => (
                        Outcome::Pending,
                        format!("{interrupted} shows it being deleted"),
                    ),
                    Some(_) => (
                        Outcome::NotDeleted,
                        format!("{interrupted} still shows the backup"),
                    ),
                };
                tx.execute(
                    "UPDATE deletions SET outcome = $2, outcome_at = $3, error = $4, reconciled = 1
                     WHERE id = $1",
                    sql_params![deletion, outcome.as_str(), now, note],
                )?;
                settled.push(Reconciled {
                    id,
                    group,
                    run,
                    outcome: outcome.as_str(),
                });
            }
            for run in &unchecked {
                tx.execute(
                    "UPDATE runs SET intents_checked = $2 WHERE id = $1",
                    sql_params![run.int(0), run.int(1)],
                )?;
            }
            tx.execute(
                "UPDATE runs SET outcome = 'interrupted',
                     message = 'the process stopped before the run ended; settled by run #' || $3
                 WHERE policy = $1 AND ended_at IS NULL AND id != $2",
                sql_params![policy, current_run, current_run.to_string()],
            )?;
            Ok(settled)
        })
    }

    /// The complete-backup count per group that the policy's last accepted listing left
    /// behind (what it listed, minus what that run deleted), for the listing-drop guard.
    /// Listings that the guard itself blocked never become the baseline; a run whose
    /// decisions were never recorded ([`Journal::record_counts`]) does.
    pub fn baseline(&self, policy: &str, before_run: Option<i64>) -> Result<Option<Baseline>> {
        self.tx("read the last listing counts", |tx| {
            let run = tx.query_one(
                BASELINE_RUN,
                sql_params![policy, before_run.unwrap_or(i64::MAX)],
            )?;
            let Some(run) = run else {
                return Ok(None);
            };
            let (run, started) = (run.int(0), run.int(1));
            let mut counts = BTreeMap::new();
            for row in tx.query(
                "SELECT grp, complete - (SELECT count(*) FROM deletions d
                                         WHERE d.run_id = c.run_id AND d.grp = c.grp
                                           AND d.outcome IN ('deleted', 'pending'))
                 FROM listing_counts c WHERE run_id = $1",
                sql_params![run],
            )? {
                counts.insert(row.text(0), row.int(1).max(0) as u64);
            }
            Ok(Some(Baseline {
                run,
                at: from_ms(started),
                counts,
            }))
        })
    }

    /// Whether this version of the policy (its fingerprint) may delete beyond the bound for
    /// new and changed policies: a person approved it (`retentiond approve`), or a run of it
    /// was allowed to delete before (an enforce run that was not blocked or refused).
    pub fn approved(&self, policy: &str, fingerprint: &str) -> Result<bool> {
        let has_approvals = self.version()? >= 3;
        self.tx("read the policy's approvals", |tx| {
            let ran = tx
                .query_one(
                    "SELECT count(*) FROM runs WHERE policy = $1 AND fingerprint = $2
                        AND mode = 'enforce' AND dry_run IS NULL
                        AND outcome IN ('ok', 'deletions-failed', 'stopped')",
                    sql_params![policy, fingerprint],
                )?
                .is_some_and(|r| r.int(0) > 0);
            if ran || !has_approvals {
                return Ok(ran);
            }
            Ok(tx
                .query_one(
                    "SELECT count(*) FROM approvals WHERE policy = $1 AND fingerprint = $2",
                    sql_params![policy, fingerprint],
                )?
                .is_some_and(|r| r.int(0) > 0))
        })
    }

    /// Every approval, newest first (`approve --list`); of `policy` only when given.
    pub fn approvals(&self, policy: Option<&str>) -> Result<Vec<Approval>> {
        if self.version()? < 3 {
            return Ok(Vec::new());
        }
        self.tx("read the approvals", |tx| {
            let rows = tx.query(
                "SELECT policy, fingerprint, approved_at, approved_by, policy_file FROM approvals
                 WHERE $1 = '' OR policy = $1 ORDER BY approved_at DESC, policy",
                sql_params![policy.unwrap_or("")],
            )?;
            Ok(rows
                .into_iter()
                .map(|r| Approval {
                    policy: r.text(0),
                    fingerprint: r.text(1),
                    at: from_ms(r.int(2)),
                    by: r.opt_text(3),
                    policy_file: r.text(4),
                })
                .collect())
        })
    }

    /// Records a person's approval of this version of the policy: its runs may delete beyond
    /// the bound for new and changed policies. Returns false when it was approved already.
    pub fn approve(&self, policy: &crate::policy::Policy, by: Option<&str>) -> Result<bool> {
        self.tx("record the approval", |tx| {
            tx.execute(
                "INSERT INTO approvals (policy, fingerprint, approved_at, approved_by, policy_file)
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                sql_params![
                    &policy.name,
                    &policy.fingerprint,
                    ms(Timestamp::now()),
                    by,
                    absolute(&policy.file)
                ],
            )
            .map(|n| n > 0)
        })
    }

    /// Records that the daemon started `policy` for its fire scheduled at `scheduled`.
    pub fn record_fire(
        &self,
        policy: &str,
        scheduled: Timestamp,
        started: Timestamp,
    ) -> Result<()> {
        self.tx("record a scheduled fire", |tx| {
            tx.execute(
                "INSERT INTO fires (policy, scheduled_at, started_at) VALUES ($1, $2, $3)
                 ON CONFLICT (policy) DO UPDATE SET scheduled_at = $2, started_at = $3",
                sql_params![policy, ms(scheduled), ms(started)],
            )
            .map(drop)
        })
    }

    /// The last scheduled fire the daemon started for `policy`.
    pub fn last_fire(&self, policy: &str) -> Result<Option<Timestamp>> {
        if self.version()? < 2 {
            return Ok(None);
        }
        self.tx("read the last scheduled fire", |tx| {
            Ok(tx
                .query_one(
                    "SELECT scheduled_at FROM fires WHERE policy = $1",
                    sql_params![policy],
                )?
                .and_then(|r| r.opt_int(0))
                .map(from_ms))
        })
    }

    /// Deletions of `policy` that a provider accepted and may still be carrying out: `(row,
    /// group, id)`, oldest first.
    pub fn pending(&self, policy: &str) -> Result<Vec<(i64, String, String)>> {
        self.tx("read pending deletions", |tx| {
            Ok(tx
                .query(
                    "SELECT id, grp, backup_id FROM deletions
                     WHERE policy = $1 AND outcome = 'pending' ORDER BY id",
                    sql_params![policy],
                )?
                .into_iter()
                .map(|r| (r.int(0), r.text(1), r.text(2)))
                .collect())
        })
    }

    /// Runs, newest first, with their listing counts and deletions.
    pub fn history(&self, filter: &HistoryFilter) -> Result<Vec<RunRecord>> {
        let version = self.version()?;
        // Journals before schema 3 (read as they are) have no overrides, before 5 no host.
        let overrides = if version >= 3 { "overrides" } else { "NULL" };
        let host = if version >= HOSTS { "host" } else { "NULL" };
        let waiting = if version >= holds::HOLDS {
            "waiting"
        } else {
            "NULL"
        };
        let approved = |column: &str| match version >= 3 {
            true => format!(
                "(SELECT a.{column} FROM approvals a
                  WHERE a.policy = runs.policy AND a.fingerprint = runs.fingerprint)"
            ),
            false => "NULL".to_string(),
        };
        let (approved_at, approved_by) = (approved("approved_at"), approved("approved_by"));
        self.tx("read the history", |tx| {
            let mut sql = format!(
                "SELECT id, policy, account, command, mode, dry_run, started_at, ended_at, outcome,
                        message, policy_file, policy_sha256, git_commit, listed, keep, delete_count,
                        ignore, {overrides}, {host}, {approved_at}, {approved_by}, {waiting}
                 FROM runs WHERE 1 = 1"
            );
            let mut args: Vec<Value> = Vec::new();
            let mark = |args: &mut Vec<Value>, value: Value| {
                args.push(value);
                format!("${}", args.len())
            };
            for (column, values) in [
                ("policy", &filter.policies),
                ("coalesce(outcome, 'unfinished')", &filter.outcomes),
            ] {
                if values.is_empty() {
                    continue;
                }
                let marks: Vec<String> = values.iter().map(|v| mark(&mut args, v.into())).collect();
                sql.push_str(&format!(" AND {column} IN ({})", marks.join(", ")));
            }
            if let Some(since) = filter.since {
                sql.push_str(&format!(
                    " AND started_at >= {}",
                    mark(&mut args, ms(since).into())
                ));
            }
            if let Some(until) = filter.until {
                sql.push_str(&format!(
                    " AND started_at <= {}",
                    mark(&mut args, ms(until).into())
                ));
            }
            if let Some(run) = filter.run {
                sql.push_str(&format!(" AND id = {}", mark(&mut args, run.into())));
            }
            let limit = (filter.limit.min(i64::MAX as usize) as i64).into();
            sql.push_str(&format!(
                " ORDER BY id DESC LIMIT {}",
                mark(&mut args, limit)
            ));
            let mut runs = Vec::new();
            for r in tx.query(&sql, &args)? {
                let summary = r.flag(13).then(|| RunSummary {
                    keep: r.int(14).max(0) as u64,
                    delete: r.int(15).max(0) as u64,
                    ignore: r.int(16).max(0) as u64,
                    waiting: r.opt_int(21).unwrap_or(0).max(0) as u64,
                });
                runs.push(RunRecord {
                    id: r.int(0),
                    policy: r.text(1),
                    account: r.text(2),
                    command: r.text(3),
                    mode: r.text(4),
                    dry_run: r.opt_text(5),
                    started_at: from_ms(r.int(6)),
                    ended_at: r.opt_int(7).map(from_ms),
                    outcome: r.opt_text(8),
                    message: r.opt_text(9),
                    policy_file: r.text(10),
                    policy_sha256: r.text(11),
                    git_commit: r.opt_text(12),
                    summary,
                    overrides: r
                        .opt_text(17)
                        .map(|o| o.split(',').map(str::to_string).collect())
                        .unwrap_or_default(),
                    host: r.opt_text(18),
                    approved: r.opt_int(19).map(|at| Approval {
                        by: r.opt_text(20),
                        at: from_ms(at),
                        fingerprint: String::new(),
                        policy: String::new(),
                        policy_file: String::new(),
                    }),
                    listing: BTreeMap::new(),
                    deletions: Vec::new(),
                });
            }
            for run in &mut runs {
                for row in tx.query(
                    "SELECT grp, complete FROM listing_counts WHERE run_id = $1 ORDER BY grp",
                    sql_params![run.id],
                )? {
                    run.listing.insert(row.text(0), row.int(1).max(0) as u64);
                }
                run.deletions = tx
                    .query(
                        "SELECT backup_id, grp, policy, account, created_at, intent_at, outcome,
                                outcome_at, error, reconciled
                         FROM deletions WHERE run_id = $1 ORDER BY grp, created_at DESC, id",
                        sql_params![run.id],
                    )?
                    .into_iter()
                    .map(|r| DeletionRecord {
                        id: r.text(0),
                        group: r.text(1),
                        policy: r.text(2),
                        account: r.text(3),
                        created_at: r.text(4),
                        intent_at: from_ms(r.int(5)),
                        outcome: r.opt_text(6),
                        outcome_at: r.opt_int(7).map(from_ms),
                        error: r.opt_text(8),
                        reconciled: r.flag(9),
                    })
                    .collect();
            }
            Ok(runs)
        })
    }

    /// The names of the policies the journal has runs of, in name order.
    pub fn policies(&self) -> Result<Vec<String>> {
        self.tx("read the policy names", |tx| {
            Ok(tx
                .query("SELECT DISTINCT policy FROM runs ORDER BY policy", &[])?
                .into_iter()
                .map(|r| r.text(0))
                .collect())
        })
    }

    /// Every decision a run recorded, in plan order (groups in name order, newest first); none
    /// for a run that listed nothing, or whose decisions `journal_keep` pruned.
    pub fn decisions(&self, run: i64) -> Result<Vec<DecisionRecord>> {
        let spans = self.version()? >= SPANS;
        self.tx("read a run's decisions", |tx| {
            let sql = if spans {
                "SELECT backup_id, grp, created_at, status, action, reasons, note
                 FROM decision_spans
                 WHERE policy = (SELECT policy FROM runs WHERE id = $1 AND listed = 1)
                   AND first_run <= $1 AND last_run >= $1
                 ORDER BY grp, created_at DESC, rowid"
            } else {
                "SELECT backup_id, grp, created_at, status, action, reasons, note
                 FROM decisions WHERE run_id = $1 ORDER BY rowid"
            };
            Ok(tx
                .query(sql, sql_params![run])?
                .into_iter()
                .map(|r| DecisionRecord {
                    id: r.text(0),
                    group: r.text(1),
                    created_at: r.text(2),
                    status: r.text(3),
                    action: r.text(4),
                    reasons: serde_json::from_str(&r.text(5)).unwrap_or_default(),
                    note: r.opt_text(6),
                })
                .collect())
        })
    }

    /// `journal_keep`: forgets what runs of `policy` started before `cutoff` decided and
    /// listed. Their run records go too, except those of runs that deleted something (the
    /// deletions are the audit trail and stay), the run whose listing is the listing-drop
    /// baseline, and runs with deletions still open. A version of the policy that ran in
    /// enforce mode keeps its standing as approved. Returns the number of runs forgotten.
    pub fn prune(&self, policy: &str, cutoff: Timestamp) -> Result<usize> {
        if self.version()? < SPANS {
            return Ok(0);
        }
        let claims = self.version()? >= HOSTS;
        self.tx("prune old runs (journal_keep)", |tx| {
            // The baseline's run, without its counts (which read the run's deletions).
            let baseline = tx
                .query_one(BASELINE_RUN, sql_params![policy, i64::MAX])?
                .map(|r| r.int(0));
            if claims {
                // The fleet's claims of old ticks; the latest stays, whatever its age.
                tx.execute(
                    "DELETE FROM fire_claims WHERE policy = $1 AND scheduled_at < $2
                       AND scheduled_at < (SELECT max(scheduled_at) FROM fire_claims
                                           WHERE policy = $1)",
                    sql_params![policy, ms(cutoff)],
                )?;
            }
            // Runs before the horizon lose their decisions and listing counts.
            let horizon = tx
                .query_one(
                    "SELECT coalesce(min(id), $3) FROM runs
                     WHERE policy = $1 AND (started_at >= $2 OR id = $3)",
                    sql_params![policy, ms(cutoff), baseline.unwrap_or(i64::MAX)],
                )?
                .map_or(i64::MAX, |r| r.int(0));
            tx.execute(
                "INSERT INTO approvals (policy, fingerprint, approved_at, approved_by, policy_file)
                 SELECT policy, fingerprint, max(started_at),
                        'its run #' || max(id) || ' in enforce mode', max(policy_file)
                 FROM runs WHERE policy = $1 AND id < $2 AND mode = 'enforce' AND dry_run IS NULL
                   AND outcome IN ('ok', 'deletions-failed', 'stopped')
                 GROUP BY policy, fingerprint
                 ON CONFLICT DO NOTHING",
                sql_params![policy, horizon],
            )?;
            tx.execute(
                "DELETE FROM decision_spans WHERE policy = $1 AND last_run < $2",
                sql_params![policy, horizon],
            )?;
            tx.execute(
                "UPDATE decision_spans SET first_run = $2 WHERE policy = $1 AND first_run < $2",
                sql_params![policy, horizon],
            )?;
            tx.execute(
                "DELETE FROM listing_counts
                 WHERE run_id IN (SELECT id FROM runs WHERE policy = $1 AND id < $2)",
                sql_params![policy, horizon],
            )?;
            let forgotten = tx.execute(
                "DELETE FROM runs WHERE policy = $1 AND id < $2
                   AND NOT EXISTS (SELECT 1 FROM deletions d WHERE d.run_id = runs.id)",
                sql_params![policy, horizon],
            )?;
            Ok(forgotten as usize)
        })
    }

    /// The policy's last finished run, for the daemon's metrics after a restart.
    pub fn last_run(&self, policy: &str) -> Result<Option<LastRun>> {
        let spans = self.version()? >= SPANS;
        self.tx("read the policy's last run", |tx| {
            let last = tx.query_one(
                "SELECT id, started_at, ended_at, outcome, coalesce(keep, 0),
                        coalesce(delete_count, 0) - (SELECT count(*) FROM deletions d
                            WHERE d.run_id = runs.id
                              AND d.outcome IN ('deleted', 'pending', 'failed'))
                 FROM runs WHERE policy = $1 AND outcome IS NOT NULL
                 ORDER BY id DESC LIMIT 1",
                sql_params![policy],
            )?;
            let Some(last) = last else {
                return Ok(None);
            };
            let (started, ended, outcome) = (last.int(1), last.opt_int(2), last.text(3));
            let (keep, would_delete) = (last.int(4), last.int(5));
            let last_success = tx
                .query_one(
                    "SELECT max(started_at) FROM runs
                     WHERE policy = $1 AND outcome IN ('ok', 'dry-run')",
                    sql_params![policy],
                )?
                .and_then(|r| r.opt_int(0));
            let mut newest = BTreeMap::new();
            if spans {
                let listed = tx
                    .query_one(
                        "SELECT max(id) FROM runs WHERE policy = $1 AND listed = 1",
                        sql_params![policy],
                    )?
                    .and_then(|r| r.opt_int(0));
                for row in tx.query(
                    "SELECT grp, max(created_at) FROM decision_spans
                     WHERE policy = $1 AND status = 'complete' AND action != 'ignore'
                       AND first_run <= $2 AND last_run >= $2
                     GROUP BY grp",
                    sql_params![policy, listed.unwrap_or(-1)],
                )? {
                    if let Ok(at) = row.text(1).parse::<Timestamp>() {
                        newest.insert(row.text(0), at);
                    }
                }
            }
            let took = ended.map_or(0, |e| (e - started).max(0));
            Ok(Some(LastRun {
                started_at: from_ms(started),
                took: Duration::from_millis(took as u64),
                outcome: RUN_OUTCOMES
                    .iter()
                    .find(|o| **o == outcome)
                    .copied()
                    .unwrap_or("unfinished"),
                keep: keep.max(0) as u64,
                would_delete: would_delete.max(0) as u64,
                last_success: last_success.map(from_ms),
                newest,
            }))
        })
    }

    /// Rewrites the journal file without the space that pruned runs left (SQLite `VACUUM`).
    /// Returns its size before and after, in bytes.
    pub fn vacuum(&self) -> Result<(u64, u64)> {
        let size = || {
            let file = |p: &Path| fs::metadata(p).map(|m| m.len()).unwrap_or(0);
            let mut wal = self.path.clone().into_os_string();
            wal.push("-wal");
            file(&self.path) + file(Path::new(&wal))
        };
        match &self.store {
            Store::Sqlite(conn) => {
                let before = size();
                conn.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .execute_batch("VACUUM; PRAGMA wal_checkpoint(TRUNCATE);")
                    .map_err(sql_error(&self.path, "vacuum"))?;
                Ok((before, size()))
            }
            // PostgreSQL's autovacuum reclaims the space; the sizes are the database's.
            Store::Postgres(_) => {
                let size = || {
                    self.tx("read the database size", |tx| {
                        Ok(tx
                            .query_one("SELECT pg_database_size(current_database())", &[])?
                            .map_or(0, |r| r.int(0).max(0) as u64))
                    })
                };
                let before = size()?;
                Ok((before, size()?))
            }
        }
    }
}

/// Takes the daemon's lock on a state folder (creating it): one daemon per host and journal.
pub fn lock_daemon(state_dir: &Path) -> Result<PolicyLock> {
    create_private_dir(state_dir)?;
    take_lock(state_dir, &state_dir.join("daemon.lock"), |pid| {
        format!(
            "another retentiond daemon{pid} uses the state folder {}; one daemon per state_dir",
            state_dir.display()
        )
    })
}

/// This host's name, as runs and fire claims record it: `$RETENTIOND_HOST` (hosts that share
/// a name, containers), else the kernel's host name, else `/etc/hostname`, else `$HOSTNAME`.
pub fn host_name() -> Option<String> {
    if let Some(name) = std::env::var("RETENTIOND_HOST")
        .ok()
        .filter(|h| !h.trim().is_empty())
    {
        return Some(name.trim().to_string());
    }
    fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| fs::read_to_string("/etc/hostname"))
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
}

/// Takes an advisory lock on `path` (writing our pid into it), or says who holds it.
fn take_lock(state_dir: &Path, path: &Path, held: impl Fn(&str) -> String) -> Result<PolicyLock> {
    let mut file = files::open_private(state_dir, path)?;
    match file.try_lock() {
        Ok(()) => {
            use std::io::{Seek, Write};
            let _ = file.set_len(0);
            let _ = file.seek(std::io::SeekFrom::Start(0));
            let _ = writeln!(file, "{}", std::process::id());
            Ok(PolicyLock {
                _file: Some(file),
                pg: None,
            })
        }
        Err(fs::TryLockError::WouldBlock) => {
            let holder = fs::read_to_string(path).unwrap_or_default();
            let holder = holder.trim();
            let pid = if holder.is_empty() {
                String::new()
            } else {
                format!(" (pid {holder})")
            };
            Err(JournalError(format!(
                "{} (lock {})",
                held(&pid),
                path.display()
            )))
        }
        Err(fs::TryLockError::Error(e)) => {
            Err(JournalError(format!("cannot lock {}: {e}", path.display())))
        }
    }
}

/// A policy file's absolute path, as the journal records it (the same file read from another
/// working folder is the same file).
fn absolute(file: &Path) -> String {
    std::path::absolute(file)
        .unwrap_or_else(|_| file.to_path_buf())
        .display()
        .to_string()
}

#[cfg(test)]
mod tests;
