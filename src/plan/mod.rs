//! From a policy and a listing to a plan: selection, grouping, the retention engine per group,
//! then the guards (protect, newest, min_keep, max_delete, max_delete_fraction). Pure: the
//! clock and the time zone come in as arguments.

pub mod file;

use crate::model::{Backup, Status};
use crate::policy::{Mode, Places, Policy};
use crate::retention::{self, Reason};
use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Keep,
    Delete,
    /// Doomed, but deleted only once `guard.grace` has passed since the policy first planned
    /// to delete it (the note says when).
    Wait,
    Ignore,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Keep => "keep",
            Action::Delete => "delete",
            Action::Wait => "wait",
            Action::Ignore => "ignore",
        }
    }
}

/// The decision about one backup.
#[derive(Clone, Debug)]
pub struct Decision<'a> {
    pub backup: &'a Backup,
    pub action: Action,
    /// Its reasons and note, in one box that most deletions of a large plan do without: a
    /// decision is 24 bytes, not 48 (BENCHMARKS.md, memory per deletion).
    why: Option<Box<Why>>,
}

#[derive(Clone, Debug, Default)]
struct Why {
    /// Every rule or guard that kept it.
    reasons: Box<[Reason]>,
    /// Why a backup is ignored, why a failed backup is kept or deleted.
    note: Option<Box<str>>,
}

impl<'a> Decision<'a> {
    pub fn new(backup: &'a Backup, action: Action, note: Option<String>) -> Decision<'a> {
        let mut decision = Decision {
            backup,
            action,
            why: None,
        };
        decision.set_note(note);
        decision
    }

    /// Every rule or guard that kept it.
    pub fn reasons(&self) -> &[Reason] {
        self.why.as_ref().map_or(&[], |w| &w.reasons)
    }

    /// Why a backup is ignored, why a failed backup is kept or deleted.
    pub fn note(&self) -> Option<&str> {
        self.why.as_ref().and_then(|w| w.note.as_deref())
    }

    pub fn set_reasons(&mut self, reasons: Vec<Reason>) {
        self.why_mut().reasons = reasons.into_boxed_slice();
        self.tidy();
    }

    pub fn set_note(&mut self, note: Option<String>) {
        self.why_mut().note = note.map(String::into_boxed_str);
        self.tidy();
    }

    /// Adds a reason that kept it.
    pub fn keep_for(&mut self, reason: Reason) {
        let why = self.why_mut();
        let mut reasons = std::mem::take(&mut why.reasons).into_vec();
        reasons.push(reason);
        why.reasons = reasons.into_boxed_slice();
    }

    /// Adds `words` to the note (after what it says already).
    pub fn add_note(&mut self, words: String) {
        let why = self.why_mut();
        let note = match why.note.take() {
            Some(note) => format!("{note}; {words}"),
            None => words,
        };
        why.note = Some(note.into_boxed_str());
    }

    fn why_mut(&mut self) -> &mut Why {
        self.why.get_or_insert_with(Box::default)
    }

    /// No box for no reason and no note.
    fn tidy(&mut self) {
        if self
            .why
            .as_ref()
            .is_some_and(|w| w.reasons.is_empty() && w.note.is_none())
        {
            self.why = None;
        }
    }

    /// The reasons and the note, as the plan table and `apply`'s refusals show them.
    pub fn explain(&self) -> String {
        self.explained().to_string()
    }

    /// [`Decision::explain`] written where it goes, without a `String` of its own.
    pub fn explained(&self) -> Explained<'_, 'a> {
        Explained(self)
    }
}

/// A decision's reasons and note, as [`Decision::explain`] words them.
pub struct Explained<'d, 'a>(&'d Decision<'a>);

impl std::fmt::Display for Explained<'_, '_> {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        let d = self.0;
        for (i, reason) in d.reasons().iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{reason}")?;
        }
        match (d.note(), d.reasons().is_empty()) {
            (Some(note), true) => f.write_str(note),
            (Some(note), false) => write!(f, " ({note})"),
            (None, false) => Ok(()),
            (None, true) if d.action == Action::Delete => f.write_str("no rule keeps it"),
            (None, true) => Ok(()),
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub keep: usize,
    /// Deleted now.
    pub delete: usize,
    /// Doomed, waiting for `guard.grace` to pass (only when some are).
    #[serde(skip_serializing_if = "is_zero")]
    pub waiting: usize,
    pub ignore: usize,
    pub groups: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// What deletions free, of one group or a whole plan: the bytes of the deleted backups whose
/// size the provider reports, and how many deleted backups have no size.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Freed {
    pub freed_bytes: u64,
    pub size_unknown: usize,
}

impl Freed {
    fn add(&mut self, d: &Decision) {
        if d.action != Action::Delete {
            return;
        }
        match d.backup.size {
            Some(size) => self.freed_bytes += size,
            None => self.size_unknown += 1,
        }
    }
}

/// One group's counts in a plan.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct GroupTotals<'a> {
    pub group: &'a str,
    pub keep: usize,
    pub delete: usize,
    #[serde(skip_serializing_if = "is_zero")]
    pub waiting: usize,
    pub ignore: usize,
    #[serde(flatten)]
    pub freed: Freed,
}

