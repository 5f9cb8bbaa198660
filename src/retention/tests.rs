//! Engine tests: restic's 40 golden cases, then our own cases for zones, DST, ISO weeks,
//! month ends, future backups, ties, and property tests.

use super::*;
use serde_json::Value;

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

/// Builds rules from a fixture's `keep` object (the same keys a policy file uses).
fn rules_from_fixture(keep: &Value) -> KeepRules {
    let count = |v: &Value| match v {
        Value::String(s) if s == "unlimited" => Count::Unlimited,
        v => Count::Limited(v.as_u64().unwrap() as u32),
    };
    let duration = |v: &Value| CalendarDuration::parse(v.as_str().unwrap()).unwrap();
    let mut rules = KeepRules::default();
    for (key, value) in keep.as_object().unwrap() {
        let period = Period::ALL
            .iter()
            .position(|p| key.trim_start_matches("within_") == p.adjective());
        match (key.as_str(), period) {
            ("last", _) => rules.last = Some(count(value)),
            ("within", _) => rules.within = Some(duration(value)),
            ("tags", _) => {
                let sets = value.as_array().unwrap().iter();
                rules.tags = sets
                    .map(|s| s.as_str().unwrap().split(',').map(String::from).collect())
                    .collect();
            }
            (k, Some(i)) if k.starts_with("within_") => {
                rules.within_periods[i] = Some(duration(value))
            }
            (_, Some(i)) => rules.periods[i] = Some(count(value)),
            (k, None) => panic!("unknown fixture key {k}"),
        }
    }
    rules
}

struct Fixture {
    ids: Vec<String>,
    times: Vec<Timestamp>,
    tags: Vec<Vec<String>>,
}

fn restic_input() -> Fixture {
    let listing: Value =
        serde_json::from_str(include_str!("../../tests/fixtures/restic/input.json")).unwrap();
    let backups = listing["backups"].as_array().unwrap();
    let field = |b: &Value, k: &str| b[k].as_str().unwrap().to_string();
    Fixture {
        ids: backups.iter().map(|b| field(b, "id")).collect(),
        times: backups.iter().map(|b| ts(&field(b, "created_at"))).collect(),
        tags: backups
            .iter()
            .map(|b| match b["tags"].as_array() {
                Some(t) => t.iter().map(|x| x.as_str().unwrap().to_string()).collect(),
                None => vec![],
            })
            .collect(),
    }
}

fn items<'a>(times: &[Timestamp], tags: &'a [Vec<String>]) -> Vec<Item<'a>> {
    times
        .iter()
        .zip(tags)
        .map(|(t, tags)| Item {
            created_at: *t,
            tags,
        })
        .collect()
}

fn kept(verdicts: &[Verdict]) -> Vec<(usize, Vec<String>)> {
    verdicts
        .iter()
        .filter(|v| !v.reasons.is_empty())
        .map(|v| (v.index, v.reasons.iter().map(|r| r.to_string()).collect()))
        .collect()
}

#[test]
fn restic_golden_cases() {
    let input = restic_input();
    let cases: Value =
        serde_json::from_str(include_str!("../../tests/fixtures/restic/cases.json")).unwrap();
    let items = items(&input.times, &input.tags);
    let now = ts("2026-01-01T00:00:00Z");
    let cases = cases.as_array().unwrap();
    assert_eq!(cases.len(), 40);
    for case in cases {
        let rules = rules_from_fixture(&case["keep"]);
        let verdicts = evaluate(&rules, &items, now, &TimeZone::UTC);
        assert_eq!(verdicts.len(), items.len());
        let got: Vec<(String, Vec<String>)> = kept(&verdicts)
            .into_iter()
            .map(|(i, r)| (input.ids[i].clone(), r))
            .collect();
        let want: Vec<(String, Vec<String>)> = case["expected"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                let reasons = e["reasons"].as_array().unwrap().iter();
                let reasons = reasons.map(|r| r.as_str().unwrap().to_string()).collect();
                (e["id"].as_str().unwrap().to_string(), reasons)
            })
            .collect();
        assert_eq!(got, want, "{} ({})", case["case"], case["restic"]);
    }
}
