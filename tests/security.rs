//! The security review's findings (issue 34), each pinned by what a user or a provider would
//! see: repeated backups in a listing, accounts that reach the same backups, state files and
//! symlinks, oversized answers, names that would forge a terminal's view, URLs that would leave
//! loopback in plaintext.

mod common;

use common::cloudinary;
use common::huawei::{self, Fake as Huawei};
use common::target::{Fake, Kind, Target};
use common::{json, retentiond_in, write};
use std::collections::BTreeSet;
use std::path::Path;

fn run(dir: &Path, args: &[&str]) -> common::Output {
    let mut all = vec!["--config", "retentiond.yaml"];
    all.extend_from_slice(args);
    retentiond_in(dir, &all)
}

/// Five daily backups of one group, as a listing file; `repeat` lists the newest twice.
fn five_days(repeat: bool) -> String {
    let mut backups: Vec<String> = (1..=5)
        .rev()
        .map(|day| {
            format!(
                r#"{{"id": "b{day}", "group": "g", "created_at": "2026-11-0{day}T03:00:00Z", "status": "complete"}}"#
            )
        })
        .collect();
    if repeat {
        backups.insert(1, backups[0].clone());
    }
    format!("{{\"backups\": [{}]}}", backups.join(",\n"))
}

#[test]
fn a_saved_listing_that_repeats_a_backup_blocks_the_policy() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "policies/p.yaml",
        "name: p\naccount: a\nmode: enforce\nkeep: {last: 3}\ntimezone: UTC\n",
    );
    let plan = |listing: &str| {
        write(dir.path(), "listing.json", listing);
        retentiond_in(
            dir.path(),
            &[
                "plan",
                "--policies",
                "policies",
                "--listing",
                "listing.json",
                "--format",
                "json",
            ],
        )
    };
    // Without the repeat: b1 and b2 go.
    let out = plan(&five_days(false));
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(json(&out.stdout)["policies"][0]["summary"]["delete"], 2);

    // With b5 listed twice, `last: 3` would have spent its budget on b5 twice and deleted b3.
    let out = plan(&five_days(true));
    assert_eq!(out.code, 5, "{}{}", out.stdout, out.stderr);
    let blocked = json(&out.stdout)["policies"][0]["blocked"].clone();
    assert!(
        blocked.as_str().unwrap().starts_with(
            "the listing names backup b5 (group g) 2 times: a repeated backup spends the keep rules' budget twice and could delete a backup the plan keeps, so nothing is deleted"
        ),
        "{blocked}"
    );
}

#[test]
fn a_paged_listing_that_repeats_a_backup_deletes_nothing() {
    // Offset paging (CBR): the list shifted between pages, one backup came back on the next
    // page; the listing is refused as incomplete.
    let mut backups = huawei::cbr_backups("srv-a", 10);
    let again = backups[3].clone();
    backups.insert(4, again);
    let fake = Huawei::start_cbr(backups);
    fake.state.lock().unwrap().cbr_page = 4;
    let t = Target::with(Kind::Cbr, Fake::Huawei(fake), "{last: 3}", "");
    let before = t.held();
    let out = t.run(&["run"]);
    assert_ne!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains("backup srv-a-bk-003 came on two pages: the list changed while paging; the listing is not complete (run again); nothing was deleted"),
        "{}",
        out.stderr
    );
    assert!(t.server().lines("DELETE").is_empty());
    assert_eq!(t.held(), before);

    // Cursor paging (Cloudinary): an asset that comes back on a later page is read once, so
    // its versions are neither counted twice nor deleted against the plan.
    let mut assets: Vec<_> = (1..=3)
        .map(|n| cloudinary::asset(n, &format!("products/p{n}"), 8, 0))
        .collect();
    assets.push(assets[0].clone());
    let t = Target::with(
        Kind::Cloudinary,
        Fake::Cloudinary(cloudinary::Fake::start(assets, 2)),
        "{last: 3}",
        "",
    );
    let planned = t.plan();
    assert_eq!((planned.keep.len(), planned.delete.len()), (9, 15));
    let out = t.run(&["run"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let sent = t.delete_requests();
    assert!(sent.values().all(|n| *n == 1), "{sent:?}");
    assert_eq!(sent.into_keys().collect::<BTreeSet<_>>(), planned.delete);
}

#[test]
fn validate_refuses_an_id_named_twice_in_select() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "retentiond.yaml",
        "policies: policies\nstate_dir: state\naccounts:\n  cld: { provider: cloudinary, cloud_name: demo, api_key: \"${env:TEST_CLD_KEY}\", api_secret: \"${env:TEST_CLD_SECRET}\" }\n",
    );
    write(
        dir.path(),
        "policies/p.yaml",
        "name: p\naccount: cld\nkeep: {last: 3}\nselect:\n  asset_ids:\n    - 0a1b\n    - 0a1b\n",
    );
    let out = run(dir.path(), &["validate"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains(
            "policies/p.yaml:7:7: `select.asset_ids` names `0a1b` again (first at line 6): a repeated id is listed twice"
        ),
        "{}",
        out.stderr
    );
}

