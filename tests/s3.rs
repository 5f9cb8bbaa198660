//! The S3 provider against a real S3-compatible server (moto, which checks every request's
//! signature): a listing of 10,000 keys over pages, a run that deletes exactly the planned
//! keys in DeleteObjects calls of at most 1000, versioned buckets in both `versions` modes with
//! an Object Lock, a wrong secret key, and the config's checks. The fault suite
//! (`tests/faults.rs`) runs its listing and deletion faults against the same server.

mod common;

use common::s3::{BUCKET, Fake, Object, daily_in};
use common::{Output, configured, json, write};
use std::collections::BTreeSet;

/// A config for `fake`'s bucket (`account` adds keys to the account) and policy `p`.
fn setup(fake: &Fake, account: &str, policy: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "retentiond.yaml",
        &format!(
            "policies: policies\nstate_dir: state\naccounts:\n  bucket:\n    provider: s3\n    endpoint: {}\n    region: eu-west-1\n    bucket: {BUCKET}\n    path_style: true\n{}{account}    http: {{retries: 1, backoff: 20ms}}\n",
            fake.server.base,
            fake.credentials(dir.path())
        ),
    );
    write(dir.path(), "policies/p.yaml", policy);
    dir
}

/// No output holds the server's secret key.
fn run(fake: &Fake, dir: &tempfile::TempDir, args: &[&str]) -> Output {
    let out = configured(dir.path(), args);
    assert!(
        !out.stdout.contains(&fake.moto.secret_access_key)
            && !out.stderr.contains(&fake.moto.secret_access_key),
        "the secret key appears in the output of {args:?}"
    );
    out
}

/// The ids a plan deletes and keeps.
fn plan_sets(plan: &serde_json::Value) -> (BTreeSet<String>, BTreeSet<String>) {
    let mut delete = BTreeSet::new();
    let mut keep = BTreeSet::new();
    for b in plan["policies"][0]["backups"].as_array().unwrap() {
        let id = b["id"].as_str().unwrap().to_string();
        match b["action"].as_str().unwrap() {
            "delete" => delete.insert(id),
            "keep" => keep.insert(id),
            _ => false,
        };
    }
    (delete, keep)
}

const HOURLY_POLICY: &str = r#"name: p
account: bucket
mode: enforce
select:
  prefix: db/
  pattern: '^main-(?P<ts>\d{8}T\d{6}Z)\.sql\.gz$'
  timestamp_format: "%Y%m%dT%H%M%SZ"
keep:
  daily: 7
  weekly: 4
  monthly: 6
guard:
  max_delete_fraction: 1
"#;

