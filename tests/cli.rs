//! Black-box tests of the real binary: validation errors, offline plans, and `run` against
//! a copy of the example folder (what is deleted, what survives, exit codes).

mod common;

use common::{copy_tree, json, repo, retentiond, retentiond_in, write};
use std::collections::BTreeSet;
use std::path::Path;

fn located_errors(stderr: &str) -> Vec<&str> {
    let re = regex::Regex::new(r"^\S+\.ya?ml:\d+:\d+: ").unwrap();
    stderr.lines().filter(|l| re.is_match(l)).collect()
}

#[test]
fn validate_reports_every_mistake_of_every_file_located() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "a.yaml", "name: a\naccount: dumps\nkeep:\n  dailly: 7\n");
    write(
        d,
        "b.yaml",
        "name: b\naccount: dumps\nkeep:\n  within: 6m\n",
    );
    write(
        d,
        "c.yaml",
        "name: c\naccount: dumps\ntimezone: Europe/Berlim\nkeep: {last: 1}\n",
    );
    write(
        d,
        "d.yaml",
        "name: d\naccount: dumps\nschedule: \"61 3 * * *\"\nkeep: {last: 1}\n",
    );
    write(d, "e.yaml", "name: a\naccount: dumps\nkeep: {last: 1}\n");
    let out = retentiond(&["validate", d.to_str().unwrap()]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    let errors = located_errors(&out.stderr);
    assert_eq!(errors.len(), 5, "{}", out.stderr);
    let expected = [
        "a.yaml:4:3: unknown key `dailly` in `keep`; did you mean `daily`?",
        "b.yaml:4:11: `keep.within`: `6m` is ambiguous (restic reads `m` as months, most tools as minutes): write `6mo` for months or `6min` for minutes",
        "c.yaml:3:11: unknown time zone `Europe/Berlim`; did you mean `Europe/Berlin`?",
        "d.yaml:3:11: `schedule: 61 3 * * *` is not a valid cron line",
        "e.yaml:1:7: policy name `a` is already used at ",
    ];
    for (error, want) in errors.iter().zip(expected) {
        assert!(error.contains(want), "{error}\n  should contain\n{want}");
    }
    assert!(
        out.stderr.trim_end().ends_with("5 errors"),
        "{}",
        out.stderr
    );
}

#[test]
fn validate_checks_accounts_against_a_config() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(
        d,
        "retentiond.yaml",
        "policies: policies\naccounts:\n  portal: {provider: local, path: x}\n",
    );
    write(
        d,
        "policies/p.yaml",
        "name: p\naccount: portl\nkeep: {last: 1}\n",
    );
    let out = retentiond(&["validate", d.join("retentiond.yaml").to_str().unwrap()]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr
            .contains("p.yaml:2:10: account `portl` is not in"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("(accounts: portal); did you mean `portal`?"),
        "{}",
        out.stderr
    );
}