/// The plan of one policy.
#[derive(Clone, Debug)]
pub struct PolicyPlan<'a> {
    pub name: String,
    pub account: String,
    pub mode: Mode,
    pub timezone: TimeZone,
    pub evaluated_at: Timestamp,
    /// Why a guard stopped this policy's deletions; `None` when it may proceed.
    pub blocked: Option<String>,
    /// What a person should look at: stale groups (not pruned), backups dated in the future.
    pub warnings: Vec<String>,
    /// Why the policy selected no backup at all, if it did not (see [`nothing_selected`]): a
    /// run's own outcome, not success.
    pub selected_nothing: Option<String>,
    pub summary: Summary,
    /// Grouped (groups in name order), newest first within a group.
    pub decisions: Vec<Decision<'a>>,
}

impl PolicyPlan<'_> {
    /// What the whole plan's deletions free.
    pub fn freed(&self) -> Freed {
        let mut freed = Freed::default();
        for d in &self.decisions {
            freed.add(d);
        }
        freed
    }

    /// Counts per group, in the plan's group order (decisions are grouped).
    pub fn group_totals(&self) -> Vec<GroupTotals<'_>> {
        let mut totals: Vec<GroupTotals> = Vec::new();
        for d in &self.decisions {
            let group = d.backup.group.as_str();
            if totals.last().is_none_or(|t| t.group != group) {
                totals.push(GroupTotals {
                    group,
                    ..GroupTotals::default()
                });
            }
            let t = totals.last_mut().expect("pushed above");
            match d.action {
                Action::Keep => t.keep += 1,
                Action::Delete => t.delete += 1,
                Action::Wait => t.waiting += 1,
                Action::Ignore => t.ignore += 1,
            }
            t.freed.add(d);
        }
        totals
    }

    pub fn deletions(&self) -> impl Iterator<Item = &Backup> {
        self.decisions
            .iter()
            .filter(|d| d.action == Action::Delete)
            .map(|d| d.backup)
    }

    /// Blocks the plan for one more reason.
    pub fn block(&mut self, reason: String) {
        self.blocked = Some(match self.blocked.take() {
            Some(earlier) => format!("{earlier}; {reason}"),
            None => reason,
        });
    }

    /// `apply`: checks a reviewed delete set (`(group, id)` pairs) against this fresh plan.
    /// Returns what changed for each reviewed backup that this plan would not delete; when
    /// nothing did, turns every deletion outside the reviewed set into a keep, so that
    /// exactly the reviewed set is deleted.
    pub fn restrict_to(&mut self, reviewed: &[(String, String)]) -> Vec<String> {
        let by_key: HashMap<(&str, &str), &Decision> = self
            .decisions
            .iter()
            .map(|d| ((d.backup.group.as_str(), d.backup.id.as_str()), d))
            .collect();
        let mut changes = Vec::new();
        for (group, id) in reviewed {
            let change = match by_key.get(&(group.as_str(), id.as_str())) {
                None => "no longer listed".to_string(),
                Some(d) if d.action == Action::Delete => continue,
                Some(d) => {
                    let why = d.explain();
                    let why = if why.is_empty() {
                        String::new()
                    } else {
                        format!(": {why}")
                    };
                    format!("now {}{why}", d.action.as_str())
                }
            };
            changes.push(format!("{id} (group {group}): {change}"));
        }
        if !changes.is_empty() {
            return changes;
        }
        let reviewed: HashSet<(&str, &str)> = reviewed
            .iter()
            .map(|(g, i)| (g.as_str(), i.as_str()))
            .collect();
        let mut extra = 0;
        for d in &mut self.decisions {
            if d.action == Action::Delete
                && !reviewed.contains(&(d.backup.group.as_str(), d.backup.id.as_str()))
            {
                d.action = Action::Keep;
                d.keep_for(Reason::NotReviewed);
                extra += 1;
            }
        }
        self.summary.delete -= extra;
        self.summary.keep += extra;
        if extra > 0 {
            self.warnings.push(format!(
                "{extra} more backups would be deleted by the policy now but were not in the reviewed plan: kept; make and review a new plan for them"
            ));
        }
        Vec::new()
    }
}

