//! What an operator meets by ordinary acts (issue "Operators II"): a journal this user may
//! not read, a fresh journal opened by many at once, the way out of a block, a selection
//! that matches nothing, zone names, and refusals that name the live holder of a lock.

mod common;

use common::http_get as get;
use common::{json, retentiond_as, retentiond_in, write};
use std::path::Path;

const NOBODY: u32 = 65534;

fn run(dir: &Path, args: &[&str]) -> common::Output {
    let mut all = vec!["--config", "retentiond.yaml"];
    all.extend_from_slice(args);
    retentiond_in(dir, &all)
}

/// A folder (readable by every user) with a config, policy `p` (`keep`) on a local folder of
/// `n` daily dumps from 1 December 2024.
fn folder(n: u32, keep: &str) -> tempfile::TempDir {
    folder_guarded(n, keep, "guard: {max_delete_fraction: 1}\n")
}

/// [`folder`] with `guard` as the policy's guard lines (empty: the defaults).
fn folder_guarded(n: u32, keep: &str, guard: &str) -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
    write(
        d,
        "retentiond.yaml",
        "policies: policies\nstate_dir: state\naccounts:\n  files: { provider: local, path: backups }\n",
    );
    write(
        d,
        "policies/p.yaml",
        &format!(
            "name: p\naccount: files\nmode: enforce\nselect: {{ pattern: '^db-(?P<ts>\\d{{8}})\\.sql$' }}\nkeep: {keep}\n{guard}"
        ),
    );
    let start = jiff::civil::date(2024, 12, 1);
    for day in 0..n {
        let date = start + jiff::Span::new().days(i64::from(day));
        write(
            d,
            &format!("backups/db-{}.sql", date.strftime("%Y%m%d")),
            "",
        );
    }
    dir
}

