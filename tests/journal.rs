//! The journal through the real binary: a run killed between intent and outcome and run
//! again, `plan --out` then `apply` (exactly the reviewed set, or a refusal that lists what
//! changed), `history` in text and JSON with its filters, and the refusals that keep two
//! processes or an unusable state folder from deleting. The first five run on both journals:
//! SQLite in `state_dir`, and PostgreSQL (a throwaway cluster, `tests/common/postgres.rs`).

mod common;

use common::docspace::{self, Record, daily, guid};
use common::fake::Fault;
use common::postgres::Postgres;
use common::target::{Fake, Kind, Target, planned};
use common::{json, spawn, wait_while_running};
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;

fn docspace_target(records: Vec<Record>, keep: &str, http: &str) -> Target {
    Target::with(
        Kind::Docspace,
        Fake::Docspace(docspace::Fake::start(records)),
        keep,
        http,
    )
}

/// A DocSpace backup's group: the portal's host and port.
fn portal(t: &Target) -> String {
    t.server().base.trim_start_matches("http://").to_string()
}

fn records_of(t: &Target) -> std::sync::MutexGuard<'_, Vec<Record>> {
    match &t.fake {
        Fake::Docspace(f) => f.records.lock().unwrap(),
        _ => unreachable!("a DocSpace target"),
    }
}