/// What the policy's last accepted listing left: complete backups per group after that run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Baseline {
    pub run: i64,
    pub at: Timestamp,
    pub counts: BTreeMap<String, u64>,
}

/// Complete backups per group of a listing, as the listing-drop guard counts them.
pub fn complete_counts(backups: &[Backup]) -> BTreeMap<String, u64> {
    // Counted a run of one group's backups at a time, under borrowed names: a million backups
    // are then not a million lookups and names copied.
    let mut counts: BTreeMap<&str, u64> = BTreeMap::new();
    let mut run: Option<(&str, u64)> = None;
    for b in backups.iter().filter(|b| b.status == Status::Complete) {
        match &mut run {
            Some((group, n)) if *group == b.group.as_str() => *n += 1,
            _ => {
                if let Some((group, n)) = run.replace((b.group.as_str(), 1)) {
                    *counts.entry(group).or_insert(0) += n;
                }
            }
        }
    }
    if let Some((group, n)) = run {
        *counts.entry(group).or_insert(0) += n;
    }
    counts
        .into_iter()
        .map(|(g, n)| (g.to_string(), n))
        .collect()
}

/// The listing-drop guard: why the listing is suspect, if a group's complete backups fell by
/// more than `limit` (a share) since the baseline. A group that vanished fell by all of them.
pub fn listing_drop(
    baseline: &Baseline,
    current: &BTreeMap<String, u64>,
    limit: f64,
) -> Option<String> {
    let mut fallen = Vec::new();
    for (group, &before) in baseline.counts.iter().filter(|(_, n)| **n > 0) {
        let now = current.get(group).copied().unwrap_or(0);
        let drop = before.saturating_sub(now) as f64 / before as f64;
        if drop > limit {
            fallen.push(format!(
                "group {} from {before} to {now} (-{:.0}%)",
                group_label(group),
                drop * 100.0
            ));
        }
    }
    // Backups that moved (a folder written another way, a resource renamed) show up as a
    // new group: say so beside the one that fell.
    let appeared: Vec<String> = current
        .iter()
        .filter(|(group, n)| **n > 0 && !baseline.counts.contains_key(*group))
        .map(|(group, n)| format!("{} ({n})", group_label(group)))
        .collect();
    let moved = if appeared.is_empty() {
        String::new()
    } else {
        format!(
            "; the listing now has complete backups in groups that run #{} did not list: {} (did the backups move?)",
            baseline.run,
            appeared.join(", ")
        )
    };
    (!fallen.is_empty()).then(|| {
        format!(
            "the listing is suspect: complete backups fell since run #{} ({}): {}, more than guard.max_listing_drop {limit}{moved}; nothing is deleted until a person looks (if the drop is expected, run once with --accept-listing-drop)",
            baseline.run,
            baseline.at,
            fallen.join(", ")
        )
    })
}

/// Why a listing may not delete anything, if it names one backup (a `(group, id)` pair) more
/// than once: a repeated backup spends the keep rules' budget twice, so its neighbour is
/// deleted, and a backup listed as both kept and deleted would be deleted. Providers repeat
/// one when their list shifts between pages, or when `select` names an id twice.
pub fn repeated_backups(backups: &[Backup]) -> Option<String> {
    // FNV-1a over the group, a byte no UTF-8 text holds, and the id: a quick hash of short
    // names (a million through SipHash cost a tenth of the plan).
    let key = |b: &Backup| {
        let bytes = b.group.bytes().chain([0xff]).chain(b.id.bytes());
        bytes.fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
        })
    };
    // Hashes sorted, not a set of a million names: equal hashes are then neighbours, and
    // only those few backups are compared by name.
    let mut hashes: Vec<u64> = backups.iter().map(key).collect();
    hashes.sort_unstable();
    let suspects: HashSet<u64> = hashes
        .windows(2)
        .filter(|w| w[0] == w[1])
        .map(|w| w[0])
        .collect();
    drop(hashes);
    if suspects.is_empty() {
        return None;
    }
    let mut seen: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    for b in backups.iter().filter(|b| suspects.contains(&key(b))) {
        *seen.entry((b.group.as_str(), b.id.as_str())).or_insert(0) += 1;
    }
    let repeated: Vec<String> = seen
        .into_iter()
        .filter(|(_, n)| *n > 1)
        .map(|((group, id), n)| format!("{id} (group {}) {n} times", group_label(group)))
        .collect();
    let (first, more) = repeated.split_first()?;
    let more = match more.len() {
        0 => String::new(),
        n => format!(" and {n} more repeated backups"),
    };
    Some(format!(
        "the listing names backup {first}{more}: a repeated backup spends the keep rules' budget twice and could delete a backup the plan keeps, so nothing is deleted; the provider's listing is inconsistent (a list that changed between pages, or an id named twice in `select`): run again later, and if it stays, look at `retentiond list --format json`"
    ))
}

