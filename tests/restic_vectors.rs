//! restic's 40 golden `forget` cases, run through the real binary: `plan --policies
//! --listing --now --format json` must keep exactly restic's set, in restic's order, with
//! restic's reasons (spelled the retentiond way; see tests/fixtures/restic/convert.py).

mod common;

use common::{json, repo, retentiond, write};

#[test]
fn all_forty_restic_cases_through_the_cli() {
    let cases = json(&std::fs::read_to_string(repo("tests/fixtures/restic/cases.json")).unwrap());
    let cases = cases.as_array().unwrap();
    assert_eq!(cases.len(), 40);
    let listing = repo("tests/fixtures/restic/input.json");
    let dir = tempfile::tempdir().unwrap();
    // All non-empty cases in one run: one policy file per case, each on an account of its own
    // (policies of one account on the same backups would block each other). The engine-level
    // test (src/retention/tests.rs) checks restic's answers with no guards at all.
    for (n, case) in cases.iter().enumerate().skip(1) {
        let keep = serde_json::to_string(&case["keep"]).unwrap();
        write(
            dir.path(),
            &format!("case{n:02}.yaml"),
            &format!(
                "name: case{n:02}\naccount: restic{n:02}\nkeep: {keep}\nguard: {{max_delete_fraction: 1}}\n"
            ),
        );
    }
    let out = retentiond(&[
        "plan",
        "--policies",
        dir.path().to_str().unwrap(),
        "--listing",
        listing.to_str().unwrap(),
        "--now",
        "2026-08-01T00:00:00Z",
        "--format",
        "json",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let plan = json(&out.stdout);
    let policies = plan["policies"].as_array().unwrap();
    assert_eq!(policies.len(), 39);
    for (policy, case) in policies.iter().zip(&cases[1..]) {
        let kept: Vec<(String, Vec<String>)> = policy["backups"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|b| b["action"] == "keep")
            .map(|b| {
                (
                    b["id"].as_str().unwrap().to_string(),
                    serde_json::from_value(b["reasons"].clone()).unwrap(),
                )
            })
            .collect();
        let mut expected: Vec<(String, Vec<String>)> = case["expected"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["id"].as_str().unwrap().to_string(),
                    serde_json::from_value(e["reasons"].clone()).unwrap(),
                )
            })
            .collect();
        // retentiond's guard on top of restic: the newest backup (s102) always survives.
        // Only the tag-only cases (18-20) leave it to the guard.
        if !expected.iter().any(|(id, _)| id == "s102") {
            expected.insert(0, ("s102".into(), vec!["newest".into()]));
        }
        assert_eq!(kept, expected, "{} ({})", case["case"], case["restic"]);
        assert_eq!(
            policy["summary"]["keep"].as_u64().unwrap() as usize,
            expected.len()
        );
        assert_eq!(
            policy["summary"]["delete"].as_u64().unwrap() as usize,
            103 - expected.len()
        );
    }
}

#[test]
fn restic_case_zero_an_empty_policy_is_refused() {
    // restic >= 0.17 keeps nothing for an empty policy and its CLI refuses to run one.
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "empty.yaml",
        "name: empty\naccount: restic\nkeep: {}\n",
    );
    let listing = repo("tests/fixtures/restic/input.json");
    let out = retentiond(&[
        "plan",
        "--policies",
        dir.path().to_str().unwrap(),
        "--listing",
        listing.to_str().unwrap(),
    ]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("empty.yaml:3:7: `keep` has no rule"),
        "{}",
        out.stderr
    );
}
