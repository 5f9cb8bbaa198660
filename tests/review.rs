//! Reviewing policy changes: `diff` of a policy folder against a git revision or another
//! folder on a saved listing.

mod common;

use common::{json, retentiond_in, write};
use std::path::Path;
use std::process::Command;

/// 60 daily backups (from 1 January 2026) in each of the groups a to e.
fn listing(dir: &Path) {
    let mut backups = Vec::new();
    for group in ["a", "b", "c", "d", "e"] {
        for day in 0..60 {
            let at = jiff::civil::date(2026, 1, 1) + jiff::Span::new().days(day);
            backups.push(serde_json::json!({
                "id": format!("{group}-{}", at.strftime("%Y%m%d")),
                "group": group,
                "created_at": format!("{}T03:00:00Z", at),
                "status": "complete",
            }));
        }
    }
    write(
        dir,
        "listing.json",
        &serde_json::json!({ "backups": backups }).to_string(),
    );
}

/// A policy on one group; past the default `guard.max_delete_fraction` (the first plans
/// delete most of a group), unless `rest` has a guard of its own.
fn policy(name: &str, group: &str, rest: &str) -> String {
    let guard = match rest.contains("guard:") {
        true => "",
        false => "guard: {max_delete_fraction: 1}\n",
    };
    format!(
        "name: {name}\naccount: files\nmode: enforce\nselect: {{ name: '^{group}-' }}\n{rest}{guard}"
    )
}

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(["-c", "user.email=ci@example.com", "-c", "user.name=ci"])
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

const NOW: &str = "2026-03-02T12:00:00Z";

fn diff(dir: &Path, base: &[&str], format: &str) -> common::Output {
    let mut args = vec!["diff"];
    args.extend_from_slice(base);
    args.extend_from_slice(&[
        "--policies",
        "policies",
        "--listing",
        "listing.json",
        "--now",
        NOW,
        "--format",
        format,
    ]);
    retentiond_in(dir, &args)
}

