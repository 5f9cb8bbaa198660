//! The fault-injection suite: every fault against the fake of every HTTP provider (DocSpace,
//! Cloudinary, Huawei Cloud CSBS, CBR and TaurusDB) and against a real S3 server (moto,
//! behind a fault-injecting proxy), through the real binary. For each fault it asserts what a user relies on:
//! nothing outside the plan's delete set was deleted, the journal has an intent and an outcome
//! for every delete the fake received (matching what the fake still holds), and the exit code
//! and message say what happened.

mod common;

use common::fake::{Fault, Reply};
use common::target::{KINDS, Kind, Target};
use std::time::Duration;

/// Keep rule of the standard target: DocSpace deletes 15 of 20, Cloudinary 5 of 8 per asset,
/// CSBS 7 and 5 of two servers, TaurusDB 7 and 4 of two instances.
const KEEP: &str = "{last: 3}";

fn target(kind: Kind) -> Target {
    Target::new(kind, KEEP)
}

/// A run that lists nothing complete: exit 3, the message names the account and the call,
/// no DELETE, and the journal holds the failed run.
fn assert_listing_failed(t: &Target, out: &common::Output, says: &str) {
    assert_eq!(out.code, 3, "{:?}: {}{}", t.kind, out.stdout, out.stderr);
    assert!(
        out.stderr.contains("account portal:") && out.stderr.contains("nothing was deleted"),
        "{:?}: {}",
        t.kind,
        out.stderr
    );
    assert!(out.stderr.contains(says), "{:?}: {}", t.kind, out.stderr);
    assert!(
        t.server().lines(t.delete_method()).is_empty(),
        "{:?}",
        t.kind
    );
    let runs = t.history();
    assert_eq!(runs[0]["outcome"], "listing-failed", "{:?}", t.kind);
    assert!(runs[0]["message"].as_str().unwrap().contains(says));
    assert!(runs[0]["deletions"].as_array().unwrap().is_empty());
}

/// What a run says of a listing answer that is not the JSON (S3: XML) expected.
fn not_expected(kind: Kind) -> &'static str {
    match kind {
        Kind::S3 => "the response is not the XML expected",
        _ => "the response is not the JSON expected",
    }
}

fn listing_fault(fault: Fault, says: impl Fn(Kind) -> &'static str) {
    for kind in KINDS {
        let t = target(kind);
        let planned = t.plan();
        t.server()
            .fault("GET", t.listing_path(), None, fault.clone());
        let out = t.run(&["run"]);
        assert_listing_failed(&t, &out, says(kind));
        t.check_invariants(&planned);
        assert_eq!(t.held(), planned.all());
    }
}

#[test]
fn a_failing_page_deletes_nothing() {
    let error = Reply::json(
        503,
        &serde_json::json!({"error": {"message": "maintenance"}}),
    );
    listing_fault(Fault::Reply(error), |_| "(gave up after 3 attempts)");
}

#[test]
fn truncated_json_deletes_nothing() {
    listing_fault(Fault::Truncate(30), |_| "truncated");
}

#[test]
fn malformed_json_deletes_nothing() {
    let body = br#"{"response": [{"id": }], "count": 1, "resources": [}"#.to_vec();
    listing_fault(
        Fault::Reply(Reply::raw(200, "application/json", body)),
        not_expected,
    );
}

#[test]
fn an_html_page_with_200_deletes_nothing() {
    let page = b"<!DOCTYPE html><html><body>Sign in</body></html>".to_vec();
    listing_fault(
        Fault::Reply(Reply::raw(200, "text/html; charset=utf-8", page)),
        |_| "HTML",
    );
}

#[test]
fn a_listing_that_times_out_deletes_nothing() {
    for kind in KINDS {
        let t = target(kind);
        t.configure(KEEP, ", timeout: 300ms");
        let planned = t.plan();
        t.server().fault(
            "GET",
            t.listing_path(),
            None,
            Fault::Delay(Duration::from_millis(800)),
        );
        let out = t.run(&["run"]);
        assert_listing_failed(&t, &out, "timed out");
        t.check_invariants(&planned);
    }
}

#[test]
fn a_429_storm_on_the_listing_is_waited_out() {
    for kind in KINDS {
        let t = target(kind);
        let planned = t.plan();
        let busy = Reply::json(429, &serde_json::json!({"error": {"message": "slow down"}}))
            .with_header("Retry-After", "1");
        t.server()
            .fault("GET", t.listing_path(), Some(2), Fault::Reply(busy));
        let out = t.run(&["run"]);
        assert_eq!(out.code, 0, "{kind:?}: {}{}", out.stdout, out.stderr);
        assert_eq!(t.held(), planned.survivors(), "{kind:?}");
        t.check_invariants(&planned);
    }
}

