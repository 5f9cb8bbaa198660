//! Planner tests: selection, statuses, groups, every guard, and property tests of the
//! guarantees a user relies on.

use super::*;
use crate::model::{Backup, Status};
use crate::policy::{self, Policy};
use std::path::Path;

fn policy(yaml: &str) -> Policy {
    let text = format!("name: t\naccount: a\n{yaml}");
    let (mut policies, errors) = policy::policies_from_str(Path::new("t.yaml"), &text);
    assert!(errors.is_empty(), "{errors:?}");
    policies.remove(0)
}

fn backup(id: &str, group: &str, at: &str, status: Status) -> Backup {
    Backup {
        name: Some(id.into()),
        ..Backup::new(id, group, at.parse().unwrap(), status)
    }
}

/// `n` complete daily backups in `group`, newest first, ids `{group}-{i}`.
fn daily(group: &str, n: usize) -> Vec<Backup> {
    let start: Timestamp = "2024-06-30T03:00:00Z".parse().unwrap();
    (0..n)
        .map(|i| {
            let at = start
                .checked_sub(jiff::SignedDuration::from_hours(24 * i as i64))
                .unwrap();
            backup(
                &format!("{group}-{i}"),
                group,
                &at.to_string(),
                Status::Complete,
            )
        })
        .collect()
}

const NOW: &str = "2024-07-01T00:00:00Z";

fn run(policy: &Policy, backups: &[Backup]) -> Vec<(String, Action, Vec<String>)> {
    let plan = plan(policy, backups, NOW.parse().unwrap(), &TimeZone::UTC);
    plan.decisions
        .iter()
        .map(|d| {
            (
                d.backup.id.to_string(),
                d.action,
                d.reasons().iter().map(ToString::to_string).collect(),
            )
        })
        .collect()
}

fn ids_with(result: &[(String, Action, Vec<String>)], action: Action) -> Vec<String> {
    result
        .iter()
        .filter(|r| r.1 == action)
        .map(|r| r.0.clone())
        .collect()
}

#[test]
fn groups_are_evaluated_separately() {
    let mut backups = daily("db1", 5);
    backups.extend(daily("db2", 5));
    let result = run(&policy("keep: {last: 2}"), &backups);
    assert_eq!(
        ids_with(&result, Action::Keep),
        ["db1-0", "db1-1", "db2-0", "db2-1"]
    );
    assert_eq!(ids_with(&result, Action::Delete).len(), 6);
    let one_group = run(&policy("group_by: none\nkeep: {last: 2}"), &backups);
    assert_eq!(ids_with(&one_group, Action::Keep), ["db1-0", "db2-0"]);
}

#[test]
fn in_progress_and_unknown_are_ignored_and_never_counted() {
    let mut backups = daily("db", 3);
    backups.push(backup(
        "running",
        "db",
        "2024-06-30T23:00:00Z",
        Status::InProgress,
    ));
    backups.push(backup("odd", "db", "2024-06-30T22:00:00Z", Status::Unknown));
    let result = run(&policy("keep: {last: 1}"), &backups);
    assert_eq!(ids_with(&result, Action::Ignore), ["running", "odd"]);
    assert_eq!(ids_with(&result, Action::Keep), ["db-0"]);
}

#[test]
fn failed_backups_are_kept_unless_delete_after_and_never_count() {
    let mut backups = daily("db", 3);
    backups.push(backup(
        "failed-old",
        "db",
        "2024-06-01T00:00:00Z",
        Status::Failed,
    ));
    backups.push(backup(
        "failed-new",
        "db",
        "2024-06-30T12:00:00Z",
        Status::Failed,
    ));
    let kept = run(&policy("keep: {last: 1}"), &backups);
    assert_eq!(
        ids_with(&kept, Action::Keep),
        ["failed-new", "db-0", "failed-old"]
    );
    let pruned = run(
        &policy("keep: {last: 1}\nfailed: {delete_after: 7d}"),
        &backups,
    );
    assert_eq!(
        ids_with(&pruned, Action::Delete),
        ["db-1", "db-2", "failed-old"]
    );
    assert_eq!(ids_with(&pruned, Action::Keep), ["failed-new", "db-0"]);
}

