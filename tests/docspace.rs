//! The real binary against the stateful DocSpace fake: what is deleted, what the fake holds
//! afterwards, what was sent (auth, paths), and how faults end.

mod common;

use common::docspace::{self, Fake, Record};
use common::fake::{Fault, Reply};
use common::{Output, json, retentiond_env, write};
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A config with one DocSpace account on the fake and one policy.
fn setup(dir: &Path, fake: &Fake, policy: &str) {
    write(
        dir,
        "retentiond.yaml",
        &format!(
            "policies: policies\naccounts:\n  portal:\n    provider: onlyoffice-docspace\n    base_url: {}\n    api_key: ${{env:TEST_DOCSPACE_KEY}}\n    http: {{retries: 2, backoff: 20ms}}\n",
            fake.server.base
        ),
    );
    write(dir, "policies/p.yaml", policy);
}

const ENFORCE: &str = "name: portal-backups\naccount: portal\nmode: enforce\nkeep: {last: 3, weekly: 2}\nguard: {max_delete_fraction: 1}\n";

fn run(dir: &Path, args: &[&str]) -> Output {
    common::configured(dir, args)
}

/// The plan's ids by action.
fn planned(dir: &Path) -> (BTreeSet<String>, BTreeSet<String>) {
    let out = run(dir, &["plan", "--format", "json"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let plan = json(&out.stdout);
    let mut keep = BTreeSet::new();
    let mut delete = BTreeSet::new();
    for d in plan["policies"][0]["backups"].as_array().unwrap() {
        let id = d["id"].as_str().unwrap().to_string();
        match d["action"].as_str().unwrap() {
            "keep" => keep.insert(id),
            "delete" => delete.insert(id),
            other => panic!("unexpected action {other}"),
        };
    }
    (keep, delete)
}

#[test]
fn enforce_deletes_exactly_the_plan_and_the_portal_keeps_its_keep_set() {
    let fake = Fake::start(docspace::daily(30));
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path(), &fake, ENFORCE);
    let (keep, delete) = planned(dir.path());
    assert_eq!(keep.len(), 4, "3 last + 1 more weekly: {keep:?}");
    assert_eq!(delete.len(), 26);

    let out = run(dir.path(), &["run"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("deleted 26 of 26"), "{}", out.stdout);
    let left: BTreeSet<String> = fake.ids().into_iter().collect();
    assert_eq!(left, keep);
    let sent: BTreeSet<String> = fake.server.lines("DELETE").into_iter().collect();
    let expected: BTreeSet<String> = delete
        .iter()
        .map(|id| format!("DELETE /api/2.0/backup/deletebackup/{id}"))
        .collect();
    assert_eq!(
        sent, expected,
        "one DELETE per planned backup, nothing else"
    );
    for request in fake.server.requests() {
        assert_eq!(
            request.header("authorization"),
            Some(format!("Bearer {}", docspace::API_KEY).as_str())
        );
        assert!(
            request
                .header("user-agent")
                .is_some_and(|ua| ua.starts_with("retentiond/")),
            "{:?}",
            request.header("user-agent")
        );
    }
}

#[test]
fn dry_run_sends_no_delete() {
    let fake = Fake::start(docspace::daily(10));
    let dir = tempfile::tempdir().unwrap();
    setup(
        dir.path(),
        &fake,
        "name: portal-backups\naccount: portal\nkeep: {last: 3}\nguard: {max_delete_fraction: 1}\n",
    );
    let out = run(dir.path(), &["run"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout
            .contains("dry-run (mode: dry-run): nothing deleted; would delete 7"),
        "{}",
        out.stdout
    );
    setup(dir.path(), &fake, ENFORCE);
    let out = run(dir.path(), &["run", "--dry-run"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(fake.server.lines("DELETE").is_empty());
    assert_eq!(fake.ids().len(), 10);
}

fn assert_listing_failed(out: &Output, fake: &Fake, what: &str) {
    assert_eq!(out.code, 3, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains(
            "policy portal-backups: account portal: GET /api/2.0/backup/getbackuphistory: "
        ) && out.stderr.contains(what)
            && out.stderr.contains("nothing was deleted"),
        "{}",
        out.stderr
    );
    assert!(fake.server.lines("DELETE").is_empty());
    assert_eq!(fake.ids().len(), 12);
}

#[test]
fn a_failing_listing_deletes_nothing_and_names_the_account_and_call() {
    let fake = Fake::start(docspace::daily(12));
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path(), &fake, ENFORCE);
    fake.server.fault(
        "GET",
        "getbackuphistory",
        None,
        Fault::Reply(docspace::error(
            500,
            "Database is unavailable",
            Some("System.Exception"),
        )),
    );
    let out = run(dir.path(), &["run"]);
    assert_listing_failed(
        &out,
        &fake,
        "HTTP 500: Database is unavailable (gave up after 3 attempts)",
    );
    assert_eq!(fake.server.lines("GET").len(), 3, "two retries of a 5xx");
}

#[test]
fn a_truncated_listing_deletes_nothing() {
    let fake = Fake::start(docspace::daily(12));
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path(), &fake, ENFORCE);
    fake.server
        .fault("GET", "getbackuphistory", None, Fault::Truncate(700));
    let out = run(dir.path(), &["run"]);
    assert_listing_failed(&out, &fake, "the JSON response is truncated");
}

#[test]
fn a_listing_cut_off_mid_body_deletes_nothing() {
    let fake = Fake::start(docspace::daily(12));
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path(), &fake, ENFORCE);
    fake.server
        .fault("GET", "getbackuphistory", None, Fault::Cut(300));
    let out = run(dir.path(), &["run"]);
    assert_listing_failed(&out, &fake, "the response was cut off before its end");
}

#[test]
fn a_gzip_bomb_is_refused_without_filling_memory() {
    let fake = Fake::start(docspace::daily(12));
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path(), &fake, ENFORCE);
    // 80 MiB of JSON whitespace in about 80 KB of gzip: a valid JSON document once inflated,
    // were it read whole.
    let gzip = std::process::Command::new("sh")
        .args([
            "-c",
            "{ head -c 83886080 /dev/zero | tr '\\0' ' '; echo '{}'; } | gzip -1",
        ])
        .output()
        .expect("gzip");
    assert!(gzip.status.success() && gzip.stdout.len() < 1 << 20);
    fake.server.fault(
        "GET",
        "getbackuphistory",
        None,
        Fault::Reply(
            Reply::raw(200, "application/json", gzip.stdout)
                .with_header("Content-Encoding", "gzip"),
        ),
    );
    let out = run(dir.path(), &["run"]);
    assert_listing_failed(
        &out,
        &fake,
        "the response is larger than 64 MiB (after decompression)",
    );
    // Refused, not retried: one request.
    assert_eq!(fake.server.lines("GET").len(), 1);
}

#[test]
fn an_html_page_with_200_is_not_a_listing() {
    let fake = Fake::start(docspace::daily(12));
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path(), &fake, ENFORCE);
    let page = b"<!DOCTYPE html><html><head><title>Sign in</title></head></html>".to_vec();
    fake.server.fault(
        "GET",
        "getbackuphistory",
        None,
        Fault::Reply(Reply::raw(200, "text/html", page)),
    );
    let out = run(dir.path(), &["run"]);
    assert_listing_failed(&out, &fake, "HTML page titled \"Sign in\"");
}