#[test]
fn a_journal_this_user_may_not_read_is_an_error_not_an_empty_history() {
    if common::uid() != 0 {
        eprintln!("skipped: reading as another user needs root to switch users");
        return;
    }
    let dir = folder(30, "{last: 5}");
    let d = dir.path();
    common::approve_all(d);
    let out = run(d, &["run"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let config = ["--config", "retentiond.yaml"];
    let out = retentiond_as(NOBODY, d, &[&config[..], &["history"]].concat());
    assert_eq!(out.code, 7, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stderr
            .contains("state/journal.sqlite: Permission denied (os error 13); the state folder ")
            && out
                .stderr
                .contains("belongs to uid 0 (mode 700): run this as that user"),
        "{}",
        out.stderr
    );
    assert!(!out.stdout.contains("nothing has run"), "{}", out.stdout);
    // `plan` goes on, and says which guards it could not check.
    let out = retentiond_as(NOBODY, d, &[&config[..], &["plan"]].concat());
    assert!(
        out.stdout
            .contains("the listing-drop guard was not checked: cannot read the journal ")
            || out
                .stderr
                .contains("the listing-drop guard was not checked: cannot read the journal "),
        "{}{}",
        out.stdout,
        out.stderr
    );
    // Where nothing has run, history says so.
    let fresh = folder(3, "{last: 5}");
    let out = run(fresh.path(), &["history"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("(nothing has run)"), "{}", out.stdout);
}

#[test]
fn eight_processes_opening_one_fresh_journal_all_succeed() {
    for attempt in 0..3 {
        let dir = folder(3, "{last: 5}");
        let children: Vec<_> = (0..8)
            .map(|_| {
                std::process::Command::new(env!("CARGO_BIN_EXE_retentiond"))
                    .args(["--config", "retentiond.yaml", "approve", "--all"])
                    .current_dir(dir.path())
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for child in children {
            let out = child.wait_with_output().unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(
                out.status.success() && stderr.is_empty(),
                "attempt {attempt}: {stderr}"
            );
        }
        let out = run(dir.path(), &["history"]);
        assert_eq!(out.code, 0, "{}", out.stderr);
    }
}

#[test]
fn an_approved_first_run_that_would_delete_almost_everything_still_waits() {
    let dir = folder_guarded(730, "{within: 1h}", "");
    let d = dir.path();
    let count = || std::fs::read_dir(d.join("backups")).unwrap().count();
    // New: both the bound for unapproved policies and the default share trip, and one
    // command lifts exactly those two.
    let out = run(d, &["run"]);
    assert_eq!(out.code, 5, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains("the plan deletes 729 of 730 complete backups (100%), more than guard.max_delete_fraction 0.5")
            && out.stderr.contains("no person has approved this version")
            && out.stderr.contains("to let one run through once all the same: `retentiond run --policy p --approve --accept-max-delete`"),
        "{}",
        out.stderr
    );
    // Approved, it still waits: approval is not consent to delete almost everything.
    common::approve_all(d);
    let out = run(d, &["run"]);
    assert_eq!(out.code, 5, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains("to let one run through once all the same: `retentiond run --policy p --accept-max-delete`")
            && !out.stderr.contains("no person has approved"),
        "{}",
        out.stderr
    );
    assert_eq!(count(), 730);
    // The message's command, word for word.
    let command = out.stderr.split('`').rev().nth(1).unwrap().to_string();
    let words: Vec<&str> = command.split_whitespace().skip(1).collect();
    assert_eq!(words, ["run", "--policy", "p", "--accept-max-delete"]);
    let out = run(d, &words);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert_eq!(count(), 1);
}

#[test]
fn a_daemon_that_cannot_take_a_lock_reports_a_failed_run() {
    use std::os::unix::fs::chown;
    if common::uid() != 0 {
        eprintln!("skipped: a lock another user made needs root to set up");
        return;
    }
    let dir = folder(10, "{last: 3}");
    let d = dir.path();
    write(
        d,
        "retentiond.yaml",
        "policies: policies\nstate_dir: state\nmetrics: { listen: \"127.0.0.1:0\" }\naccounts:\n  files: { provider: local, path: backups }\n",
    );
    let policy = std::fs::read_to_string(d.join("policies/p.yaml")).unwrap();
    write(
        d,
        "policies/p.yaml",
        &format!("{policy}schedule: \"* * * * * *\"\n"),
    );
    common::approve_all(d);
    // The daemon's user owns the state folder; a root-only `locks` folder an older version
    // left there stands in the way.
    for path in ["state", "state/journal.sqlite"] {
        chown(d.join(path), Some(NOBODY), Some(NOBODY)).unwrap();
    }
    std::fs::create_dir(d.join("state/locks")).unwrap();
    std::fs::set_permissions(
        d.join("state/locks"),
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .unwrap();
    let log = d.join("daemon.log");
    let mut daemon = common::spawn_daemon_as(NOBODY, d, &log);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let logged = || std::fs::read_to_string(&log).unwrap_or_default();
    while !logged().contains("locks/p.lock") && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let text = logged();
    let address = common::metrics_address(&text);
    let (code, body) = get(&address, "/healthz");
    let _ = daemon.kill();
    let _ = daemon.wait();
    assert_eq!(code, 503, "{body}\n{text}");
    assert!(body.contains("locks/p.lock: Permission denied"), "{body}");
    let out = run(d, &["history", "--format", "json"]);
    let runs = json(&out.stdout)["runs"].as_array().unwrap().clone();
    assert!(
        runs.iter().any(|r| r["outcome"] == "journal-failed"
            && r["message"]
                .as_str()
                .unwrap()
                .contains("locks/p.lock: Permission denied")),
        "{runs:?}"
    );
    assert_eq!(std::fs::read_dir(d.join("backups")).unwrap().count(), 10);
}

#[test]
fn a_selection_that_matches_nothing_is_its_own_outcome() {
    let dir = folder(5, "{last: 3}");
    let d = dir.path();
    // The dumps are `.sql`; the policy looks for `.sql.gz`.
    let policy = std::fs::read_to_string(d.join("policies/p.yaml")).unwrap();
    write(
        d,
        "policies/p.yaml",
        &policy.replace(r"\.sql$", r"\.sql\.gz$"),
    );
    common::approve_all(d);
    let out = run(d, &["run"]);
    assert_eq!(out.code, 9, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains(
            "the policy selects no backup: none of the 5 entries of the listing match its `select`"
        ),
        "{}",
        out.stdout
    );
    let out = run(
        d,
        &[
            "history",
            "--format",
            "json",
            "--outcome",
            "nothing-selected",
        ],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(json(&out.stdout)["runs"].as_array().unwrap().len(), 1);
    let out = run(d, &["plan"]);
    assert_eq!(out.code, 9, "{}{}", out.stdout, out.stderr);
}

#[test]
fn zone_names_get_the_place_the_sign_trap_and_a_warning_for_fixed_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let policy = |zone: &str| format!("name: p\naccount: a\nkeep: {{last: 1}}\ntimezone: {zone}\n");
    let validate = |zone: &str| {
        write(d, "p.yaml", &policy(zone));
        retentiond_in(d, &["validate", "p.yaml"])
    };
    let out = validate("berlin");
    assert_eq!(out.code, 1);
    assert!(
        out.stderr
            .contains("unknown time zone `berlin`; did you mean `Europe/Berlin`?"),
        "{}",
        out.stderr
    );
    let out = validate("new york");
    assert!(
        out.stderr.contains("did you mean `America/New_York`?"),
        "{}",
        out.stderr
    );
    let out = validate("GMT+1");
    assert!(
        out.stderr.contains("unknown time zone `GMT+1`; for UTC+1 all year write `Etc/GMT-1` (POSIX names read the sign backwards: `Etc/GMT+1` is UTC-1)"),
        "{}",
        out.stderr
    );
    for fixed in ["EST", "Etc/GMT-1"] {
        let out = validate(fixed);
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert!(
            out.stderr.contains(&format!(
                "warning: p.yaml: policy p: `timezone: {fixed}` is a fixed offset ("
            )),
            "{}",
            out.stderr
        );
    }
    for fine in ["Europe/Berlin", "UTC", "Asia/Tokyo"] {
        let out = validate(fine);
        assert_eq!((out.code, out.stderr.as_str()), (0, ""), "{fine}");
    }
}

#[test]
fn a_garbled_postgresql_url_fails_validate_and_the_daemons_start() {
    let dir = folder(3, "{last: 5}");
    let d = dir.path();
    write(
        d,
        "retentiond.yaml",
        "policies: policies\nstate_dir: state\njournal: { postgres: \"${env:TEST_PG_URL}\" }\naccounts:\n  files: { provider: local, path: backups }\n",
    );
    let garbled = [(
        "TEST_PG_URL",
        "postgresql://rd@db.example.com:54x32/journal",
    )];
    let config = ["--config", "retentiond.yaml"];
    let out = common::retentiond_env(d, &[&config[..], &["validate"]].concat(), &garbled);
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stderr
            .contains("journal.postgres: the PostgreSQL URL is not valid (")
            && out
                .stderr
                .contains("write postgresql://USER@HOST:PORT/DATABASE?sslmode=verify-full"),
        "{}",
        out.stderr
    );
    // The daemon refuses to start instead of retrying a URL that can never work.
    let started = std::time::Instant::now();
    let out = common::retentiond_env(d, &[&config[..], &["daemon"]].concat(), &garbled);
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stderr
            .contains("not started: journal.postgres: the PostgreSQL URL is not valid"),
        "{}",
        out.stderr
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    // A remote server with `sslmode=prefer` is refused the same way.
    let prefer = [(
        "TEST_PG_URL",
        "postgresql://rd@db.example.com/journal?sslmode=prefer",
    )];
    let out = common::retentiond_env(d, &[&config[..], &["validate"]].concat(), &prefer);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains(
            "sslmode=prefer and sslmode=disable are refused for a server on another host"
        ),
        "{}",
        out.stderr
    );
}

#[test]
fn history_shows_overrides_and_who_approved_and_approvals_are_listed() {
    let dir = folder_guarded(30, "{last: 5}", "");
    let d = dir.path();
    let config = ["--config", "retentiond.yaml"];
    let out = common::retentiond_env(
        d,
        &[&config[..], &["approve", "p"]].concat(),
        &[("SUDO_USER", "alice")],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let out = run(d, &["run", "--accept-max-delete"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let out = run(d, &["history"]);
    assert!(
        out.stdout.contains(
            "  let through once with --accept-max-delete\n  this version approved by alice at "
        ),
        "{}",
        out.stdout
    );
    let out = run(d, &["history", "--format", "json"]);
    assert_eq!(json(&out.stdout)["runs"][0]["approved"]["by"], "alice");
    // Deletions in the plan's order: newest first.
    let deleted: Vec<String> = json(&out.stdout)["runs"][0]["deletions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["created_at"].as_str().unwrap().to_string())
        .collect();
    let mut sorted = deleted.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(deleted, sorted);
    let out = run(d, &["approve", "--list"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.contains(" policy p version ") && out.stdout.contains(" approved by alice  ("),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.trim_end().ends_with("/policies/p.yaml)"),
        "{}",
        out.stdout
    );
    let out = run(d, &["approve", "--list", "--format", "json"]);
    assert_eq!(json(&out.stdout)["approvals"][0]["policy"], "p");
}

#[test]
fn small_things_an_operator_reads() {
    let dir = folder(3, "{last: 5}");
    let d = dir.path();
    let out = run(d, &["validate"]);
    assert_eq!(
        out.stdout,
        "ok: 1 policy valid, accounts checked against retentiond.yaml\n"
    );
    // A config without policies says so instead of printing nothing.
    std::fs::remove_file(d.join("policies/p.yaml")).unwrap();
    let out = run(d, &["plan"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stderr.contains("note: no policy in ")
            && out
                .stderr
                .contains("policies (the config's `policies`): nothing to plan or run"),
        "{}",
        out.stderr
    );
    // A state_dir that is a file.
    write(d, "afile", "");
    write(
        d,
        "retentiond.yaml",
        "policies: policies\nstate_dir: afile\naccounts:\n  files: { provider: local, path: backups }\n",
    );
    let out = run(d, &["approve", "--all"]);
    assert_eq!(out.code, 7, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("afile is a file, not a folder; set state_dir in the config to a folder"),
        "{}",
        out.stderr
    );
    // Help: the options every command takes under their own heading; no file names offered
    // for policy names.
    let help = retentiond_in(d, &["journal", "compact", "--help"]).stdout;
    let global = help.find("Global options:").expect("a heading");
    assert!(help.find("--verbose").unwrap() > global, "{help}");
    let bash = retentiond_in(d, &["completions", "bash"]).stdout;
    let policy = &bash[bash.find("--policy)").unwrap()..];
    assert!(
        !policy[..policy.find(";;").unwrap()].contains("compgen -f"),
        "{policy}"
    );
}
