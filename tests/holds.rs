//! Holds and the grace period on a local folder, as an operator meets them: a hold keeps a
//! backup through `plan`, `run`, `apply` of a plan made before it, and the daemon; it lapses
//! by itself or is released with a reason; `guard.grace` deletes a doomed backup only once the
//! policy has planned to delete it for that long, and a run that kept it restarts the clock.

mod common;

use common::{Output, json, retentiond_in, write};
use std::path::Path;
use std::time::Duration;

const CONFIG: &str = "policies: policies
state_dir: state
accounts:
  files: { provider: local, path: backups }
";

/// Ten daily dumps from 1 December 2026; a policy keeping the last three (seven doomed).
fn folder(guard: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "retentiond.yaml", CONFIG);
    for day in 1..=10 {
        write(dir.path(), &name(day), "");
    }
    write(
        dir.path(),
        "policies/p.yaml",
        &format!(
            "name: p\naccount: files\nmode: enforce\nselect:\n  pattern: '^db-(?P<ts>\\d{{8}})\\.dump$'\nkeep: {{last: 3}}\nguard: {{max_delete_fraction: 1, unapproved_max_delete: 100, unapproved_max_delete_fraction: 1{guard}}}\n"
        ),
    );
    dir
}

fn name(day: u32) -> String {
    format!("backups/db-202611{day:02}.dump")
}

fn id(day: u32) -> String {
    format!("db-202611{day:02}.dump")
}

fn run(dir: &Path, args: &[&str]) -> Output {
    let mut all = vec!["--config", "retentiond.yaml"];
    all.extend_from_slice(args);
    retentiond_in(dir, &all)
}

fn exists(dir: &Path, day: u32) -> bool {
    dir.join(name(day)).exists()
}