#[test]
fn a_429_storm_on_deletions_fails_each_one_and_deletes_nothing_else() {
    for kind in KINDS {
        let t = target(kind);
        let planned = t.plan();
        let busy = Reply::json(429, &serde_json::json!({"error": {"message": "slow down"}}))
            .with_header("Retry-After", "0");
        t.server()
            .fault(t.delete_method(), t.delete_path(), None, Fault::Reply(busy));
        let out = t.run(&["run"]);
        assert_eq!(out.code, 4, "{kind:?}: {}{}", out.stdout, out.stderr);
        for id in &planned.delete {
            assert!(
                out.stderr.contains(&format!("FAILED to delete {id}: ")),
                "{kind:?}: {}",
                out.stderr
            );
        }
        assert!(out.stderr.contains("slow down"), "{}", out.stderr);
        assert_eq!(t.held(), planned.all());
        t.check_invariants(&planned);
        let runs = t.history();
        assert_eq!(runs[0]["outcome"], "deletions-failed");
        let outcomes: Vec<&str> = runs[0]["deletions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["outcome"].as_str().unwrap())
            .collect();
        assert_eq!(outcomes.len(), planned.delete.len());
        assert!(outcomes.iter().all(|o| *o == "failed"), "{outcomes:?}");
    }
}

#[test]
fn a_5xx_during_deletions_fails_that_backup_only() {
    for kind in KINDS {
        let t = target(kind);
        let planned = t.plan();
        let victim = planned.delete.iter().next().unwrap().clone();
        let same_call: std::collections::BTreeSet<String> = planned
            .delete
            .iter()
            .filter(|id| t.delete_path_of(id) == t.delete_path_of(&victim))
            .cloned()
            .collect();
        let error = Reply::json(
            500,
            &serde_json::json!({"error": {"message": "storage backend unavailable"}}),
        );
        t.server().fault(
            t.delete_method(),
            &t.delete_path_of(&victim),
            None,
            Fault::Reply(error),
        );
        let out = t.run(&["run"]);
        assert_eq!(out.code, 4, "{kind:?}: {}{}", out.stdout, out.stderr);
        assert!(
            out.stderr.contains(&format!("FAILED to delete {victim}: ")),
            "{kind:?}: {}",
            out.stderr
        );
        assert!(
            out.stderr.contains("HTTP 500: storage backend unavailable"),
            "{}",
            out.stderr
        );
        // The call that deleted the victim failed (on Cloudinary, with its asset's other
        // versions); every other deletion went through.
        let expected: std::collections::BTreeSet<String> =
            planned.survivors().union(&same_call).cloned().collect();
        assert_eq!(t.held(), expected, "{kind:?}");
        t.check_invariants(&planned);
    }
}

#[test]
fn a_transient_5xx_reset_or_timeout_during_deletions_is_retried() {
    let faults = [
        Fault::Reply(Reply::json(
            502,
            &serde_json::json!({"error": "bad gateway"}),
        )),
        Fault::Reset,
        Fault::Delay(Duration::from_millis(900)),
    ];
    for kind in KINDS {
        for fault in &faults {
            let t = target(kind);
            t.configure(KEEP, ", timeout: 400ms");
            let planned = t.plan();
            t.server()
                .fault(t.delete_method(), t.delete_path(), Some(1), fault.clone());
            let out = t.run(&["run"]);
            assert_eq!(
                out.code, 0,
                "{kind:?} {fault:?}: {}{}",
                out.stdout, out.stderr
            );
            // A delayed call may still land after the retry; either way all are gone.
            std::thread::sleep(Duration::from_millis(700));
            assert_eq!(t.held(), planned.survivors(), "{kind:?} {fault:?}");
            t.check_invariants(&planned);
        }
    }
}

#[test]
fn a_delete_that_succeeded_but_whose_answer_was_lost_counts_as_done() {
    for kind in KINDS {
        let t = target(kind);
        let planned = t.plan();
        let lost = Reply::raw(502, "text/html", b"<html>Bad Gateway</html>".to_vec());
        t.server().fault(
            t.delete_method(),
            t.delete_path(),
            Some(1),
            Fault::Swallow(lost),
        );
        let out = t.run(&["run"]);
        assert_eq!(out.code, 0, "{kind:?}: {}{}", out.stdout, out.stderr);
        assert_eq!(t.held(), planned.survivors(), "{kind:?}");
        t.check_invariants(&planned);
        let runs = t.history();
        let deletions = runs[0]["deletions"].as_array().unwrap();
        assert_eq!(
            deletions.len(),
            planned.delete.len(),
            "one record per backup"
        );
        assert!(deletions.iter().all(|d| d["outcome"] == "deleted"));
    }
}

#[test]
fn a_listing_that_fell_sharply_since_the_last_run_blocks_until_accepted() {
    for kind in KINDS {
        listing_drop_blocks_until_accepted(kind, None);
    }
}

#[test]
fn a_listing_that_fell_sharply_blocks_until_accepted_on_postgresql() {
    let pg = common::postgres::Postgres::start();
    listing_drop_blocks_until_accepted(Kind::Docspace, Some(&pg));
}

/// The journal (SQLite, or `pg`) keeps the baseline of the listing-drop guard.
fn listing_drop_blocks_until_accepted(kind: Kind, pg: Option<&common::postgres::Postgres>) {
    let t = target(kind);
    if let Some(pg) = pg {
        t.use_postgres(pg);
    }
    t.configure("{last: 100}", "");
    let first = t.run(&["run"]);
    assert_eq!(first.code, 0, "{}{}", first.stdout, first.stderr);
    // Most backups vanish behind our back; the rest would now be pruned.
    t.configure("{last: 2}", "");
    let before = t.held().len();
    t.shrink();
    assert!(t.held().len() < before / 2);
    let out = t.run(&["run"]);
    assert_eq!(out.code, 5, "{kind:?}: {}{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("BLOCKED") && out.stdout.contains("the listing is suspect"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("--accept-listing-drop"),
        "{}",
        out.stdout
    );
    assert!(t.server().lines(t.delete_method()).is_empty());
    assert_eq!(t.history()[0]["outcome"], "blocked");
    // Still blocked on the next run: a blocked listing never becomes the baseline.
    assert_eq!(t.run(&["run"]).code, 5);
    let planned = t.with_outside(common::target::planned(common::json(
        &t.run(&["plan", "--format", "json", "--accept-listing-drop"])
            .stdout,
    )));
    let out = t.run(&["run", "--accept-listing-drop"]);
    assert_eq!(out.code, 0, "{kind:?}: {}{}", out.stdout, out.stderr);
    assert_eq!(t.held(), planned.survivors());
    t.check_invariants(&planned);
    assert_eq!(
        t.run(&["run"]).code,
        0,
        "the accepted listing is the baseline"
    );
}

#[test]
fn hostile_ids_stay_one_path_segment_and_nothing_else_is_deleted() {
    let hostile = [
        "../../backup/deletebackuphistory".to_string(),
        "a%2F..%2Fb".to_string(),
        "x".repeat(3000),
        "ünï/cødé?q=1#f".to_string(),
    ];
    // DocSpace: hostile backup ids (the fake's route only takes GUIDs: 404, never deleted).
    let mut records = common::docspace::daily(4);
    for (i, id) in hostile.iter().enumerate() {
        let mut record = common::docspace::Record::new(id, &format!("2026-10-0{}T03:00:00", i + 1));
        record.file_name = format!("old-{i}.tar.gz");
        records.push(record);
    }
    let t = Target::with(
        Kind::Docspace,
        common::target::Fake::Docspace(common::docspace::Fake::start(records)),
        "{last: 4}",
        "",
    );
    let planned = t.plan();
    assert_eq!(planned.delete.len(), hostile.len());
    let out = t.run(&["run"]);
    assert_eq!(out.code, 4, "{}{}", out.stdout, out.stderr);
    // The 3000-byte id is refused before any call; the others are sent, each as one segment.
    assert!(
        out.stderr.contains("refusing an id of 3000 bytes"),
        "{}",
        out.stderr
    );
    let paths = t.server().lines("DELETE");
    assert_eq!(paths.len(), hostile.len() - 1, "{paths:?}");
    for path in &paths {
        let segment = path
            .strip_prefix("DELETE /api/2.0/backup/deletebackup/")
            .unwrap_or_else(|| panic!("{path}"));
        assert!(
            !segment.contains('/') && !segment.contains('?') && !segment.contains('#'),
            "{path}"
        );
    }
    assert!(
        paths.iter().any(|p| p.ends_with("/a%252F..%252Fb")),
        "{paths:?}"
    );
    assert_eq!(
        t.held().len(),
        4 + hostile.len(),
        "nothing else was deleted"
    );
    t.check_invariants(&planned);

    // Cloudinary: a hostile asset id stays one segment of the delete call.
    let mut evil = common::cloudinary::asset(1, "products/evil", 5, 0);
    evil.asset_id = "../../resources/image/upload".into();
    let assets = vec![evil, common::cloudinary::asset(2, "products/ok", 5, 0)];
    let t = Target::with(
        Kind::Cloudinary,
        common::target::Fake::Cloudinary(common::cloudinary::Fake::start(assets, 10)),
        "{last: 2}",
        "",
    );
    let planned = t.plan();
    let out = t.run(&["run"]);
    let paths = t.server().lines("DELETE");
    assert!(
        paths.contains(
            &"DELETE /v1_1/demo/resources/backup/..%2F..%2Fresources%2Fimage%2Fupload".to_string()
        ),
        "{paths:?}\n{}{}",
        out.stdout,
        out.stderr
    );
    t.check_invariants(&planned);
}

#[test]
fn a_listing_that_is_not_utf8_deletes_nothing() {
    for kind in KINDS {
        let t = target(kind);
        let planned = t.plan();
        let mut body = match kind {
            Kind::Docspace => br#"{"response": [{"id": "ab"#.to_vec(),
            Kind::Cloudinary => br#"{"resources": [{"asset_id": "ab"#.to_vec(),
            Kind::Csbs => br#"{"checkpoint_items": [{"id": "ab"#.to_vec(),
            Kind::Cbr => br#"{"count": 1, "backups": [{"id": "ab"#.to_vec(),
            Kind::Taurusdb => br#"{"total_count": 1, "backups": [{"id": "ab"#.to_vec(),
            Kind::S3 => b"<ListBucketResult><Contents><Key>db/ab".to_vec(),
        };
        body.extend_from_slice(&[0xff, 0xfe, b'"', b'}', b']', b'}']);
        t.server().fault(
            "GET",
            t.listing_path(),
            None,
            Fault::Reply(Reply::raw(200, "application/json", body)),
        );
        let out = t.run(&["run"]);
        assert_listing_failed(&t, &out, not_expected(kind));
        t.check_invariants(&planned);
    }
}

#[test]
fn backups_dated_in_the_future_are_ignored_and_never_the_newest() {
    // The provider's clock (or ours) is off: two backups claim to be from 2031.
    let mut records = common::docspace::daily(10);
    records.push(common::docspace::Record::new(
        &common::docspace::guid(900),
        "2031-01-01T03:00:00",
    ));
    records.push(common::docspace::Record::new(
        &common::docspace::guid(901),
        "2031-01-02T03:00:00",
    ));
    let t = Target::with(
        Kind::Docspace,
        common::target::Fake::Docspace(common::docspace::Fake::start(records)),
        "{last: 3}",
        "",
    );
    let planned = t.plan();
    let future: Vec<&serde_json::Value> = planned.json["policies"][0]["backups"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["created_at"].as_str().unwrap().starts_with("2031"))
        .collect();
    assert_eq!(future.len(), 2);
    assert!(future.iter().all(|b| b["action"] == "ignore"));
    // The three newest real backups are kept; the future ones did not push them out.
    assert_eq!(planned.keep.len(), 3);
    let out = t.run(&["run"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("WARNING: group"), "{}", out.stdout);
    assert!(t.held().contains(&common::docspace::guid(900)));
    assert_eq!(t.held().len(), 5);
    t.check_invariants(&planned);
}

#[test]
fn a_clock_set_years_ahead_deletes_no_more_than_the_right_clock() {
    for kind in KINDS {
        let t = target(kind);
        t.configure("{last: 3, daily: 5, within: 2d}", "");
        let right = t.plan();
        let out = t.run(&["plan", "--format", "json", "--now", "2031-06-01T00:00:00Z"]);
        assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
        let ahead = common::target::planned(common::json(&out.stdout));
        assert_eq!(ahead.delete, right.delete, "{kind:?}");
        // With stale_after, a clock far ahead makes every group look stopped: nothing goes.
        let policy = std::fs::read_to_string(t.dir.path().join("policies/p.yaml")).unwrap();
        std::fs::write(
            t.dir.path().join("policies/p.yaml"),
            policy.replace("guard: {", "guard: {stale_after: 30d, "),
        )
        .unwrap();
        let out = t.run(&["plan", "--format", "json", "--now", "2031-06-01T00:00:00Z"]);
        let held = common::target::planned(common::json(&out.stdout));
        assert!(held.delete.is_empty(), "{kind:?}: {:?}", held.delete);
    }
}
