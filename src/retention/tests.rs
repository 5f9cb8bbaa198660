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
        times: backups
            .iter()
            .map(|b| ts(&field(b, "created_at")))
            .collect(),
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

/// Evaluates `rules` over backups at `times` (ISO strings, no tags) in zone `tz` and returns
/// the kept ones as (time, reasons), newest first.
fn keep_in(tz: &str, rules: &KeepRules, times: &[&str], now: &str) -> Vec<(String, String)> {
    let times: Vec<Timestamp> = times.iter().map(|t| ts(t)).collect();
    let tags = vec![vec![]; times.len()];
    let verdicts = evaluate(
        rules,
        &items(&times, &tags),
        ts(now),
        &TimeZone::get(tz).unwrap(),
    );
    kept(&verdicts)
        .into_iter()
        .map(|(i, r)| (times[i].to_string(), r.join(", ")))
        .collect()
}

fn counts(period: Period, n: u32) -> KeepRules {
    let mut rules = KeepRules::default();
    rules.periods[Period::ALL.iter().position(|p| *p == period).unwrap()] = Some(Count::Limited(n));
    rules
}

fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    expected
        .iter()
        .map(|(t, r)| (t.to_string(), r.to_string()))
        .collect()
}

const NOW: &str = "2030-01-01T00:00:00Z";

#[test]
fn daily_buckets_follow_the_policy_zone() {
    let times = [
        "2024-03-01T23:30:00Z",
        "2024-03-01T22:30:00Z",
        "2024-03-01T10:00:00Z",
    ];
    let rules = counts(Period::Day, 5);
    // In UTC all three are 1 March: the newest is kept, the oldest by the "oldest" rule.
    assert_eq!(
        keep_in("UTC", &rules, &times, NOW),
        pairs(&[
            ("2024-03-01T23:30:00Z", "daily"),
            ("2024-03-01T10:00:00Z", "oldest daily"),
        ])
    );
    // In Berlin 23:30Z is already 2 March, so 22:30Z is the newest of 1 March.
    assert_eq!(
        keep_in("Europe/Berlin", &rules, &times, NOW),
        pairs(&[
            ("2024-03-01T23:30:00Z", "daily"),
            ("2024-03-01T22:30:00Z", "daily"),
            ("2024-03-01T10:00:00Z", "oldest daily"),
        ])
    );
}

#[test]
fn berlin_spring_forward_day_is_one_day() {
    // 2024-03-31 has 23 hours in Berlin; 23:30Z on the 30th is 00:30 CET on the 31st.
    let times = [
        "2024-03-31T22:30:00Z", // 1 April 00:30 CEST
        "2024-03-31T21:30:00Z", // 31 March 23:30 CEST
        "2024-03-30T23:30:00Z", // 31 March 00:30 CET
        "2024-03-30T22:30:00Z", // 30 March 23:30 CET
    ];
    assert_eq!(
        keep_in("Europe/Berlin", &counts(Period::Day, 3), &times, NOW),
        pairs(&[
            ("2024-03-31T22:30:00Z", "daily"),
            ("2024-03-31T21:30:00Z", "daily"),
            ("2024-03-30T22:30:00Z", "daily"),
        ])
    );
}

#[test]
fn new_york_fall_back_keeps_both_one_thirties() {
    // 2024-11-03: 01:30 EDT (05:30Z) and 01:30 EST (06:30Z) are different hours.
    let times = [
        "2024-11-04T05:30:00Z", // 4 Nov 00:30 EST
        "2024-11-04T04:30:00Z", // 3 Nov 23:30 EST
        "2024-11-03T06:30:00Z", // 3 Nov 01:30 EST
        "2024-11-03T05:30:00Z", // 3 Nov 01:30 EDT
        "2024-11-03T04:30:00Z", // 3 Nov 00:30 EDT
    ];
    let hourly = keep_in("America/New_York", &counts(Period::Hour, 10), &times, NOW);
    assert_eq!(hourly.len(), 5, "{hourly:?}");
    assert_eq!(
        keep_in("America/New_York", &counts(Period::Day, 2), &times, NOW),
        pairs(&[
            ("2024-11-04T05:30:00Z", "daily"),
            ("2024-11-04T04:30:00Z", "daily"),
        ])
    );
}