#[test]
fn an_envelope_whose_count_disagrees_is_incomplete() {
    let fake = Fake::start(docspace::daily(12));
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path(), &fake, ENFORCE);
    let body = serde_json::json!({"response": [], "count": 12, "status": 0, "statusCode": 200});
    fake.server.fault(
        "GET",
        "getbackuphistory",
        None,
        Fault::Reply(Reply::json(200, &body)),
    );
    let out = run(dir.path(), &["run"]);
    assert_listing_failed(&out, &fake, "the envelope counts 12 records but holds 0");
}

#[test]
fn a_429_with_retry_after_is_waited_out_and_the_run_succeeds() {
    let fake = Fake::start(docspace::daily(8));
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path(), &fake, ENFORCE);
    fake.server.fault(
        "GET",
        "getbackuphistory",
        Some(1),
        Fault::Reply(
            docspace::error(429, "Too many requests", None).with_header("Retry-After", "2"),
        ),
    );
    let out = run(dir.path(), &["run"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let gets: Vec<_> = fake
        .server
        .requests()
        .into_iter()
        .filter(|r| r.method == "GET")
        .collect();
    assert_eq!(gets.len(), 2);
    let waited = gets[1].at - gets[0].at;
    assert!(waited >= Duration::from_millis(1900), "waited {waited:?}");
    assert_eq!(fake.ids().len(), 4);
}

#[test]
fn rejected_credentials_are_not_retried_and_say_so() {
    let fake = Fake::start(docspace::daily(8));
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path(), &fake, ENFORCE);
    let wrong = "sk-00000000000000000000000000000000";
    let out = retentiond_env(
        dir.path(),
        &["--config", "retentiond.yaml", "run"],
        &[("TEST_DOCSPACE_KEY", wrong)],
    );
    assert_eq!(out.code, 3, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains("account portal: GET /api/2.0/backup/getbackuphistory: the credentials were rejected (HTTP 401: Unauthorized); check the account's api_key"),
        "{}",
        out.stderr
    );
    assert!(!out.stdout.contains(wrong) && !out.stderr.contains(wrong));
    assert_eq!(fake.server.requests().len(), 1, "a 401 is never retried");
}

