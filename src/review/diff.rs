//! `retentiond diff`: two versions of a policy set evaluated on the same listing at the same
//! time, and what changes between them — per policy added, removed, renamed or changed, the
//! keys that changed, and every backup whose action changes, with the reasons before and
//! after. Pure: the policies, listings and zones come in as arguments.

use crate::model::Backup;
use crate::plan::{Action, Decision, PolicyPlan, Summary};
use crate::policy::Policy;
use crate::policy::definition::changes;
use crate::runner::{self, Checks};
use crate::visible::{Visible, markdown_cell};
use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

/// How a policy differs between the base and the current set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Change {
    Added,
    Removed,
    /// Same account and selection, another name.
    Renamed,
    Changed,
    Unchanged,
}

impl Change {
    pub fn as_str(self) -> &'static str {
        match self {
            Change::Added => "added",
            Change::Removed => "removed",
            Change::Renamed => "renamed",
            Change::Changed => "changed",
            Change::Unchanged => "unchanged",
        }
    }
}

/// What one policy does on each side: its action on a backup and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Side {
    pub action: &'static str,
    pub why: String,
    /// A `delete` that deletes nothing on this side: the policy is in dry-run (its `mode`, or
    /// the config's `dry_run`) or blocked.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub planned_only: bool,
}

impl Side {
    /// Whether this side really deletes the backup.
    pub fn deletes(&self) -> bool {
        self.action == "delete" && !self.planned_only
    }
}

/// A backup whose action changes (`none`: the policy does not exist on that side).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Moved {
    pub id: String,
    pub group: String,
    pub created_at: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub before: Side,
    pub after: Side,
}

impl Moved {
    /// The change really deletes a backup the base does not really delete: a new `delete`,
    /// or a planned one that a switch to enforce (or a lifted block) makes real.
    pub fn newly_deleted(&self) -> bool {
        self.after.deletes() && !self.before.deletes()
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct PolicyDiff {
    /// The current name, or the base's for a removed policy.
    pub name: String,
    /// The policy's zone, for the times of the text and markdown reports.
    #[serde(skip)]
    pub zone: TimeZone,
    pub account: String,
    pub change: Change,
    /// The base's name of a renamed policy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub renamed_from: Option<String>,
    /// The keys that changed, `keep.daily: 7 → 1` (description, schedule and jitter too).
    pub edits: Vec<String>,
    pub before: Option<Summary>,
    pub after: Option<Summary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blocked_before: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blocked_after: Option<String>,
    /// Whether the policy really deletes on each side: enforce mode, no config `dry_run`, not
    /// blocked (`false` where it does not exist).
    pub deletes_before: bool,
    pub deletes_after: bool,
    /// Every backup whose action changes, or whose `delete` turns real or planned only,
    /// newest first within groups in name order.
    pub moved: Vec<Moved>,
}

impl PolicyDiff {
    /// Backups the change deletes that the base keeps (or never touched).
    pub fn newly_deleted(&self) -> usize {
        self.moved.iter().filter(|m| m.newly_deleted()).count()
    }

    /// Backups the base really deletes that the change does not.
    pub fn newly_kept(&self) -> usize {
        self.moved
            .iter()
            .filter(|m| m.before.deletes() && !m.after.deletes())
            .count()
    }
}

/// The whole comparison.
#[derive(Clone, Debug, Serialize)]
pub struct Diff {
    pub evaluated_at: Timestamp,
    /// What both sides were evaluated on: a saved listing (its file, size and newest backup)
    /// or the providers' live listings.
    pub listing: String,
    /// Changes of the config that can change what is deleted (`dry_run: true → false`, the
    /// default zone, accounts added, removed or changed); never a secret's value.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub config_edits: Vec<String>,
    pub policies: Vec<PolicyDiff>,
}

impl Diff {
    /// Whether the change deletes any backup the base keeps (exit 8).
    pub fn deletes_more(&self) -> bool {
        self.policies.iter().any(|p| p.newly_deleted() > 0)
    }
}

/// One side of the comparison: a policy set, each policy with its listing and zone, and
/// whether its config forces every policy into dry-run.
pub struct Set<'a> {
    pub policies: &'a [Policy],
    pub listings: &'a [&'a [Backup]],
    pub zones: &'a [TimeZone],
    pub dry_run: bool,
    /// The journal's holds not released (both sides keep what they hold).
    pub holds: &'a [crate::journal::holds::Hold],
}