#[test]
fn diff_against_a_git_revision_names_every_kind_of_change() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    listing(d);
    write(
        d,
        "policies/a.yaml",
        &policy("a", "a", "keep: {daily: 7}\n"),
    );
    write(
        d,
        "policies/b.yaml",
        &policy("b", "b", "keep: {daily: 7, monthly: 3}\n"),
    );
    write(d, "policies/c.yaml", &policy("c", "c", "keep: {last: 5}\n"));
    write(
        d,
        "policies/e.yaml",
        &policy(
            "e",
            "e",
            "keep: {last: 5}\nguard: {max_delete: 100, max_delete_fraction: 1}\n",
        ),
    );
    git(d, &["init", "-q"]);
    git(d, &["add", "-A"]);
    git(d, &["commit", "-qm", "base"]);

    // A count raised, a rule removed, a policy renamed, one added, a guard tightened.
    write(
        d,
        "policies/a.yaml",
        &policy("a", "a", "keep: {daily: 10}\n"),
    );
    write(
        d,
        "policies/b.yaml",
        &policy("b", "b", "keep: {daily: 7}\n"),
    );
    std::fs::remove_file(d.join("policies/c.yaml")).unwrap();
    write(
        d,
        "policies/c2.yaml",
        &policy("c2", "c", "keep: {last: 5}\n"),
    );
    write(d, "policies/d.yaml", &policy("d", "d", "keep: {last: 5}\n"));
    write(
        d,
        "policies/e.yaml",
        &policy(
            "e",
            "e",
            "keep: {last: 5}\nguard: {max_delete: 10, max_delete_fraction: 1}\n",
        ),
    );
    let status_before = git(d, &["status", "--porcelain"]);

    let out = diff(d, &["--base", "HEAD"], "json");
    assert_eq!(out.code, 8, "{}{}", out.stdout, out.stderr);
    let report = json(&out.stdout);
    let policies = report["policies"].as_array().unwrap();
    let by_name = |name: &str| {
        policies
            .iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("{name} in {report}"))
    };
    let newly = |p: &serde_json::Value, before: &str, after: &str| {
        p["moved"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["before"]["action"] == before && m["after"]["action"] == after)
            .count()
    };

    let a = by_name("a");
    assert_eq!(a["change"], "changed");
    assert_eq!(a["edits"], serde_json::json!(["keep.daily: 7 → 10"]));
    assert_eq!(newly(a, "delete", "keep"), 3, "{a}");
    assert_eq!(a["moved"][0]["before"]["why"], "no rule keeps it");
    assert_eq!(a["moved"][0]["after"]["why"], "daily");

    let b = by_name("b");
    assert_eq!(
        b["edits"],
        serde_json::json!(["keep.monthly: removed (was 3)"])
    );
    // The monthly of January (31st) goes; those of February and March are dailies too.
    assert_eq!(newly(b, "keep", "delete"), 1, "{b}");
    assert_eq!(b["before"]["keep"], 8);
    assert_eq!(b["after"]["keep"], 7);

    let c2 = by_name("c2");
    assert_eq!(c2["change"], "renamed");
    assert_eq!(c2["renamed_from"], "c");
    assert_eq!(c2["moved"], serde_json::json!([]));
    assert!(
        policies.iter().all(|p| p["name"] != "c"),
        "a rename is not a removal"
    );

    let added = by_name("d");
    assert_eq!(added["change"], "added");
    assert!(added["before"].is_null());
    assert_eq!(newly(added, "none", "delete"), 55);

    let e = by_name("e");
    assert_eq!(
        e["edits"],
        serde_json::json!(["guard.max_delete: 100 → 10"])
    );
    assert!(e["blocked_before"].is_null());
    assert_eq!(
        e["blocked_after"],
        "the plan deletes 55 backups, more than guard.max_delete 10; to let one run through once all the same: `retentiond run --policy e --accept-max-delete`"
    );

    // Text and markdown say the same; the work tree is as it was.
    let text = diff(d, &["--base", "HEAD"], "text");
    assert_eq!(text.code, 8);
    assert!(
        text.stdout
            .contains("policy c2 (account files): renamed from c\n"),
        "{}",
        text.stdout
    );
    assert!(
        text.stdout.contains("  keep.daily: 7 → 10\n"),
        "{}",
        text.stdout
    );
    assert!(
        text.stdout
            .ends_with("56 backups that the base keeps would be deleted\n"),
        "{}",
        text.stdout
    );
    let markdown = diff(d, &["--base", "HEAD"], "markdown");
    assert!(
        markdown
            .stdout
            .contains("| `b` | changed | yes → yes | 8 → 7 | 52 → 53 | 1 | 0 |"),
        "{}",
        markdown.stdout
    );
    assert!(markdown.stdout.contains(
        "<details><summary>55 backups change (55 newly deleted, 0 newly kept)</summary>"
    ));
    // A guard tightened until it blocks: said in the summary.
    assert!(
        markdown
            .stdout
            .contains("- `e` becomes **blocked**: the plan deletes 55 backups, more than guard.max\\_delete 10"),
        "{}",
        markdown.stdout
    );
    assert_eq!(git(d, &["status", "--porcelain"]), status_before);

    // Against a folder; no change in what is deleted: exit 0.
    let out = diff(d, &["--base-policies", "policies"], "text");
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout
            .ends_with("no backup that the base keeps is deleted\n")
    );

    // A base revision that does not exist, a broken base policy: exit 1, said plainly.
    let out = diff(d, &["--base", "no-such-branch"], "text");
    assert_eq!(out.code, 1);
    assert!(
        out.stderr
            .contains("--base no-such-branch: no such revision"),
        "{}",
        out.stderr
    );
    write(
        d,
        "policies/a.yaml",
        "name: a\naccount: files\nkeep: {daily: seven}\n",
    );
    git(d, &["commit", "-qam", "broken"]);
    let out = diff(d, &["--base", "HEAD"], "text");
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("HEAD:policies/a.yaml:3:"),
        "{}",
        out.stderr
    );
}

