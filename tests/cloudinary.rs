//! The real binary against the stateful Cloudinary fake: paging, the live version, one DELETE
//! per asset, 207 partial results, throttling and credentials.

mod common;

use common::cloudinary::{self, Fake, asset};
use common::fake::{Fault, Reply};
use common::{Output, json, retentiond_env, write};
use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

fn setup(dir: &Path, fake: &Fake, policy: &str) {
    write(
        dir,
        "retentiond.yaml",
        &format!(
            "policies: policies\naccounts:\n  media:\n    provider: cloudinary\n    base_url: {}\n    cloud_name: {}\n    api_key: ${{env:TEST_CLD_KEY}}\n    api_secret: ${{env:TEST_CLD_SECRET}}\n    http: {{retries: 2, backoff: 20ms}}\n",
            fake.server.base,
            cloudinary::CLOUD
        ),
    );
    write(dir, "policies/p.yaml", policy);
}

fn policy(keep: &str, select: &str) -> String {
    format!(
        "name: media-versions\naccount: media\nmode: enforce\nselect: {select}\nkeep: {keep}\nguard: {{max_delete_fraction: 1}}\n"
    )
}

const UPLOADS: &str = "{resource_type: image, type: upload, prefix: products/}";

fn run(dir: &Path, args: &[&str]) -> Output {
    common::configured(dir, args)
}

type Ids = BTreeSet<(String, String)>;

