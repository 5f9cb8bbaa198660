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

fn policy(name: &str, group: &str, rest: &str) -> String {
    format!("name: {name}\naccount: files\nselect: {{ name: '^{group}-' }}\n{rest}")
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
        &policy("e", "e", "keep: {last: 5}\nguard: {max_delete: 100}\n"),
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
        &policy("e", "e", "keep: {last: 5}\nguard: {max_delete: 10}\n"),
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
        "the plan deletes 55 backups, more than guard.max_delete 10"
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
            .contains("| `b` | changed | 8 → 7 | 52 → 53 | 1 | 0 |"),
        "{}",
        markdown.stdout
    );
    assert!(markdown.stdout.contains(
        "<details><summary>55 backups change (55 newly deleted, 0 newly kept)</summary>"
    ));
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