fn simulate(dir: &Path, policy: &str, args: &[&str]) -> serde_json::Value {
    write(dir, "policies/p.yaml", policy);
    let mut all = vec![
        "simulate",
        "--policy",
        "p",
        "--policies",
        "policies",
        "--format",
        "json",
    ];
    all.extend_from_slice(args);
    let out = retentiond_in(dir, &all);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    json(&out.stdout)
}

#[test]
fn simulate_reaches_the_steady_state_a_person_computes() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Daily backups, the policy running after each: `daily: 7` holds 7.
    let daily = "name: p\naccount: a\ntimezone: Europe/Berlin\nkeep: {daily: 7}\n";
    let s = simulate(
        d,
        daily,
        &["--from", "2026-01-01T00:00:00Z", "--for", "3mo"],
    );
    assert_eq!(s["held_at_end"], 7);
    assert_eq!(
        s["max_held"], 8,
        "the new one, before the run that deletes the eighth"
    );
    assert_eq!(s["backups_made"], 90);
    assert_eq!(s["deleted"], 83);
    assert_eq!(s["still_growing"], false);
    assert_eq!(s["last_growth"], "2026-01-07T02:00:00Z");

    // `last: 3, weekly: 4`: the last three days and the newest of the three weeks before (a
    // Wednesday: Monday to Wednesday, and three Sundays).
    let weekly = "name: p\naccount: a\ntimezone: UTC\nkeep: {last: 3, weekly: 4}\n";
    let s = simulate(
        d,
        weekly,
        &[
            "--from",
            "2026-01-01T00:00:00Z",
            "--for",
            "6w",
            "--cadence",
            "0 3 * * *",
        ],
    );
    assert_eq!(s["until"], "2026-02-12T00:00:00Z");
    assert_eq!(s["held_at_end"], 6, "{s}");
    assert_eq!(
        s["ages_at_end"],
        serde_json::json!(["21h", "2d", "3d", "4d", "11d", "3w"])
    );

    // Across a leap day and the spring change in Berlin: a 02:30 job whose time does not
    // exist on 31 March 2024 runs once that day all the same (at 03:00, when the clocks jump).
    let s = simulate(
        d,
        daily,
        &[
            "--from",
            "2024-02-27T00:00:00Z",
            "--for",
            "5w",
            "--cadence",
            "30 2 * * *",
            "--groups",
            "2",
        ],
    );
    assert_eq!(
        s["backups_made"], 70,
        "35 days, one backup a day, two groups"
    );
    assert_eq!(s["held_at_end"], 14);
    let out = retentiond_in(
        d,
        &[
            "simulate",
            "--policy",
            "p",
            "--policies",
            "policies",
            "--from",
            "2024-02-27T00:00:00Z",
            "--for",
            "5w",
            "--cadence",
            "30 2 * * *",
            "--svg",
            "sim.svg",
        ],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.contains("held at most 8 at once"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("the count stopped growing after 6d"),
        "{}",
        out.stdout
    );
    let picture = std::fs::read_to_string(d.join("sim.svg")).unwrap();
    let svg = roxmltree::Document::parse(&picture).expect("well-formed SVG");
    let marks = |class: &str| {
        svg.descendants()
            .filter(|n| {
                n.has_tag_name("circle")
                    && n.attribute("class").is_some_and(|c| c.starts_with(class))
            })
            .count()
    };
    assert_eq!(marks("keep daily"), 7);
    assert_eq!(marks("delete"), 28);
    let titles: Vec<&str> = svg
        .descendants()
        .filter(|n| n.has_tag_name("title"))
        .filter_map(|n| n.text())
        .collect();
    assert!(
        titles
            .iter()
            .any(|t| t.starts_with("sim-20240229T013000Z: deleted at")),
        "{titles:?}"
    );
    assert!(
        titles
            .iter()
            .any(|t| t.starts_with("sim-20240331T010000Z: held: daily")),
        "{titles:?}"
    );

    // A policy name that does not exist, a bad cadence: said plainly.
    let out = retentiond_in(d, &["simulate", "--policy", "q", "--policies", "policies"]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("no policy named `q`"), "{}", out.stderr);
    let out = retentiond_in(
        d,
        &[
            "simulate",
            "--policy",
            "p",
            "--policies",
            "policies",
            "--cadence",
            "0 3 * *",
        ],
    );
    assert_eq!(out.code, 2);
    assert!(
        out.stderr
            .contains("--cadence: `schedule: 0 3 * *` has 4 fields"),
        "{}",
        out.stderr
    );
}