#[test]
fn a_hostile_listing_id_cannot_change_the_request_path() {
    let mut records = docspace::daily(5);
    records.push(Record::new("../../x", "2026-10-01T03:00:00"));
    records.push(Record::new(
        "a/../../../backup/deletebackuphistory",
        "2026-10-02T03:00:00",
    ));
    let fake = Fake::start(records);
    let dir = tempfile::tempdir().unwrap();
    setup(
        dir.path(),
        &fake,
        "name: portal-backups\naccount: portal\nmode: enforce\nkeep: {last: 5}\nguard: {max_delete_fraction: 1}\n",
    );
    let out = run(dir.path(), &["run"]);
    assert_eq!(out.code, 4, "{}{}", out.stdout, out.stderr);
    let sent: BTreeSet<String> = fake.server.lines("DELETE").into_iter().collect();
    let expected: BTreeSet<String> = [
        "DELETE /api/2.0/backup/deletebackup/..%2F..%2Fx",
        "DELETE /api/2.0/backup/deletebackup/a%2F..%2F..%2F..%2Fbackup%2Fdeletebackuphistory",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(sent, expected);
    assert_eq!(fake.ids().len(), 7, "nothing was deleted");
    assert!(
        out.stderr
            .contains("FAILED to delete ../../x: DELETE /api/2.0/backup/deletebackup/../../x: not found (HTTP 404"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_500_for_a_backup_that_is_gone_afterwards_counts_as_deleted() {
    let fake = Fake::start(docspace::daily(5));
    let dir = tempfile::tempdir().unwrap();
    setup(
        dir.path(),
        &fake,
        "name: portal-backups\naccount: portal\nmode: enforce\nkeep: {last: 3}\nguard: {max_delete_fraction: 1}\n",
    );
    // The record is removed, but the storage driver throws: 500 (PROVIDERS.md 2.5); each
    // retry then meets an unknown id, for which DocSpace answers 500 too.
    let doomed = docspace::guid(4);
    fake.server.fault(
        "DELETE",
        &doomed,
        Some(1),
        Fault::Swallow(docspace::error(
            500,
            "The file does not exist",
            Some("System.IO.IOException"),
        )),
    );
    let out = run(dir.path(), &["run"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains(&format!("deleted {doomed}")),
        "{}",
        out.stdout
    );
    let attempts = fake
        .server
        .lines("DELETE")
        .iter()
        .filter(|l| l.ends_with(&doomed))
        .count();
    assert_eq!(attempts, 3, "the first try and two retries");
    assert_eq!(fake.ids().len(), 3);
    assert_eq!(
        fake.server.lines("GET").len(),
        2,
        "one fresh listing settled it"
    );
}

#[test]
fn purge_history_shows_first_and_needs_yes() {
    let fake = Fake::start(docspace::daily(4));
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path(), &fake, ENFORCE);
    let out = run(
        dir.path(),
        &["docspace", "purge-history", "--account", "portal"],
    );
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("4 backups"), "{}", out.stdout);
    assert!(
        out.stdout
            .contains("dry run: nothing deleted (add --yes to delete all of them)"),
        "{}",
        out.stdout
    );
    assert!(fake.server.lines("DELETE").is_empty());

    let out = run(
        dir.path(),
        &["docspace", "purge-history", "--account", "portal", "--yes"],
    );
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert_eq!(
        fake.server.lines("DELETE"),
        ["DELETE /api/2.0/backup/deletebackuphistory"]
    );
    assert!(fake.ids().is_empty());
    assert!(
        out.stdout
            .contains("deleted the backup history: 4 backups before, 0 listed now"),
        "{}",
        out.stdout
    );

    let out = run(
        dir.path(),
        &["docspace", "purge-history", "--account", "portl"],
    );
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("did you mean `portal`?"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_slow_portal_times_out_and_deletes_nothing() {
    let fake = Fake::start(docspace::daily(12));
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path(), &fake, ENFORCE);
    let config = std::fs::read_to_string(dir.path().join("retentiond.yaml")).unwrap();
    write(
        dir.path(),
        "retentiond.yaml",
        &config.replace(
            "http: {retries: 2, backoff: 20ms}",
            "http: {timeout: 300ms, retries: 1, backoff: 20ms}",
        ),
    );
    fake.server.fault(
        "GET",
        "getbackuphistory",
        None,
        Fault::Delay(Duration::from_secs(2)),
    );
    let out = run(dir.path(), &["run"]);
    assert_listing_failed(&out, &fake, "timed out (http.timeout 0.3s");
    assert!(
        out.stderr.contains("(gave up after 2 attempts)"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_connection_reset_on_every_try_deletes_nothing() {
    let fake = Fake::start(docspace::daily(12));
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path(), &fake, ENFORCE);
    fake.server
        .fault("GET", "getbackuphistory", None, Fault::Reset);
    let out = run(dir.path(), &["run"]);
    assert_listing_failed(&out, &fake, "(gave up after 3 attempts)");
    assert_eq!(
        fake.server.lines("GET").len(),
        3,
        "a dropped connection is retried"
    );
}

#[test]
fn deletions_failing_the_same_way_stop_after_ten_with_one_summary() {
    let fake = Fake::start(docspace::daily(60));
    let dir = tempfile::tempdir().unwrap();
    setup(
        dir.path(),
        &fake,
        "name: portal-backups\naccount: portal\nmode: enforce\nkeep: {last: 3}\nguard: {max_delete_fraction: 1}\n",
    );
    fake.server.fault(
        "DELETE",
        "/deletebackup/",
        None,
        Fault::Reply(docspace::error(
            403,
            "Access denied",
            Some("System.Security.SecurityException"),
        )),
    );
    let out = run(dir.path(), &["run"]);
    assert_eq!(out.code, 4, "{}{}", out.stdout, out.stderr);
    let sent = fake.server.lines("DELETE").len();
    // The ten in a row, and at most what was already in flight beside them (cap 4).
    assert!((10..=13).contains(&sent), "{sent} DELETEs sent");
    assert!(
        out.stderr.contains(
            "policy portal-backups: stopped after 10 deletions in a row failed the same way ("
        ) && out.stderr.contains(&format!(
            "; {} more were not tried; check that the account's credentials may delete backups",
            57 - sent
        )),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.lines().count() <= sent + 2,
        "a line per failure sent and one summary:\n{}",
        out.stderr
    );
    assert_eq!(fake.ids().len(), 60, "nothing was deleted");
    let history = run(dir.path(), &["history", "--format", "json", "--limit", "1"]);
    let runs = json(&history.stdout);
    assert_eq!(runs["runs"][0]["outcome"], "deletions-failed");
    assert_eq!(
        runs["runs"][0]["deletions"].as_array().unwrap().len(),
        sent,
        "an intent only for what was sent"
    );
}

#[test]
fn run_prints_each_deletion_as_it_happens_and_ctrl_c_stops_with_a_summary() {
    use std::io::{BufRead, BufReader, Read};
    use std::sync::{Arc, Mutex};
    let fake = Fake::start(docspace::daily(30));
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path(), &fake, ENFORCE);
    write(
        dir.path(),
        "retentiond.yaml",
        &format!(
            "policies: policies\naccounts:\n  portal:\n    provider: onlyoffice-docspace\n    base_url: {}\n    api_key: ${{env:TEST_DOCSPACE_KEY}}\n    http: {{concurrency: 1}}\n",
            fake.server.base
        ),
    );
    common::approve_all(dir.path());
    // Each deletion takes a while: 26 of them would take 10 s.
    fake.server.fault(
        "DELETE",
        "/deletebackup/",
        None,
        Fault::Delay(Duration::from_millis(400)),
    );
    let mut child = common::spawn_piped(dir.path(), &["--config", "retentiond.yaml", "run"]);
    let lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let reader = {
        let lines = lines.clone();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                lines.lock().unwrap().push(line.unwrap());
            }
        })
    };
    // The first deletion shows while the run goes on.
    common::wait_while_running(&mut child, || {
        lines
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.starts_with("  deleted "))
    });
    {
        let seen = lines.lock().unwrap();
        assert!(seen[0].starts_with("policy portal-backups "), "{seen:?}");
        assert!(
            seen.iter()
                .any(|l| l == "  summary: keep 4, delete 26, ignore 0 in 1 group")
        );
    }
    let interrupted = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(interrupted.success());
    let status = child.wait().unwrap();
    reader.join().unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert_eq!(status.code(), Some(130), "{stderr}");
    assert!(
        stderr.contains("interrupted: finishing the deletions in flight"),
        "{stderr}"
    );

    let seen = lines.lock().unwrap().clone();
    let deleted = seen.iter().filter(|l| l.starts_with("  deleted ")).count() - 1;
    assert!(deleted < 26, "{seen:?}");
    // What was sent finished; the summary counts it and what was not sent.
    assert_eq!(fake.server.lines("DELETE").len(), deleted);
    assert_eq!(fake.ids().len(), 30 - deleted);
    assert!(
        seen.contains(&format!(
            "  STOPPED: interrupted; {} of 26 deletions were not sent (the next run plans them again)",
            26 - deleted
        )),
        "{seen:?}"
    );
    assert_eq!(seen.last().unwrap(), &format!("  deleted {deleted} of 26"));

    // --summary: the counts, not a line per deletion.
    fake.server.clear_faults();
    let out = run(dir.path(), &["run", "--summary"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let per_deletion = out
        .stdout
        .lines()
        .filter(|l| l.starts_with("  deleted ") && !l.contains(" of "));
    assert_eq!(per_deletion.count(), 0, "{}", out.stdout);
    assert!(
        out.stdout
            .ends_with(&format!("  deleted {} of {}\n", 26 - deleted, 26 - deleted)),
        "{}",
        out.stdout
    );
}

/// The portal refuses a DELETE whose intent the journal does not hold, committed and open,
/// when the call arrives: intents are committed in groups ahead of their calls, never after.
#[test]
fn no_delete_reaches_the_portal_before_its_intent_is_committed() {
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("state/journal.sqlite");
    let refused: Arc<Mutex<Vec<String>>> = Arc::default();
    let seen = refused.clone();
    let fake = Fake::start_guarded(docspace::daily(300), move |r| {
        let id = r.path.strip_prefix("/api/2.0/backup/deletebackup/")?;
        let open = rusqlite::Connection::open_with_flags(
            &journal,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .and_then(|c| {
            c.query_row(
                "SELECT count(*) FROM deletions WHERE backup_id = ?1 AND outcome IS NULL",
                [id],
                |row| row.get::<_, i64>(0),
            )
        });
        match open {
            Ok(1) => None,
            other => {
                seen.lock().unwrap().push(format!("{id}: {other:?}"));
                Some(Reply::raw(409, "text/plain", b"no intent".to_vec()))
            }
        }
    });
    write(
        dir.path(),
        "retentiond.yaml",
        &format!(
            "policies: policies\nstate_dir: state\naccounts:\n  portal:\n    provider: onlyoffice-docspace\n    base_url: {}\n    api_key: ${{env:TEST_DOCSPACE_KEY}}\n    http: {{concurrency: 8}}\n",
            fake.server.base
        ),
    );
    write(
        dir.path(),
        "policies/p.yaml",
        "name: p\naccount: portal\nmode: enforce\nkeep: {last: 3}\nguard: {max_delete_fraction: 1}\n",
    );
    let out = run(dir.path(), &["run"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(
        refused.lock().unwrap().is_empty(),
        "{:?}",
        refused.lock().unwrap()
    );
    assert_eq!(fake.ids().len(), 3);
    assert_eq!(fake.server.lines("DELETE").len(), 297);
    // Every intent has its outcome, and the journal holds one record per call.
    let history = run(dir.path(), &["history", "--format", "json", "--limit", "1"]);
    let deletions = json(&history.stdout)["runs"][0]["deletions"].clone();
    let deletions = deletions.as_array().unwrap();
    assert_eq!(deletions.len(), 297);
    assert!(deletions.iter().all(|d| d["outcome"] == "deleted"));
}

/// Policies of one account and provider-side selection share one listing per command: three
/// policies told apart by `select.name` send one listing request, a fourth reading the dump
/// history one more.
#[test]
fn policies_on_one_selection_share_one_listing() {
    let mut records = docspace::daily(60);
    records[59].dump = true;
    let fake = Fake::start(records);
    let dir = tempfile::tempdir().unwrap();
    setup(
        dir.path(),
        &fake,
        "name: a\naccount: portal\nselect: {name: '^backup-2026-11-'}\nkeep: {last: 3}\nguard: {max_delete_fraction: 1}\n",
    );
    for (name, select) in [
        ("b", "{name: '^backup-2026-10-'}"),
        ("c", "{name: '^backup-2026-09-'}"),
        ("d", "{dump: true}"),
    ] {
        write(
            dir.path(),
            &format!("policies/{name}.yaml"),
            &format!(
                "name: {name}\naccount: portal\nselect: {select}\nkeep: {{last: 3}}\nguard: {{max_delete_fraction: 1}}\n"
            ),
        );
    }
    let out = run(dir.path(), &["plan", "--format", "json"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let plan = json(&out.stdout);
    let count = |name: &str| {
        let policy = plan["policies"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .unwrap();
        let backups = policy["backups"].as_array().unwrap();
        backups.iter().filter(|b| b["action"] != "ignore").count()
    };
    // Each policy took its own part of the one listing.
    assert_eq!(
        (count("a"), count("b"), count("c"), count("d")),
        (20, 31, 8, 1)
    );
    let listings: Vec<String> = fake
        .server
        .requests()
        .iter()
        .filter(|r| r.method == "GET")
        .map(|r| r.query.clone())
        .collect();
    assert_eq!(listings.len(), 2, "{listings:?}");
    assert!(
        listings.iter().any(|q| q.contains("Dump=true")),
        "{listings:?}"
    );
}