/// Two policies of one account that select the same backups undo each other: each deletes
/// what only the other keeps (`daily 7` and `monthly 12` on the same files leave almost
/// nothing). Why `policy` may not delete, if another policy of its account selects a backup of
/// its listing that it selects too.
/// Accounts are compared by where their backups are (`places`): a folder and a symlink to it,
/// two accounts on one bucket, are one place.
pub fn overlap(
    policy: &Policy,
    backups: &[Backup],
    policies: &[Policy],
    places: &Places,
) -> Option<String> {
    let selects = |p: &Policy, b: &Backup| {
        p.select
            .selects(b.name.as_deref().unwrap_or(&b.id), &b.group, &b.tags)
    };
    // Names that start differently are never in both (a policy per database: no regex).
    let mine = policy.select.name_prefix();
    let may_share = |other: &str| mine.starts_with(other) || other.starts_with(mine);
    let mut found = Vec::new();
    for other in policies.iter().filter(|o| {
        places.same(&o.account, &policy.account)
            && o.name != policy.name
            && !o.select.lists_apart_from(&policy.select)
            && may_share(o.select.name_prefix())
    }) {
        let mut shared = backups
            .iter()
            .filter(|b| selects(policy, b) && selects(other, b));
        let Some(first) = shared.next() else {
            continue;
        };
        let more = shared.count();
        let more = if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        };
        let account = match other.account == policy.account {
            true => String::new(),
            false => format!(
                " of account {}, which reaches the same backups as account {},",
                other.account, policy.account
            ),
        };
        found.push(format!(
            "policy {} ({}){account} also selects backup {} (group {}){more}",
            other.name,
            other.file.display(),
            first.id,
            group_label(&first.group)
        ));
    }
    if found.len() > 3 {
        let more = found.len() - 3;
        found.truncate(3);
        found.push(format!(
            "{more} more policies of account {}",
            policy.account
        ));
    }
    (!found.is_empty()).then(|| {
        format!(
            "{}: two policies on the same backups undo each other (each deletes what only the other keeps), so neither deletes anything until their selections are disjoint (different `select.pattern`, `select.glob` or `select.name`) or one policy holds both sets of rules (e.g. `keep: {{daily: 7, monthly: 12}}`)",
            found.join("; ")
        )
    })
}

/// The bound on a policy version no person approved and that never ran in enforce mode: why
/// its plan may not delete, if it deletes more than `guard.unapproved_max_delete` backups or
/// more than `guard.unapproved_max_delete_fraction` of a group.
pub fn unapproved_excess(policy: &Policy, plan: &PolicyPlan) -> Option<String> {
    let guard = &policy.guard;
    let mut per_group: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for d in plan.decisions.iter().filter(|d| is_candidate(d)) {
        let entry = per_group.entry(d.backup.group.as_str()).or_default();
        entry.1 += 1;
        entry.0 += usize::from(d.action == Action::Delete);
    }
    let worst = per_group
        .iter()
        .map(|(g, &(doomed, complete))| {
            (*g, doomed, complete, doomed as f64 / complete.max(1) as f64)
        })
        .max_by(|a, b| a.3.total_cmp(&b.3));
    let total = plan.summary.delete as u64;
    let too_many = total > guard.unapproved_max_delete;
    let too_much = worst.is_some_and(|w| w.3 > guard.unapproved_max_delete_fraction);
    if !too_many && !too_much {
        return None;
    }
    let share = worst
        .filter(|w| w.1 > 0)
        .map(|(g, doomed, complete, share)| {
            format!(
                ", {doomed} of {complete} in group {} ({:.0}%)",
                group_label(g),
                share * 100.0
            )
        })
        .unwrap_or_default();
    let name = &policy.name;
    Some(format!(
        "policy {name} is new or changed (fingerprint {}) and no person has approved this version: its plan deletes {total} backups{share}, more than an unapproved policy may (guard.unapproved_max_delete {}, guard.unapproved_max_delete_fraction {}); review the plan, then approve this version once with `retentiond approve {name}`",
        &policy.fingerprint[..policy.fingerprint.len().min(12)],
        guard.unapproved_max_delete,
        guard.unapproved_max_delete_fraction
    ))
}