#[test]
fn plan_svg_has_a_row_per_group_and_a_mark_per_kept_backup() {
    let dir = tempfile::tempdir().unwrap();
    let out = retentiond_in(
        dir.path(),
        &[
            "--config",
            &common::repo("examples/local/retentiond.yaml")
                .display()
                .to_string(),
            "plan",
            "--now",
            "2026-11-23T06:00:00Z",
            "--format",
            "json",
            "--svg",
            "plan.svg",
        ],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let plan = json(&out.stdout);
    let picture = std::fs::read_to_string(dir.path().join("plan.svg")).unwrap();
    let svg = roxmltree::Document::parse(&picture).expect("well-formed SVG");
    assert!(!picture.contains("<script"), "no script");
    assert!(!picture.contains("href"), "nothing external");
    let count = |class: &str| {
        svg.descendants()
            .filter(|n| {
                n.has_tag_name("circle")
                    && n.attribute("class")
                        .is_some_and(|c| c.split(' ').next() == Some(class))
            })
            .count()
    };
    let total = |key: &str| -> u64 {
        plan["policies"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["summary"][key].as_u64().unwrap())
            .sum()
    };
    assert_eq!(count("keep") as u64, total("keep"));
    assert_eq!(count("delete") as u64, total("delete"));
    assert_eq!(count("ignore") as u64, total("ignore"));
    let rows = svg
        .descendants()
        .filter(|n| n.has_tag_name("g") && n.attribute("class") == Some("row"))
        .count() as u64;
    assert_eq!(rows, total("groups"));
    // A legend entry for each rule that kept something, in the example: yearly among them.
    let legend: Vec<&str> = svg
        .descendants()
        .filter(|n| n.has_tag_name("g") && n.attribute("class") == Some("legend"))
        .filter_map(|g| {
            g.descendants()
                .find(|n| n.has_tag_name("text"))
                .and_then(|t| t.text())
        })
        .collect();
    assert!(
        legend.contains(&"kept: within") && legend.contains(&"deleted"),
        "{legend:?}"
    );
}

#[test]
fn a_live_diff_lists_each_selection_once_for_both_sides() {
    let fake = common::docspace::Fake::start(common::docspace::daily(10));
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(
        d,
        "retentiond.yaml",
        &format!(
            "policies: policies\naccounts:\n  portal:\n    provider: onlyoffice-docspace\n    base_url: {}\n    api_key: ${{env:TEST_DOCSPACE_KEY}}\n",
            fake.server.base
        ),
    );
    write(
        d,
        "base/p.yaml",
        "name: p\naccount: portal\nmode: enforce\nkeep: {last: 5}\nguard: {max_delete_fraction: 1}\n",
    );
    write(
        d,
        "policies/p.yaml",
        "name: p\naccount: portal\nmode: enforce\nkeep: {last: 3}\nguard: {max_delete_fraction: 1}\n",
    );
    let out = retentiond_in(
        d,
        &[
            "--config",
            "retentiond.yaml",
            "diff",
            "--base-policies",
            "base",
            "--format",
            "json",
        ],
    );
    assert_eq!(out.code, 8, "{}{}", out.stdout, out.stderr);
    let report = json(&out.stdout);
    assert_eq!(report["policies"][0]["after"]["delete"], 7);
    assert_eq!(
        fake.server.lines("GET").len(),
        1,
        "base and current select the same backups: one listing"
    );
}

/// The shipped GitHub Actions job's `diff` step, run as GitHub would on a pull request that
/// loosens a policy and also empties the committed listing of what it dooms: the step reads
/// the listing of the base branch, so the review still shows every backup the change deletes.
#[test]
fn the_ci_example_reviews_on_the_base_branchs_listing() {
    let workflow = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/ci/github-actions.yml"),
    )
    .unwrap();
    let workflow: serde_json::Value = serde_saphyr::from_str(&workflow).unwrap();
    let steps = workflow["jobs"]["review"]["steps"].as_array().unwrap();
    let step = steps.iter().find(|s| s["id"] == "diff").unwrap();
    let script = step["run"]
        .as_str()
        .unwrap()
        .replace("${{ github.base_ref }}", "main");

    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(
        d,
        "retentiond.yaml",
        "policies: policies\naccounts:\n  files: { provider: onlyoffice-docspace, base_url: \"https://docs.example.com\", api_key: \"${env:DOCSPACE_KEY}\" }\n",
    );
    let days = |n: i64| {
        let backups: Vec<serde_json::Value> = (0..n)
            .map(|day| {
                let at = jiff::civil::date(2026, 1, 1) + jiff::Span::new().days(day);
                serde_json::json!({"id": format!("db-{}", at.strftime("%Y%m%d")), "group": "db",
                    "created_at": format!("{at}T03:00:00Z"), "status": "complete"})
            })
            .collect();
        serde_json::json!({ "backups": backups }).to_string()
    };
    write(d, "listings/backups.json", &days(30));
    write(
        d,
        "policies/p.yaml",
        "name: p\naccount: files\nmode: enforce\nkeep: {last: 20}\nguard: {max_delete_fraction: 1}\n",
    );
    git(d, &["init", "-q", "-b", "main"]);
    git(d, &["add", "."]);
    git(d, &["commit", "-q", "-m", "base"]);
    git(d, &["update-ref", "refs/remotes/origin/main", "HEAD"]);
    git(d, &["checkout", "-q", "-b", "loosen"]);
    // The pull request: `last: 5`, and a listing with only the 5 newest backups.
    write(
        d,
        "policies/p.yaml",
        "name: p\naccount: files\nmode: enforce\nkeep: {last: 5}\nguard: {max_delete_fraction: 1}\n",
    );
    let five: serde_json::Value = serde_json::from_str(&days(30)).unwrap();
    let five = serde_json::json!({"backups": five["backups"].as_array().unwrap()[25..]});
    write(d, "listings/backups.json", &five.to_string());
    git(d, &["commit", "-q", "-am", "loosen"]);

    let bin = Path::new(env!("CARGO_BIN_EXE_retentiond"))
        .parent()
        .unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let out = Command::new("bash")
        .args(["-e", "-c", &script])
        .current_dir(d)
        .env("PATH", path)
        .env("RUNNER_TEMP", d)
        .env("GITHUB_OUTPUT", d.join("output"))
        .env("GITHUB_STEP_SUMMARY", d.join("summary"))
        .env_remove("RETENTIOND_CONFIG")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let comment = std::fs::read_to_string(d.join("diff.md")).unwrap();
    assert_eq!(
        std::fs::read_to_string(d.join("output")).unwrap(),
        "code=8\n",
        "{comment}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let comment = std::fs::read_to_string(d.join("diff.md")).unwrap();
    assert!(
        comment.contains("**15 backups that the base keeps would be deleted**"),
        "{comment}"
    );
}

/// A repository with the config and one policy file, committed on `main`.
fn repository(config: &str, file: &str, policy: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    listing(d);
    write(d, "retentiond.yaml", config);
    write(d, &format!("policies/{file}"), policy);
    git(d, &["init", "-q", "-b", "main"]);
    git(d, &["add", "-A"]);
    git(d, &["commit", "-qm", "base"]);
    dir
}

const REVIEW_CONFIG: &str = "policies: policies\naccounts:\n  files: { provider: onlyoffice-docspace, base_url: \"https://docs.example.com\", api_key: \"${env:DOCSPACE_KEY}\" }\n";

fn review(d: &Path, format: &str) -> common::Output {
    retentiond_in(
        d,
        &[
            "--config",
            "retentiond.yaml",
            "diff",
            "--base",
            "main",
            "--listing",
            "listing.json",
            "--now",
            NOW,
            "--format",
            format,
        ],
    )
}

#[test]
fn a_switch_to_enforce_is_the_change_that_deletes() {
    let policy = |mode: &str, keep: &str| {
        format!(
            "name: a\naccount: files\nmode: {mode}\nselect: {{ name: '^a-' }}\nkeep: {keep}\nguard: {{max_delete_fraction: 1}}\n"
        )
    };
    // The policy's own mode: dry-run → enforce lists every backup that becomes deleted.
    let dir = repository(REVIEW_CONFIG, "a.yaml", &policy("dry-run", "{last: 10}"));
    let d = dir.path();
    write(d, "policies/a.yaml", &policy("enforce", "{last: 10}"));
    let out = review(d, "json");
    assert_eq!(out.code, 8, "{}{}", out.stdout, out.stderr);
    let report = json(&out.stdout);
    let a = &report["policies"][0];
    assert_eq!(
        (a["deletes_before"].clone(), a["deletes_after"].clone()),
        (false.into(), true.into())
    );
    let moved = a["moved"].as_array().unwrap();
    assert_eq!(moved.len(), 50, "every backup the switch deletes");
    assert!(
        moved
            .iter()
            .all(|m| m["before"]["planned_only"] == true && m["after"]["planned_only"].is_null())
    );
    let markdown = review(d, "markdown").stdout;
    assert!(
        markdown.contains("**50 backups that the base keeps would be deleted**"),
        "{markdown}"
    );
    assert!(
        markdown.contains("| `a` | changed | no → yes | 10 → 10 | 50 → 50 | 50 | 0 |"),
        "{markdown}"
    );

    // A policy that stays dry-run: its planned changes are shown, and nothing is deleted.
    write(d, "policies/a.yaml", &policy("dry-run", "{last: 5}"));
    let out = review(d, "text");
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout
            .contains("  really deletes (enforce, no dry_run, not blocked): no → no\n"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("keep (last) → delete, planned only (no rule keeps it)"),
        "{}",
        out.stdout
    );

    // The config's dry_run: true → false, with the config in the repository.
    let dir = repository(
        &format!("dry_run: true\n{REVIEW_CONFIG}"),
        "a.yaml",
        &policy("enforce", "{last: 10}"),
    );
    let d = dir.path();
    write(d, "retentiond.yaml", REVIEW_CONFIG);
    let out = review(d, "text");
    assert_eq!(out.code, 8, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout.starts_with("config: dry_run: true → false\n"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .ends_with("50 backups that the base keeps would be deleted\n"),
        "{}",
        out.stdout
    );
}

#[test]
fn a_policy_file_whose_name_git_would_quote_is_read_at_the_base() {
    let policy = "name: a\naccount: files\nmode: enforce\nselect: { name: '^a-' }\nkeep: {last: 10}\nguard: {max_delete_fraction: 1}\n";
    let dir = repository(REVIEW_CONFIG, "täglich \"a\".yaml", policy);
    let out = review(dir.path(), "json");
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert_eq!(json(&out.stdout)["policies"][0]["change"], "unchanged");
}

#[test]
fn simulate_counts_across_clock_changes_and_knows_its_limits() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Hourly backups and runs across the autumn and spring changes in two zones: two
    // calendar days are 49 or 47 hours, and the repeated hour's two backups are two backups,
    // never one id for both.
    for (zone, from, hours) in [
        ("Europe/Berlin", "2026-10-24T12:00:00Z", 49),
        ("America/New_York", "2026-10-31T12:00:00Z", 49),
        ("Europe/Berlin", "2026-03-28T12:00:00Z", 47),
        ("America/New_York", "2026-03-07T12:00:00Z", 47),
    ] {
        let policy = format!(
            "name: p\naccount: a\ntimezone: {zone}\nschedule: \"0 * * * *\"\nkeep: {{last: 3}}\nguard: {{max_delete_fraction: 1}}\n"
        );
        let sim = simulate(d, &policy, &["--from", from, "--for", "2d"]);
        assert_eq!(sim["blocked_runs"], 0, "{zone} {from}: {sim}");
        assert_eq!(sim["backups_made"], hours, "{zone} {from}");
        assert_eq!(sim["held_at_end"], 3, "{zone} {from}");
        assert_eq!(sim["deleted"], hours - 3, "{zone} {from}");
    }

    // `--from` on a tick: the backup made then is followed by a run at the same instant.
    let daily = "name: p\naccount: a\ntimezone: UTC\nschedule: \"0 3 * * *\"\nkeep: {last: 1}\n";
    let sim = simulate(d, daily, &["--from", "2026-01-01T03:00:00Z", "--for", "1d"]);
    assert_eq!(
        (sim["backups_made"].clone(), sim["runs"].clone()),
        (1.into(), 1.into())
    );

    // Too large to say anything useful in seconds: refused at once, naming what to change.
    write(d, "policies/p.yaml", daily);
    let started = std::time::Instant::now();
    let out = retentiond_in(
        d,
        &[
            "simulate",
            "--policy",
            "p",
            "--policies",
            "policies",
            "--cadence",
            "* * * * *",
            "--for",
            "100y",
        ],
    );
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("would make about 52")
            && out
                .stderr
                .contains("simulate a shorter period (--for) or a sparser cadence (--cadence)"),
        "{}",
        out.stderr
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    for (period, says) in [
        ("0d", "--for 0d: the period must be longer than 0"),
        (
            "100000y",
            "--for 100000y: the period ends past the year 9999",
        ),
    ] {
        let out = retentiond_in(
            d,
            &[
                "simulate",
                "--policy",
                "p",
                "--policies",
                "policies",
                "--for",
                period,
            ],
        );
        assert_eq!(out.code, 2, "{period}: {}", out.stderr);
        assert!(out.stderr.contains(says), "{}", out.stderr);
    }
}

/// The SVG of `plan --listing` of `backups` under `policy` at `now`, which exits `code`.
fn plan_picture(backups: &[serde_json::Value], policy: &str, now: &str, code: i32) -> String {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(
        d,
        "listing.json",
        &serde_json::json!({ "backups": backups }).to_string(),
    );
    write(d, "policies/p.yaml", policy);
    let out = retentiond_in(
        d,
        &[
            "plan",
            "--policies",
            "policies",
            "--listing",
            "listing.json",
            "--now",
            now,
            "--svg",
            "p.svg",
        ],
    );
    assert_eq!(out.code, code, "{}", out.stderr);
    std::fs::read_to_string(d.join("p.svg")).unwrap()
}

#[test]
fn pictures_say_which_rule_kept_what_and_which_policies_delete_nothing() {
    let long = "a-very-long-group-name-of-a-database-cluster-eu-west-1";
    let backups: Vec<serde_json::Value> = (3..=22)
        .map(|day| {
            serde_json::json!({"id": format!("b{day:02}"), "group": long,
                "created_at": format!("2026-02-{day:02}T03:00:00Z"), "status": "complete"})
        })
        .collect();
    // `weekly: 10` has budget left at the oldest backup: kept as `oldest weekly`.
    let picture = plan_picture(
        &backups,
        "name: p\naccount: a\ntimezone: UTC\nkeep: {weekly: 10}\nguard: {max_delete: 1}\n",
        NOW,
        5,
    );
    let svg = roxmltree::Document::parse(&picture).unwrap();
    let texts: Vec<String> = svg
        .descendants()
        .filter(|n| n.has_tag_name("text"))
        .map(|n| {
            n.children()
                .filter(|t| t.is_text())
                .filter_map(|t| t.text())
                .collect::<String>()
        })
        .collect();
    let legend: Vec<&String> = texts
        .iter()
        .filter(|t| t.starts_with("kept: ") || *t == "deleted" || *t == "ignored")
        .collect();
    assert_eq!(legend, ["kept: weekly", "deleted"], "{texts:?}");
    let oldest = svg
        .descendants()
        .find(|n| {
            n.has_tag_name("circle")
                && n.descendants().any(|t| {
                    t.text()
                        .is_some_and(|t| t.starts_with("b03: keep oldest weekly"))
                })
        })
        .unwrap();
    assert_eq!(oldest.attribute("class"), Some("keep weekly"));
    // The whole group label in a tooltip, its two ends on the row.
    assert!(
        texts.contains(&"a-very-long-…er-eu-west-1".to_string()),
        "{texts:?}"
    );
    assert!(
        svg.descendants()
            .any(|n| n.has_tag_name("title") && n.text() == Some(long))
    );
    // Blocked: said under the title.
    assert!(
        texts
            .iter()
            .any(|t| t.starts_with("BLOCKED, nothing is deleted: the plan deletes")),
        "{texts:?}"
    );
}

#[test]
fn the_last_weeks_of_a_two_year_picture_are_separate_marks() {
    let start = jiff::civil::date(2024, 3, 1);
    let backups: Vec<serde_json::Value> = (0..730)
        .map(|day| {
            let at = start + jiff::Span::new().days(day);
            serde_json::json!({"id": format!("db-{day:03}"), "group": "db",
                "created_at": format!("{at}T03:00:00Z"), "status": "complete"})
        })
        .collect();
    let picture = plan_picture(
        &backups,
        "name: p\naccount: a\ntimezone: UTC\nkeep: {daily: 30, monthly: 24}\nguard: {max_delete_fraction: 1}\n",
        "2026-03-01T12:00:00Z",
        0,
    );
    let svg = roxmltree::Document::parse(&picture).unwrap();
    let mut daily: Vec<f64> = svg
        .descendants()
        .filter(|n| n.has_tag_name("circle") && n.attribute("class") == Some("keep daily"))
        .map(|n| n.attribute("cx").unwrap().parse().unwrap())
        .collect();
    daily.sort_by(f64::total_cmp);
    assert_eq!(daily.len(), 30);
    for pair in daily.windows(2) {
        assert!(pair[1] - pair[0] >= 4.0, "{daily:?}");
    }
}

#[test]
fn a_policy_moved_or_split_into_another_file_is_listed() {
    let policy = |name: &str| {
        format!(
            "name: {name}\naccount: files\nmode: enforce\nselect: {{ name: '^{name}-' }}\nkeep: {{last: 10}}\nguard: {{max_delete_fraction: 1}}\n"
        )
    };
    let item = |name: &str| format!("- {}\n", policy(name).trim_end().replace('\n', "\n  "));
    let both = item("a") + &item("b");
    let dir = repository(REVIEW_CONFIG, "both.yaml", &both);
    let d = dir.path();
    std::fs::remove_file(d.join("policies/both.yaml")).unwrap();
    write(d, "policies/a.yaml", &policy("a"));
    write(d, "policies/team/b.yaml", &policy("b"));
    let out = review(d, "json");
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let report = json(&out.stdout);
    assert_eq!(report["policies"][0]["change"], "unchanged");
    assert_eq!(
        report["policies"][0]["edits"],
        serde_json::json!(["file: policies/both.yaml → policies/a.yaml"])
    );
    assert_eq!(
        report["policies"][1]["edits"],
        serde_json::json!(["file: policies/both.yaml → policies/team/b.yaml"])
    );
}

#[test]
fn simulate_honours_the_grace_period() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Daily backups, `last: 3`: each backup doomed at a run goes two days later, so two more
    // are held than without a grace period.
    let with = |guard: &str| {
        format!(
            "name: p\naccount: a\ntimezone: UTC\nschedule: \"0 3 * * *\"\nkeep: {{last: 3}}\nguard: {{{guard}}}\n"
        )
    };
    let args = ["--from", "2026-01-01T00:00:00Z", "--for", "30d"];
    let s = simulate(d, &with(""), &args);
    assert_eq!(
        (s["held_at_end"].as_u64(), s["deleted"].as_u64()),
        (Some(3), Some(27))
    );
    let s = simulate(d, &with("grace: 2d"), &args);
    assert_eq!(
        (s["held_at_end"].as_u64(), s["deleted"].as_u64()),
        (Some(5), Some(25)),
        "{s}"
    );
    assert_eq!(
        s["ages_at_end"],
        serde_json::json!(["21h", "2d", "3d", "4d", "5d"])
    );
}