/// The plan's decision about backup `id`: (action, reasons and note as the JSON has them).
fn decision(plan: &serde_json::Value, id: &str) -> (String, String) {
    let b = plan["policies"][0]["backups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["id"] == id)
        .unwrap_or_else(|| panic!("{id} not in {plan}"));
    let reasons: Vec<String> = b["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap().to_string())
        .collect();
    let note = b["note"].as_str().unwrap_or("");
    (
        b["action"].as_str().unwrap().to_string(),
        format!("{} {note}", reasons.join(", ")),
    )
}

fn plan_json(dir: &Path) -> serde_json::Value {
    let out = run(dir, &["plan", "--format", "json"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    json(&out.stdout)
}

#[test]
fn a_held_backup_is_kept_by_plan_and_run_until_released_with_a_reason() {
    let dir = folder("");
    let d = dir.path();
    let out = run(
        d,
        &[
            "hold",
            "add",
            &id(2),
            &id(3),
            "--policy",
            "p",
            "--reason",
            "incident 42",
            "--ticket",
            "INC-42",
            "--by",
            "alice",
        ],
    );
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout
            .contains("hold #1 on backup db-20261102.dump of policy p"),
        "{}",
        out.stdout
    );

    // The plan keeps both, in the hold's words, and counts them as kept.
    let plan = plan_json(d);
    let (action, why) = decision(&plan, &id(2));
    assert_eq!(action, "keep");
    assert!(
        why.contains("held: incident 42 [INC-42] (by alice, hold #1)"),
        "{why}"
    );
    assert_eq!(plan["policies"][0]["summary"]["keep"], 5);
    assert_eq!(plan["policies"][0]["summary"]["delete"], 5);
    // The picture draws them as held, whatever rule also keeps them.
    let out = run(d, &["plan", "--svg", "plan.svg"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let svg = std::fs::read_to_string(d.join("plan.svg")).unwrap();
    assert_eq!(svg.matches(r#"class="keep held""#).count(), 2, "{svg}");
    assert!(svg.contains("kept: held"), "{svg}");

    let out = run(d, &["run"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let kept: Vec<u32> = (1..=10).filter(|day| exists(d, *day)).collect();
    assert_eq!(kept, vec![2, 3, 8, 9, 10]);

    // A hold on an id the listing does not have is a warning, in `plan` and `hold list`.
    let out = run(
        d,
        &[
            "hold",
            "add",
            "db-2026110.dump",
            "--policy",
            "p",
            "--reason",
            "typo",
        ],
    );
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stderr
            .contains("is not in the last listing of p (run #1)"),
        "{}",
        out.stderr
    );
    let out = run(d, &["plan"]);
    assert!(
        out.stdout
            .contains("hold #3 is on backup db-2026110.dump, which this listing does not have"),
        "{}",
        out.stdout
    );
    let out = run(d, &["hold", "list"]);
    assert!(
        out.stdout
            .contains("#1  policy p  backup db-20261102.dump  incident 42 [INC-42]  (by alice"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("WARNING: backup db-2026110.dump is not in the last listing"),
        "{}",
        out.stdout
    );

    // Release needs a reason; a hold is released once.
    let out = run(d, &["hold", "release", "1"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("--reason"), "{}", out.stderr);
    let out = run(d, &["hold", "release", "1", "--reason", "  "]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    let out = run(
        d,
        &[
            "hold",
            "release",
            "1",
            "--reason",
            "incident closed",
            "--by",
            "bob",
        ],
    );
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let out = run(d, &["hold", "release", "1", "--reason", "again"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("hold #1 was released already, by bob"),
        "{}",
        out.stderr
    );
    let out = run(d, &["hold", "release", "9", "--reason", "x"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains("there is no hold #9"), "{}", out.stderr);

    // Journaled: `hold list --all` and `history` say who released it and why.
    let out = run(d, &["hold", "list", "--all", "--format", "json"]);
    let holds = json(&out.stdout);
    assert_eq!(holds["holds"][0]["released"]["by"], "bob");
    assert_eq!(holds["holds"][0]["released"]["reason"], "incident closed");
    let out = run(d, &["hold", "list"]);
    assert!(!out.stdout.contains("#1 "), "{}", out.stdout);
    let out = run(d, &["history"]);
    assert!(
        out.stdout.contains(
            "hold #1 on backup db-20261102.dump of policy p: released by bob: incident closed"
        ),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains(
            "hold #1 on backup db-20261102.dump of policy p: added by alice: incident 42"
        ),
        "{}",
        out.stdout
    );

    // Released, the backup is the policy's again; the other hold still keeps its own.
    let out = run(d, &["run"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let kept: Vec<u32> = (1..=10).filter(|day| exists(d, *day)).collect();
    assert_eq!(kept, vec![3, 8, 9, 10]);
}

#[test]
fn holds_refuse_bad_input_with_what_to_write_instead() {
    let dir = folder("");
    let d = dir.path();
    let cases: &[(&[&str], i32, &str)] = &[
        (&["hold", "add", "x", "--reason", "r"], 2, "--policy"),
        (
            &["hold", "add", "x", "--policy", "q", "--reason", "r"],
            1,
            "no policy of that name",
        ),
        (
            &["hold", "add", "x", "--account", "nope", "--reason", "r"],
            1,
            "no account of that name",
        ),
        (
            &["hold", "add", "x", "--policy", "p", "--reason", ""],
            2,
            "--reason is empty",
        ),
        (
            &[
                "hold", "add", "x", "--policy", "p", "--reason", "r", "--for", "0d",
            ],
            2,
            "holds nothing",
        ),
        (
            &[
                "hold",
                "add",
                "x",
                "--policy",
                "p",
                "--reason",
                "r",
                "--until",
                "2020-01-01T00:00:00Z",
            ],
            2,
            "not in the future",
        ),
        (
            &[
                "hold", "add", "x", "--policy", "p", "--reason", "r", "--until", "tomorrow",
            ],
            2,
            "write RFC 3339",
        ),
    ];
    for (args, code, says) in cases {
        let out = run(d, args);
        assert_eq!(out.code, *code, "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains(says), "{args:?}: {}", out.stderr);
    }
    let out = run(d, &["hold", "list"]);
    assert_eq!(out.stdout.trim(), "no holds (not released) in the journal");
}

#[test]
fn apply_of_a_plan_made_before_the_hold_deletes_nothing_it_holds() {
    let dir = folder("");
    let d = dir.path();
    let out = run(d, &["plan", "--out", "plan.json"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    // An account-wide hold, made after the plan was reviewed.
    let out = run(
        d,
        &[
            "hold",
            "add",
            &id(4),
            "--account",
            "files",
            "--reason",
            "legal hold",
            "--by",
            "carol",
        ],
    );
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let out = run(d, &["apply", "plan.json"]);
    assert_eq!(out.code, 6, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("db-20261104.dump (group ")
            && out
                .stdout
                .contains("now keep: held: legal hold (by carol, hold #1)"),
        "{}",
        out.stdout
    );
    assert!((1..=10).all(|day| exists(d, day)), "nothing is deleted");
}

#[test]
fn an_expired_hold_lapses_by_itself_and_says_so() {
    let dir = folder("");
    let d = dir.path();
    let out = run(
        d,
        &[
            "hold",
            "add",
            &id(5),
            "--policy",
            "p",
            "--reason",
            "short look",
            "--for",
            "2s",
            "--by",
            "dan",
        ],
    );
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let (action, why) = decision(&plan_json(d), &id(5));
    assert_eq!(action, "keep");
    assert!(why.contains("held: short look (by dan until "), "{why}");
    std::thread::sleep(Duration::from_millis(2600));
    let (action, why) = decision(&plan_json(d), &id(5));
    assert_eq!(action, "delete");
    assert!(
        why.contains("hold #1 (short look, by dan) lapsed at "),
        "{why}"
    );
    let out = run(d, &["hold", "list"]);
    assert!(out.stdout.contains("lapsed at"), "{}", out.stdout);
    let out = run(d, &["history", "--format", "json"]);
    let events = json(&out.stdout)["holds"].clone();
    let kinds: Vec<&str> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["lapsed", "added"]);
    let out = run(d, &["run"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(!exists(d, 5));
}

#[test]
fn grace_deletes_a_doomed_backup_only_once_it_stayed_doomed_that_long() {
    let dir = folder(", grace: 3s");
    let d = dir.path();
    // Run 1: seven doomed, none deleted; the plan says when each goes.
    let out = run(d, &["run"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("delete now 0, waiting 7 (grace)"),
        "{}",
        out.stdout
    );
    assert!((1..=10).all(|day| exists(d, day)));
    let plan = plan_json(d);
    let (action, why) = decision(&plan, &id(1));
    assert_eq!(action, "wait");
    assert!(
        why.contains("delete after ") && why.contains("(grace 3s)"),
        "{why}"
    );
    assert_eq!(plan["policies"][0]["summary"]["waiting"], 7);
    let out = run(d, &["plan", "--svg", "plan.svg"]);
    assert!(
        out.stdout.contains("  wait    delete after "),
        "{}",
        out.stdout
    );
    let svg = std::fs::read_to_string(d.join("plan.svg")).unwrap();
    assert_eq!(svg.matches(r#"class="wait""#).count(), 7, "{svg}");
    assert!(
        svg.contains("deleted after grace") && svg.contains("waiting 7"),
        "{svg}"
    );

    // Run 2, within the grace period: a hold keeps day 2 in this run.
    let out = run(
        d,
        &[
            "hold",
            "add",
            &id(2),
            "--policy",
            "p",
            "--reason",
            "look first",
        ],
    );
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let out = run(d, &["run"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(
        (1..=10).all(|day| exists(d, day)),
        "not before the grace period"
    );
    let out = run(d, &["hold", "release", "1", "--reason", "looked"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);

    // Run 3, past the grace period of run 1: the six doomed in every run since go; day 2 was
    // kept by run 2, so its clock starts again now.
    std::thread::sleep(Duration::from_millis(3200));
    let out = run(d, &["run"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let kept: Vec<u32> = (1..=10).filter(|day| exists(d, *day)).collect();
    assert_eq!(kept, vec![2, 8, 9, 10], "{}", out.stdout);
    assert!(
        out.stdout.contains("delete now 6") && out.stdout.contains("waiting 1 (grace)"),
        "{}",
        out.stdout
    );
    let (action, _) = decision(&plan_json(d), &id(2));
    assert_eq!(action, "wait");
    // `history` counts what waited in each run.
    let out = run(d, &["history"]);
    assert!(
        out.stdout.contains("keep 3 delete 0 waiting 7 ignore 0"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("keep 3 delete 6 waiting 1 ignore 0"),
        "{}",
        out.stdout
    );
}

#[test]
fn the_config_gives_a_grace_period_to_policies_without_one() {
    let dir = folder("");
    let d = dir.path();
    write(
        d,
        "retentiond.yaml",
        &format!("{CONFIG}defaults: {{grace: 1d}}\n"),
    );
    let plan = plan_json(d);
    assert_eq!(plan["policies"][0]["summary"]["waiting"], 7);
    assert_eq!(plan["policies"][0]["summary"]["delete"], 0);
    // `guard.grace: 0s` turns the default off for one policy.
    let policy = std::fs::read_to_string(d.join("policies/p.yaml")).unwrap();
    write(
        d,
        "policies/p.yaml",
        &policy.replace(
            "max_delete_fraction: 1,",
            "max_delete_fraction: 1, grace: 0s,",
        ),
    );
    let plan = plan_json(d);
    assert!(
        plan["policies"][0]["summary"].get("waiting").is_none(),
        "{plan}"
    );
    assert_eq!(plan["policies"][0]["summary"]["delete"], 7);
}

#[test]
fn diff_keeps_held_backups_on_both_sides() {
    let dir = folder("");
    let d = dir.path();
    // The base keeps the last nine; the change keeps the last three. Days 2 and 3 are held:
    // kept on both sides, so not among the changes.
    let policy = std::fs::read_to_string(d.join("policies/p.yaml")).unwrap();
    write(d, "base/p.yaml", &policy.replace("last: 3", "last: 9"));
    let out = run(
        d,
        &[
            "hold",
            "add",
            &id(2),
            &id(3),
            "--policy",
            "p",
            "--reason",
            "audit",
        ],
    );
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let out = run(d, &["diff", "--base-policies", "base", "--format", "json"]);
    assert_eq!(out.code, 8, "{}{}", out.stdout, out.stderr);
    let diff = json(&out.stdout);
    let changed: Vec<String> = diff["policies"][0]["moved"]
        .as_array()
        .unwrap_or_else(|| panic!("{diff}"))
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(changed, [7, 6, 5, 4].map(id), "{diff}");
}

#[test]
fn the_daemon_keeps_a_held_backup() {
    let dir = folder("");
    let d = dir.path();
    write(
        d,
        "retentiond.yaml",
        &format!("{CONFIG}metrics: {{ listen: \"127.0.0.1:0\" }}\n"),
    );
    let policy = std::fs::read_to_string(d.join("policies/p.yaml")).unwrap();
    write(
        d,
        "policies/p.yaml",
        &format!("{policy}schedule: \"* * * * * *\"\n"),
    );
    let out = run(
        d,
        &[
            "hold",
            "add",
            &id(6),
            "--policy",
            "p",
            "--reason",
            "keep for audit",
        ],
    );
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let log = d.join("daemon.log");
    let mut daemon = common::spawn_daemon(d, &log, &[]);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while (1..=7).filter(|day| exists(d, *day)).count() > 1 {
        assert!(
            std::time::Instant::now() < deadline,
            "{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // A few more ticks: the held one stays, and the metrics count it.
    std::thread::sleep(Duration::from_millis(2500));
    let address = common::metrics_address(&std::fs::read_to_string(&log).unwrap());
    let (code, metrics) = common::http_get(&address, "/metrics");
    assert_eq!(code, 200);
    assert!(
        metrics.contains("retentiond_holds{policy=\"p\"} 1\n"),
        "{metrics}"
    );
    daemon.kill().unwrap();
    daemon.wait().unwrap();
    let kept: Vec<u32> = (1..=10).filter(|day| exists(d, *day)).collect();
    assert_eq!(kept, vec![6, 8, 9, 10]);
}