/// A policy that selects nothing looks like success (`keep 0, delete 0`): the warning, when it
/// selected nothing, with how many entries of the listing its selection did not match
/// (`unmatched`: entries the provider saw but did not list, e.g. files of a local folder).
pub fn nothing_selected(plan: &PolicyPlan, unmatched: usize) -> Option<String> {
    let passed_over = |d: &&Decision| {
        d.action == Action::Ignore && matches!(d.note(), Some(NOT_SELECTED | GROUP_NOT_SELECTED))
    };
    if plan.decisions.iter().any(|d| !passed_over(&d)) {
        return None;
    }
    let unmatched = unmatched + plan.decisions.iter().filter(passed_over).count();
    Some(if unmatched == 0 {
        "the listing is empty: the account has no backup this policy could select (is it the right account, folder or project?)".to_string()
    } else {
        format!(
            "the policy selects no backup: none of the {unmatched} entries of the listing match its `select` (check select.pattern, select.glob, select.name and the ids); nothing is kept or deleted"
        )
    })
}

/// `guard.stale_after` for groups that are gone: a group the last accepted listing had and
/// this one has not (or a listing with no group at all) has no recent backup either.
pub fn vanished_groups(
    policy: &Policy,
    plan: &PolicyPlan,
    baseline: Option<&Baseline>,
    counts: &BTreeMap<String, u64>,
) -> Vec<String> {
    let Some(limit) = policy.guard.stale_after else {
        return Vec::new();
    };
    let mut warnings: Vec<String> = baseline
        .iter()
        .flat_map(|b| b.counts.iter().map(move |(group, n)| (b, group, n)))
        .filter(|(_, group, n)| **n > 0 && !counts.contains_key(*group))
        .map(|(b, group, n)| {
            format!(
                "group {}: run #{} listed {n} complete backups, this listing none, so none is newer than guard.stale_after {limit}: backups seem to have stopped (or moved) until a person looks",
                group_label(group),
                b.run
            )
        })
        .collect();
    if warnings.is_empty() && plan.decisions.is_empty() {
        warnings.push(format!(
            "there is no complete backup in the listing, so none is newer than guard.stale_after {limit}: backups seem to have stopped until a person looks"
        ));
    }
    warnings
}

/// What keeps backups beyond the policy's file: holds (`retentiond hold`) and a provider's
/// own locks (S3 Object Lock), by backup id, each as the plan words it; and holds that lapsed.
#[derive(Clone, Debug, Default)]
pub struct Holds {
    /// By backup id: each hold's words (`held: ...`, `locked until ...`, `legal hold`).
    pub keep: HashMap<String, Vec<String>>,
    /// By backup id: holds that lapsed by themselves (`hold #3 lapsed at ...`).
    pub lapsed: HashMap<String, Vec<String>>,
}

impl Holds {
    pub fn is_empty(&self) -> bool {
        self.keep.is_empty() && self.lapsed.is_empty()
    }

    /// Adds a hold's words for `id`.
    pub fn hold(&mut self, id: &str, words: String) {
        self.keep.entry(id.to_string()).or_default().push(words);
    }
}

/// Evaluates `policy` over `backups` at `now` in `tz`.
pub fn plan<'a>(
    policy: &Policy,
    backups: &'a [Backup],
    now: Timestamp,
    tz: &TimeZone,
) -> PolicyPlan<'a> {
    plan_held(policy, backups, now, tz, &Holds::default())
}