#[test]
fn select_name_ignores_the_rest() {
    let mut backups = daily("db", 3);
    backups[1].name = Some("manual-snapshot".into());
    let result = run(&policy("select: {name: '^db-'}\nkeep: {last: 1}"), &backups);
    assert_eq!(ids_with(&result, Action::Ignore), ["db-1"]);
    assert_eq!(ids_with(&result, Action::Delete), ["db-2"]);
}

#[test]
fn protect_keeps_by_id_and_name_with_reason() {
    let backups = daily("db", 4);
    let result = run(
        &policy("keep: {last: 1}\nprotect: {ids: [db-2], names: ['-3$']}"),
        &backups,
    );
    assert_eq!(
        result[2],
        ("db-2".into(), Action::Keep, vec!["protected".into()])
    );
    assert_eq!(
        result[3],
        ("db-3".into(), Action::Keep, vec!["protected".into()])
    );
    assert_eq!(ids_with(&result, Action::Delete), ["db-1"]);
}

#[test]
fn a_live_copy_is_never_deleted_whatever_the_rules() {
    let mut backups = daily("asset", 5);
    backups[3].live = true;
    // A live copy that the provider reports failed is kept even with failed.delete_after.
    let mut failed = backup("f", "asset", "2024-06-01T03:00:00Z", Status::Failed);
    failed.live = true;
    backups.push(failed);
    let result = run(
        &policy("keep: {last: 1}\nfailed: {delete_after: 1d}\n"),
        &backups,
    );
    assert_eq!(ids_with(&result, Action::Keep), ["asset-0", "asset-3", "f"]);
    let reasons = |id: &str| result.iter().find(|r| r.0 == id).unwrap().2.clone();
    assert_eq!(reasons("asset-3"), ["live version"]);
    assert_eq!(reasons("asset-0"), ["last"]);
}

#[test]
fn a_stale_group_is_not_pruned_and_says_why() {
    // daily() ends on 2024-06-30; NOW is 2024-07-01.
    let mut backups = daily("fresh", 5);
    backups.extend(daily("old", 5).into_iter().map(|mut b| {
        b.created_at -= jiff::SignedDuration::from_hours(24 * 30);
        b
    }));
    let p = policy("keep: {last: 1}\nguard: {stale_after: 7d}\n");
    let plan = plan(&p, &backups, NOW.parse().unwrap(), &TimeZone::UTC);
    let result = run(&p, &backups);
    assert_eq!(
        ids_with(&result, Action::Delete).len(),
        4,
        "the fresh group is pruned"
    );
    let old: Vec<_> = result.iter().filter(|r| r.0.starts_with("old")).collect();
    assert!(old.iter().all(|r| r.1 == Action::Keep));
    assert_eq!(old[1].2, ["stale group"]);
    assert_eq!(
        plan.warnings,
        [
            "group old: the newest complete backup is from 2024-05-31T03:00:00Z, older than guard.stale_after 7d: backups seem to have stopped, so nothing in this group is deleted (4 held) until a person looks"
        ]
    );
}

