use super::*;
use crate::model::Status;
use crate::plan::plan;
use crate::policy::{Policy, policies_from_str};
use jiff::tz::TimeZone;

fn policy() -> Policy {
    policies_from_str(
        Path::new("p.yaml"),
        "name: p\naccount: a\nmode: enforce\nkeep: {last: 2}\n",
    )
    .0
    .remove(0)
}

fn backups(group: &str, n: i64) -> Vec<Backup> {
    (0..n)
        .map(|i| {
            Backup::new(
                &format!("{group}-{i}"),
                group,
                Timestamp::from_second(1_700_000_000 - i * 86_400).unwrap(),
                Status::Complete,
            )
        })
        .collect()
}

fn start(journal: &Journal, policy: &Policy) -> i64 {
    journal
        .begin_run(&RunStart {
            policy,
            command: "run",
            dry_run: None,
            started_at: Timestamp::now(),
            overrides: Vec::new(),
        })
        .unwrap()
}

/// A run that listed `listing`, recorded its plan and deleted `deleted` (ids).
fn finished_run(journal: &Journal, listing: &[Backup], deleted: &[&str], blocked: bool) -> i64 {
    let policy = policy();
    let run = start(journal, &policy);
    let plan = plan(&policy, listing, Timestamp::now(), &TimeZone::UTC);
    let counts = crate::plan::complete_counts(listing);
    journal.record_plan(run, &plan, &counts, blocked).unwrap();
    let doomed: Vec<Backup> = listing
        .iter()
        .filter(|b| deleted.contains(&b.id.as_str()))
        .cloned()
        .collect();
    for row in journal.intent(run, "p", "a", &doomed).unwrap() {
        journal.outcome(row, Outcome::Deleted, None).unwrap();
    }
    journal
        .finish_run(
            run,
            &RunEnd {
                outcome: "ok",
                message: None,
            },
        )
        .unwrap();
    run
}

fn all_runs(journal: &Journal) -> Vec<RunRecord> {
    journal
        .history(&HistoryFilter {
            limit: 100,
            ..HistoryFilter::default()
        })
        .unwrap()
}

#[test]
fn creates_the_state_dir_migrates_once_and_refuses_a_newer_schema() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state/nested");
    let journal = Journal::open(&state).unwrap();
    assert_eq!(journal.version().unwrap(), MIGRATIONS.len() as i64);
    finished_run(&journal, &backups("g", 3), &["g-2"], false);
    drop(journal);
    use std::os::unix::fs::PermissionsExt;
    let mode = fs::metadata(&state).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700, "the state folder is private");

    // Reopening keeps what was written.
    let journal = Journal::open(&state).unwrap();
    assert_eq!(all_runs(&journal).len(), 1);
    journal
        .conn()
        .pragma_update(None, "user_version", 99)
        .unwrap();
    drop(journal);
    for result in [
        Journal::open(&state).map(drop),
        Journal::open_read_only(&state).map(drop),
    ] {
        let err = result.unwrap_err().to_string();
        assert!(
            err.contains("schema version 99 was written by a newer retentiond"),
            "{err}"
        );
    }
}

#[test]
fn read_only_open_of_a_missing_journal_is_none_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    assert!(Journal::open_read_only(&state).unwrap().is_none());
    assert!(!state.exists());
}