/// [`plan`], with the backups that `holds` keeps kept (and counted as kept by the guards).
pub fn plan_held<'a>(
    policy: &Policy,
    backups: &'a [Backup],
    now: Timestamp,
    tz: &TimeZone,
    holds: &Holds,
) -> PolicyPlan<'a> {
    // One vector of decisions, grouped, each group's members a slice of it: a million backups
    // are one allocation, not a vector per group and then a copy into one.
    let (order, groups) = grouped(policy, backups);
    let mut decisions: Vec<Decision<'a>> = order
        .iter()
        .map(|&i| classify(policy, &backups[i as usize], now, tz))
        .collect();
    drop(order);
    let mut blocked = Vec::new();
    let mut warnings = Vec::new();
    let mut summary = Summary::default();
    let mut rest = decisions.as_mut_slice();
    for (group, len) in groups {
        let (members, after) = rest.split_at_mut(len);
        rest = after;
        let newest_first = apply_rules(policy, members, now, tz);
        apply_guards(policy, members, &newest_first, holds);
        warnings.extend(hold_if_stale(
            policy,
            group,
            members,
            &newest_first,
            now,
            tz,
        ));
        warnings.extend(future_dated(group, members));
        if let Some(reason) = fraction_exceeded(policy, group, members) {
            blocked.push(reason);
        }
        summary.groups += usize::from(members.iter().any(|d| d.backup.status == Status::Complete));
        // Newest first; equal times in listing order, which is the order of the backups in
        // memory (and an unstable sort with unique keys needs no scratch copy of the group).
        members.sort_unstable_by_key(|d| {
            (
                std::cmp::Reverse(d.backup.created_at),
                std::ptr::from_ref(d.backup).addr(),
            )
        });
    }
    for d in &decisions {
        match d.action {
            Action::Keep => summary.keep += 1,
            Action::Delete => summary.delete += 1,
            Action::Wait => summary.waiting += 1,
            Action::Ignore => summary.ignore += 1,
        }
    }
    if let Some(max) = policy.guard.max_delete
        && summary.delete as u64 > max
    {
        blocked.insert(
            0,
            format!(
                "the plan deletes {} backups, more than guard.max_delete {max}",
                summary.delete
            ),
        );
    }
    PolicyPlan {
        name: policy.name.clone(),
        account: policy.account.clone(),
        mode: policy.mode,
        timezone: tz.clone(),
        evaluated_at: now,
        blocked: (!blocked.is_empty()).then(|| blocked.join("; ")),
        warnings,
        selected_nothing: None,
        summary,
        decisions,
    }
}

/// When each backup the policy plans to delete was first planned so, without a run that kept
/// it since (from the journal's decision spans): by group, then by id.
pub type DoomedSince = HashMap<String, HashMap<String, Timestamp>>;

/// `guard.grace`: a backup the plan deletes is deleted only once `period` has passed since the
/// policy first planned to delete it (`since`; not in it: first planned now). Until then it
/// waits (`Action::Wait`), with the time after which it goes. Call after the guards, which
/// count waiting backups as doomed.
pub fn wait_for_grace(
    plan: &mut PolicyPlan,
    period: crate::retention::CalendarDuration,
    since: &DoomedSince,
    now: Timestamp,
    tz: &TimeZone,
) {
    let mut waiting = 0;
    for d in plan
        .decisions
        .iter_mut()
        .filter(|d| d.action == Action::Delete)
    {
        let first = since
            .get(d.backup.group.as_str())
            .and_then(|ids| ids.get(d.backup.id.as_str()))
            .map_or(now, |at| (*at).min(now));
        let after = period.after(first, tz);
        if after <= now {
            continue;
        }
        d.action = Action::Wait;
        let words = format!(
            "delete after {} (grace {period})",
            after.to_zoned(tz.clone()).strftime("%Y-%m-%d %H:%M %Z")
        );
        d.add_note(words);
        waiting += 1;
    }
    plan.summary.delete -= waiting;
    plan.summary.waiting += waiting;
}