/// Compares `base` with `current`, each policy planned on its listing at `now` with the
/// guards a run applies (another policy of its set on the same backups included).
pub fn diff(
    base: &Set,
    current: &Set,
    now: Timestamp,
    listing: String,
    config_edits: Vec<String>,
) -> Diff {
    let (before, after) = (plans(base, now), plans(current, now));
    let compare = |b: Option<(&Policy, &PolicyPlan)>, a: Option<(&Policy, &PolicyPlan)>| {
        compare(b, a, (base.dry_run, current.dry_run))
    };
    let by_name = |policies: &[Policy], name: &str| policies.iter().position(|p| p.name == name);
    let mut out = Vec::new();
    let mut matched_base = vec![false; base.policies.len()];
    // Added ones that are a removed one under another name.
    let select = |p: &Policy| (p.account.clone(), p.as_written.get("select").cloned());
    for (i, policy) in current.policies.iter().enumerate() {
        let b = by_name(base.policies, &policy.name).or_else(|| {
            base.policies.iter().enumerate().position(|(j, old)| {
                !matched_base[j]
                    && by_name(current.policies, &old.name).is_none()
                    && select(old) == select(policy)
            })
        });
        let Some(b) = b else {
            out.push(compare(None, Some((policy, &after[i]))));
            continue;
        };
        matched_base[b] = true;
        out.push(compare(
            Some((&base.policies[b], &before[b])),
            Some((policy, &after[i])),
        ));
    }
    for (j, policy) in base.policies.iter().enumerate() {
        if !matched_base[j] {
            out.push(compare(Some((policy, &before[j])), None));
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Diff {
        evaluated_at: now,
        listing,
        config_edits,
        policies: out,
    }
}

/// Each policy of a set planned on its listing, with the guards a run applies.
fn plans<'a>(side: &Set<'a>, now: Timestamp) -> Vec<PolicyPlan<'a>> {
    side.policies
        .iter()
        .zip(side.listings)
        .zip(side.zones)
        .map(|((policy, listing), tz)| {
            // No grace period here: a backup a side would delete once its grace period ends is
            // that side's deletion all the same.
            let checks = Checks {
                policies: side.policies,
                holds: Some(side.holds),
                ..Checks::default()
            };
            runner::guarded_plan(policy, listing, now, tz, &checks).0
        })
        .collect()
}