#[test]
fn two_accounts_on_one_folder_are_one_place_for_the_overlap_guard() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(
        d,
        "retentiond.yaml",
        "policies: policies\nstate_dir: state\naccounts:\n  files: { provider: local, path: backups }\n  mirror: { provider: local, path: link }\n",
    );
    for day in 1..=30 {
        write(d, &format!("backups/db-202611{day:02}.sql.gz"), "");
    }
    std::os::unix::fs::symlink(d.join("backups"), d.join("link")).unwrap();
    let policy = |name: &str, account: &str, keep: &str| {
        format!(
            "name: {name}\naccount: {account}\nmode: enforce\nselect: {{ pattern: '^db-(?P<ts>\\d{{8}})\\.sql\\.gz$' }}\nkeep: {keep}\nguard: {{max_delete_fraction: 1}}\n"
        )
    };
    write(
        d,
        "policies/short.yaml",
        &policy("short", "files", "{last: 3}"),
    );
    write(
        d,
        "policies/archive.yaml",
        &policy("archive", "mirror", "{weekly: 4}"),
    );
    let out = run(d, &["validate"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stderr.contains("policies archive and short (policies/short.yaml:1:7) of accounts mirror and files (which reach the same backups) select the same backups"),
        "{}",
        out.stderr
    );
    common::approve_all(d);
    let out = run(d, &["run", "--policy", "short"]);
    assert_eq!(out.code, 5, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains("policy short: BLOCKED, nothing was deleted: policy archive (policies/archive.yaml) of account mirror, which reaches the same backups as account files, also selects backup db-20261101.sql.gz"),
        "{}",
        out.stderr
    );
    assert_eq!(std::fs::read_dir(d.join("backups")).unwrap().count(), 30);
}