#[test]
fn a_backup_dated_in_the_future_is_ignored_and_not_the_newest() {
    let mut backups = daily("g", 4);
    // NOW is 2024-07-01T00:00Z: 30 minutes ahead is tolerated, two days ahead is not.
    backups.push(backup(
        "soon",
        "g",
        "2024-07-01T00:30:00Z",
        Status::Complete,
    ));
    backups.push(backup(
        "bogus",
        "g",
        "2024-07-03T00:00:00Z",
        Status::Complete,
    ));
    let p = policy("keep: {last: 2}\n");
    let result = run(&p, &backups);
    assert_eq!(ids_with(&result, Action::Keep), ["soon", "g-0"]);
    assert_eq!(ids_with(&result, Action::Ignore), ["bogus"]);
    let plan = plan(&p, &backups, NOW.parse().unwrap(), &TimeZone::UTC);
    let bogus = plan
        .decisions
        .iter()
        .find(|d| d.backup.id == "bogus")
        .unwrap();
    assert_eq!(
        bogus.note(),
        Some("dated in the future (more than guard.future_tolerance 1h ahead); never counted")
    );
    assert_eq!(
        plan.warnings,
        [
            "group g: backup bogus is dated 2024-07-03T00:00:00Z, in the future: ignored (check the clock of whatever made it)"
        ]
    );

    // 643 of them: one line for the group, not 643.
    for n in 0..642 {
        backups.push(backup(
            &format!("skew-{n}"),
            "g",
            &format!("2024-08-{:02}T00:00:00Z", 1 + n % 28),
            Status::Complete,
        ));
    }
    let many = super::plan(&p, &backups, NOW.parse().unwrap(), &TimeZone::UTC);
    assert_eq!(
        many.warnings,
        [
            "group g: 643 backups are dated in the future, from 2024-07-03T00:00:00Z to 2024-08-28T00:00:00Z (e.g. bogus): ignored (check the clock of whatever made them)"
        ]
    );
}

#[test]
fn newest_is_kept_even_when_no_rule_would() {
    // `within` anchors on the newest backup, but tags alone keep nothing here.
    let backups = daily("db", 3);
    let result = run(&policy("keep: {tags: [release]}"), &backups);
    assert_eq!(
        result[0],
        ("db-0".into(), Action::Keep, vec!["newest".into()])
    );
    assert_eq!(ids_with(&result, Action::Delete), ["db-1", "db-2"]);
}

#[test]
fn min_keep_rescues_the_newest_unkept() {
    let backups = daily("db", 6);
    let result = run(
        &policy("keep: {tags: [release]}\nguard: {min_keep: 3}"),
        &backups,
    );
    let reasons: Vec<&[String]> = result.iter().map(|r| r.2.as_slice()).collect();
    assert_eq!(
        reasons[..4],
        [
            &["newest".to_string()][..],
            &["min_keep".to_string()],
            &["min_keep".to_string()],
            &[]
        ]
    );
}

#[test]
fn max_delete_blocks_the_whole_policy() {
    let backups = daily("db", 10);
    let p = policy("keep: {last: 2}\nguard: {max_delete: 7, max_delete_fraction: 1}");
    let plan = plan(&p, &backups, NOW.parse().unwrap(), &TimeZone::UTC);
    assert_eq!(
        plan.blocked.as_deref(),
        Some("the plan deletes 8 backups, more than guard.max_delete 7")
    );
    assert_eq!(
        plan.summary,
        Summary {
            keep: 2,
            delete: 8,
            waiting: 0,
            ignore: 0,
            groups: 1
        }
    );
    let p = policy("keep: {last: 2}\nguard: {max_delete: 8, max_delete_fraction: 1}");
    assert_eq!(plan_blocked(&p, &backups), None);
}

#[test]
fn more_than_half_a_group_waits_by_default() {
    let backups = daily("db", 10);
    let half = policy("keep: {last: 5}");
    assert_eq!(plan_blocked(&half, &backups), None);
    let most = policy("keep: {last: 4}");
    assert_eq!(
        plan_blocked(&most, &backups).as_deref(),
        Some(
            "group db: the plan deletes 6 of 10 complete backups (60%), more than guard.max_delete_fraction 0.5"
        )
    );
}

fn plan_blocked(p: &Policy, backups: &[Backup]) -> Option<String> {
    plan(p, backups, NOW.parse().unwrap(), &TimeZone::UTC).blocked
}