fn compare(
    before: Option<(&Policy, &PolicyPlan)>,
    after: Option<(&Policy, &PolicyPlan)>,
    (dry_before, dry_after): (bool, bool),
) -> PolicyDiff {
    let (policy, _) = after.or(before).expect("one side at least");
    // What a run would really do: the two yeses (enforce, no config dry_run) and no block.
    let deletes = |side: Option<(&Policy, &PolicyPlan)>, dry: bool| {
        side.is_some_and(|(p, plan)| {
            p.mode == crate::policy::Mode::Enforce && !dry && plan.blocked.is_none()
        })
    };
    let (deletes_before, deletes_after) = (deletes(before, dry_before), deletes(after, dry_after));
    let change = match (before, after) {
        (None, _) => Change::Added,
        (_, None) => Change::Removed,
        (Some((b, _)), Some((a, _))) if b.name != a.name => Change::Renamed,
        (Some((b, _)), Some((a, _)))
            if b.fingerprint == a.fingerprint
                && b.description == a.description
                && b.schedule.as_ref().map(|s| &s.text) == a.schedule.as_ref().map(|s| &s.text)
                && b.jitter == a.jitter =>
        {
            Change::Unchanged
        }
        _ => Change::Changed,
    };
    let edits = match (before, after) {
        (Some((b, _)), Some((a, _))) => {
            let mut edits = changes(&written(b), &written(a));
            edits.retain(|e| !e.starts_with("name: "));
            edits
        }
        _ => Vec::new(),
    };
    let actions = |side: Option<(&Policy, &PolicyPlan)>| -> HashMap<(String, String), (&'static str, String)> {
        side.map(|(_, plan)| {
            plan.decisions
                .iter()
                .map(|d: &Decision| {
                    (
                        (d.backup.group.to_string(), d.backup.id.to_string()),
                        (d.action.as_str(), d.explain()),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
    };
    let (was, now) = (actions(before), actions(after));
    let none = ("none", String::new());
    let mut moved: BTreeMap<(String, std::cmp::Reverse<Timestamp>, String), Moved> =
        BTreeMap::new();
    for (_, plan) in before.iter().chain(after.iter()) {
        for d in &plan.decisions {
            let key = (d.backup.group.to_string(), d.backup.id.to_string());
            let b = was.get(&key).unwrap_or(&none);
            let a = now.get(&key).unwrap_or(&none);
            // Ignored on one side and absent on the other is no change either.
            let managed = |s: &str| s != "none" && s != Action::Ignore.as_str();
            let same = b.0 == a.0 && (b.0 != "delete" || deletes_before == deletes_after);
            if same || (!managed(b.0) && !managed(a.0)) {
                continue;
            }
            // A policy added or removed: what it deletes is the change, not what it keeps.
            if (b.0 == "none" || a.0 == "none") && b.0 != "delete" && a.0 != "delete" {
                continue;
            }
            moved
                .entry((
                    key.0.clone(),
                    std::cmp::Reverse(d.backup.created_at),
                    key.1.clone(),
                ))
                .or_insert_with(|| Moved {
                    id: d.backup.id.to_string(),
                    group: d.backup.group.to_string(),
                    created_at: d.backup.created_at,
                    name: d
                        .backup
                        .name
                        .as_ref()
                        .filter(|n| **n != d.backup.id)
                        .map(|n| n.to_string()),
                    before: Side {
                        action: b.0,
                        why: b.1.clone(),
                        planned_only: b.0 == "delete" && !deletes_before,
                    },
                    after: Side {
                        action: a.0,
                        why: a.1.clone(),
                        planned_only: a.0 == "delete" && !deletes_after,
                    },
                });
        }
    }
    PolicyDiff {
        name: policy.name.clone(),
        zone: after
            .or(before)
            .map(|(_, p)| p.timezone.clone())
            .unwrap_or(TimeZone::UTC),
        account: policy.account.clone(),
        change,
        renamed_from: match (before, after) {
            (Some((b, _)), Some((a, _))) if b.name != a.name => Some(b.name.clone()),
            _ => None,
        },
        edits,
        before: before.map(|(_, p)| p.summary),
        after: after.map(|(_, p)| p.summary),
        blocked_before: before.and_then(|(_, p)| p.blocked.clone()),
        blocked_after: after.and_then(|(_, p)| p.blocked.clone()),
        deletes_before,
        deletes_after,
        moved: moved.into_values().collect(),
    }
}

/// The policy as written, with the keys the fingerprint leaves out put back (a review shows
/// them too).
fn written(policy: &Policy) -> serde_json::Value {
    let mut value = policy.as_written.clone();
    if let Some(map) = value.as_object_mut() {
        if let Some(d) = &policy.description {
            map.insert("description".into(), d.clone().into());
        }
        if let Some(s) = &policy.schedule {
            map.insert("schedule".into(), s.text.clone().into());
        }
        if let Some(j) = &policy.jitter {
            map.insert(
                "jitter".into(),
                crate::policy::definition::humanize(*j).into(),
            );
        }
    }
    value
}

fn local(at: Timestamp, zone: &TimeZone) -> String {
    at.to_zoned(zone.clone())
        .strftime("%Y-%m-%d %H:%M %Z")
        .to_string()
}

fn counts(p: &PolicyDiff) -> String {
    let show = |s: Option<Summary>, f: fn(&Summary) -> usize| {
        s.map_or("-".to_string(), |s| f(&s).to_string())
    };
    let pair = |f: fn(&Summary) -> usize| format!("{} → {}", show(p.before, f), show(p.after, f));
    format!(
        "keep {}, delete {}, ignore {}",
        pair(|s| s.keep),
        pair(|s| s.delete),
        pair(|s| s.ignore)
    )
}

/// Whether the policy really deletes, base → current: `no → yes` for a switch to enforce.
fn really(p: &PolicyDiff) -> String {
    let word = |exists: bool, deletes: bool| match (exists, deletes) {
        (false, _) => "–",
        (true, true) => "yes",
        (true, false) => "no",
    };
    format!(
        "{} → {}",
        word(p.before.is_some(), p.deletes_before),
        word(p.after.is_some(), p.deletes_after)
    )
}

fn title(p: &PolicyDiff) -> String {
    match &p.renamed_from {
        Some(from) => format!("renamed from {from}"),
        None => p.change.as_str().to_string(),
    }
}

fn side(s: &Side) -> String {
    let planned = match s.planned_only {
        true => ", planned only",
        false => "",
    };
    match (s.action, s.why.is_empty()) {
        ("none", _) => "(no policy)".to_string(),
        (action, true) => format!("{action}{planned}"),
        (action, false) => format!("{action}{planned} ({})", s.why),
    }
}

/// What `diff` prints in a terminal.
pub fn text(out: &mut dyn std::io::Write, diff: &Diff) -> std::io::Result<()> {
    for edit in &diff.config_edits {
        writeln!(out, "config: {edit}")?;
    }
    for p in &diff.policies {
        writeln!(
            out,
            "policy {} (account {}): {}",
            p.name,
            p.account,
            title(p)
        )?;
        for edit in &p.edits {
            writeln!(out, "  {edit}")?;
        }
        writeln!(out, "  {}", counts(p))?;
        writeln!(
            out,
            "  really deletes (enforce, no dry_run, not blocked): {}",
            really(p)
        )?;
        for (label, blocked) in [("before", &p.blocked_before), ("after", &p.blocked_after)] {
            if let Some(b) = blocked {
                writeln!(out, "  blocked {label}: {}", Visible(b))?;
            }
        }
        if !p.moved.is_empty() {
            writeln!(
                out,
                "  {} backups change ({} newly deleted, {} newly kept):",
                p.moved.len(),
                p.newly_deleted(),
                p.newly_kept()
            )?;
        }
        for m in &p.moved {
            writeln!(
                out,
                "    {}  {}  {}: {} → {}",
                local(m.created_at, &p.zone),
                Visible(&m.group),
                Visible(m.name.as_deref().unwrap_or(&m.id)),
                side(&m.before),
                side(&m.after)
            )?;
        }
    }
    let newly: usize = diff.policies.iter().map(PolicyDiff::newly_deleted).sum();
    match newly {
        0 => writeln!(out, "no backup that the base keeps is deleted"),
        n => writeln!(out, "{n} backups that the base keeps would be deleted"),
    }
}

/// Rows of a changed-backups table shown before the rest is folded away.
const MARKDOWN_ROWS: usize = 100;

/// A compact report for a pull-request comment: a table of policies, then per policy its edits
/// and, folded, the backups that change.
pub fn markdown(out: &mut dyn std::io::Write, diff: &Diff) -> std::io::Result<()> {
    let newly: usize = diff.policies.iter().map(PolicyDiff::newly_deleted).sum();
    let changed = diff
        .policies
        .iter()
        .filter(|p| p.change != Change::Unchanged || !p.moved.is_empty())
        .count();
    writeln!(out, "### retentiond diff")?;
    writeln!(out)?;
    writeln!(
        out,
        "Both sides evaluated at {} on {}.",
        diff.evaluated_at,
        markdown_cell(&diff.listing)
    )?;
    writeln!(out)?;
    match newly {
        0 => writeln!(
            out,
            "No backup that the base keeps is deleted ({changed} of {} policies change).",
            diff.policies.len()
        )?,
        n => writeln!(
            out,
            "**{n} backups that the base keeps would be deleted** ({changed} of {} policies change).",
            diff.policies.len()
        )?,
    }
    writeln!(out)?;
    // Blocks that come or go (a guard, two policies on the same backups): in the summary.
    let mut turned = false;
    for p in &diff.policies {
        let change = match (&p.blocked_before, &p.blocked_after) {
            (None, Some(why)) if p.before.is_some() => {
                format!("becomes **blocked**: {}", markdown_cell(why))
            }
            (Some(_), None) if p.after.is_some() => "is no longer blocked".to_string(),
            _ => continue,
        };
        writeln!(out, "- `{}` {change}", p.name)?;
        turned = true;
    }
    if turned {
        writeln!(out)?;
    }
    if !diff.config_edits.is_empty() {
        writeln!(out, "Config changes:")?;
        writeln!(out)?;
        for edit in &diff.config_edits {
            writeln!(out, "- {}", markdown_cell(edit))?;
        }
        writeln!(out)?;
    }
    writeln!(
        out,
        "| policy | change | really deletes | keep | delete | newly deleted | newly kept |"
    )?;
    writeln!(out, "|---|---|---|---|---|---:|---:|")?;
    let pair = |p: &PolicyDiff, f: fn(&Summary) -> usize| {
        let show = |s: Option<Summary>| s.map_or("–".to_string(), |s| f(&s).to_string());
        format!("{} → {}", show(p.before), show(p.after))
    };
    for p in &diff.policies {
        writeln!(
            out,
            "| `{}` | {} | {} | {} | {} | {} | {} |",
            p.name,
            title(p),
            really(p),
            pair(p, |s| s.keep),
            pair(p, |s| s.delete),
            p.newly_deleted(),
            p.newly_kept()
        )?;
    }
    for p in diff
        .policies
        .iter()
        .filter(|p| !p.edits.is_empty() || !p.moved.is_empty() || p.blocked_after.is_some())
    {
        writeln!(out)?;
        writeln!(out, "#### `{}` ({})", p.name, title(p))?;
        writeln!(out)?;
        for edit in &p.edits {
            writeln!(out, "- `{edit}`")?;
        }
        if let Some(b) = &p.blocked_after {
            writeln!(out, "- blocked after the change: {}", markdown_cell(b))?;
        }
        if p.moved.is_empty() {
            continue;
        }
        writeln!(out)?;
        writeln!(
            out,
            "<details><summary>{} backups change ({} newly deleted, {} newly kept)</summary>",
            p.moved.len(),
            p.newly_deleted(),
            p.newly_kept()
        )?;
        writeln!(out)?;
        writeln!(out, "| created | group | backup | before | after |")?;
        writeln!(out, "|---|---|---|---|---|")?;
        for m in p.moved.iter().take(MARKDOWN_ROWS) {
            let after = match m.newly_deleted() {
                true => format!("**{}**", side(&m.after)),
                false => side(&m.after),
            };
            // Names as escaped text, not code spans: a backtick or `|` in an S3 key or a
            // Cloudinary public id must not end the cell.
            writeln!(
                out,
                "| {} | {} | {} | {} | {after} |",
                local(m.created_at, &p.zone),
                markdown_cell(&m.group),
                markdown_cell(m.name.as_deref().unwrap_or(&m.id)),
                side(&m.before)
            )?;
        }
        if p.moved.len() > MARKDOWN_ROWS {
            writeln!(out)?;
            writeln!(
                out,
                "… and {} more (`--format json` lists them all).",
                p.moved.len() - MARKDOWN_ROWS
            )?;
        }
        writeln!(out)?;
        writeln!(out, "</details>")?;
    }
    Ok(())
}