/// The listing grouped as the plan shows it: the backups' indices, groups in name order and
/// listing order within each group, and each group's name and size. One group, named "",
/// when the policy does not group by resource.
fn grouped<'a>(policy: &Policy, backups: &'a [Backup]) -> (Vec<u32>, Vec<(&'a str, usize)>) {
    let n = u32::try_from(backups.len()).expect("fewer than 2^32 backups in a listing");
    if !policy.group_by_resource || backups.is_empty() {
        let groups = (!backups.is_empty()).then_some(("", backups.len()));
        return ((0..n).collect(), groups.into_iter().collect());
    }
    // Each backup's group as a number, in the order groups first appear; listings are mostly
    // grouped already, so the previous backup's group is checked before the map.
    let mut numbers: HashMap<&str, u32> = HashMap::new();
    let mut names: Vec<&str> = Vec::new();
    let mut previous: Option<(&str, u32)> = None;
    let of: Vec<u32> = backups
        .iter()
        .map(|b| {
            let group = b.group.as_str();
            if let Some((name, number)) = previous
                && name == group
            {
                return number;
            }
            let number = *numbers.entry(group).or_insert_with(|| {
                names.push(group);
                (names.len() - 1) as u32
            });
            previous = Some((group, number));
            number
        })
        .collect();
    let mut by_name: Vec<u32> = (0..names.len() as u32).collect();
    by_name.sort_unstable_by_key(|&g| names[g as usize]);
    let mut rank = vec![0u32; names.len()];
    for (r, &g) in by_name.iter().enumerate() {
        rank[g as usize] = r as u32;
    }
    let mut sizes = vec![0usize; names.len()];
    for &g in &of {
        sizes[rank[g as usize] as usize] += 1;
    }
    // A counting sort by rank: stable, so each group keeps the listing's order.
    let mut next: Vec<usize> = sizes
        .iter()
        .scan(0, |start, &size| {
            let here = *start;
            *start += size;
            Some(here)
        })
        .collect();
    let mut order = vec![0u32; backups.len()];
    for (i, &g) in (0..n).zip(&of) {
        let slot = &mut next[rank[g as usize] as usize];
        order[*slot] = i;
        *slot += 1;
    }
    let groups = by_name
        .iter()
        .zip(sizes)
        .map(|(&g, size)| (names[g as usize], size))
        .collect();
    (order, groups)
}

/// The first look at a backup: selection and status. Complete backups start as `delete` and
/// are rescued by rules and guards.
fn classify<'a>(
    policy: &Policy,
    backup: &'a Backup,
    now: Timestamp,
    tz: &TimeZone,
) -> Decision<'a> {
    let decision = |action, note: Option<String>| Decision::new(backup, action, note);
    if !policy
        .select
        .matches_name(backup.name.as_deref().unwrap_or(&backup.id))
    {
        return decision(Action::Ignore, Some(NOT_SELECTED.into()));
    }
    let mut ids = policy.select.group_ids().peekable();
    if ids.peek().is_some() && !ids.any(|id| *id == backup.group) {
        return decision(Action::Ignore, Some(GROUP_NOT_SELECTED.into()));
    }
    let tolerance = policy.guard.future_tolerance;
    // A duration is never negative, so `before` is never later than its instant: only a
    // backup dated after `now` needs the zone arithmetic.
    if backup.created_at > now && tolerance.before(backup.created_at, tz) > now {
        return decision(
            Action::Ignore,
            Some(format!(
                "{FUTURE} (more than guard.future_tolerance {tolerance} ahead); never counted"
            )),
        );
    }
    match backup.status {
        Status::Complete => decision(Action::Delete, None),
        Status::InProgress => decision(Action::Ignore, Some("in progress".into())),
        Status::Unknown => decision(Action::Ignore, Some("status unknown".into())),
        Status::Failed => match policy.failed_delete_after {
            Some(after) if backup.created_at <= after.before(now, tz) => {
                decision(Action::Delete, Some(format!("failed, older than {after}")))
            }
            Some(after) => decision(
                Action::Keep,
                Some(format!("failed, kept until {after} old")),
            ),
            None => decision(
                Action::Keep,
                Some("failed; kept (failed.delete_after is not set)".into()),
            ),
        },
    }
}

fn is_candidate(d: &Decision) -> bool {
    d.backup.status == Status::Complete && d.action != Action::Ignore
}

/// Runs the engine over the group's complete backups and records its reasons. Returns their
/// indices newest first (the engine's stable order).
fn apply_rules(
    policy: &Policy,
    members: &mut [Decision],
    now: Timestamp,
    tz: &TimeZone,
) -> Vec<u32> {
    let complete: Vec<u32> = (0..members.len() as u32)
        .filter(|&i| is_candidate(&members[i as usize]))
        .collect();
    // The times side by side: the engine reads each several times (to sort, to anchor, to
    // bucket), and a million of them are then 16 MB read in order, not a decision and a
    // backup apart each time.
    let times: Vec<Timestamp> = complete
        .iter()
        .map(|&i| members[i as usize].backup.created_at)
        .collect();
    let mut order = Vec::with_capacity(complete.len());
    // Only the kept have reasons; the rest stay as classified.
    let mut kept = Vec::new();
    {
        let members = &*members;
        retention::evaluate_each(
            &policy.keep,
            retention::Group {
                len: complete.len(),
                created_at: |k| times[k],
                tags: |k| &members[complete[k] as usize].backup.tags,
            },
            now,
            tz,
            |k, reasons| {
                order.push(complete[k]);
                if !reasons.is_empty() {
                    kept.push((complete[k], reasons.to_vec()));
                }
            },
        );
    }
    for (i, reasons) in kept {
        members[i as usize].set_reasons(reasons);
    }
    order
}