#[test]
fn max_delete_fraction_is_per_group() {
    let mut backups = daily("big", 10);
    backups.extend(daily("small", 2));
    let p = policy("keep: {last: 5}\nguard: {max_delete_fraction: 0.4}");
    assert_eq!(
        plan_blocked(&p, &backups).as_deref(),
        Some(
            "group big: the plan deletes 5 of 10 complete backups (50%), more than guard.max_delete_fraction 0.4"
        )
    );
    let p = policy("keep: {last: 5}\nguard: {max_delete_fraction: 0.5}");
    assert_eq!(plan_blocked(&p, &backups), None);
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    fn arb_backups() -> impl Strategy<Value = Vec<Backup>> {
        let one = (0u8..3, 0i64..2000, 0u8..10).prop_map(|(g, hours, s)| {
            let status = match s {
                0 => Status::Failed,
                1 => Status::InProgress,
                _ => Status::Complete,
            };
            let at = Timestamp::from_second(1_700_000_000 + hours * 3600).unwrap();
            (g, at, status)
        });
        proptest::collection::vec(one, 1..50).prop_map(|items| {
            items
                .into_iter()
                .enumerate()
                .map(|(i, (g, at, status))| {
                    backup(&format!("b{i}"), &format!("g{g}"), &at.to_string(), status)
                })
                .collect()
        })
    }

    fn arb_policy() -> impl Strategy<Value = Policy> {
        (0u32..4, 0u32..4, 0u32..4, 1u32..4, proptest::option::of(0usize..20), any::<bool>()).prop_map(
            |(last, daily, weekly, min_keep, protect, failed)| {
                let protect = protect.map(|i| format!("protect: {{ids: [b{i}]}}\n")).unwrap_or_default();
                let failed = if failed { "failed: {delete_after: 3d}\n" } else { "" };
                policy(&format!(
                    "keep: {{last: {last}, daily: {daily}, weekly: {weekly}, tags: [never]}}\nguard: {{min_keep: {min_keep}}}\n{protect}{failed}"
                ))
            },
        )
    }

    fn now() -> Timestamp {
        "2024-01-01T00:00:00Z".parse().unwrap()
    }

    proptest! {
        #[test]
        fn guarantees_hold(p in arb_policy(), backups in arb_backups()) {
            let result = plan(&p, &backups, now(), &TimeZone::UTC);
            for group in backups.iter().map(|b| &b.group) {
                // Complete and managed (backups dated in the future are ignored).
                let complete: Vec<&Decision> = result.decisions.iter()
                    .filter(|d| d.backup.group == *group && d.backup.status == Status::Complete && d.action != Action::Ignore).collect();
                // The newest complete backup of each group is kept.
                if let Some(newest) = complete.iter().max_by_key(|d| d.backup.created_at) {
                    let newest_time = newest.backup.created_at;
                    prop_assert!(complete.iter().any(|d| d.backup.created_at == newest_time && d.action == Action::Keep));
                }
                // min_keep holds.
                let kept = complete.iter().filter(|d| d.action == Action::Keep).count();
                prop_assert!(kept >= complete.len().min(p.guard.min_keep as usize));
            }
            for d in &result.decisions {
                if p.protect.ids.iter().any(|id| *id == d.backup.id) {
                    prop_assert_ne!(d.action, Action::Delete);
                }
                if matches!(d.backup.status, Status::InProgress | Status::Unknown) {
                    prop_assert_eq!(d.action, Action::Ignore);
                }
            }
        }

        #[test]
        fn planning_the_kept_set_again_deletes_nothing(p in arb_policy(), backups in arb_backups()) {
            let first = plan(&p, &backups, now(), &TimeZone::UTC);
            let kept: Vec<Backup> = first.decisions.iter()
                .filter(|d| d.action != Action::Delete).map(|d| d.backup.clone()).collect();
            let again = plan(&p, &kept, now(), &TimeZone::UTC);
            prop_assert_eq!(again.summary.delete, 0, "{:?}", again.deletions().map(|b| &b.id).collect::<Vec<_>>());
        }
    }
}

#[test]
fn id_lists_select_groups() {
    let mut backups = daily("db1", 3);
    backups.extend(daily("db2", 3));
    let result = run(
        &policy("select: {resource_ids: [db2]}\nkeep: {last: 1}"),
        &backups,
    );
    assert_eq!(
        ids_with(&result, Action::Ignore),
        ["db1-0", "db1-1", "db1-2"]
    );
    assert_eq!(ids_with(&result, Action::Delete), ["db2-1", "db2-2"]);
}

fn baseline(counts: &[(&str, u64)]) -> Baseline {
    Baseline {
        run: 7,
        at: "2024-06-29T03:30:00Z".parse().unwrap(),
        counts: counts.iter().map(|(g, n)| (g.to_string(), *n)).collect(),
    }
}