#[test]
fn iso_week_53_spans_new_year() {
    let times: Vec<String> = (0..16)
        .map(|d| {
            let day = jiff::civil::date(2020, 12, 27) + jiff::Span::new().days(d);
            format!("{day}T12:00:00Z")
        })
        .rev()
        .collect();
    let times: Vec<&str> = times.iter().map(String::as_str).collect();
    // Weeks: 2021-W02 (11 Jan), 2021-W01 (4-10 Jan), 2020-W53 (28 Dec - 3 Jan), 2020-W52.
    assert_eq!(
        keep_in("UTC", &counts(Period::Week, 3), &times, NOW),
        pairs(&[
            ("2021-01-11T12:00:00Z", "weekly"),
            ("2021-01-10T12:00:00Z", "weekly"),
            ("2021-01-03T12:00:00Z", "weekly"),
        ])
    );
    let yearly = keep_in("UTC", &counts(Period::Year, 5), &times, NOW);
    assert_eq!(
        yearly,
        pairs(&[
            ("2021-01-11T12:00:00Z", "yearly"),
            ("2020-12-31T12:00:00Z", "yearly"),
            ("2020-12-27T12:00:00Z", "oldest yearly"),
        ])
    );
}

#[test]
fn within_a_month_is_clamped_at_month_end_and_strict() {
    let rules = KeepRules {
        within: Some(CalendarDuration::parse("1mo").unwrap()),
        ..KeepRules::default()
    };
    let times = [
        "2024-03-31T12:00:00Z",
        "2024-03-02T12:00:00Z",
        "2024-02-29T12:00:01Z",
        "2024-02-29T12:00:00Z", // exactly one month before: not within
        "2024-02-28T12:00:00Z",
    ];
    assert_eq!(
        keep_in("UTC", &rules, &times, NOW),
        pairs(&[
            ("2024-03-31T12:00:00Z", "within 1mo"),
            ("2024-03-02T12:00:00Z", "within 1mo"),
            ("2024-02-29T12:00:01Z", "within 1mo"),
        ])
    );
}

#[test]
fn within_is_measured_from_the_newest_backup_not_in_the_future() {
    let rules = KeepRules {
        last: Some(Count::Limited(1)),
        within: Some(CalendarDuration::parse("2d").unwrap()),
        ..KeepRules::default()
    };
    let times = [
        "2031-06-01T00:00:00Z", // in the future: counts for `last`, is not the anchor
        "2024-01-09T00:00:00Z",
        "2024-01-07T12:00:00Z",
        "2024-01-05T00:00:00Z",
    ];
    assert_eq!(
        keep_in("UTC", &rules, &times, "2024-02-01T00:00:00Z"),
        pairs(&[
            ("2031-06-01T00:00:00Z", "within 2d, last"),
            ("2024-01-09T00:00:00Z", "within 2d"),
            ("2024-01-07T12:00:00Z", "within 2d"),
        ])
    );
}

#[test]
fn equal_times_keep_input_order() {
    let t = "2024-05-05T05:05:05Z";
    let times = vec![ts(t); 4];
    let tags = vec![vec![]; 4];
    let rules = KeepRules {
        last: Some(Count::Limited(2)),
        ..KeepRules::default()
    };
    let verdicts = evaluate(&rules, &items(&times, &tags), ts(NOW), &TimeZone::UTC);
    let order: Vec<usize> = verdicts.iter().map(|v| v.index).collect();
    assert_eq!(order, vec![0, 1, 2, 3]);
    assert_eq!(kept(&verdicts).len(), 2);
    assert_eq!(kept(&verdicts)[1].0, 1);
}