#[test]
fn history_holds_each_run_with_its_counts_and_deletions() {
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::open(dir.path()).unwrap();
    let mut listing = backups("g", 4);
    listing.extend(backups("h", 2));
    let run = finished_run(&journal, &listing, &["g-2", "g-3"], false);
    let runs = all_runs(&journal);
    assert_eq!(runs.len(), 1);
    let record = &runs[0];
    assert_eq!(record.id, run);
    assert_eq!(record.policy, "p");
    assert_eq!(record.outcome.as_deref(), Some("ok"));
    assert_eq!(record.policy_sha256, policy().file_sha256);
    assert_eq!(
        record.listing,
        BTreeMap::from([("g".to_string(), 4), ("h".to_string(), 2)])
    );
    let deleted: Vec<(&str, Option<&str>)> = record
        .deletions
        .iter()
        .map(|d| (d.id.as_str(), d.outcome.as_deref()))
        .collect();
    assert_eq!(
        deleted,
        [("g-2", Some("deleted")), ("g-3", Some("deleted"))]
    );
    let decisions = journal.decisions(run).unwrap();
    assert_eq!(decisions.len(), 6);
    assert_eq!(decisions[0].reasons, ["last"]);

    let filtered = journal
        .history(&HistoryFilter {
            policies: vec!["other".into()],
            limit: 10,
            ..HistoryFilter::default()
        })
        .unwrap();
    assert!(filtered.is_empty());
    let by_outcome = journal
        .history(&HistoryFilter {
            outcomes: vec!["blocked".into()],
            limit: 10,
            ..HistoryFilter::default()
        })
        .unwrap();
    assert!(by_outcome.is_empty());
}

#[test]
fn reconcile_settles_open_intents_against_the_listing_and_marks_the_run_interrupted() {
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::open(dir.path()).unwrap();
    let policy = policy();
    let listing = backups("g", 4);
    let crashed = start(&journal, &policy);
    journal.intent(crashed, "p", "a", &listing[2..]).unwrap();
    // g-2 vanished (the delete went through before the crash); g-3 is still listed.
    let current = start(&journal, &policy);
    let still: Vec<Backup> = backups("g", 4)
        .into_iter()
        .filter(|b| b.id != "g-2")
        .collect();
    let settled = journal.reconcile("p", current, &still).unwrap();
    assert_eq!(
        settled,
        [
            Reconciled {
                id: "g-2".into(),
                group: "g".into(),
                run: crashed,
                outcome: "deleted"
            },
            Reconciled {
                id: "g-3".into(),
                group: "g".into(),
                run: crashed,
                outcome: "not_deleted"
            },
        ]
    );
    let runs = all_runs(&journal);
    let old = runs.iter().find(|r| r.id == crashed).unwrap();
    assert_eq!(old.outcome.as_deref(), Some("interrupted"));
    assert!(old.deletions.iter().all(|d| d.reconciled));
    let current_run = runs.iter().find(|r| r.id == current).unwrap();
    assert_eq!(current_run.outcome, None, "the current run is left alone");
    // Settled once: nothing is left open.
    assert!(journal.reconcile("p", current, &still).unwrap().is_empty());
}

/// What undoes migration 7 (intents counted on their runs), for journals taken back to an
/// older version.
const UNDO_OPEN_BY_RUN: &str = "DROP INDEX runs_unchecked;
    ALTER TABLE runs DROP COLUMN intents_recorded; ALTER TABLE runs DROP COLUMN intents_checked;
    CREATE INDEX deletions_open ON deletions (policy) WHERE outcome IS NULL;";