#[test]
fn a_listing_that_fell_by_more_than_the_limit_is_suspect() {
    let mut listing = daily("a", 4);
    listing.extend(daily("b", 10));
    let counts = complete_counts(&listing);
    // a: 10 -> 4 is a 60% drop; b: 10 -> 10; c vanished (5 -> 0).
    let reason =
        listing_drop(&baseline(&[("a", 10), ("b", 10), ("c", 5)]), &counts, 0.5).expect("blocked");
    assert!(
        reason.contains("complete backups fell since run #7 (2024-06-29T03:30:00Z)"),
        "{reason}"
    );
    assert!(reason.contains("group a from 10 to 4 (-60%)"), "{reason}");
    assert!(reason.contains("group c from 5 to 0 (-100%)"), "{reason}");
    assert!(!reason.contains("group b"), "{reason}");
    assert!(reason.contains("--accept-listing-drop"), "{reason}");
    // Exactly at the limit, growth, new groups and a limit of 1 pass.
    assert_eq!(listing_drop(&baseline(&[("a", 8)]), &counts, 0.5), None);
    assert_eq!(listing_drop(&baseline(&[("b", 3)]), &counts, 0.5), None);
    assert_eq!(listing_drop(&baseline(&[]), &counts, 0.5), None);
    assert_eq!(listing_drop(&baseline(&[("c", 5)]), &counts, 1.0), None);
    // Failed and in-progress backups do not count.
    let mut failing = daily("a", 2);
    failing.push(backup("x", "a", "2024-06-20T00:00:00Z", Status::Failed));
    failing.push(backup("y", "a", "2024-06-20T00:00:00Z", Status::InProgress));
    assert_eq!(complete_counts(&failing)["a"], 2);
    // Groups interleaved in the listing are counted whole.
    let mut mixed = daily("a", 2);
    mixed.extend(daily("b", 3));
    mixed.extend(daily("a", 1));
    mixed.push(backup("z", "b", "2024-06-20T00:00:00Z", Status::Failed));
    mixed.extend(daily("b", 1));
    let counts = complete_counts(&mixed);
    assert_eq!(
        counts.into_iter().collect::<Vec<_>>(),
        [("a".to_string(), 3), ("b".to_string(), 4)]
    );
}

#[test]
fn restricting_to_a_reviewed_set_keeps_new_deletions_and_names_every_change() {
    let p = policy("keep: {last: 2}\n");
    let listing = daily("g", 6);
    let key = |id: &str| ("g".to_string(), id.to_string());
    // Reviewed: g-3 and g-4; the fresh plan deletes g-2..g-5.
    let mut fresh = plan(&p, &listing, NOW.parse().unwrap(), &TimeZone::UTC);
    assert!(fresh.restrict_to(&[key("g-3"), key("g-4")]).is_empty());
    let doomed: Vec<&str> = fresh.deletions().map(|b| b.id.as_str()).collect();
    assert_eq!(doomed, ["g-3", "g-4"]);
    let kept = fresh
        .decisions
        .iter()
        .find(|d| d.backup.id == "g-2")
        .unwrap();
    assert_eq!(kept.action, Action::Keep);
    assert_eq!(*kept.reasons(), [Reason::NotReviewed]);
    assert_eq!(fresh.summary.delete, 2);
    assert_eq!(fresh.summary.keep, 4);
    assert!(
        fresh.warnings[0].starts_with("2 more backups"),
        "{:?}",
        fresh.warnings
    );

    // A reviewed backup that is now kept or gone refuses the whole set.
    let mut fresh = plan(&p, &listing[..5], NOW.parse().unwrap(), &TimeZone::UTC);
    let changes = fresh.restrict_to(&[key("g-1"), key("g-3"), key("g-5")]);
    assert_eq!(
        changes,
        [
            "g-1 (group g): now keep: last",
            "g-5 (group g): no longer listed"
        ]
    );
    assert_eq!(fresh.summary.delete, 3, "a refused plan is left as it was");
}