fn sigkill_between_intent_and_outcome_then_a_rerun_deletes_each_planned_backup_once_on(
    pg: Option<&Postgres>,
) {
    let t = docspace_target(daily(210), "{last: 10}", "");
    if let Some(pg) = pg {
        t.use_postgres(pg);
    }
    let planned = t.plan();
    assert_eq!(planned.delete.len(), 200);
    // 60 deletions go through briskly; the ones after hang, so the kill finds deletions
    // whose intent is journaled and whose outcome is not.
    let server = t.server();
    server.fault(
        "DELETE",
        "/deletebackup/",
        Some(60),
        Fault::Delay(Duration::from_millis(20)),
    );
    server.fault(
        "DELETE",
        "/deletebackup/",
        None,
        Fault::Delay(Duration::from_secs(3)),
    );
    let mut child = spawn(t.dir.path(), &["--config", "retentiond.yaml", "run"]);
    wait_while_running(&mut child, || server.lines("DELETE").len() >= 62);
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let sent = t.delete_requests();
    assert!(
        sent.len() < 200,
        "killed in the middle: {} sent",
        sent.len()
    );

    // Every DELETE the fake received had its intent journaled first.
    let runs = t.history();
    assert_eq!(runs.len(), 1);
    assert!(runs[0]["outcome"].is_null(), "{}", runs[0]);
    let records = runs[0]["deletions"].as_array().unwrap();
    for id in sent.keys() {
        assert!(
            records.iter().any(|d| d["id"] == *id),
            "DELETE {id} was sent without an intent"
        );
    }
    let open = records.iter().filter(|d| d["outcome"].is_null()).count();
    assert!(open >= 2, "intents without outcomes: {open}");

    // The hanging deletions land on the server after the process died.
    server.clear_faults();
    while server.in_flight() > 0 {
        std::thread::sleep(Duration::from_millis(10));
    }
    let out = t.run(&["run"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("of interrupted run #1: deleted"),
        "{}",
        out.stdout
    );

    assert_eq!(t.held(), planned.keep);
    let sent = t.delete_requests();
    assert_eq!(
        sent.keys()
            .cloned()
            .collect::<std::collections::BTreeSet<_>>(),
        planned.delete
    );
    assert!(
        sent.values().all(|n| *n == 1),
        "each backup was asked to be deleted once: {:?}",
        sent.iter().filter(|(_, n)| **n > 1).collect::<Vec<_>>()
    );
    // The journal: one `deleted` per planned backup, every intent settled.
    let runs = t.history();
    assert_eq!(runs[1]["outcome"], "interrupted");
    assert_eq!(runs[0]["outcome"], "ok");
    let mut deleted: BTreeMap<String, usize> = BTreeMap::new();
    for d in t.journal_deletions() {
        assert!(!d["outcome"].is_null(), "{d}");
        if d["outcome"] == "deleted" {
            *deleted
                .entry(d["id"].as_str().unwrap().to_string())
                .or_default() += 1;
        }
    }
    assert_eq!(deleted.len(), 200);
    assert!(deleted.values().all(|n| *n == 1));
    assert!(
        t.journal_deletions()
            .iter()
            .any(|d| d["reconciled"] == true && d["outcome"] == "deleted")
    );
    t.check_invariants(&planned);
}

fn reviewed_plan(t: &Target) -> common::target::Planned {
    let out = t.run(&["plan", "--out", "plan.json"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let file = std::fs::read_to_string(t.dir.path().join("plan.json")).unwrap();
    planned(json(&file))
}

fn apply_deletes_exactly_the_reviewed_set_on(pg: Option<&Postgres>) {
    let t = docspace_target(daily(12), "{last: 5}", "");
    if let Some(pg) = pg {
        t.use_postgres(pg);
    }
    let reviewed = reviewed_plan(&t);
    assert_eq!(reviewed.delete.len(), 7);
    // Two newer backups arrive: the policy would now delete two more, which nobody reviewed.
    records_of(&t).push(Record::new(&guid(500), "2026-11-21T03:00:00"));
    records_of(&t).push(Record::new(&guid(501), "2026-11-22T03:00:00"));
    let out = t.run(&["apply", "plan.json"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains(
            "2 more backups would be deleted by the policy now but were not in the reviewed plan"
        ),
        "{}",
        out.stdout
    );
    let sent: std::collections::BTreeSet<String> = t.delete_requests().into_keys().collect();
    assert_eq!(sent, reviewed.delete, "exactly the reviewed set");
    assert_eq!(t.held().len(), 14 - 7);
    let runs = t.history();
    assert_eq!(runs[0]["command"], "apply");
    assert_eq!(runs[0]["outcome"], "ok");
    // The plan JSON of the run shows the unreviewed ones kept, and why.
    let out = t.run(&["plan", "--format", "json"]);
    let now = planned(json(&out.stdout));
    assert_eq!(now.delete.len(), 2);
}

fn apply_of_a_stale_plan_refuses_with_a_list_of_what_changed_on(pg: Option<&Postgres>) {
    let t = docspace_target(daily(12), "{last: 5}", "");
    if let Some(pg) = pg {
        t.use_postgres(pg);
    }
    let reviewed = reviewed_plan(&t);
    let gone = guid(11); // the oldest: reviewed for deletion, now deleted by someone else
    let now_kept = guid(5); // reviewed for deletion, now among the last 5
    {
        let mut records = records_of(&t);
        records.retain(|r| r.id != gone && r.id != guid(0));
    }
    assert!(reviewed.delete.contains(&gone) && reviewed.delete.contains(&now_kept));
    let out = t.run(&["apply", "plan.json"]);
    assert_eq!(out.code, 6, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stderr
            .contains("REFUSED, the reviewed plan no longer holds"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains(&format!("{gone} (group {}): no longer listed", portal(&t))),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains(&format!(
            "{now_kept} (group {}): now keep: last",
            portal(&t)
        )),
        "{}",
        out.stderr
    );
    assert!(t.server().lines("DELETE").is_empty(), "nothing deleted");
    assert_eq!(t.history()[0]["outcome"], "refused");

    // A policy edited after the plan was made refuses too, before any listing.
    let t = docspace_target(daily(12), "{last: 5}", "");
    reviewed_plan(&t);
    t.configure("{last: 4}", "");
    let out = t.run(&["apply", "plan.json"]);
    assert_eq!(out.code, 6, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains("changed since the plan was made")
            && out
                .stderr
                .contains(": keep.last: 5 → 4; make and review a new plan"),
        "{}",
        out.stderr
    );
    assert!(t.server().lines("DELETE").is_empty());
    // The refusal is journaled with what changed.
    let refused = &t.history()[0];
    assert_eq!(refused["outcome"], "refused");
    assert_eq!(refused["command"], "apply");
    assert!(
        refused["message"]
            .as_str()
            .unwrap()
            .contains("keep.last: 5 → 4"),
        "{refused}"
    );
    // Comments, layout and the description change nothing that is deleted: still applies.
    let t = docspace_target(daily(12), "{last: 5}", "");
    reviewed_plan(&t);
    let path = t.dir.path().join("policies/p.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        format!("# reviewed in PR 12\ndescription: nightly portal backups\n{text}"),
    )
    .unwrap();
    let out = t.run(&["apply", "plan.json", "--dry-run"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout
            .contains("dry-run (--dry-run): nothing deleted; would delete 7"),
        "{}",
        out.stdout
    );
    assert!(t.server().lines("DELETE").is_empty());
    let out = t.run(&["apply", "plan.json"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert_eq!(t.held().len(), 5);
}

#[test]
fn apply_names_a_bad_plan_file() {
    let t = docspace_target(daily(3), "{last: 5}", "");
    std::fs::write(t.dir.path().join("plan.json"), "{\"policies\": 3}").unwrap();
    let out = t.run(&["apply", "plan.json"]);
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stderr
            .contains("plan.json: not a plan written by `retentiond plan --out`"),
        "{}",
        out.stderr
    );
}

fn deletions_of(run: &Value) -> Vec<&Value> {
    run["deletions"].as_array().unwrap().iter().collect()
}

fn history_lists_every_deletion_with_policy_time_and_outcome_on(pg: Option<&Postgres>) {
    let t = docspace_target(daily(8), "{last: 5}", "");
    if let Some(pg) = pg {
        t.use_postgres(pg);
    }
    let victim = guid(6);
    t.server().fault(
        "DELETE",
        &victim,
        None,
        Fault::Reply(docspace::error(403, "Access denied", None)),
    );
    assert_eq!(t.run(&["run", "--dry-run"]).code, 0);
    assert_eq!(t.run(&["run"]).code, 4);

    let runs = t.history();
    assert_eq!(runs.len(), 2);
    let (enforced, dry) = (&runs[0], &runs[1]);
    assert_eq!(dry["outcome"], "dry-run");
    assert_eq!(dry["dry_run"], "--dry-run");
    assert!(deletions_of(dry).is_empty());
    assert_eq!(enforced["outcome"], "deletions-failed");
    assert_eq!(enforced["policy"], "p");
    assert_eq!(enforced["mode"], "enforce");
    assert_eq!(enforced["listing"][portal(&t)], 8);
    assert_eq!(enforced["summary"]["delete"], 3);
    assert_eq!(enforced["policy_sha256"].as_str().unwrap().len(), 64);
    let deletions = deletions_of(enforced);
    assert_eq!(deletions.len(), 3);
    for d in &deletions {
        assert_eq!(d["policy"], "p");
        let at = |key: &str| -> jiff::Timestamp { d[key].as_str().unwrap().parse().unwrap() };
        assert!(at("outcome_at") >= at("intent_at"), "{d}");
        let expected = if d["id"] == victim.as_str() {
            "failed"
        } else {
            "deleted"
        };
        assert_eq!(d["outcome"], expected, "{d}");
    }
    let failed = deletions
        .iter()
        .find(|d| d["id"] == victim.as_str())
        .unwrap();
    assert!(
        failed["error"].as_str().unwrap().contains("Access denied"),
        "{failed}"
    );

    // Filters: by outcome, by policy, by time; text shows the same.
    let only = |args: &[&str]| -> Vec<Value> {
        let mut all = vec!["history", "--format", "json"];
        all.extend_from_slice(args);
        let out = t.run(&all);
        assert_eq!(out.code, 0, "{}", out.stderr);
        json(&out.stdout)["runs"].as_array().unwrap().clone()
    };
    assert_eq!(only(&["--outcome", "dry-run"]).len(), 1);
    let unknown = t.run(&["history", "--policy", "other"]);
    assert_eq!(
        unknown.code, 1,
        "an unknown name is a mistake, not an empty history"
    );
    assert_eq!(
        unknown.stderr.trim_end(),
        "no policy named `other`, neither in the config nor in the journal (policies: p)"
    );
    let bogus = t.run(&["history", "--outcome", "sucess"]);
    assert_eq!(bogus.code, 1);
    assert!(
        bogus
            .stderr
            .starts_with("--outcome sucess: no such outcome (outcomes: ok, dry-run, "),
        "{}",
        bogus.stderr
    );
    assert_eq!(only(&["--since", "1h"]).len(), 2);
    assert_eq!(only(&["--until", "2020-01-01T00:00:00Z"]).len(), 0);
    assert_eq!(only(&["--limit", "1"]).len(), 1);
    let decisions = |run: &Value| -> Vec<(String, String)> {
        let id = run["id"].as_i64().unwrap().to_string();
        let out = t.run(&["history", "--format", "json", "--run", &id]);
        json(&out.stdout)["decisions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| (d["id"].to_string(), d["action"].to_string()))
            .collect()
    };
    let decided = decisions(enforced);
    assert_eq!(decided.len(), 8);
    assert_eq!(decided.iter().filter(|(_, a)| a == "\"delete\"").count(), 3);
    // The second run decided as the first: read back the same for both, and stored once
    // (counted here on PostgreSQL; SQLite's spans have a unit test in src/journal/tests.rs).
    assert_eq!(decisions(dry), decided);
    if let Some(pg) = pg {
        assert_eq!(pg.sql("SELECT count(*) FROM decision_spans"), ["8"]);
    }
    let text = t.run(&["history"]).stdout;
    assert!(
        text.contains(": deletions-failed  keep 5 delete 3 ignore 0"),
        "{text}"
    );
    assert!(
        text.contains(&format!("failed      {victim} (group {}) at ", portal(&t))),
        "{text}"
    );
    let bad = t.run(&["history", "--since", "yesterday"]);
    assert_eq!(bad.code, 2);
    assert!(bad.stderr.contains("--since yesterday"), "{}", bad.stderr);
}

fn a_policy_runs_in_one_process_at_a_time_on(pg: Option<&Postgres>) {
    let t = docspace_target(daily(8), "{last: 5}", "");
    if let Some(pg) = pg {
        t.use_postgres(pg);
    }
    t.server().fault(
        "GET",
        "/getbackuphistory",
        Some(1),
        Fault::Delay(Duration::from_secs(2)),
    );
    let mut first = spawn(t.dir.path(), &["--config", "retentiond.yaml", "run"]);
    wait_while_running(&mut first, || !t.server().requests().is_empty());
    let second = t.run(&["run"]);
    assert_eq!(second.code, 7, "{}{}", second.stdout, second.stderr);
    assert!(
        second
            .stderr
            .contains("policy p is being run by another retentiond process"),
        "{}",
        second.stderr
    );
    assert!(first.wait().unwrap().success());
    assert_eq!(t.held().len(), 5, "the first run deleted, once");
    assert_eq!(t.server().lines("DELETE").len(), 3);
}

#[test]
fn an_unusable_state_dir_deletes_nothing_and_exits_7() {
    let t = docspace_target(daily(8), "{last: 5}", "");
    let config = t.dir.path().join("retentiond.yaml");
    let text = std::fs::read_to_string(&config).unwrap();
    // A folder inside a file cannot be made.
    std::fs::write(
        &config,
        text.replace("state_dir: state", "state_dir: retentiond.yaml/state"),
    )
    .unwrap();
    let out = t.run(&["run"]);
    assert_eq!(out.code, 7, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains("cannot create the state folder")
            && out.stderr.contains("nothing was deleted"),
        "{}",
        out.stderr
    );
    assert!(t.server().requests().is_empty(), "not even listed");
}

#[test]
fn a_journal_that_cannot_be_read_only_costs_plan_its_drop_guard() {
    let t = docspace_target(daily(8), "{last: 5}", "");
    common::write(
        t.dir.path(),
        "state/journal.sqlite",
        "not a database at all, not even close",
    );
    let out = t.run(&["plan"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout
            .contains("WARNING: the listing-drop guard was not checked: journal ")
            && out.stdout.contains("(run and apply check it)"),
        "{}",
        out.stdout
    );
    let out = t.run(&["run"]);
    assert_eq!(out.code, 7, "{}{}", out.stdout, out.stderr);
    assert!(t.server().lines("DELETE").is_empty());
}

#[test]
fn sigkill_between_intent_and_outcome_then_a_rerun_deletes_each_planned_backup_once() {
    sigkill_between_intent_and_outcome_then_a_rerun_deletes_each_planned_backup_once_on(None);
}

#[test]
fn sigkill_between_intent_and_outcome_then_a_rerun_deletes_each_planned_backup_once_on_postgresql()
{
    let pg = Postgres::start();
    sigkill_between_intent_and_outcome_then_a_rerun_deletes_each_planned_backup_once_on(Some(&pg));
}

#[test]
fn apply_deletes_exactly_the_reviewed_set() {
    apply_deletes_exactly_the_reviewed_set_on(None);
}

#[test]
fn apply_deletes_exactly_the_reviewed_set_on_postgresql() {
    let pg = Postgres::start();
    apply_deletes_exactly_the_reviewed_set_on(Some(&pg));
}

#[test]
fn apply_of_a_stale_plan_refuses_with_a_list_of_what_changed() {
    apply_of_a_stale_plan_refuses_with_a_list_of_what_changed_on(None);
}

#[test]
fn apply_of_a_stale_plan_refuses_with_a_list_of_what_changed_on_postgresql() {
    let pg = Postgres::start();
    apply_of_a_stale_plan_refuses_with_a_list_of_what_changed_on(Some(&pg));
}

#[test]
fn history_lists_every_deletion_with_policy_time_and_outcome() {
    history_lists_every_deletion_with_policy_time_and_outcome_on(None);
}

#[test]
fn history_lists_every_deletion_with_policy_time_and_outcome_on_postgresql() {
    let pg = Postgres::start();
    history_lists_every_deletion_with_policy_time_and_outcome_on(Some(&pg));
}

#[test]
fn a_policy_runs_in_one_process_at_a_time() {
    a_policy_runs_in_one_process_at_a_time_on(None);
}

#[test]
fn a_policy_runs_in_one_process_at_a_time_on_postgresql() {
    let pg = Postgres::start();
    a_policy_runs_in_one_process_at_a_time_on(Some(&pg));
}