/// The plan's (asset, version) pairs kept and deleted.
fn planned(dir: &Path) -> (Ids, Ids) {
    let out = run(dir, &["plan", "--format", "json"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let plan = json(&out.stdout);
    let (mut keep, mut delete) = (Ids::new(), Ids::new());
    for d in plan["policies"][0]["backups"].as_array().unwrap() {
        let key = (
            d["group"].as_str().unwrap().to_string(),
            d["id"].as_str().unwrap().to_string(),
        );
        match d["action"].as_str().unwrap() {
            "keep" => keep.insert(key),
            "delete" => delete.insert(key),
            other => panic!("unexpected action {other}"),
        };
    }
    (keep, delete)
}

/// Five product assets (paged two per page) and one outside the prefix.
fn catalogue() -> Vec<cloudinary::Asset> {
    let mut assets: Vec<_> = (0..5)
        .map(|n| asset(n, &format!("products/p{n}"), 10, 0))
        .collect();
    // A restored asset: its live version is 6 days old.
    assets[2] = asset(2, "products/p2", 10, 6);
    assets.push(asset(9, "banners/b9", 10, 0));
    assets
}

fn current_versions(fake: &Fake) -> Vec<String> {
    let state = fake.state.lock().unwrap();
    state
        .assets
        .iter()
        .map(|a| {
            let v = a.versions.iter().find(|v| v.version == a.version).unwrap();
            v.version_id.clone()
        })
        .collect()
}

#[test]
fn enforce_deletes_exactly_the_plan_in_one_call_per_asset() {
    let fake = Fake::start(catalogue(), 2);
    let live = current_versions(&fake);
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path(), &fake, &policy("{last: 2, weekly: 2}", UPLOADS));
    let (keep, delete) = planned(dir.path());
    assert_eq!(
        keep.len() + delete.len(),
        50,
        "five assets, ten versions each"
    );
    assert!(delete.len() > 20);

    let out = run(dir.path(), &["run"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let held: Ids = fake.versions().into_iter().collect();
    let banner: Ids = held
        .iter()
        .filter(|(a, _)| a.starts_with("00000009"))
        .cloned()
        .collect();
    assert_eq!(banner.len(), 10, "outside the prefix: untouched");
    let products: Ids = held.difference(&banner).cloned().collect();
    assert_eq!(products, keep, "the fake holds exactly the plan's keep set");
    assert_eq!(fake.server.lines("DELETE").len(), 5, "one DELETE per asset");
    let asked: Vec<String> = fake.state.lock().unwrap().delete_requests.clone();
    let asked: BTreeSet<String> = asked.into_iter().collect();
    let doomed: BTreeSet<String> = delete.iter().map(|(_, v)| v.clone()).collect();
    assert_eq!(asked, doomed);
    for version in &live {
        assert!(
            !asked.contains(version),
            "a live version was sent for deletion"
        );
    }
    let lists: Vec<String> = fake
        .server
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/resources/image/upload"))
        .map(|r| r.query.clone())
        .collect();
    assert_eq!(
        lists.len(),
        6,
        "plan, then run: five assets in pages of two: {lists:?}"
    );
    assert!(lists[1].contains("next_cursor=cur-2"), "{lists:?}");
    assert!(lists[0].contains("prefix=products%2F"), "{lists:?}");
}

#[test]
fn the_live_version_survives_keep_last_one() {
    let fake = Fake::start(catalogue(), 500);
    let live = current_versions(&fake);
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path(), &fake, &policy("{last: 1}", UPLOADS));
    let plan = run(dir.path(), &["plan"]);
    assert!(plan.stdout.contains("live version"), "{}", plan.stdout);
    // Ten versions share each name: the text plan tells them apart by id, and says what the
    // deletions free (the fake's versions weigh 1000 + age bytes).
    let live_p0 = &live[0];
    assert!(
        plan.stdout.contains(&format!("products/p0 [id {live_p0}]")),
        "{}",
        plan.stdout
    );
    assert!(
        plan.stdout.contains("delete 9 of 10 (frees 8.8 KiB)"),
        "{}",
        plan.stdout
    );
    let out = run(dir.path(), &["run"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let held: BTreeSet<String> = fake.versions().into_iter().map(|(_, v)| v).collect();
    for version in &live {
        assert!(held.contains(version), "live version {version} was deleted");
    }
    let state = fake.state.lock().unwrap();
    for a in state
        .assets
        .iter()
        .filter(|a| a.public_id.starts_with("products/"))
    {
        let expected = if a.public_id == "products/p2" { 2 } else { 1 };
        assert_eq!(a.versions.len(), expected, "{}", a.public_id);
    }
}

#[test]
fn a_207_reports_each_failed_version() {
    let fake = Fake::start(vec![asset(1, "products/p1", 6, 0)], 500);
    let failing = fake.state.lock().unwrap().assets[0].versions[4]
        .version_id
        .clone();
    fake.state.lock().unwrap().failing.insert(failing.clone());
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path(), &fake, &policy("{last: 2}", UPLOADS));
    let out = run(dir.path(), &["run"]);
    assert_eq!(out.code, 4, "{}{}", out.stdout, out.stderr);
    let asset_id = fake.state.lock().unwrap().assets[0].asset_id.clone();
    let expected = format!(
        "FAILED to delete {failing}: DELETE /resources/backup/{asset_id}: version {failing} not deleted (HTTP 207): Failed to delete backup version"
    );
    assert!(out.stdout.contains(&expected), "{}", out.stdout);
    assert!(out.stderr.contains(&expected), "{}", out.stderr);
    assert!(out.stdout.contains("deleted 3 of 4"), "{}", out.stdout);
    assert_eq!(fake.versions().len(), 3);
}

#[test]
fn dry_run_sends_no_delete() {
    let fake = Fake::start(catalogue(), 500);
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path(), &fake, &policy("{last: 1}", UPLOADS));
    let out = run(dir.path(), &["run", "--dry-run"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("dry-run (--dry-run)"), "{}", out.stdout);
    assert!(fake.server.lines("DELETE").is_empty());
    assert_eq!(fake.versions().len(), 60);
}

#[test]
fn a_truncated_page_deletes_nothing_and_names_the_call() {
    let fake = Fake::start(catalogue(), 2);
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path(), &fake, &policy("{last: 1}", UPLOADS));
    // The first page is fine, the second truncated every time.
    fake.server.fault(
        "GET",
        "/resources/image/upload",
        Some(1),
        Fault::Delay(Duration::ZERO),
    );
    fake.server
        .fault("GET", "/resources/image/upload", None, Fault::Truncate(40));
    let out = run(dir.path(), &["run"]);
    assert_eq!(out.code, 3, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains(
            "account media: GET /resources/image/upload (page 2): the JSON response is truncated"
        ),
        "{}",
        out.stderr
    );
    assert!(fake.server.lines("DELETE").is_empty());
    assert_eq!(fake.versions().len(), 60);
}

#[test]
fn a_failing_asset_fails_the_whole_listing() {
    let fake = Fake::start(catalogue(), 500);
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path(), &fake, &policy("{last: 1}", UPLOADS));
    let asset_id = fake.state.lock().unwrap().assets[3].asset_id.clone();
    fake.server.fault(
        "GET",
        &asset_id,
        None,
        Fault::Reply(Reply::json(
            503,
            &serde_json::json!({"error": {"message": "Service unavailable"}}),
        )),
    );
    let out = run(dir.path(), &["run"]);
    assert_eq!(out.code, 3, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains(&format!(
            "account media: GET /resources/{asset_id}?versions=true: HTTP 503: Service unavailable (gave up after 3 attempts)"
        )),
        "{}",
        out.stderr
    );
    assert!(fake.server.lines("DELETE").is_empty());
}

#[test]
fn throttling_420_waits_for_the_reset_header() {
    let fake = Fake::start(vec![asset(1, "products/p1", 4, 0)], 500);
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path(), &fake, &policy("{last: 1}", UPLOADS));
    let reset = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(1);
    let reset = jiff::fmt::rfc2822::DateTimePrinter::new()
        .timestamp_to_rfc9110_string(&reset)
        .unwrap();
    fake.server.fault(
        "DELETE",
        "/resources/backup/",
        Some(1),
        Fault::Reply(
            Reply::json(
                420,
                &serde_json::json!({"error": {"message": "Rate Limit Exceeded"}}),
            )
            .with_header("X-FeatureRateLimit-Limit", "500")
            .with_header("X-FeatureRateLimit-Remaining", "0")
            .with_header("X-FeatureRateLimit-Reset", &reset),
        ),
    );
    let out = run(dir.path(), &["run"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let deletes: Vec<_> = fake
        .server
        .requests()
        .into_iter()
        .filter(|r| r.method == "DELETE")
        .collect();
    assert_eq!(deletes.len(), 2);
    assert!(deletes[1].at - deletes[0].at >= Duration::from_millis(900));
    assert_eq!(fake.versions().len(), 1);
}

#[test]
fn a_wrong_secret_is_rejected_once() {
    let fake = Fake::start(catalogue(), 500);
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path(), &fake, &policy("{last: 1}", UPLOADS));
    let out = retentiond_env(
        dir.path(),
        &["--config", "retentiond.yaml", "plan"],
        &[
            ("TEST_CLD_KEY", cloudinary::API_KEY),
            ("TEST_CLD_SECRET", "not-the-secret"),
        ],
    );
    assert_eq!(out.code, 3, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains("account media: GET /resources/image/upload (page 1): the credentials were rejected (HTTP 401: Invalid api_key <redacted> or api_secret)"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("check the account's api_key and api_secret")
    );
    assert!(!out.stderr.contains("not-the-secret") && !out.stdout.contains("not-the-secret"));
    assert_eq!(fake.server.requests().len(), 1);
}

#[test]
fn tags_and_asset_ids_select_assets() {
    let mut assets = catalogue();
    assets[0].tags = vec!["keep me".into()];
    assets[5].tags = vec!["keep me".into()];
    let fake = Fake::start(assets, 500);
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path(), &fake, &policy("{last: 1}", "{tags: [keep me]}"));
    let out = run(dir.path(), &["list", "--format", "json"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let groups: BTreeSet<String> = json(&out.stdout)["backups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["group"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(groups.len(), 2, "{groups:?}");
    assert!(
        fake.server
            .requests()
            .iter()
            .any(|r| r.path == "/v1_1/demo/resources/image/tags/keep%20me")
    );

    let id = fake.state.lock().unwrap().assets[3].asset_id.clone();
    setup(
        dir.path(),
        &fake,
        &policy("{last: 1}", &format!("{{asset_ids: [{id}]}}")),
    );
    let out = run(dir.path(), &["list", "--format", "json"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let listing = json(&out.stdout);
    let backups = listing["backups"].as_array().unwrap();
    assert_eq!(backups.len(), 10);
    assert!(backups.iter().all(|b| b["group"] == id.as_str()));
    assert_eq!(backups.iter().filter(|b| b["live"] == true).count(), 1);
}

#[test]
fn the_account_cap_bounds_requests_in_flight() {
    let fake = Fake::start(catalogue(), 500);
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path(), &fake, &policy("{last: 1}", UPLOADS));
    let config = std::fs::read_to_string(dir.path().join("retentiond.yaml")).unwrap();
    write(
        dir.path(),
        "retentiond.yaml",
        &config.replace("http: {", "http: {concurrency: 2, "),
    );
    // Every asset's versions come slowly: the fetches overlap, two at a time.
    fake.server.fault(
        "GET",
        "/resources/0000000",
        None,
        Fault::Delay(Duration::from_millis(300)),
    );
    let out = run(dir.path(), &["list"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert_eq!(fake.server.max_in_flight(), 2);
}