#[test]
fn select_keys_must_fit_the_account_provider() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(
        d,
        "retentiond.yaml",
        "policies: p.yaml\naccounts:\n  dumps: {provider: local, path: x}\n",
    );
    write(
        d,
        "p.yaml",
        "name: p\naccount: dumps\nselect:\n  pattern: '(?P<ts>.*)'\n  prefix: x/\nkeep: {last: 1}\n",
    );
    let out = retentiond(&[
        "--config",
        d.join("retentiond.yaml").to_str().unwrap(),
        "validate",
    ]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("p.yaml:5:3: `select.prefix` is a cloudinary key and does not apply to account `dumps` (local)"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_local_policy_without_pattern_or_glob_is_refused_at_its_account_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(
        d,
        "retentiond.yaml",
        "policies: p.yaml\naccounts:\n  dumps: {provider: local, path: x}\n",
    );
    write(d, "p.yaml", "name: p\naccount: dumps\nkeep: {last: 1}\n");
    let out = retentiond(&[
        "--config",
        d.join("retentiond.yaml").to_str().unwrap(),
        "validate",
    ]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr
            .contains("p.yaml:2:10: account `dumps` is a local folder: `select` needs `pattern`"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_literal_secret_is_rejected_and_never_echoed() {
    let dir = tempfile::tempdir().unwrap();
    let config = write(
        dir.path(),
        "retentiond.yaml",
        "policies: []\naccounts:\n  media: {provider: cloudinary, cloud_name: demo, api_key: \"${env:K}\", api_secret: hunter2-very-secret}\n",
    );
    let out = retentiond(&["validate", config.to_str().unwrap()]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr
            .contains("`accounts.media.api_secret` must be a secret reference"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("hunter2"), "{}", out.stderr);
}

#[test]
fn the_postgresql_journal_url_is_a_secret_reference_that_must_resolve() {
    let dir = tempfile::tempdir().unwrap();
    let refused = |journal: &str, expected: &[&str]| {
        let config = write(
            dir.path(),
            "retentiond.yaml",
            &format!("policies: []\njournal: {journal}\naccounts: {{}}\n"),
        );
        let out = retentiond(&["validate", config.to_str().unwrap()]);
        assert_eq!(out.code, 1, "{journal}: {}", out.stderr);
        for text in expected {
            assert!(out.stderr.contains(text), "{journal}: {}", out.stderr);
        }
        assert!(!out.stderr.contains("hunter2"), "{}", out.stderr);
    };
    refused(
        "{postgres: 'postgresql://rd:hunter2@db:5432/rd'}",
        &["`journal.postgres` must be a secret reference"],
    );
    refused(
        "{ca_file: ca.pem}",
        &["`journal` needs `postgres`: a reference to the database URL"],
    );
    refused(
        "{postgres: '${env:RETENTIOND_TEST_UNSET_PG_URL}'}",
        &["journal.postgres: ", "RETENTIOND_TEST_UNSET_PG_URL"],
    );
}

#[test]
fn http_settings_and_provider_selections_are_checked_where_written() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let huawei = "  db: {provider: huaweicloud-taurusdb, region: ap-southeast-1, project_id: p, auth: {token: '${env:T}'}, delete_timeout: 5min}\n  vms: {provider: huaweicloud-csbs, region: ap-southeast-1, project_id: p, auth: {token: '${env:T}'}, poll_interval: 0s}\n";
    write(
        d,
        "retentiond.yaml",
        &(String::from(
            "policies: policies\naccounts:\n  media:\n    provider: cloudinary\n    cloud_name: demo\n    api_key: ${env:K}\n    api_secret: ${env:S}\n    http: {timeout: 30, concurency: 2, backoff: 1m}\n  portal: {provider: onlyoffice-docspace, base_url: 'https://docs.example.com', api_key: '${env:D}'}\n  dumps: {provider: local, path: x, http: {timeout: 5s}}\n",
        ) + huawei),
    );
    write(
        d,
        "policies/media.yaml",
        "name: media\naccount: media\nselect:\n  resource_type: images\n  prefix: products/\nkeep: {last: 1}\n",
    );
    write(
        d,
        "policies/ids.yaml",
        "name: ids\naccount: media\nselect: {asset_ids: [abc], tags: [x]}\nkeep: {last: 1}\n",
    );
    write(
        d,
        "policies/portal.yaml",
        "name: portal\naccount: portal\nselect: {storage_type: dropbox}\nkeep: {last: 1}\n",
    );
    let config = d.join("retentiond.yaml");
    let validate = || retentiond(&["--config", config.to_str().unwrap(), "validate"]);
    let out = validate();
    assert_eq!(out.code, 1, "{}", out.stderr);
    for expected in [
        "retentiond.yaml:8:21: `accounts.media.http.timeout: 30` has no unit; write for example `30s` or `30ms`",
        "retentiond.yaml:8:25: unknown key `concurency` in `accounts.media.http`; did you mean `concurrency`?",
        "retentiond.yaml:8:49: `accounts.media.http.backoff: 1m` is not a duration of ms, s, min or h",
        "retentiond.yaml:10:37: unknown key `http` in `accounts.dumps`",
        "retentiond.yaml:11:122: `accounts.db.delete_timeout` is a setting of huaweicloud-csbs and huaweicloud-cbr, whose deletions run on their own (TaurusDB deletes at once); remove it",
        "retentiond.yaml:12:118: `accounts.vms.poll_interval` must be longer than 0",
    ] {
        assert!(out.stderr.contains(expected), "{expected}\n{}", out.stderr);
    }
    write(
        d,
        "retentiond.yaml",
        "policies: policies\naccounts:\n  media:\n    provider: cloudinary\n    cloud_name: demo\n    api_key: ${env:K}\n    api_secret: ${env:S}\n    http: {timeout: 30s, concurrency: 2, backoff: 250ms}\n  portal: {provider: onlyoffice-docspace, base_url: 'https://docs.example.com', api_key: '${env:D}'}\n",
    );
    let out = validate();
    assert_eq!(out.code, 1, "{}", out.stderr);
    for expected in [
        "media.yaml:4:3: unknown `select.resource_type: images`; did you mean `image`?",
        "media.yaml:5:3: `select.prefix` needs `select.type`",
        "ids.yaml:3:10: `select.asset_ids` names the assets itself; remove tags or remove asset_ids",
        "portal.yaml:3:10: unknown `select.storage_type: dropbox`; DocSpace storage types are: documents, thirdparty_documents, custom_cloud, local, data_store, thirdparty_consumer",
    ] {
        assert!(out.stderr.contains(expected), "{expected}\n{}", out.stderr);
    }
}

#[test]
fn the_shipped_examples_validate() {
    for args in [
        vec!["validate", "policies"],
        // Its secrets live on the hosts that use it.
        vec![
            "validate",
            "--skip-secrets",
            "examples/all-providers/retentiond.yaml",
            "policies",
        ],
        vec!["--config", "examples/local/retentiond.yaml", "validate"],
    ] {
        let out = retentiond(&args);
        assert_eq!(out.code, 0, "{args:?}: {}", out.stderr);
        assert!(out.stdout.starts_with("ok: "), "{}", out.stdout);
    }
}

#[test]
fn schema_file_matches_the_binary() {
    let out = retentiond(&["schema"]);
    assert_eq!(out.code, 0);
    let shipped = std::fs::read_to_string(repo("policies/schema.json")).unwrap();
    assert_eq!(
        out.stdout, shipped,
        "policies/schema.json is stale: run `retentiond schema > policies/schema.json`"
    );
    let schema = json(&out.stdout);
    let keep = &schema["$defs"]["policy"]["properties"]["keep"]["properties"];
    assert!(keep["within_daily"].is_object() && keep["yearly"].is_object());
}

#[test]
fn plan_offline_prints_the_design_json() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "p.yaml",
        "name: p\naccount: anything\nkeep: {last: 1}\nprotect: {ids: [old]}\n",
    );
    let listing = write(
        dir.path(),
        "listing.json",
        r#"{"backups": [
          {"id": "old", "group": "srv", "created_at": "2024-01-01T00:00:00+08:00", "status": "complete"},
          {"id": "mid", "group": "srv", "created_at": "2024-01-02T00:00:00Z", "status": "complete", "name": "mid-name", "size": 1572864},
          {"id": "new", "group": "srv", "created_at": "2024-01-03T00:00:00Z", "status": "complete"},
          {"id": "run", "group": "srv", "created_at": "2024-01-04T00:00:00Z", "status": "in_progress"}
        ]}"#,
    );
    // A folder without any config: --policies and --listing need none.
    let out = retentiond_in(
        dir.path(),
        &[
            "plan",
            "--policies",
            "p.yaml",
            "--listing",
            listing.to_str().unwrap(),
            "--now",
            "2024-02-01T00:00:00Z",
            "--format",
            "json",
        ],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let plan = json(&out.stdout);
    let p = &plan["policies"][0];
    assert_eq!(p["name"], "p");
    assert_eq!(p["mode"], "dry-run");
    assert_eq!(p["evaluated_at"], "2024-02-01T00:00:00Z");
    assert!(p["blocked"].is_null());
    assert_eq!(
        p["summary"],
        serde_json::json!({"keep": 2, "delete": 1, "ignore": 1, "groups": 1,
                           "freed_bytes": 1572864, "size_unknown": 0})
    );
    assert_eq!(
        p["group_totals"],
        serde_json::json!([{"group": "srv", "keep": 2, "delete": 1, "ignore": 1,
                            "freed_bytes": 1572864, "size_unknown": 0}])
    );
    assert_eq!(p["backups"][2]["size"], 1572864);
    assert!(p["backups"][3].get("size").is_none());
    let rows: Vec<(String, String, serde_json::Value)> = p["backups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["id"].as_str().unwrap().into(),
                b["action"].as_str().unwrap().into(),
                b["reasons"].clone(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        vec![
            ("run".into(), "ignore".into(), serde_json::json!([])),
            ("new".into(), "keep".into(), serde_json::json!(["last"])),
            ("mid".into(), "delete".into(), serde_json::json!([])),
            (
                "old".into(),
                "keep".into(),
                serde_json::json!(["protected"])
            ),
        ]
    );
    assert_eq!(p["backups"][3]["created_at"], "2023-12-31T16:00:00Z");
    assert_eq!(p["backups"][2]["name"], "mid-name");
}

#[test]
fn plan_rejects_a_bad_listing_and_an_unknown_policy_name() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "p.yaml",
        "name: nightly\naccount: a\nkeep: {last: 1}\n",
    );
    let bad = write(
        dir.path(),
        "l.json",
        r#"{"backups": [{"id": "a", "group": "g", "created_at": "yesterday", "status": "complete"}]}"#,
    );
    let out = retentiond_in(
        dir.path(),
        &[
            "plan",
            "--policies",
            "p.yaml",
            "--listing",
            bad.to_str().unwrap(),
        ],
    );
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("l.json:1:") && out.stderr.contains("not a listing"),
        "{}",
        out.stderr
    );
    let good = write(dir.path(), "g.json", r#"{"backups": []}"#);
    let out = retentiond_in(
        dir.path(),
        &[
            "plan",
            "--policies",
            "p.yaml",
            "--listing",
            good.to_str().unwrap(),
            "--policy",
            "nightyl",
        ],
    );
    assert_eq!(out.code, 1);
    assert!(
        out.stderr
            .contains("no policy named `nightyl`; did you mean `nightly`?"),
        "{}",
        out.stderr
    );
}