#[test]
fn tag_sets_need_every_tag() {
    let times = vec![ts("2024-01-03T00:00:00Z"), ts("2024-01-02T00:00:00Z")];
    let tags = vec![
        vec!["a".to_string()],
        vec!["a".to_string(), "b".to_string()],
    ];
    let rules = KeepRules {
        tags: vec![vec!["a".into(), "b".into()], vec!["b".into()]],
        ..KeepRules::default()
    };
    let verdicts = evaluate(&rules, &items(&times, &tags), ts(NOW), &TimeZone::UTC);
    assert_eq!(
        kept(&verdicts),
        vec![(1, vec!["tag a,b".into(), "tag b".into()])]
    );
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    fn arb_times() -> impl Strategy<Value = Vec<Timestamp>> {
        // Up to 60 backups over ~3 years, with duplicates likely.
        proptest::collection::vec(0i64..(3 * 365 * 24), 1..60).prop_map(|hours| {
            hours
                .into_iter()
                .map(|h| Timestamp::from_second(1_600_000_000 + h * 1800).unwrap())
                .collect()
        })
    }

    fn arb_count() -> impl Strategy<Value = Option<Count>> {
        prop_oneof![
            Just(None),
            (0u32..8).prop_map(|n| Some(Count::Limited(n))),
            Just(Some(Count::Unlimited)),
        ]
    }

    fn arb_rules() -> impl Strategy<Value = KeepRules> {
        let within = prop_oneof![
            Just(None),
            (1u32..40).prop_map(|d| Some(CalendarDuration {
                days: d,
                ..Default::default()
            })),
        ];
        (
            arb_count(),
            proptest::array::uniform5(arb_count()),
            within.clone(),
            proptest::array::uniform5(within),
        )
            .prop_map(|(last, periods, within, within_periods)| KeepRules {
                last,
                periods,
                within,
                within_periods,
                tags: vec![],
            })
    }

    fn arb_zone() -> impl Strategy<Value = TimeZone> {
        prop_oneof![
            Just("UTC"),
            Just("Europe/Berlin"),
            Just("America/New_York"),
            Just("Asia/Kolkata")
        ]
        .prop_map(|z| TimeZone::get(z).unwrap())
    }

    fn kept_set(rules: &KeepRules, times: &[Timestamp], tz: &TimeZone) -> Vec<usize> {
        let tags = vec![vec![]; times.len()];
        let mut set: Vec<usize> = kept(&evaluate(rules, &items(times, &tags), ts(NOW), tz))
            .into_iter()
            .map(|(i, _)| i)
            .collect();
        set.sort();
        set
    }

    proptest! {
        #[test]
        fn raising_a_count_never_keeps_less(
            rules in arb_rules(), times in arb_times(), tz in arb_zone(), slot in 0usize..6
        ) {
            let mut more = rules.clone();
            let field = if slot == 0 { &mut more.last } else { &mut more.periods[slot - 1] };
            *field = match *field {
                None => Some(Count::Limited(1)),
                Some(Count::Limited(n)) => Some(Count::Limited(n + 1)),
                Some(Count::Unlimited) => Some(Count::Unlimited),
            };
            let before = kept_set(&rules, &times, &tz);
            let after = kept_set(&more, &times, &tz);
            prop_assert!(before.iter().all(|i| after.contains(i)), "{before:?} vs {after:?}");
        }

        #[test]
        fn evaluating_the_kept_set_again_keeps_all_of_it(
            rules in arb_rules(), times in arb_times(), tz in arb_zone()
        ) {
            let first: Vec<Timestamp> =
                kept_set(&rules, &times, &tz).into_iter().map(|i| times[i]).collect();
            let again = kept_set(&rules, &first, &tz);
            prop_assert_eq!(again.len(), first.len());
        }
    }
}