/// A run that lost its lock may still commit intents after another run reconciled it: the
/// next reconcile finds them. A run whose intents were all checked is not read again.
#[test]
fn intents_committed_after_a_reconcile_are_found_by_the_next() {
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::open(dir.path()).unwrap();
    let policy = policy();
    let listing = backups("g", 4);
    let late = start(&journal, &policy);
    journal.intent(late, "p", "a", &listing[..1]).unwrap();
    let second = start(&journal, &policy);
    assert_eq!(journal.reconcile("p", second, &[]).unwrap().len(), 1);
    journal.intent(late, "p", "a", &listing[1..2]).unwrap();
    let third = start(&journal, &policy);
    let settled = journal.reconcile("p", third, &listing).unwrap();
    assert_eq!(
        settled,
        [Reconciled {
            id: "g-1".into(),
            group: "g".into(),
            run: late,
            outcome: "not_deleted"
        }]
    );
    let unchecked: i64 = journal
        .conn()
        .query_row(
            "SELECT count(*) FROM runs WHERE intents_recorded > intents_checked",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(unchecked, 0);
}

/// A journal from before runs counted their intents: migrating marks the runs with open
/// intents, and the next run settles them.
#[test]
fn open_intents_of_a_version_6_journal_are_settled_after_migrating() {
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::open(dir.path()).unwrap();
    let policy = policy();
    let listing = backups("g", 3);
    let crashed = start(&journal, &policy);
    journal.intent(crashed, "p", "a", &listing[1..]).unwrap();
    let settled = start(&journal, &policy);
    journal.intent(settled, "p", "a", &listing[..1]).unwrap();
    journal
        .conn()
        .execute_batch(&format!(
            "UPDATE deletions SET outcome = 'deleted' WHERE backup_id = 'g-0';
             {UNDO_OPEN_BY_RUN} PRAGMA user_version = 6;"
        ))
        .unwrap();
    drop(journal);
    let journal = Journal::open(dir.path()).unwrap();
    let marked: Vec<i64> = {
        let conn = journal.conn();
        let mut marked = conn
            .prepare("SELECT id FROM runs WHERE intents_recorded > intents_checked")
            .unwrap();
        marked
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap()
    };
    assert_eq!(marked, [crashed], "only the run with open intents");
    let current = start(&journal, &policy);
    let settled = journal.reconcile("p", current, &listing[2..]).unwrap();
    let outcomes: Vec<(&str, &str)> = settled.iter().map(|r| (r.id.as_str(), r.outcome)).collect();
    assert_eq!(outcomes, [("g-1", "deleted"), ("g-2", "not_deleted")]);
}

#[test]
fn an_intent_whose_backup_is_being_deleted_becomes_pending() {
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::open(dir.path()).unwrap();
    let policy = policy();
    let listing = backups("g", 3);
    let crashed = start(&journal, &policy);
    let rows = journal.intent(crashed, "p", "a", &listing[1..2]).unwrap();
    let current = start(&journal, &policy);
    let mut deleting = listing[1..2].to_vec();
    deleting[0].status = Status::InProgress;
    let settled = journal.reconcile("p", current, &deleting).unwrap();
    assert_eq!(settled[0].outcome, "pending");
    assert_eq!(
        journal.pending("p").unwrap(),
        [(rows[0], "g".to_string(), "g-1".to_string())]
    );
    journal.outcome(rows[0], Outcome::Deleted, None).unwrap();
    assert!(journal.pending("p").unwrap().is_empty());
}

#[test]
fn the_baseline_is_what_the_last_accepted_listing_left_behind() {
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::open(dir.path()).unwrap();
    assert_eq!(journal.baseline("p", None).unwrap(), None);
    let listing = backups("g", 10);
    let accepted = finished_run(&journal, &listing, &["g-8", "g-9"], false);
    let baseline = journal.baseline("p", None).unwrap().unwrap();
    assert_eq!(baseline.run, accepted);
    assert_eq!(baseline.counts, BTreeMap::from([("g".to_string(), 8)]));
    // A listing the drop guard blocked never becomes the baseline.
    finished_run(&journal, &listing[..2], &[], true);
    assert_eq!(journal.baseline("p", None).unwrap().unwrap().run, accepted);
    // Nor does a run whose listing failed.
    let failed = start(&journal, &policy());
    assert_eq!(
        journal
            .baseline("p", Some(failed + 1))
            .unwrap()
            .unwrap()
            .run,
        accepted
    );
}

#[test]
fn one_process_at_a_time_runs_a_policy() {
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::open(dir.path()).unwrap();
    let held = journal.lock("p").unwrap();
    let err = journal.lock("p").unwrap_err().to_string();
    assert!(
        err.contains("policy p is being run by another retentiond process")
            && err.contains(&format!("pid {}", std::process::id())),
        "{err}"
    );
    journal.lock("q").unwrap();
    drop(held);
    journal.lock("p").unwrap();
}

#[test]
fn a_version_1_journal_is_read_as_it_is_and_migrated_to_hold_fires() {
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::open(dir.path()).unwrap();
    finished_run(&journal, &backups("g", 3), &["g-2"], false);
    let run = all_runs(&journal)[0].id;
    let decided = |j: &Journal| -> Vec<(String, String)> {
        j.decisions(run)
            .unwrap()
            .into_iter()
            .map(|d| (d.id, d.action))
            .collect()
    };
    let before = decided(&journal);
    assert_eq!(before.len(), 3);
    // Back to how version 1 left it.
    journal
        .conn()
        .execute_batch(&format!(
            "DROP TABLE fires; DROP TABLE approvals; ALTER TABLE runs DROP COLUMN overrides;
             ALTER TABLE runs DROP COLUMN host; DROP TABLE fire_claims; DROP TABLE holds;
             ALTER TABLE runs DROP COLUMN waiting; DROP TABLE notifications;
             {UNDO_OPEN_BY_RUN}
             CREATE TABLE decisions (
                run_id INTEGER NOT NULL REFERENCES runs (id), backup_id TEXT NOT NULL,
                grp TEXT NOT NULL, created_at TEXT NOT NULL, status TEXT NOT NULL,
                action TEXT NOT NULL, reasons TEXT NOT NULL, note TEXT);
             INSERT INTO decisions SELECT first_run, backup_id, grp, created_at, status, action,
                reasons, note FROM decision_spans ORDER BY grp, created_at DESC;
             DROP TABLE decision_spans;
             PRAGMA user_version = 1;"
        ))
        .unwrap();
    drop(journal);

    let old = Journal::open_read_only(dir.path()).unwrap().expect("read");
    assert_eq!(all_runs(&old).len(), 1, "history reads a version-1 journal");
    assert_eq!(old.last_fire("p").unwrap(), None);
    assert_eq!(decided(&old), before, "and its decisions");
    drop(old);

    let journal = Journal::open(dir.path()).unwrap();
    assert_eq!(journal.version().unwrap(), MIGRATIONS.len() as i64);
    let fire: jiff::Timestamp = "2026-11-23T03:30:00Z".parse().unwrap();
    let started: jiff::Timestamp = "2026-11-23T03:30:01Z".parse().unwrap();
    journal.record_fire("p", fire, started).unwrap();
    let later: jiff::Timestamp = "2026-11-24T03:30:00Z".parse().unwrap();
    journal.record_fire("p", later, later).unwrap();
    assert_eq!(journal.last_fire("p").unwrap(), Some(later));
    assert_eq!(journal.last_fire("other").unwrap(), None);
    assert_eq!(all_runs(&journal).len(), 1, "migrating keeps the runs");
    assert_eq!(decided(&journal), before, "and their decisions");
}

fn spans(journal: &Journal) -> i64 {
    journal
        .conn()
        .query_row("SELECT count(*) FROM decision_spans", [], |r| r.get(0))
        .unwrap()
}

#[test]
fn unchanged_decisions_are_stored_once_and_every_run_reads_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::open(dir.path()).unwrap();
    let listing = backups("g", 5);
    let runs: Vec<i64> = (0..3)
        .map(|_| finished_run(&journal, &listing, &[], false))
        .collect();
    assert_eq!(spans(&journal), 5, "three runs, the same five decisions");
    let actions = |run: i64| -> Vec<(String, String)> {
        journal
            .decisions(run)
            .unwrap()
            .into_iter()
            .map(|d| (d.id, d.action))
            .collect()
    };
    let first = actions(runs[0]);
    assert_eq!(first.len(), 5);
    assert_eq!(first[0], ("g-0".into(), "keep".into()));
    assert_eq!(first[2], ("g-2".into(), "delete".into()));
    assert_eq!(actions(runs[2]), first);

    // A newer backup: it and the one it pushes out of `last 2` get new spans.
    let mut newer = backups("g", 5);
    newer.insert(
        0,
        Backup::new(
            "g-new",
            "g",
            Timestamp::from_second(1_700_000_000 + 86_400).unwrap(),
            Status::Complete,
        ),
    );
    let fourth = finished_run(&journal, &newer, &[], false);
    assert_eq!(spans(&journal), 7);
    let now = actions(fourth);
    assert_eq!(now.len(), 6);
    assert_eq!(now[0], ("g-new".into(), "keep".into()));
    assert_eq!(now[2], ("g-1".into(), "delete".into()));
    assert_eq!(actions(runs[1]), first, "earlier runs read as they were");
}