#[test]
fn plan_without_config_says_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let out = retentiond_in(dir.path(), &["--config", "missing.yaml", "plan"]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("missing.yaml:1:1: cannot read"),
        "{}",
        out.stderr
    );
    // No --config and (on a test machine) nothing at the default path.
    if !Path::new("/etc/retentiond/retentiond.yaml").exists() {
        let out = retentiond_in(dir.path(), &["plan"]);
        assert_eq!(out.code, 1);
        assert_eq!(
            out.stderr.trim_end(),
            "no config file at /etc/retentiond/retentiond.yaml; pass --config PATH or set RETENTIOND_CONFIG; or plan offline with --policies and --listing"
        );
    }
}

/// A copy of examples/local with pg-main switched to `mode: enforce`.
fn example_copy(mode: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_tree(&repo("examples/local"), dir.path());
    let policy = dir.path().join("policies/pg-main.yaml");
    let text = std::fs::read_to_string(&policy)
        .unwrap()
        .replace("mode: dry-run", &format!("mode: {mode}"));
    std::fs::write(policy, text).unwrap();
    if mode == "enforce" {
        common::approve_all(dir.path());
    }
    dir
}

fn files(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir.join("backups/postgres"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect()
}

fn plan_ids(dir: &Path, action: &str) -> BTreeSet<String> {
    let out = retentiond_in(
        dir,
        &[
            "--config",
            "retentiond.yaml",
            "plan",
            "--policy",
            "pg-main",
            "--format",
            "json",
        ],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    json(&out.stdout)["policies"][0]["backups"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["action"] == action)
        .map(|b| b["id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn run_in_enforce_mode_deletes_exactly_the_plans_delete_set() {
    let dir = example_copy("enforce");
    let before = files(dir.path());
    let analytics = before
        .iter()
        .filter(|f| f.starts_with("pg-analytics-"))
        .count();
    let doomed = plan_ids(dir.path(), "delete");
    assert!(doomed.len() > 500, "{}", doomed.len());
    let out = retentiond_in(
        dir.path(),
        &[
            "--config",
            "retentiond.yaml",
            "run",
            "--policy",
            "pg-main",
            "--format",
            "json",
        ],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let report = json(&out.stdout);
    let deleted: BTreeSet<String> = report["policies"][0]["deleted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert_eq!(deleted, doomed);
    let after = files(dir.path());
    let gone: BTreeSet<String> = before.difference(&after).cloned().collect();
    // The failed dump was deleted (delete_after: 3d), and its marker with it.
    let failed = "pg-main-20261118T023000Z.sql.gz";
    assert!(doomed.contains(failed));
    let mut expected_gone = doomed.clone();
    expected_gone.insert(format!("{failed}.failed"));
    assert_eq!(gone, expected_gone);
    // What survives is what the plan keeps or ignores, and the other policy's files.
    assert!(after.contains("pg-main-20261122T235500Z.sql.gz") && after.contains("README.txt"));
    assert_eq!(
        after
            .iter()
            .filter(|f| f.starts_with("pg-analytics-"))
            .count(),
        analytics
    );
    // Running again deletes nothing more.
    assert!(plan_ids(dir.path(), "delete").is_empty());
}

#[test]
fn every_dry_run_switch_deletes_nothing() {
    for (mode, args, config_dry_run, reason) in [
        ("dry-run", vec![], false, "mode: dry-run"),
        ("enforce", vec!["--dry-run"], false, "--dry-run"),
        ("enforce", vec![], true, "dry_run: true in retentiond.yaml"),
    ] {
        let dir = example_copy(mode);
        if config_dry_run {
            let config = dir.path().join("retentiond.yaml");
            let text = std::fs::read_to_string(&config).unwrap() + "dry_run: true\n";
            std::fs::write(config, text).unwrap();
        }
        let before = files(dir.path());
        let mut command = vec!["--config", "retentiond.yaml", "run"];
        command.extend(args);
        let out = retentiond_in(dir.path(), &command);
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert!(
            out.stdout.contains(&format!(
                "dry-run ({reason}): nothing deleted; would delete"
            )),
            "{}",
            out.stdout
        );
        assert_eq!(files(dir.path()), before, "{reason}");
    }
}

#[test]
fn a_blocked_policy_deletes_nothing_and_exits_5() {
    let dir = example_copy("enforce");
    let policy = dir.path().join("policies/pg-main.yaml");
    let text = std::fs::read_to_string(&policy)
        .unwrap()
        .replace("max_delete: 1000", "max_delete: 10");
    std::fs::write(policy, text).unwrap();
    let before = files(dir.path());
    let out = retentiond_in(dir.path(), &["--config", "retentiond.yaml", "run"]);
    assert_eq!(out.code, 5, "{}", out.stdout);
    assert!(
        out.stdout
            .contains("BLOCKED, nothing will be deleted: the plan deletes"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("more than guard.max_delete 10"),
        "{}",
        out.stdout
    );
    assert_eq!(files(dir.path()), before);
}

#[test]
fn an_unreadable_listing_deletes_nothing_and_exits_3() {
    let dir = example_copy("enforce");
    write(
        dir.path(),
        "backups/postgres/pg-main-20261399T250000Z.sql.gz",
        "",
    );
    let before = files(dir.path());
    let out = retentiond_in(dir.path(), &["--config", "retentiond.yaml", "run"]);
    assert_eq!(out.code, 3, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("ERROR: account dumps: list ")
            && out.stdout.contains(
                "pg-main-20261399T250000Z.sql.gz: timestamp `20261399T250000Z` does not match"
            ),
        "{}",
        out.stdout
    );
    assert_eq!(files(dir.path()), before);
}

#[cfg(unix)]
#[test]
fn a_symlinked_backup_is_removed_as_a_link_and_its_target_survives() {
    let dir = example_copy("enforce");
    let outside = write(dir.path(), "precious.sql.gz", "do not delete");
    std::os::unix::fs::symlink(
        &outside,
        dir.path()
            .join("backups/postgres/pg-main-20250101T023000Z.sql.gz"),
    )
    .unwrap_or_else(|_| {
        std::fs::remove_file(
            dir.path()
                .join("backups/postgres/pg-main-20250101T023000Z.sql.gz"),
        )
        .unwrap();
        std::os::unix::fs::symlink(
            &outside,
            dir.path()
                .join("backups/postgres/pg-main-20250101T023000Z.sql.gz"),
        )
        .unwrap();
    });
    let out = retentiond_in(dir.path(), &["--config", "retentiond.yaml", "run"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout
            .contains("deleted pg-main-20250101T023000Z.sql.gz"),
        "{}",
        out.stdout
    );
    assert_eq!(std::fs::read_to_string(outside).unwrap(), "do not delete");
}

#[test]
fn plan_text_is_a_table_per_group_with_a_summary() {
    let plan = |more: &[&str]| {
        let mut args = vec![
            "--config",
            "examples/local/retentiond.yaml",
            "plan",
            "--now",
            "2026-11-23T06:00:00Z",
            "--policy",
            "pg-main",
        ];
        args.extend_from_slice(more);
        retentiond(&args)
    };
    let out = plan(&[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        lines[0],
        "policy pg-main (account dumps, mode dry-run, zone Europe/Berlin, evaluated at 2026-11-23 07:00:00 CET)"
    );
    assert_eq!(lines[1], "  group main: delete 694 of 774 (frees 0 B)");
    assert_eq!(
        lines[2],
        "    2026-11-23 00:55 CET    pg-main-20261122T235500Z.sql.gz  ignore  in progress"
    );
    assert_eq!(
        lines[3],
        "    2026-11-23 00:15 CET    pg-main-20261122T231500Z.sql.gz  keep    within 2d, daily, weekly, monthly, yearly"
    );
    assert!(
        out.stdout.contains("  delete  failed, older than 3d"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("  delete  no rule keeps it"),
        "{}",
        out.stdout
    );
    let summary = lines.last().unwrap();
    assert!(
        summary == &"  summary: keep 79, delete 694 (frees 0 B), ignore 1 in 1 group",
        "{summary}"
    );

    // --summary: the group lines and the summary, no line per backup.
    let out = plan(&["--summary"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let short: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(short[0], lines[0]);
    assert_eq!(&short[1..], [lines[1], lines.last().unwrap()]);
}

#[test]
fn an_exported_listing_plans_exactly_like_the_live_one() {
    let exported = retentiond(&[
        "--config",
        "examples/local/retentiond.yaml",
        "list",
        "--format",
        "json",
    ]);
    assert_eq!(exported.code, 0, "{}", exported.stderr);
    assert_eq!(
        json(&exported.stdout)["backups"].as_array().unwrap().len(),
        826
    );
    let dir = tempfile::tempdir().unwrap();
    let listing = write(dir.path(), "exported.json", &exported.stdout);
    let now = "2026-11-23T06:00:00Z";
    let config = ["--config", "examples/local/retentiond.yaml"];
    let live = retentiond(&[&config[..], &["plan", "--now", now, "--format", "json"]].concat());
    let offline = retentiond(
        &[
            &config[..],
            &[
                "plan",
                "--policies",
                "examples/local/policies",
                "--listing",
                listing.to_str().unwrap(),
                "--now",
                now,
                "--format",
                "json",
            ],
        ]
        .concat(),
    );
    assert_eq!(offline.code, 0, "{}", offline.stderr);
    // The exported listing holds both policies' backups; each policy's pattern narrows it
    // and the rest is shown as not selected.
    let (live, offline) = (json(&live.stdout), json(&offline.stdout));
    for i in 0..2 {
        let managed = |plan: &serde_json::Value| -> Vec<serde_json::Value> {
            let backups = plan["policies"][i]["backups"].as_array().unwrap();
            backups
                .iter()
                .filter(|b| b["note"] != "not selected by the name filters")
                .cloned()
                .collect()
        };
        assert_eq!(managed(&live), managed(&offline), "policy {i}");
        assert_eq!(
            live["policies"][i]["summary"]["delete"],
            offline["policies"][i]["summary"]["delete"]
        );
    }
}

#[test]
fn stale_groups_and_future_backups_are_warned_about_in_text_and_json() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(
        d,
        "p.yaml",
        "name: p\naccount: a\nkeep: {last: 1}\nguard: {stale_after: 7d}\n",
    );
    write(
        d,
        "listing.json",
        r#"{"backups": [
          {"id": "new", "group": "web", "created_at": "2026-11-22T03:00:00Z", "status": "complete"},
          {"id": "old", "group": "web", "created_at": "2026-11-21T03:00:00Z", "status": "complete"},
          {"id": "skew", "group": "web", "created_at": "2026-12-01T03:00:00Z", "status": "complete"},
          {"id": "db-2", "group": "db", "created_at": "2026-10-02T03:00:00Z", "status": "complete"},
          {"id": "db-1", "group": "db", "created_at": "2026-10-01T03:00:00Z", "status": "complete"}
        ]}"#,
    );
    let args = |format| {
        vec![
            "plan",
            "--policies",
            "p.yaml",
            "--listing",
            "listing.json",
            "--now",
            "2026-11-23T00:00:00Z",
            "--format",
            format,
        ]
    };
    let out = retentiond_in(d, &args("json"));
    assert_eq!(out.code, 0, "{}", out.stderr);
    let plan = &json(&out.stdout)["policies"][0];
    let warnings: Vec<&str> = plan["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap())
        .collect();
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(warnings[0].starts_with("group db: the newest complete backup is from 2026-10-02T03:00:00Z, older than guard.stale_after 7d"));
    assert!(
        warnings[1]
            .starts_with("group web: backup skew is dated 2026-12-01T03:00:00Z, in the future")
    );
    let action = |id: &str| {
        plan["backups"]
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["id"] == id)
            .unwrap()["action"]
            .clone()
    };
    assert_eq!(action("db-1"), "keep");
    assert_eq!(action("old"), "delete");
    assert_eq!(action("skew"), "ignore");
    let text = retentiond_in(d, &args("text"));
    assert!(
        text.stdout.contains("  WARNING: group db: "),
        "{}",
        text.stdout
    );
}

#[test]
fn history_prints_times_in_the_policy_zone_and_list_newest_first() {
    let dir = tempfile::tempdir().unwrap();
    copy_tree(&repo("examples/local"), dir.path());
    let args = |more: &[&'static str]| {
        let mut all = vec!["--config", "retentiond.yaml"];
        all.extend_from_slice(more);
        all
    };
    let out = retentiond_in(
        dir.path(),
        &args(&["run", "--policy", "pg-main", "--summary"]),
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let runs = json(&retentiond_in(dir.path(), &args(&["history", "--format", "json"])).stdout);
    let started: jiff::Timestamp = runs["runs"][0]["started_at"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let berlin = started
        .to_zoned(jiff::tz::TimeZone::get("Europe/Berlin").unwrap())
        .strftime("%Y-%m-%d %H:%M:%S %Z")
        .to_string();
    let text = retentiond_in(dir.path(), &args(&["history"])).stdout;
    assert!(
        text.starts_with(&format!("run #1 pg-main (run, dry-run) {berlin} (")),
        "{text}"
    );

    // `list` shows the newest backup first, like `plan`.
    let out = retentiond_in(dir.path(), &args(&["list", "--policy", "pg-main"]));
    assert_eq!(out.code, 0, "{}", out.stderr);
    let dates: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| l.starts_with("20"))
        .map(|l| &l[..20])
        .collect();
    assert!(dates.len() > 700);
    let mut sorted = dates.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(dates, sorted, "newest first");
}

#[test]
fn validate_of_a_folder_holding_the_config_checks_the_config_and_its_policies() {
    let out = retentiond(&["validate", "examples/local"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        out.stdout,
        "ok: 2 policies valid, accounts checked against examples/local/retentiond.yaml\n"
    );
}
