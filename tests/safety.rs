//! The safety nets outside one policy's own guards, as a new operator meets them on a local
//! folder: two policies on the same files, a new or changed policy that would delete a lot,
//! one-run overrides, and what `validate` catches before anything runs.

mod common;

use common::{Output, json, retentiond_in, write};
use std::path::Path;

const CONFIG: &str = "policies: policies
state_dir: state
accounts:
  files: { provider: local, path: backups }
";

/// A folder with the config and 400 daily dumps from 1 January 2025.
fn folder() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "retentiond.yaml", CONFIG);
    let start = jiff::civil::date(2025, 1, 1);
    for day in 0..400 {
        let date = start + jiff::Span::new().days(day);
        write(
            dir.path(),
            &format!("backups/db-{}.sql.gz", date.strftime("%Y%m%d")),
            "",
        );
    }
    dir
}

/// A policy; past the default `guard.max_delete_fraction` (first runs here delete most of a
/// folder: tests/operators.rs tests that guard).
fn policy(name: &str, pattern: &str, keep: &str) -> String {
    format!(
        "name: {name}\naccount: files\nmode: enforce\nselect: {{ pattern: '{pattern}' }}\nkeep: {keep}\nguard: {{max_delete_fraction: 1}}\n"
    )
}

const ALL: &str = r"^db-(?P<ts>\d{8})\.sql\.gz$";

fn run(dir: &Path, args: &[&str]) -> Output {
    let mut all = vec!["--config", "retentiond.yaml"];
    all.extend_from_slice(args);
    retentiond_in(dir, &all)
}

fn count(dir: &Path) -> usize {
    std::fs::read_dir(dir.join("backups")).unwrap().count()
}