#[test]
fn pruning_forgets_old_decisions_but_keeps_deletions_the_baseline_and_approval() {
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::open(dir.path()).unwrap();
    let listing = backups("g", 5);
    let dry = finished_run(&journal, &listing, &[], false);
    let deleting = finished_run(&journal, &listing, &["g-4"], false);
    let last = finished_run(&journal, &listing[..4], &[], false);
    let fingerprint = policy().fingerprint;

    // Everything is older than the cutoff: the baseline run stays whole.
    let cutoff = Timestamp::now() + jiff::SignedDuration::from_secs(60);
    assert_eq!(journal.prune("p", cutoff).unwrap(), 1, "the dry run");
    let ids: Vec<i64> = all_runs(&journal).iter().map(|r| r.id).collect();
    assert_eq!(ids, [last, deleting], "the run that deleted stays");
    assert!(!ids.contains(&dry));
    assert_eq!(journal.decisions(last).unwrap().len(), 4);
    assert!(journal.decisions(deleting).unwrap().is_empty());
    assert_eq!(spans(&journal), 4);
    let history = all_runs(&journal);
    assert_eq!(
        history[1].deletions.len(),
        1,
        "its deletion is the audit trail"
    );
    assert_eq!(
        journal.baseline("p", None).unwrap().map(|b| b.run),
        Some(last)
    );
    let standing: String = journal
        .conn()
        .query_row(
            "SELECT approved_by FROM approvals WHERE policy = 'p' AND fingerprint = ?1",
            [&fingerprint],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(standing, format!("its run #{deleting} in enforce mode"));
    assert!(journal.approved("p", &fingerprint).unwrap());
    // Nothing older: nothing more to forget.
    assert_eq!(journal.prune("p", cutoff).unwrap(), 0);
}

#[test]
fn pruning_forgets_old_fire_claims_but_keeps_each_policys_latest() {
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::open(dir.path()).unwrap();
    let tick = |s: i64| Timestamp::from_second(1_700_000_000 + s).unwrap();
    for s in [0, 60, 120] {
        assert_eq!(journal.claim_fire("p", tick(s)).unwrap(), None);
    }
    assert_eq!(journal.claim_fire("q", tick(0)).unwrap(), None);
    // Claimed already: the second claim of a tick names the claimer.
    assert!(journal.claim_fire("p", tick(60)).unwrap().is_some());
    let claims = |policy: &str| -> i64 {
        journal
            .conn()
            .query_row(
                "SELECT count(*) FROM fire_claims WHERE policy = ?1",
                [policy],
                |r| r.get(0),
            )
            .unwrap()
    };
    journal.prune("p", tick(90)).unwrap();
    assert_eq!(claims("p"), 1, "the tick at 120 s stays");
    assert!(journal.claim_fire("p", tick(120)).unwrap().is_some());
    // Everything older than the cutoff: the latest claim still stays.
    journal.prune("p", tick(1_000)).unwrap();
    assert_eq!(claims("p"), 1);
    assert_eq!(claims("q"), 1, "another policy's claims are its own");
}

#[test]
fn long_lists_go_in_few_distinct_multi_row_statements() {
    let rows: Vec<usize> = (0..86).collect();
    let sizes: Vec<usize> = multi_row(&rows).map(<[usize]>::len).collect();
    assert_eq!(sizes, [64, 16, 4, 1, 1]);
    assert_eq!(
        multi_row(&rows).flatten().count(),
        86,
        "every row once, in order"
    );
    assert_eq!(placeholders(3, 3), "$3, $4, $5");
}

#[test]
fn consecutive_ids_become_ranges_and_the_rest_stay_listed() {
    let ids = [1, 2, 3, 4, 5, 7, 9, 10, 11, 20, 21, 22, 23];
    let (ranges, scattered) = ranges(&ids);
    assert_eq!(ranges, [(1, 5), (20, 23)]);
    assert_eq!(scattered, [7, 9, 10, 11]);
    assert_eq!(super::ranges(&[]), (vec![], vec![]));
}

/// 300 intents and their outcomes in multi-row statements (the first 100 deleted in a row, as
/// one range): each intent's row comes back in order, and each outcome lands on its own row.
#[test]
fn a_group_of_intents_and_outcomes_lands_row_by_row() {
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::open(dir.path()).unwrap();
    let listing = backups("g", 300);
    let run = start(&journal, &policy());
    let batch: Vec<&Backup> = listing.iter().collect();
    let rows = journal
        .record_deletions(run, "p", "a", &Settled::default(), &batch)
        .unwrap();
    assert_eq!(rows.len(), 300);
    let settled: Vec<(i64, Outcome, Option<&str>)> = rows
        .iter()
        .enumerate()
        .map(|(i, row)| match i % 3 {
            _ if i < 100 => (*row, Outcome::Deleted, None),
            1 => (*row, Outcome::Failed, Some("boom")),
            _ => (*row, Outcome::Deleted, None),
        })
        .collect();
    let withdrawn = [rows[299]];
    journal
        .record_deletions(
            run,
            "p",
            "a",
            &Settled {
                outcomes: &settled[..299],
                withdrawn: &withdrawn,
            },
            &[],
        )
        .unwrap();
    let recorded = all_runs(&journal).remove(0).deletions;
    assert_eq!(recorded.len(), 299, "the withdrawn intent is gone");
    for (i, d) in recorded.iter().enumerate() {
        assert_eq!(d.id, listing[i].id.as_str(), "rows in the intents' order");
        let failed = i >= 100 && i % 3 == 1;
        assert_eq!(
            d.outcome.as_deref(),
            Some(if failed { "failed" } else { "deleted" })
        );
        assert_eq!(d.error.as_deref(), failed.then_some("boom"));
    }
}

/// A listed run of `p` at `at` whose plan of `listing` keeps the ids in `kept` (a hold) and
/// deletes the rest as the rules say.
fn planned_at(journal: &Journal, listing: &[Backup], kept: &[&str], at: Timestamp) -> i64 {
    let policy = policy();
    let run = journal
        .begin_run(&RunStart {
            policy: &policy,
            command: "daemon",
            dry_run: Some("mode: dry-run"),
            started_at: at,
            overrides: Vec::new(),
        })
        .unwrap();
    let mut holds = crate::plan::Holds::default();
    for id in kept {
        holds.hold(id, format!("held: look (by a, hold #{run})"));
    }
    let plan = crate::plan::plan_held(&policy, listing, at, &TimeZone::UTC, &holds);
    let counts = crate::plan::complete_counts(listing);
    journal.record_plan(run, &plan, &counts, false).unwrap();
    run
}

#[test]
fn a_backup_is_doomed_since_the_first_run_of_its_last_unbroken_stretch() {
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::open(dir.path()).unwrap();
    let listing = backups("g", 5);
    let t = |hours: i64| Timestamp::from_second(1_800_000_000 + hours * 3600).unwrap();
    assert!(journal.doomed_since("p").unwrap().is_empty());
    // g-2, g-3 and g-4 doomed from run 1 on; g-3 kept by a hold in run 2.
    planned_at(&journal, &listing, &[], t(0));
    planned_at(&journal, &listing, &["g-3"], t(1));
    planned_at(&journal, &listing, &[], t(2));
    let since = journal.doomed_since("p").unwrap();
    let of = |id: &str| since.get("g").and_then(|ids| ids.get(id)).copied();
    assert_eq!(of("g-2"), Some(t(0)));
    assert_eq!(of("g-4"), Some(t(0)));
    assert_eq!(
        of("g-3"),
        Some(t(2)),
        "a run that kept it restarted its clock"
    );
    assert_eq!(of("g-0"), None, "kept by the rules");
    // A run that does not list (a failed listing) does not break a stretch; one that kept
    // a backup last leaves it out.
    let policy = policy();
    journal
        .begin_run(&RunStart {
            policy: &policy,
            command: "daemon",
            dry_run: None,
            started_at: t(3),
            overrides: Vec::new(),
        })
        .unwrap();
    planned_at(&journal, &listing, &["g-2"], t(4));
    let since = journal.doomed_since("p").unwrap();
    let of = |id: &str| since.get("g").and_then(|ids| ids.get(id)).copied();
    assert_eq!(of("g-4"), Some(t(0)));
    assert_eq!(of("g-2"), None);
}