/// Protect, live copies, holds, newest-per-group and min_keep: each rescues backups the
/// rules would delete.
fn apply_guards(policy: &Policy, members: &mut [Decision], newest_first: &[u32], holds: &Holds) {
    let protect = &policy.protect;
    let protecting = !protect.ids.is_empty() || !protect.names.is_empty();
    for d in members.iter_mut().filter(|d| d.action != Action::Ignore) {
        let name = || d.backup.name.as_deref().unwrap_or(&d.backup.id);
        if protecting
            && (protect.ids.iter().any(|id| *id == d.backup.id)
                || protect.names.iter().any(|re| re.is_match(name())))
        {
            d.keep_for(Reason::Protected);
        }
        if d.backup.live {
            d.keep_for(Reason::Live);
        }
        if holds.is_empty() {
            continue;
        }
        for words in holds.keep.get(d.backup.id.as_str()).into_iter().flatten() {
            d.keep_for(Reason::Held(words.as_str().into()));
        }
        if let Some(lapsed) = holds.lapsed.get(d.backup.id.as_str()) {
            d.add_note(lapsed.join("; "));
        }
    }
    if let Some(&newest) = newest_first.first()
        && members[newest as usize].reasons().is_empty()
    {
        members[newest as usize].keep_for(Reason::Newest);
    }
    let mut kept = newest_first
        .iter()
        .filter(|&&i| !members[i as usize].reasons().is_empty())
        .count();
    for &i in newest_first {
        let i = i as usize;
        if kept >= policy.guard.min_keep as usize {
            break;
        }
        if members[i].reasons().is_empty() {
            members[i].keep_for(Reason::MinKeep);
            kept += 1;
        }
    }
    for d in members.iter_mut().filter(|d| d.action == Action::Delete) {
        if !d.reasons().is_empty() {
            d.action = Action::Keep;
        }
    }
}

/// The notes of backups in the listing that the policy does not select.
const NOT_SELECTED: &str = "not selected by the name filters";
const GROUP_NOT_SELECTED: &str = "group not selected";

/// How the note of a backup dated in the future begins.
const FUTURE: &str = "dated in the future";

fn group_label(group: &str) -> &str {
    if group.is_empty() { "(all)" } else { group }
}

/// One warning per group about backups dated in the future: the backup when there is one, the
/// count and the range when there are more.
fn future_dated(group: &str, members: &[Decision]) -> Option<String> {
    let future: Vec<&Backup> = members
        .iter()
        .filter(|d| d.note().is_some_and(|n| n.starts_with(FUTURE)))
        .map(|d| d.backup)
        .collect();
    let group = group_label(group);
    let advice = "ignored (check the clock of whatever made them)";
    match future.as_slice() {
        [] => None,
        [b] => Some(format!(
            "group {group}: backup {} is dated {}, in the future: ignored (check the clock of whatever made it)",
            b.id, b.created_at
        )),
        more => {
            let first = more.iter().map(|b| b.created_at).min()?;
            let last = more.iter().map(|b| b.created_at).max()?;
            Some(format!(
                "group {group}: {} backups are dated in the future, from {first} to {last} (e.g. {}): {advice}",
                more.len(),
                more[0].id
            ))
        }
    }
}

/// `guard.stale_after`: when the group's newest complete backup is older than that (or the
/// group has none), backups seem to have stopped, and nothing in the group is deleted.
fn hold_if_stale(
    policy: &Policy,
    group: &str,
    members: &mut [Decision],
    newest_first: &[u32],
    now: Timestamp,
    tz: &TimeZone,
) -> Option<String> {
    let limit = policy.guard.stale_after?;
    let newest = newest_first
        .first()
        .map(|&i| members[i as usize].backup.created_at);
    if newest.is_some_and(|at| at >= limit.before(now, tz)) {
        return None;
    }
    let mut held = 0;
    for d in members.iter_mut().filter(|d| d.action == Action::Delete) {
        d.action = Action::Keep;
        d.keep_for(Reason::Stale);
        held += 1;
    }
    let since = match newest {
        Some(at) => format!("the newest complete backup is from {at}"),
        None => "there is no complete backup".to_string(),
    };
    Some(format!(
        "group {}: {since}, older than guard.stale_after {limit}: backups seem to have stopped, so nothing in this group is deleted ({held} held) until a person looks",
        group_label(group)
    ))
}

fn fraction_exceeded(policy: &Policy, group: &str, members: &[Decision]) -> Option<String> {
    let limit = policy.guard.max_delete_fraction?;
    let complete = members.iter().filter(|d| is_candidate(d)).count();
    let doomed = members
        .iter()
        .filter(|d| is_candidate(d) && d.action == Action::Delete)
        .count();
    let share = doomed as f64 / complete.max(1) as f64;
    let group = group_label(group);
    (share > limit).then(|| {
        format!(
            "group {group}: the plan deletes {doomed} of {complete} complete backups ({:.0}%), more than guard.max_delete_fraction {limit}",
            share * 100.0
        )
    })
}

#[cfg(test)]
mod tests;