#[test]
fn a_manual_root_run_leaves_state_files_the_daemons_user_can_use() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt, chown};
    if common::uid() != 0 {
        eprintln!("skipped: switching between root and another user needs root");
        return;
    }
    const NOBODY: u32 = 65534;
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
        "name: p\naccount: files\nmode: enforce\nschedule: \"* * * * * *\"\nselect: { pattern: '^db-(?P<ts>\\d{8})\\.sql$' }\nkeep: {last: 3}\nguard: {max_delete_fraction: 1}\n",
    );
    for day in 1..=10 {
        write(d, &format!("backups/db-202611{day:02}.sql"), "");
    }
    // The package's layout: the state folder and the backups belong to the daemon's user.
    std::fs::create_dir(d.join("state")).unwrap();
    for path in [d.join("state"), d.join("backups")] {
        chown(&path, Some(NOBODY), Some(NOBODY)).unwrap();
    }
    for entry in std::fs::read_dir(d.join("backups")).unwrap() {
        chown(entry.unwrap().path(), Some(NOBODY), Some(NOBODY)).unwrap();
    }

    // An operator's `sudo retentiond approve --all` and `sudo retentiond run --dry-run`.
    common::approve_all(d);
    let out = run(d, &["run", "--dry-run"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let meta = |p: &str| std::fs::symlink_metadata(d.join(p)).unwrap();
    for (path, mode) in [
        ("state/journal.sqlite", 0o600),
        ("state/locks", 0o700),
        ("state/locks/p.lock", 0o600),
    ] {
        assert_eq!(
            meta(path).uid(),
            NOBODY,
            "{path} belongs to the state folder's owner"
        );
        assert_eq!(meta(path).mode() & 0o777, mode, "{path}");
    }

    // The daemon, as the state folder's user, runs the policy on its schedule.
    let log = d.join("daemon.log");
    let mut daemon = common::spawn_daemon_as(NOBODY, d, &log);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let count = || std::fs::read_dir(d.join("backups")).unwrap().count();
    while count() > 3 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let _ = daemon.kill();
    let _ = daemon.wait();
    let logged = std::fs::read_to_string(&log).unwrap();
    assert_eq!(count(), 3, "the daemon's run deleted down to 3:\n{logged}");
    assert!(!logged.contains("Permission denied"), "{logged}");
}

#[test]
fn no_state_or_plan_file_is_written_through_a_symlink() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(
        d,
        "retentiond.yaml",
        "policies: policies\nstate_dir: state\naccounts:\n  files: { provider: local, path: backups }\n",
    );
    write(
        d,
        "policies/p.yaml",
        "name: p\naccount: files\nselect: { pattern: '^db-(?P<ts>\\d{8})\\.sql$' }\nkeep: {last: 3}\n",
    );
    write(d, "backups/db-20261101.sql", "");
    write(d, "victim", "precious");
    std::fs::create_dir_all(d.join("state/locks")).unwrap();
    std::os::unix::fs::symlink(d.join("victim"), d.join("state/locks/p.lock")).unwrap();
    let out = run(d, &["run", "--dry-run"]);
    assert_ne!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains("state/locks/p.lock: ")
            && out
                .stderr
                .contains("it is a symbolic link; retentiond never opens a state file through one"),
        "{}",
        out.stderr
    );
    // The plan file's temporary name is its own: a link left at the old `F.tmp` is untouched.
    std::os::unix::fs::symlink(d.join("victim"), d.join("plan.json.tmp")).unwrap();
    let out = run(d, &["plan", "--out", "plan.json"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(json(&std::fs::read_to_string(d.join("plan.json")).unwrap())["policies"].is_array());
    assert_eq!(
        std::fs::read_to_string(d.join("victim")).unwrap(),
        "precious"
    );
}

#[test]
fn names_cannot_forge_what_a_terminal_shows() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "policies/p.yaml",
        "name: p\naccount: a\nmode: enforce\nkeep: {last: 1}\ntimezone: UTC\nguard: {max_delete_fraction: 1}\n",
    );
    // Its action is delete; on a terminal the \r and the hidden rest would show it as kept.
    let forged =
        "db-2019-precious\\r    2026-11-30 03:00 UTC  db-2019-precious  keep    last\\u001b[8m";
    write(
        dir.path(),
        "listing.json",
        &format!(
            r#"{{"backups": [
{{"id": "new", "group": "g\u001b]0;owned\u0007", "created_at": "2026-11-30T03:00:00Z", "status": "complete"}},
{{"id": "old", "name": "{forged}", "group": "g\u001b]0;owned\u0007", "created_at": "2019-01-01T03:00:00Z", "status": "complete"}},
{{"id": "x\nWARNING: all good", "group": "g\u001b]0;owned\u0007", "created_at": "2018-01-01T03:00:00Z", "status": "complete"}}
]}}"#
        ),
    );
    let out = retentiond_in(
        dir.path(),
        &[
            "plan",
            "--policies",
            "policies",
            "--listing",
            "listing.json",
        ],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        !out.stdout.contains('\r') && !out.stdout.contains('\x1b') && !out.stdout.contains('\x07'),
        "{:?}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("  group g\\x1b]0;owned\\x07: delete 2 of 3"),
        "{}",
        out.stdout
    );
    let line = out
        .stdout
        .lines()
        .find(|l| l.contains("db-2019-precious\\r"))
        .unwrap();
    assert!(
        line.contains("\\x1b[8m") && line.contains("  delete  "),
        "{line}"
    );
    assert!(
        out.stdout.contains("x\\nWARNING: all good") && !out.stdout.contains("\nWARNING: all good"),
        "{}",
        out.stdout
    );
}