#[test]
fn ten_thousand_keys_are_listed_over_pages_and_a_run_deletes_exactly_the_plan() {
    let newest: jiff::Timestamp = "2026-11-20T23:00:00Z".parse().unwrap();
    let mut objects: Vec<Object> = (0..10_000)
        .map(|h| {
            let at = newest - jiff::SignedDuration::from_hours(h);
            Object::new(&format!("db/main-{}.sql.gz", at.strftime("%Y%m%dT%H%M%SZ")))
        })
        .collect();
    // A failed dump, a file the pattern leaves out, and a key outside the prefix.
    objects.push(Object::new("db/main-20261120T230000Z.sql.gz.failed"));
    objects.push(Object::new("db/README.txt"));
    objects.push(Object::new("other/main-20200101T000000Z.sql.gz"));
    let fake = Fake::start(&objects, false, false);
    let dir = setup(&fake, "", HOURLY_POLICY);

    let out = run(&fake, &dir, &["list", "--format", "json"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let listed = json(&out.stdout)["backups"].as_array().unwrap().clone();
    assert_eq!(listed.len(), 10_000);
    let failed: Vec<&serde_json::Value> =
        listed.iter().filter(|b| b["status"] == "failed").collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["id"], "db/main-20261120T230000Z.sql.gz");
    // Eleven pages of at most 1000 keys (10,002 keys under the prefix), each after the first
    // with the previous page's continuation token.
    let pages: Vec<common::fake::Request> = fake
        .server
        .requests()
        .into_iter()
        .filter(|r| r.method == "GET")
        .collect();
    assert_eq!(
        pages.len(),
        11,
        "{:?}",
        pages.iter().map(|r| &r.query).collect::<Vec<_>>()
    );
    assert!(
        pages
            .iter()
            .all(|r| r.param("list-type").as_deref() == Some("2")
                && r.param("prefix").as_deref() == Some("db/")
                && r.param("max-keys").as_deref() == Some("1000"))
    );
    assert!(pages[0].param("continuation-token").is_none());
    assert!(
        pages[1..]
            .iter()
            .all(|r| r.param("continuation-token").is_some())
    );

    let out = run(&fake, &dir, &["plan", "--format", "json"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let plan = json(&out.stdout);
    let (delete, keep) = plan_sets(&plan);
    assert!(delete.len() > 9_900, "{}", delete.len());
    assert!(!plan.to_string().contains("db/README.txt"));

    let out = run(&fake, &dir, &["run", "--approve"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    // What the bucket holds now: the kept dumps, the marker, and what the policy never saw.
    let mut expected: BTreeSet<String> = keep.clone();
    expected.insert("db/main-20261120T230000Z.sql.gz.failed".into());
    expected.insert("db/README.txt".into());
    expected.insert("other/main-20200101T000000Z.sql.gz".into());
    assert_eq!(fake.keys().into_iter().collect::<BTreeSet<_>>(), expected);
    // Every planned key named once, in calls of at most 1000.
    let calls = fake.deleted_keys();
    assert!(calls.iter().all(|c| c.len() <= 1000));
    assert_eq!(calls.len(), delete.len().div_ceil(1000));
    let named: Vec<String> = calls.into_iter().flatten().collect();
    assert_eq!(named.len(), delete.len());
    assert_eq!(named.into_iter().collect::<BTreeSet<_>>(), delete);
    let history = json(&run(&fake, &dir, &["history", "--format", "json"]).stdout);
    assert_eq!(
        history["runs"][0]["deletions"].as_array().unwrap().len(),
        delete.len()
    );
}

const LAST_2: &str = r#"name: p
account: bucket
mode: enforce
select:
  prefix: db/
  glob: "*.sql.gz"
  mtime: true
keep:
  last: 2
guard:
  max_delete_fraction: 1
"#;

/// Five dumps, one a day; the three oldest have an older version too.
fn versioned_dumps() -> Vec<Object> {
    let mut objects = Vec::new();
    for day in 1..=5 {
        let key = format!("db/dump-{day}.sql.gz");
        let at = format!("2026-11-0{day}T03:00:00Z");
        if day <= 3 {
            objects.push(Object::new(&key).modified(&format!("2026-11-0{day}T02:00:00Z")));
        }
        objects.push(Object::new(&key).modified(&at));
    }
    objects
}

#[test]
fn a_versioned_bucket_gets_delete_markers_by_default() {
    let fake = Fake::start(&versioned_dumps(), true, false);
    let dir = setup(&fake, "", LAST_2);
    let before = fake.moto.versions(BUCKET);
    let out = run(&fake, &dir, &["run", "--approve"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert_eq!(fake.keys(), ["db/dump-4.sql.gz", "db/dump-5.sql.gz"]);
    // The calls named keys only; every version is still there, behind a delete marker.
    let body = String::from_utf8(
        fake.server
            .requests()
            .iter()
            .find(|r| r.method == "POST")
            .unwrap()
            .body
            .clone(),
    )
    .unwrap();
    assert!(!body.contains("<VersionId>"), "{body}");
    let after = fake.moto.versions(BUCKET);
    for version in &before {
        assert!(after.contains(version), "{version:?} is gone: {after:?}");
    }
    let markers: Vec<&String> = after.iter().filter(|v| v.2).map(|v| &v.0).collect();
    assert_eq!(
        markers,
        ["db/dump-1.sql.gz", "db/dump-2.sql.gz", "db/dump-3.sql.gz"]
    );
}

#[test]
fn versions_delete_removes_every_version_and_an_object_lock_is_a_named_failure() {
    let mut objects = versioned_dumps();
    // The oldest dump's newest version is under a retention lock until 2030.
    let locked = Object::new("db/dump-1.sql.gz")
        .modified("2026-11-01T04:00:00Z")
        .locked_until("2030-01-01T00:00:00Z");
    objects.push(locked);
    let fake = Fake::start(&objects, true, true);
    let dir = setup(&fake, "    versions: delete\n", LAST_2);
    let out = run(&fake, &dir, &["plan", "--format", "json"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let (delete, _) = plan_sets(&json(&out.stdout));
    assert_eq!(
        delete,
        ["db/dump-1.sql.gz", "db/dump-2.sql.gz", "db/dump-3.sql.gz"]
            .map(String::from)
            .into()
    );

    let out = run(&fake, &dir, &["run", "--approve"]);
    assert_eq!(out.code, 4, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains("FAILED to delete db/dump-1.sql.gz: ")
            && out.stderr.contains("under S3 Object Lock (AccessDenied"),
        "{}",
        out.stderr
    );
    // Dumps 2 and 3 are gone with every version and no marker; the locked dump keeps its
    // locked version; the kept dumps are untouched.
    let versions = fake.moto.versions(BUCKET);
    let keys: BTreeSet<&str> = versions.iter().map(|v| v.0.as_str()).collect();
    assert_eq!(
        keys,
        ["db/dump-1.sql.gz", "db/dump-4.sql.gz", "db/dump-5.sql.gz"].into()
    );
    assert!(
        versions.iter().all(|v| !v.2),
        "no delete marker: {versions:?}"
    );
    assert!(fake.keys().contains(&"db/dump-1.sql.gz".to_string()));
    // Each version was named by its id.
    let body = String::from_utf8(
        fake.server
            .requests()
            .iter()
            .find(|r| r.method == "POST")
            .unwrap()
            .body
            .clone(),
    )
    .unwrap();
    assert_eq!(body.matches("<VersionId>").count(), 3 + 2 + 2, "{body}");
    let history = json(&run(&fake, &dir, &["history", "--format", "json"]).stdout);
    let outcomes: Vec<(String, String)> = history["runs"][0]["deletions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["id"].as_str().unwrap().to_string(),
                d["outcome"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(outcomes.contains(&("db/dump-1.sql.gz".into(), "failed".into())));
    assert!(outcomes.contains(&("db/dump-2.sql.gz".into(), "deleted".into())));
}

#[test]
fn with_object_lock_the_plan_keeps_a_locked_or_legally_held_version() {
    let mut objects = versioned_dumps();
    // Dump 1's newest version is locked until 2030; an older version of dump 2 is under a
    // legal hold; dump 3's lock has run out.
    objects.push(
        Object::new("db/dump-1.sql.gz")
            .modified("2026-11-01T04:00:00Z")
            .locked_until("2030-01-01T00:00:00Z"),
    );
    objects.insert(
        0,
        Object::new("db/dump-2.sql.gz")
            .modified("2026-11-02T01:00:00Z")
            .legal_hold(),
    );
    objects.push(
        Object::new("db/dump-3.sql.gz")
            .modified("2026-11-03T04:00:00Z")
            .locked_until("2026-11-10T00:00:00Z"),
    );
    let fake = Fake::start(&objects, true, true);
    let dir = setup(
        &fake,
        "    versions: delete\n    object_lock: true\n",
        LAST_2,
    );
    let out = run(&fake, &dir, &["plan", "--format", "json"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let plan = json(&out.stdout);
    let (delete, _) = plan_sets(&plan);
    assert_eq!(delete, ["db/dump-3.sql.gz"].map(String::from).into());
    let reasons = |id: &str| -> String {
        plan["policies"][0]["backups"]
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["id"] == id)
            .unwrap()["reasons"]
            .to_string()
    };
    assert!(
        reasons("db/dump-1.sql.gz")
            .contains("locked until 2030-01-01T00:00:00Z (S3 Object Lock GOVERNANCE, version "),
        "{}",
        reasons("db/dump-1.sql.gz")
    );
    assert!(
        reasons("db/dump-2.sql.gz").contains("legal hold (S3 Object Lock, version "),
        "{}",
        reasons("db/dump-2.sql.gz")
    );
    // One HEAD per version of each key the first plan would delete: 3 + 3 + 3.
    let heads = fake
        .server
        .requests()
        .iter()
        .filter(|r| r.method == "HEAD")
        .count();
    assert_eq!(heads, 9);

    // The run deletes only what is not locked, with no failure.
    let out = run(&fake, &dir, &["run", "--approve"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert_eq!(
        fake.keys(),
        [
            "db/dump-1.sql.gz",
            "db/dump-2.sql.gz",
            "db/dump-4.sql.gz",
            "db/dump-5.sql.gz"
        ]
    );

    // `object_lock` without `versions: delete` is a config error that says why.
    let dir = setup(&fake, "    object_lock: true\n", LAST_2);
    let out = run(&fake, &dir, &["validate"]);
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stderr
            .contains("object_lock: true` needs `versions: delete`"),
        "{}",
        out.stderr
    );
}

#[test]
fn policies_on_one_prefix_share_one_listing_and_each_deletes_its_own() {
    // Two databases' dumps under one prefix, a policy each: one listing of the prefix for
    // both, and each plan and run sees only its own keys (and its own failed marker).
    let mut objects = daily_in("db/main-", 12);
    objects.extend(daily_in("db/aux-", 12));
    objects.push(Object::new("db/aux-20261110T030000Z.sql.gz.failed"));
    let fake = Fake::start(&objects, false, false);
    let policy = |name: &str, db: &str| {
        format!(
            "name: {name}\naccount: bucket\nmode: enforce\nselect:\n  prefix: db/\n  pattern: '^{db}-(?P<ts>\\d{{8}}T\\d{{6}}Z)\\.sql\\.gz$'\n  timestamp_format: \"%Y%m%dT%H%M%SZ\"\nkeep: {{last: 3}}\nfailed: {{delete_after: 1d}}\nguard: {{max_delete_fraction: 1}}\n"
        )
    };
    let dir = setup(&fake, "", &policy("main", "main"));
    write(dir.path(), "policies/aux.yaml", &policy("aux", "aux"));
    let out = run(&fake, &dir, &["plan", "--format", "json"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let listings = fake
        .server
        .requests()
        .iter()
        .filter(|r| r.method == "GET" && r.query.contains("list-type=2"))
        .count();
    assert_eq!(listings, 1, "one ListObjectsV2 page for both policies");
    let out = run(&fake, &dir, &["run", "--approve"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let keys = fake.keys();
    assert_eq!(
        keys.iter().filter(|k| k.starts_with("db/main-")).count(),
        3,
        "{keys:?}"
    );
    assert_eq!(
        keys.iter().filter(|k| k.starts_with("db/aux-")).count(),
        3,
        "{keys:?}"
    );
    assert!(!keys.iter().any(|k| k.ends_with(".failed")), "{keys:?}");
}

#[test]
fn a_failed_dump_goes_with_its_marker_and_one_in_progress_is_never_touched() {
    let objects = [
        Object::new("db/dump-1.sql.gz").modified("2026-11-01T03:00:00Z"),
        Object::new("db/dump-1.sql.gz.failed"),
        Object::new("db/dump-2.sql.gz").modified("2026-11-02T03:00:00Z"),
        Object::new("db/dump-2.sql.gz.partial"),
        Object::new("db/dump-3.sql.gz").modified("2026-11-03T03:00:00Z"),
        Object::new("db/dump-4.sql.gz").modified("2026-11-04T03:00:00Z"),
        Object::new("db/dump-5.sql.gz").modified("2026-11-05T03:00:00Z"),
    ];
    let fake = Fake::start(&objects, false, false);
    let dir = setup(
        &fake,
        "",
        &format!("{LAST_2}failed: {{delete_after: 1d}}\n"),
    );
    let out = run(&fake, &dir, &["run", "--approve"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert_eq!(
        fake.keys(),
        [
            "db/dump-2.sql.gz",
            "db/dump-2.sql.gz.partial",
            "db/dump-4.sql.gz",
            "db/dump-5.sql.gz"
        ]
    );
}

#[test]
fn a_wrong_secret_key_fails_once_with_a_clear_message() {
    let fake = Fake::start(&daily_in("db/main-", 5), false, false);
    let dir = setup(&fake, "", LAST_2);
    std::fs::write(dir.path().join("s3-secret"), "not-the-secret-key-at-all").unwrap();
    let out = run(&fake, &dir, &["run", "--approve"]);
    assert_eq!(out.code, 3, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains("account bucket: ListObjectsV2 s3://backups/db/ (page 1): the credentials were rejected (HTTP 403: SignatureDoesNotMatch")
            && out.stderr.contains("check the account's access_key_id and secret_access_key"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("nothing was deleted"), "{}", out.stderr);
    // Refused credentials are not retried.
    assert_eq!(fake.server.requests().len(), 1);
    assert_eq!(fake.keys().len(), 5);
}

#[test]
fn validate_names_what_an_s3_account_needs() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "retentiond.yaml",
        "policies: policies\naccounts:\n  b:\n    provider: s3\n    endpoint: http://s3.example.com\n    region: eu-west-1\n    bucket: Backups_2026\n    access_key_id: ${env:AK}\n    versions: all\n",
    );
    write(
        dir.path(),
        "policies/p.yaml",
        "name: p\naccount: b\nselect: {prefix: /db/}\nkeep: {last: 3}\n",
    );
    let out = common::retentiond_in(dir.path(), &["validate", "retentiond.yaml"]);
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    for expected in [
        "`accounts.b.endpoint: http://s3.example.com` must be an https:// URL",
        "`accounts.b.bucket: Backups_2026` is not an S3 bucket name",
        "needs both `access_key_id` and `secret_access_key`",
        "unknown `accounts.b.versions: all`; write `marker`",
    ] {
        assert!(out.stderr.contains(expected), "{expected}: {}", out.stderr);
    }
    write(
        dir.path(),
        "retentiond.yaml",
        "policies: policies\naccounts:\n  b:\n    provider: s3\n    region: eu-west-1\n    bucket: backups\n",
    );
    let out = common::retentiond_in(dir.path(), &["validate", "retentiond.yaml"]);
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    for expected in [
        "account `b` is an S3 bucket: `select` needs `pattern`",
        "`select.prefix: /db/`: S3 keys do not start with `/`; write `db/`",
    ] {
        assert!(out.stderr.contains(expected), "{expected}: {}", out.stderr);
    }
}
