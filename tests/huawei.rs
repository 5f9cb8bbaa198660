//! The real binary against the Huawei Cloud fakes (IAM, CSBS, CBR, TaurusDB): signed and token
//! requests, paging, asynchronous CSBS deletions under the 5-task limit and never without
//! `checkpoint_items`, TaurusDB batch deletions of manual backups only, token renewal, a wrong
//! secret key, failing pages, backups in progress, and CSBS deletions an interrupted run left
//! pending.

mod common;

use common::fake::{Fault, Reply};
use common::huawei::{self, Fake as Huawei, Item};
use common::target::{Fake, Kind, Target};
use common::{SECRET_ENV, retentiond_env, spawn, wait_while_running};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

fn csbs(items: Vec<Item>, keep: &str) -> Target {
    Target::with(
        Kind::Csbs,
        Fake::Huawei(Huawei::start(items, Vec::new())),
        keep,
        "",
    )
}

#[test]
fn csbs_enforce_keeps_exactly_the_plan_with_at_most_5_tasks_and_never_a_bare_delete() {
    let mut items = huawei::items("srv-a", 20);
    items.extend(huawei::items("srv-b", 9));
    let t = csbs(items, "{last: 2}");
    let dry = t.run(&["run", "--dry-run"]);
    assert_eq!(dry.code, 0, "{}{}", dry.stdout, dry.stderr);
    assert!(
        t.server().lines("DELETE").is_empty(),
        "dry-run sends no DELETE"
    );

    let planned = t.plan();
    assert_eq!(planned.delete.len(), 18 + 7);
    let out = t.run(&["run"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("deleted 25 of 25"), "{}", out.stdout);
    assert_eq!(t.held(), planned.keep);
    let fake = t.huawei();
    let state = fake.state.lock().unwrap();
    assert!(state.max_tasks <= 5, "{} tasks at once", state.max_tasks);
    assert!(state.max_tasks >= 2, "deletions ran in parallel");
    assert_eq!(state.unsafe_deletes, 0);
    drop(state);
    let deletes = t.server().requests();
    for r in deletes.iter().filter(|r| r.method == "DELETE") {
        assert!(
            r.param("checkpoint_items").is_some(),
            "a DELETE without checkpoint_items: {}",
            r.line()
        );
        assert!(
            r.header("authorization")
                .is_some_and(|a| a.starts_with("SDK-HMAC-SHA256 Access=")),
            "signed"
        );
    }
    // Journal: every deletion went through `pending` to `deleted`.
    let runs = t.history();
    let deletions = runs[0]["deletions"].as_array().unwrap();
    assert_eq!(deletions.len(), 25);
    assert!(deletions.iter().all(|d| d["outcome"] == "deleted"));
}

#[test]
fn backups_in_progress_are_never_deleted_or_counted() {
    let mut items = huawei::items("srv-a", 6);
    // The two oldest are being protected and deleted by someone else right now.
    items[5].status = "protecting".into();
    items[4].status = "deleting".into();
    items[4].done_at = Some(Instant::now() + Duration::from_secs(3600));
    let t = csbs(items, "{last: 2}");
    let planned = t.plan();
    let actions: BTreeMap<String, String> = planned.json["policies"][0]["backups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["id"].as_str().unwrap().to_string(),
                b["action"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(actions["srv-a-item-005"], "ignore");
    assert_eq!(actions["srv-a-item-004"], "ignore");
    assert_eq!(planned.delete.len(), 2, "{:?}", planned.delete);
    assert_eq!(planned.json["policies"][0]["summary"]["ignore"], 2);
    let out = t.run(&["run"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let deleted: BTreeSet<String> = t.delete_requests().into_keys().collect();
    assert_eq!(deleted, planned.delete);
    assert!(t.held().contains("srv-a-item-005") && t.held().contains("srv-a-item-004"));
}

#[test]
fn a_failing_page_deletes_nothing_and_exits_3() {
    let t = csbs(huawei::items("srv-a", 12), "{last: 2}");
    // Page 1 passes, page 2 fails on every attempt; the count (asked for meanwhile) passes.
    t.server()
        .fault("GET", "/count", None, Fault::Delay(Duration::ZERO));
    t.server().fault(
        "GET",
        "/checkpoint_items",
        Some(1),
        Fault::Delay(Duration::ZERO),
    );
    t.server().fault(
        "GET",
        "/checkpoint_items",
        None,
        Fault::Reply(Reply::json(
            500,
            &serde_json::json!({"error_code": "CSBS.9999", "error_msg": "internal error"}),
        )),
    );
    let out = t.run(&["run"]);
    assert_eq!(out.code, 3, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains(
            "GET /v1/{project_id}/checkpoint_items (page 2): HTTP 500: CSBS.9999: internal error"
        ),
        "{}",
        out.stderr
    );
    assert!(t.server().lines("DELETE").is_empty());
    assert_eq!(t.held().len(), 12);
}

#[test]
fn a_wrong_secret_key_fails_once_with_a_clear_message() {
    let t = csbs(huawei::items("srv-a", 5), "{last: 2}");
    let mut env: Vec<(&str, &str)> = SECRET_ENV
        .iter()
        .filter(|(k, _)| *k != "TEST_HW_SK")
        .copied()
        .collect();
    env.push(("TEST_HW_SK", "not-the-secret-key-at-all"));
    let out = retentiond_env(t.dir.path(), &["--config", "retentiond.yaml", "run"], &env);
    assert_eq!(out.code, 3, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stderr
            .contains("the credentials were rejected (HTTP 401: APIGW.0301")
            && out.stderr.contains("verify aksk signature fail")
            && out
                .stderr
                .contains("check the account's auth.access_key and auth.secret_key"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("not-the-secret-key"), "{}", out.stderr);
    assert_eq!(t.server().requests().len(), 1, "no retry storm");
}

fn taurus(keep: &str, auth: Option<&str>) -> Target {
    let mut backups = huawei::backups("i1in07", 60);
    backups.extend(huawei::backups("i2in07", 5));
    for (i, b) in huawei::backups("i1in07", 3).into_iter().enumerate() {
        backups.push(huawei::TaurusBackup {
            id: format!("auto{i:02}br07"),
            kind: "auto".into(),
            ..b
        });
    }
    let t = Target::with(
        Kind::Taurusdb,
        Fake::Huawei(Huawei::start(Vec::new(), backups)),
        keep,
        "",
    );
    if let Some(auth) = auth {
        let path = t.dir.path().join("retentiond.yaml");
        let config = std::fs::read_to_string(&path).unwrap();
        let start = config.find("    auth:").unwrap();
        let end = start + config[start..].find('\n').unwrap();
        std::fs::write(
            &path,
            format!("{}    auth: {auth}{}", &config[..start], &config[end..]),
        )
        .unwrap();
    }
    t
}

#[test]
fn taurusdb_deletes_manual_backups_in_batches_and_never_automated_ones() {
    let t = taurus("{last: 3}", None);
    let planned = t.plan();
    assert_eq!(planned.delete.len(), 57 + 2);
    assert!(
        planned.json["policies"][0]["backups"]
            .as_array()
            .unwrap()
            .iter()
            .all(|b| !b["id"].as_str().unwrap().starts_with("auto"))
    );
    let out = t.run(&["run"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert_eq!(t.held(), planned.survivors());
    assert!(t.held().iter().filter(|id| id.starts_with("auto")).count() == 3);
    let deletes: Vec<_> = t
        .server()
        .requests()
        .into_iter()
        .filter(|r| r.method == "DELETE")
        .collect();
    assert_eq!(deletes.len(), 2, "59 backups in batches of at most 50");
    for r in &deletes {
        assert_eq!(r.header("x-language"), Some("en-us"));
    }
    // Password login once per process (plan, then run), the cached token for every request.
    let state = t.huawei().state.lock().unwrap();
    assert_eq!(state.logins, 2);
}

#[test]
fn an_expired_iam_token_is_renewed_once_and_the_run_succeeds() {
    let t = taurus("{last: 3}", None);
    let planned = t.plan();
    // The token stops working mid-run (revoked, or expired early).
    t.server().fault(
        "DELETE",
        "/backups",
        Some(1),
        Fault::Reply(Reply::json(
            401,
            &serde_json::json!({"error_code": "APIGW.0301", "error_msg": "The token must be updated."}),
        )),
    );
    let out = t.run(&["run"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert_eq!(t.held(), planned.survivors());
    // plan logs in once, run once and renews once.
    assert_eq!(t.huawei().state.lock().unwrap().logins, 3, "one renewal");

    // A token that stays rejected is not renewed again and again.
    let t = taurus("{last: 3}", None);
    t.server().fault(
        "GET",
        "/backups",
        None,
        Fault::Reply(Reply::json(
            401,
            &serde_json::json!({"error_code": "APIGW.0301", "error_msg": "The token must be updated."}),
        )),
    );
    let out = t.run(&["run"]);
    assert_eq!(out.code, 3, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stderr
            .contains("auth.username, auth.password and auth.domain"),
        "{}",
        out.stderr
    );
    assert_eq!(t.huawei().state.lock().unwrap().logins, 2);
}

#[test]
fn a_wrong_iam_password_and_a_static_token() {
    let t = taurus("{last: 3}", None);
    let mut env: Vec<(&str, &str)> = SECRET_ENV
        .iter()
        .filter(|(k, _)| *k != "TEST_HW_PASSWORD")
        .copied()
        .collect();
    env.push(("TEST_HW_PASSWORD", "guessing-wrong"));
    let out = retentiond_env(t.dir.path(), &["--config", "retentiond.yaml", "plan"], &env);
    assert_eq!(out.code, 3, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains("POST /v3/auth/tokens: the credentials were rejected (HTTP 401: The username or password is wrong.)"),
        "{}",
        out.stderr
    );
    assert_eq!(t.server().requests().len(), 1);

    let t = taurus("{last: 3}", Some("{token: \"${env:TEST_HW_TOKEN}\"}"));
    let planned = t.plan();
    let out = t.run(&["run"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert_eq!(t.held(), planned.survivors());
    assert!(
        t.server()
            .requests()
            .iter()
            .all(|r| r.header("x-auth-token") == Some(huawei::STATIC_TOKEN))
    );
}

#[test]
fn csbs_deletions_pending_when_the_run_is_killed_are_waited_for_not_resent() {
    let t = csbs(huawei::items("srv-a", 14), "{last: 2}");
    let planned = t.plan();
    assert_eq!(planned.delete.len(), 12);
    t.huawei().state.lock().unwrap().task_time = Duration::from_secs(2);
    let mut child = spawn(t.dir.path(), &["--config", "retentiond.yaml", "run"]);
    wait_while_running(&mut child, || t.server().lines("DELETE").len() >= 5);
    std::thread::sleep(Duration::from_millis(200));
    child.kill().unwrap();
    child.wait().unwrap();
    let sent_before: BTreeSet<String> = t.delete_requests().into_keys().collect();
    assert_eq!(sent_before.len(), 5, "5 tasks at most: {sent_before:?}");
    let pending: Vec<serde_json::Value> = t
        .journal_deletions()
        .into_iter()
        .filter(|d| d["outcome"] == "pending")
        .collect();
    assert_eq!(pending.len(), 5, "the journal knows the pending tasks");

    t.huawei().state.lock().unwrap().task_time = Duration::from_millis(100);
    let out = t.run(&["run"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert_eq!(
        out.stdout.matches("resumed: deleted").count(),
        5,
        "{}",
        out.stdout
    );
    assert_eq!(t.held(), planned.keep);
    let sent = t.delete_requests();
    assert_eq!(
        sent.keys().cloned().collect::<BTreeSet<_>>(),
        planned.delete
    );
    assert!(
        sent.values().all(|n| *n == 1),
        "nothing sent twice: {sent:?}"
    );
    t.check_invariants(&planned);
    // Each backup's last record says deleted. The intents the killed run had committed
    // ahead of its calls (and never sent) were settled from the next listing: not deleted.
    let records = t.journal_deletions();
    let mut last: BTreeMap<String, &serde_json::Value> = BTreeMap::new();
    for d in &records {
        last.insert(d["id"].as_str().unwrap().to_string(), &d["outcome"]);
        if d["outcome"] != "deleted" {
            assert_eq!(d["outcome"], "not_deleted", "{d:?}");
            assert_eq!(d["reconciled"], true, "{d:?}");
            assert!(!sent_before.contains(d["id"].as_str().unwrap()), "{d:?}");
        }
    }
    assert!(last.values().all(|o| *o == "deleted"), "{records:?}");
}

#[test]
fn a_project_that_must_use_cbr_stops_after_the_first_refusal() {
    let t = csbs(huawei::items("srv-a", 8), "{last: 2}");
    t.server().fault(
        "DELETE",
        "/checkpoints/",
        None,
        Fault::Reply(Reply::json(
            400,
            &serde_json::json!({"error_code": "BackupService.4008", "error_msg": "New project are not allowed to use old services"}),
        )),
    );
    let out = t.run(&["run"]);
    assert_eq!(out.code, 4, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stderr
            .contains("new projects must use CBR (Cloud Backup and Recovery)"),
        "{}",
        out.stderr
    );
    // At most the calls already under way when the first refusal came; never all six.
    assert!(t.server().lines("DELETE").len() <= 5);
    assert_eq!(t.held().len(), 8);
}

/// A TaurusDB target holding `n` manual backups of one instance (pages of 3 in the fake).
fn taurus_of(n: usize) -> Target {
    Target::with(
        Kind::Taurusdb,
        Fake::Huawei(Huawei::start(Vec::new(), huawei::backups("i1in07", n))),
        "{last: 3}",
        "",
    )
}

#[test]
fn taurusdb_pages_after_the_first_come_concurrently_within_the_cap_each_once() {
    let t = taurus_of(65);
    t.server().fault(
        "GET",
        "/backups",
        None,
        Fault::Delay(Duration::from_millis(40)),
    );
    let mut listed = t.listed();
    listed.sort();
    let mut held = t.huawei().backup_ids();
    held.sort();
    assert_eq!(listed, held, "every backup listed exactly once");
    // Each offset asked for once: 0, 3, ..., 63.
    let mut offsets: Vec<usize> = t
        .server()
        .requests()
        .iter()
        .filter(|r| r.method == "GET" && r.path.ends_with("/backups"))
        .map(|r| r.param("offset").unwrap().parse().unwrap())
        .collect();
    offsets.sort();
    assert_eq!(offsets, (0..65).step_by(3).collect::<Vec<_>>());
    let most = t.server().max_in_flight();
    assert!(
        (2..=4).contains(&most),
        "pages in flight at once: {most} (the default cap is 4)"
    );
}

#[test]
fn taurusdb_a_list_that_changes_while_paging_is_not_complete() {
    let backup = |id: &str| {
        serde_json::json!({"id": id, "name": id, "begin_time": "2026-11-20T10:41:14+0800",
            "status": "COMPLETED", "type": "manual", "size": 5, "instance_id": "i1in07"})
    };
    let first_page: Vec<_> = ["i1in07-000br07", "i1in07-001br07", "i1in07-002br07"]
        .iter()
        .map(|id| backup(id))
        .collect();
    let cases = [
        // Another backup appeared: the total moved.
        (
            serde_json::json!({"backups": [backup("x1"), backup("x2"), backup("x3")], "total_count": 10}),
            "total_count changed from 9 to 10 while paging",
        ),
        // One went: a page came short.
        (
            serde_json::json!({"backups": [backup("x1"), backup("x2")], "total_count": 9}),
            "the page held 2 backups where 3 were due (of 9, 3 a page)",
        ),
        // Same total, but the pages shifted: a backup came twice.
        (
            serde_json::json!({"backups": first_page, "total_count": 9}),
            "came on two pages: the list changed while paging",
        ),
    ];
    for (page, message) in cases {
        let t = taurus_of(9);
        // The first page as the fake has it, then one later page answered so.
        t.server()
            .fault("GET", "/backups", Some(1), Fault::Delay(Duration::ZERO));
        t.server().fault(
            "GET",
            "/backups",
            Some(1),
            Fault::Reply(Reply::json(200, &page)),
        );
        let out = t.run(&["run"]);
        assert_eq!(out.code, 3, "{message}: {}{}", out.stdout, out.stderr);
        assert!(
            out.stderr.contains(message) && out.stderr.contains("the listing is not complete"),
            "{message}: {}",
            out.stderr
        );
        assert!(t.server().lines("DELETE").is_empty(), "{message}");
        assert_eq!(t.held().len(), 9, "{message}");
    }
}

#[test]
fn csbs_asks_for_the_count_while_paging_and_lists_servers_at_once() {
    let mut items = huawei::items("srv-a", 12);
    items.extend(huawei::items("srv-b", 9));
    let t = csbs(items, "{last: 2}");
    t.server().fault(
        "GET",
        "/checkpoint_items",
        None,
        Fault::Delay(Duration::from_millis(40)),
    );
    assert_eq!(t.listed().len(), 21);
    // One listing of the project: 6 pages (4 at most a page), the empty 7th, and the count
    // beside them.
    assert_eq!(t.server().max_in_flight(), 2);
    assert_eq!(t.server().lines("GET").len(), 8);

    // Named servers are listed at the same time.
    let policy = t.dir.path().join("policies/p.yaml");
    let text = std::fs::read_to_string(&policy).unwrap();
    std::fs::write(
        &policy,
        text.replace("keep:", "select: {resource_ids: [srv-a, srv-b]}\nkeep:"),
    )
    .unwrap();
    let before = t.server().requests().len();
    assert_eq!(t.listed().len(), 21);
    // Each server's 4 pages (the last empty) and its count, both servers at once (the cap
    // is 4).
    assert_eq!(t.server().requests().len() - before, 2 * (4 + 1));
    assert!(
        (3..=4).contains(&t.server().max_in_flight()),
        "{} in flight at most",
        t.server().max_in_flight()
    );
}

fn cbr(backups: Vec<huawei::CbrBackup>, keep: &str) -> Target {
    Target::with(
        Kind::Cbr,
        Fake::Huawei(Huawei::start_cbr(backups)),
        keep,
        "",
    )
}

#[test]
fn cbr_deletes_exactly_the_plan_waits_for_each_deletion_and_leaves_replicas_and_busy_ones() {
    let mut backups = huawei::cbr_backups("srv-a", 12);
    backups.extend(huawei::cbr_backups("srv-b", 6));
    // A replica of srv-a's backups, a backup being made now, one the vault refuses to delete.
    let mut replica = huawei::cbr_backups("srv-a", 1).remove(0);
    replica.id = "srv-a-replica".into();
    replica.image_type = "replication".into();
    backups.push(replica);
    backups[11].status = "protecting".into();
    let t = cbr(backups, "{last: 3}");
    t.huawei()
        .state
        .lock()
        .unwrap()
        .cbr_undeletable
        .push("srv-b-bk-005".into());

    let planned = t.plan();
    // srv-a: 11 complete (the protecting one is ignored), 3 kept; srv-b: 6, 3 kept.
    assert_eq!(planned.keep.len(), 6, "{:?}", planned.keep);
    assert_eq!(planned.delete.len(), 8 + 3);
    assert!(!planned.delete.contains("srv-a-replica") && !planned.keep.contains("srv-a-replica"));
    let times: BTreeMap<String, String> = planned.json["policies"][0]["backups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["id"].as_str().unwrap().into(),
                b["created_at"].as_str().unwrap().into(),
            )
        })
        .collect();
    // Both of CBR's time forms, read as UTC.
    assert_eq!(times["srv-a-bk-000"], "2026-11-20T02:00:00.209782Z");
    assert_eq!(times["srv-a-bk-001"], "2026-11-19T02:00:00.209Z");

    let out = t.run(&["run"]);
    assert_eq!(out.code, 4, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains("FAILED to delete srv-b-bk-005: DELETE /v3/{project_id}/backups/srv-b-bk-005: HTTP 400: BackupService.6201: The backup cannot be deleted."),
        "{}",
        out.stderr
    );
    let mut expected = planned.survivors();
    expected.insert("srv-b-bk-005".into());
    expected.insert("srv-a-replica".into());
    expected.insert("srv-a-bk-011".into());
    assert_eq!(t.held(), expected);
    // Each DELETE once, signed, none for the busy backup or the replica.
    let sent = t.delete_requests();
    assert_eq!(sent.len(), 11);
    assert!(sent.values().all(|n| *n == 1));
    assert!(!sent.contains_key("srv-a-bk-011") && !sent.contains_key("srv-a-replica"));
    for r in t
        .server()
        .requests()
        .iter()
        .filter(|r| r.method == "DELETE")
    {
        assert!(
            r.header("authorization")
                .is_some_and(|a| a.starts_with("SDK-HMAC-SHA256 Access="))
        );
    }
    // Listing: offset pages of the fake's 4, only backups (no replicas) asked for.
    let lists: Vec<String> = t
        .server()
        .requests()
        .iter()
        .filter(|r| r.method == "GET" && r.path.ends_with("/backups"))
        .map(|r| r.query.clone())
        .collect();
    assert!(
        lists.iter().all(|q| q.contains("image_type=backup")),
        "{lists:?}"
    );
    assert!(lists.iter().any(|q| q.contains("offset=16")), "{lists:?}");
    // The journal: every accepted deletion went pending, then deleted once gone.
    let runs = t.history();
    let outcomes: BTreeMap<String, String> = runs[0]["deletions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["id"].as_str().unwrap().into(),
                d["outcome"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(outcomes.values().filter(|o| *o == "deleted").count(), 10);
    assert_eq!(outcomes["srv-b-bk-005"], "failed");
}

#[test]
fn cbr_select_keys_choose_vaults_replicas_and_automatic_backups() {
    let mut backups = huawei::cbr_backups("srv-a", 6);
    for b in backups.iter_mut().take(3) {
        b.auto = true;
    }
    let mut other_vault = huawei::cbr_backups("srv-c", 4);
    for b in &mut other_vault {
        b.vault_id = "vault-2".into();
    }
    backups.extend(other_vault);
    let t = cbr(backups, "{last: 1}");
    write_policy(&t, "select: {vault_ids: [vault-1], automatic: false}\n");
    let planned = t.plan();
    let all: BTreeSet<String> = planned.keep.union(&planned.delete).cloned().collect();
    assert_eq!(
        all,
        ["srv-a-bk-003", "srv-a-bk-004", "srv-a-bk-005"]
            .map(String::from)
            .into(),
        "vault-1's manual backups only"
    );
    let vaults: Vec<String> = t
        .server()
        .requests()
        .iter()
        .filter_map(|r| r.param("vault_id"))
        .collect();
    assert!(vaults.iter().all(|v| v == "vault-1") && !vaults.is_empty());

    // A bad image_type is a located validate error.
    write_policy(&t, "select: {image_type: replica}\n");
    let out = t.run(&["validate"]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains(
            "unknown `select.image_type: replica`; write `backup` (the default) or `replication`"
        ),
        "{}",
        out.stderr
    );
}

fn write_policy(t: &Target, select: &str) {
    common::write(
        t.dir.path(),
        "policies/p.yaml",
        &format!(
            "name: p\naccount: portal\nmode: enforce\n{select}keep: {{last: 1}}\nguard: {{max_delete_fraction: 1}}\n"
        ),
    );
}