#[test]
fn two_policies_on_the_same_files_block_each_other_and_validate_warns() {
    let dir = folder();
    write(
        dir.path(),
        "policies/short.yaml",
        &policy("short", ALL, "{daily: 7}"),
    );
    write(
        dir.path(),
        "policies/long.yaml",
        &policy("long", ALL, "{monthly: 12}"),
    );

    let out = run(dir.path(), &["validate"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stderr.contains(
            "warning: policies/long.yaml:1:7: policies long and short (policies/short.yaml:1:7) of account files select the same backups"
        ),
        "{}",
        out.stderr
    );

    // Even approved, neither deletes: each would delete what only the other keeps.
    common::approve_all(dir.path());
    for name in ["short", "long"] {
        let out = run(dir.path(), &["run", "--policy", name]);
        assert_eq!(out.code, 5, "{}{}", out.stdout, out.stderr);
        let other = if name == "short" { "long" } else { "short" };
        assert!(
            out.stderr.contains(&format!(
                "policy {name}: BLOCKED, nothing was deleted: policy {other} (policies/{other}.yaml) also selects backup db-20250101.sql.gz (group "
            )) && out.stderr.contains("and 399 more: two policies on the same backups undo each other")
                && out.stderr.contains("`keep: {daily: 7, monthly: 12}`"),
            "{}",
            out.stderr
        );
    }
    assert_eq!(count(dir.path()), 400, "nothing was deleted");

    // One policy with both rules keeps the union of what the two wanted.
    std::fs::remove_file(dir.path().join("policies/long.yaml")).unwrap();
    write(
        dir.path(),
        "policies/short.yaml",
        &policy("short", ALL, "{daily: 7, monthly: 12}"),
    );
    common::approve_all(dir.path());
    let out = run(dir.path(), &["run"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert_eq!(count(dir.path()), 7 + 10, "7 dailies and 10 more monthlies");
}

#[test]
fn disjoint_selections_on_one_folder_run_side_by_side() {
    let dir = folder();
    let early = r"^db-(?P<ts>2025\d{4})\.sql\.gz$";
    let late = r"^db-(?P<ts>2026\d{4})\.sql\.gz$";
    write(
        dir.path(),
        "policies/a.yaml",
        &policy("a", early, "{last: 360}"),
    );
    write(
        dir.path(),
        "policies/b.yaml",
        &policy("b", late, "{last: 33}"),
    );
    let out = run(dir.path(), &["validate"]);
    assert_eq!((out.code, out.stderr.as_str()), (0, ""));
    let out = run(dir.path(), &["run"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert_eq!(count(dir.path()), 360 + 33);
}

#[test]
fn a_new_or_changed_policy_deletes_beyond_the_bound_only_once_approved() {
    let dir = folder();
    write(
        dir.path(),
        "policies/p.yaml",
        &policy("p", ALL, "{daily: 7, monthly: 12}"),
    );

    // `plan` shows the block a run would meet; a run meets it and deletes nothing.
    let out = run(dir.path(), &["plan", "--format", "json"]);
    assert_eq!(out.code, 5, "{}{}", out.stdout, out.stderr);
    let blocked = json(&out.stdout)["policies"][0]["blocked"].clone();
    assert!(
        blocked.as_str().unwrap().starts_with("policy p is new or changed (fingerprint ")
            && blocked.as_str().unwrap().contains(
                "no person has approved this version: its plan deletes 383 backups, 383 of 400 in group "
            )
            && blocked.as_str().unwrap().contains("`retentiond approve p`"),
        "{blocked}"
    );
    let out = run(dir.path(), &["run"]);
    assert_eq!(out.code, 5, "{}{}", out.stdout, out.stderr);
    assert_eq!(count(dir.path()), 400);

    // A person approves this version: the run deletes.
    let out = run(dir.path(), &["approve", "p"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout
            .starts_with("approved policy p as in policies/p.yaml (fingerprint ")
    );
    let out = run(dir.path(), &["run"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert_eq!(count(dir.path()), 17);

    // An edit is a new version: held again, until one run is let through with --approve.
    write(
        dir.path(),
        "policies/p.yaml",
        &policy("p", ALL, "{daily: 1, monthly: 1}"),
    );
    let out = run(dir.path(), &["run"]);
    assert_eq!(out.code, 5, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains("its plan deletes 16 backups, 16 of 17"),
        "{}",
        out.stderr
    );
    assert_eq!(count(dir.path()), 17);
    let out = run(dir.path(), &["run", "--approve"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert_eq!(count(dir.path()), 1);
    let out = run(dir.path(), &["history", "--format", "json", "--limit", "1"]);
    assert_eq!(
        json(&out.stdout)["runs"][0]["overrides"],
        serde_json::json!(["approve"])
    );

    // A version that ran in enforce mode is trusted from then on.
    write(dir.path(), "backups/db-20260206.sql.gz", "");
    let out = run(dir.path(), &["run"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
}

#[test]
fn a_small_first_run_needs_no_approval() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "retentiond.yaml", CONFIG);
    for day in 1..=30 {
        write(dir.path(), &format!("backups/db-202611{day:02}.sql.gz"), "");
    }
    write(
        dir.path(),
        "policies/p.yaml",
        &policy("p", ALL, "{last: 28}"),
    );
    let out = run(dir.path(), &["run"]);
    assert_eq!(
        out.code, 0,
        "2 of 30 is within the bound: {}{}",
        out.stdout, out.stderr
    );
    assert_eq!(count(dir.path()), 28);
}

#[test]
fn accept_max_delete_lets_one_run_over_max_delete_and_is_journaled() {
    let dir = folder();
    write(
        dir.path(),
        "policies/p.yaml",
        &policy("p", ALL, "{daily: 7, monthly: 12}")
            .replace("guard: {", "guard: {max_delete: 100, "),
    );
    common::approve_all(dir.path());
    let out = run(dir.path(), &["run"]);
    assert_eq!(out.code, 5, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stderr
            .contains("the plan deletes 383 backups, more than guard.max_delete 100")
    );
    assert_eq!(count(dir.path()), 400);
    let out = run(
        dir.path(),
        &["run", "--accept-max-delete", "--format", "json"],
    );
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert_eq!(
        json(&out.stdout)["policies"][0]["warnings"][0],
        "accepted once with --accept-max-delete: the plan deletes 383 backups, more than guard.max_delete 100"
    );
    assert_eq!(count(dir.path()), 17);
    let out = run(dir.path(), &["history", "--format", "json", "--limit", "1"]);
    assert_eq!(
        json(&out.stdout)["runs"][0]["overrides"],
        serde_json::json!(["accept-max-delete"])
    );
}

#[test]
fn validate_catches_what_would_only_fail_later() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(
        d,
        "retentiond.yaml",
        "policies: policies\naccounts:\n  portal: { provider: onlyoffice-docspace, base_url: \"https://docs.example.com\", api_key: \"${env:RETENTIOND_TEST_UNSET}\" }\n",
    );
    let cases = [
        (
            "never",
            "schedule: \"0 3 31 2 *\"\n",
            "p-never.yaml:4:11: `schedule: 0 3 31 2 *` never fires: no date matches its day-of-month, month and day-of-week",
        ),
        (
            "field",
            "schedule: \"0 3 * 13 *\"\n",
            "p-field.yaml:4:11: `schedule: 0 3 * 13 *` is not a valid cron line: the month field `13` must be 1-12 or JAN-DEC",
        ),
        (
            "short",
            "schedule: \"3 *\"\n",
            "p-short.yaml:4:11: `schedule: 3 *` has 2 fields; write 5 fields",
        ),
        (
            "jitter",
            "schedule: \"@hourly\"\njitter: 90min\n",
            "p-jitter.yaml:5:9: `jitter` (90min) is not shorter than the time between two fires of `schedule: @hourly` (1h)",
        ),
    ];
    for (name, extra, _) in &cases {
        write(
            d,
            &format!("policies/p-{name}.yaml"),
            &format!("name: {name}\naccount: portal\nkeep: {{last: 1}}\n{extra}"),
        );
    }
    write(
        d,
        "policies/two.yaml",
        "name: two\naccount: portal\nkeep: {last: 1}\n---\nname: three\naccount: portal\nkeep: {last: 1}\n",
    );
    let out = run(d, &["validate"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    for (_, _, want) in &cases {
        assert!(out.stderr.contains(want), "missing {want}:\n{}", out.stderr);
    }
    for want in [
        "two.yaml:5:1: a second YAML document begins here, after `---`; a file holds one policy or a YAML list of policies",
        "retentiond.yaml:3:11: account `portal`: secret ${env:RETENTIOND_TEST_UNSET}: environment variable RETENTIOND_TEST_UNSET is not set",
    ] {
        assert!(out.stderr.contains(want), "missing {want}:\n{}", out.stderr);
    }
    assert!(!out.stderr.contains("Component") && !out.stderr.contains("from_str_multiple"));

    // With the secret set (never printed) and the policies fixed, it passes.
    for (name, _, _) in &cases {
        std::fs::remove_file(d.join(format!("policies/p-{name}.yaml"))).unwrap();
    }
    std::fs::remove_file(d.join("policies/two.yaml")).unwrap();
    write(
        d,
        "policies/p.yaml",
        "name: p\naccount: portal\nkeep: {last: 1}\n",
    );
    let out = common::retentiond_env(
        d,
        &["--config", "retentiond.yaml", "validate"],
        &[("RETENTIOND_TEST_UNSET", "sk-not-printed")],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(!out.stdout.contains("sk-not-printed"));
}

#[test]
fn a_closed_pipe_ends_quietly() {
    let dir = folder();
    write(
        dir.path(),
        "policies/p.yaml",
        &policy("p", ALL, "{last: 1}"),
    );
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_retentiond"))
        .args(["--config", "retentiond.yaml", "plan", "--format", "json"])
        .current_dir(dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Like `| head -c 16`: read the start, then close the pipe (the JSON plan of 400 backups
    // is larger than the pipe's buffer).
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 16];
    std::io::Read::read_exact(&mut stdout, &mut first).unwrap();
    drop(stdout);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(141));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("Broken pipe") && !stderr.contains("cannot write"),
        "{stderr}"
    );
}

#[test]
fn an_offline_plan_says_which_zone_it_used() {
    let dir = folder();
    write(
        dir.path(),
        "policies/p.yaml",
        &policy("p", ALL, "{last: 1}"),
    );
    write(
        dir.path(),
        "listing.json",
        r#"{"backups": [{"id": "db-20260101.sql.gz", "group": "g", "created_at": "2026-01-01T00:00:00Z", "status": "complete"}]}"#,
    );
    let offline = [
        "plan",
        "--policies",
        "policies",
        "--listing",
        "listing.json",
    ];
    let out = retentiond_in(dir.path(), &offline);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stderr.contains("note: policy p has no `timezone` and no config was found (--config, $RETENTIOND_CONFIG, /etc/retentiond/retentiond.yaml) for a default: its days, weeks, months and years are computed in UTC"), "{}", out.stderr);
    // Given a config, its default zone applies and nothing is said.
    write(
        dir.path(),
        "retentiond.yaml",
        &format!("{CONFIG}defaults: {{ timezone: Europe/Berlin }}\n"),
    );
    let out = common::retentiond_env(
        dir.path(),
        &offline,
        &[("RETENTIOND_CONFIG", "retentiond.yaml")],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("zone Europe/Berlin"), "{}", out.stdout);
    assert!(!out.stderr.contains("note:"), "{}", out.stderr);
}

#[test]
fn a_folder_is_one_group_however_it_is_written_and_a_move_is_named() {
    let dir = folder();
    write(
        dir.path(),
        "policies/p.yaml",
        &policy("p", ALL, "{last: 395}"),
    );
    let out = run(dir.path(), &["run"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert_eq!(count(dir.path()), 395);

    // The same folder, written absolute: the same group, nothing suspect.
    let absolute = dir.path().join("backups").canonicalize().unwrap();
    let config = format!(
        "policies: policies\nstate_dir: state\naccounts:\n  files: {{ provider: local, path: {} }}\n",
        absolute.display()
    );
    write(dir.path(), "retentiond.yaml", &config);
    let out = run(dir.path(), &["run"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);

    // The backups moved to another folder: the block names the group that appeared.
    std::fs::rename(dir.path().join("backups"), dir.path().join("moved")).unwrap();
    write(
        dir.path(),
        "retentiond.yaml",
        &config.replace("/backups", "/moved"),
    );
    let out = run(dir.path(), &["run"]);
    assert_eq!(out.code, 5, "{}{}", out.stdout, out.stderr);
    let moved = dir.path().join("moved").canonicalize().unwrap();
    assert!(
        out.stderr.contains(&format!("group {} from 395 to 0 (-100%)", absolute.display()))
            && out.stderr.contains(&format!(
                "the listing now has complete backups in groups that run #2 did not list: {} (395) (did the backups move?)",
                moved.display()
            )),
        "{}",
        out.stderr
    );
}

#[test]
fn a_selection_that_matches_nothing_is_a_warning_and_a_vanished_group_is_stale() {
    let dir = folder();
    // A typo: `.sql.gz` files, a pattern for `.dump`.
    write(
        dir.path(),
        "policies/p.yaml",
        &policy("p", r"^db-(?P<ts>\d{8})\.dump$", "{daily: 7}"),
    );
    let out = run(dir.path(), &["plan"]);
    assert_eq!(out.code, 9, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains(
            "WARNING: the policy selects no backup: none of the 400 entries of the listing match its `select`"
        ),
        "{}",
        out.stdout
    );

    // With stale_after, a group that was listed before and is gone now is stale.
    let guarded = |pattern: &str| {
        policy("p", pattern, "{last: 400}").replace(
            "guard: {",
            "guard: {stale_after: 2d, max_listing_drop: 1.0, ",
        )
    };
    write(dir.path(), "policies/p.yaml", &guarded(ALL));
    let out = run(dir.path(), &["run"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    write(
        dir.path(),
        "policies/p.yaml",
        &guarded(r"^db-(?P<ts>\d{8})\.dump$"),
    );
    common::approve_all(dir.path());
    let out = run(dir.path(), &["run"]);
    let folder = dir.path().join("backups").canonicalize().unwrap();
    assert!(
        out.stdout.contains(&format!(
            "WARNING: group {}: run #1 listed 400 complete backups, this listing none, so none is newer than guard.stale_after 2d",
            folder.display()
        )),
        "{}",
        out.stdout
    );

    // An empty folder says so.
    write(dir.path(), "policies/p.yaml", &guarded(ALL));
    for entry in std::fs::read_dir(dir.path().join("backups")).unwrap() {
        std::fs::remove_file(entry.unwrap().path()).unwrap();
    }
    let out = run(dir.path(), &["plan"]);
    assert!(
        out.stdout.contains("WARNING: the listing is empty"),
        "{}",
        out.stdout
    );
}

#[test]
fn local_times_in_file_names_are_read_in_the_zone_the_policy_names() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "retentiond.yaml", CONFIG);
    // Written by a cron job on a Berlin server: local wall-clock times, no offset.
    write(d, "backups/db-20250115T0300.sql.gz", "");
    write(d, "backups/db-20250715T0300.sql.gz", "");
    let policy = |zone: &str| {
        format!(
            "name: p\naccount: files\ntimezone: Europe/Berlin\nselect:\n  pattern: '^db-(?P<ts>\\d{{8}}T\\d{{4}})\\.sql\\.gz$'\n  timestamp_format: '%Y%m%dT%H%M'\n{zone}keep: {{last: 5}}\n"
        )
    };
    let created = |out: &Output| -> Vec<String> {
        let plan = json(&out.stdout);
        plan["policies"][0]["backups"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["created_at"].as_str().unwrap().to_string())
            .collect()
    };
    write(d, "policies/p.yaml", &policy(""));
    let out = run(d, &["plan", "--format", "json"]);
    assert_eq!(
        created(&out),
        ["2025-07-15T03:00:00Z", "2025-01-15T03:00:00Z"]
    );
    for zone in [
        "  timestamp_zone: policy\n",
        "  timestamp_zone: Europe/Berlin\n",
    ] {
        write(d, "policies/p.yaml", &policy(zone));
        let out = run(d, &["plan", "--format", "json"]);
        assert_eq!(out.code, 0, "{}", out.stderr);
        // Summer time is UTC+2, winter time UTC+1.
        assert_eq!(
            created(&out),
            ["2025-07-15T01:00:00Z", "2025-01-15T02:00:00Z"],
            "{zone}"
        );
    }

    // validate reads the zone and the format before any file does.
    write(
        d,
        "policies/p.yaml",
        &policy("  timestamp_zone: Europe/Berln\n").replace("%Y%m%dT%H%M", "%H%M"),
    );
    let out = run(d, &["validate"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    for want in [
        "p.yaml:6:21: `select.timestamp_format`: `%H%M` does not give a date: it needs at least a year, a month and a day",
        "p.yaml:7:19: unknown time zone `Europe/Berln` in `select.timestamp_zone`; write `policy`",
    ] {
        assert!(out.stderr.contains(want), "missing {want}:\n{}", out.stderr);
    }
}

#[test]
fn the_journal_keeps_what_it_must_and_compact_forgets_the_rest() {
    let dir = folder();
    write(
        dir.path(),
        "policies/p.yaml",
        &policy("p", ALL, "{last: 390}"),
    );
    common::approve_all(dir.path());
    for _ in 0..3 {
        let out = run(dir.path(), &["run", "--dry-run"]);
        assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    }
    let out = run(dir.path(), &["run"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert_eq!(count(dir.path()), 390);
    let out = run(dir.path(), &["run"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let runs = |dir: &Path| -> Vec<i64> {
        let out = run(dir, &["history", "--format", "json"]);
        json(&out.stdout)["runs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_i64().unwrap())
            .collect()
    };
    assert_eq!(runs(dir.path()), [5, 4, 3, 2, 1]);

    let out = run(dir.path(), &["journal", "compact", "--keep", "0d"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("runs older than 0s forgotten: 3;") && out.stdout.contains(" after"),
        "{}",
        out.stdout
    );
    // The run that deleted (its deletions are the audit trail) and the baseline stay; the
    // baseline still has every decision.
    assert_eq!(runs(dir.path()), [5, 4]);
    let out = run(dir.path(), &["history", "--run", "5", "--format", "json"]);
    assert_eq!(
        json(&out.stdout)["decisions"].as_array().unwrap().len(),
        390
    );
    let out = run(dir.path(), &["history", "--run", "4", "--format", "json"]);
    let deleting = json(&out.stdout);
    assert_eq!(
        deleting["runs"][0]["deletions"].as_array().unwrap().len(),
        10
    );

    // A bad journal_keep is a located config error.
    write(
        dir.path(),
        "retentiond.yaml",
        &format!("{CONFIG}journal_keep: soon\n"),
    );
    let out = run(dir.path(), &["validate"]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("retentiond.yaml:5:15: `journal_keep`"),
        "{}",
        out.stderr
    );
}

#[test]
fn validate_warns_of_a_metrics_endpoint_beyond_loopback() {
    let dir = folder();
    write(
        dir.path(),
        "retentiond.yaml",
        &format!("{CONFIG}metrics: {{ listen: \"0.0.0.0:9464\" }}\n"),
    );
    write(
        dir.path(),
        "policies/p.yaml",
        &policy("p", ALL, "{last: 3}"),
    );
    let out = run(dir.path(), &["validate"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stderr.contains(
            "warning: retentiond.yaml: metrics.listen 0.0.0.0:9464 is not a loopback address, and /metrics and /healthz have no authentication"
        ),
        "{}",
        out.stderr
    );
    write(
        dir.path(),
        "retentiond.yaml",
        &format!("{CONFIG}metrics: {{ listen: \"127.0.0.1:9464\" }}\n"),
    );
    let out = run(dir.path(), &["validate"]);
    assert!(!out.stderr.contains("warning"), "{}", out.stderr);
}
