//! `retentiond simulate`: a policy over time. Backups are made on a cadence (a cron line in
//! the policy's zone), the policy runs on its schedule and deletes what it would delete, with
//! its guards, as the daemon would; what is held is counted after every step. Pure: the start,
//! the period and the zone come in as arguments.

use crate::model::{Backup, Status, Text};
use crate::plan::Action;
use crate::policy::{Policy, Schedule};
use crate::runner::{self, Checks};
use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde::Serialize;
use std::collections::HashSet;

/// What a simulation is asked.
pub struct Setup<'a> {
    pub policy: &'a Policy,
    pub zone: TimeZone,
    /// When backups are made.
    pub cadence: &'a Schedule,
    /// When the policy runs (its schedule; else after each backup).
    pub runs: &'a Schedule,
    pub from: Timestamp,
    pub until: Timestamp,
    /// Identical groups (servers, databases), each with its own backups.
    pub groups: usize,
    /// Whether to keep every backup's fate (for the picture): memory for every backup made,
    /// not only those held.
    pub timeline: bool,
    /// The grace period (`guard.grace` or the config's default): a doomed backup goes only
    /// once the runs planned to delete it for that long.
    pub grace: Option<crate::retention::CalendarDuration>,
}

/// The most backups a simulation makes: beyond, it would take minutes and gigabytes to say
/// what a shorter period says as well.
pub const MAX_BACKUPS: usize = 1_000_000;

/// Why a simulation is too large to run, if it is: its backups estimated from the cadence's
/// first interval (cron lines are mostly regular), all groups together.
pub fn too_large(setup: &Setup) -> Option<String> {
    let tz = &setup.zone;
    let first = next(setup.cadence, tz, setup.from)?;
    let second = next(setup.cadence, tz, first)?;
    let interval = second.duration_since(first).as_secs_f64().max(1.0);
    let period = setup.until.duration_since(setup.from).as_secs_f64();
    let estimate = (period / interval) * setup.groups as f64;
    (estimate > MAX_BACKUPS as f64).then(|| {
        format!(
            "this simulation would make about {:.0} backups (one every {} for the whole --for, in {} group{}), more than the {MAX_BACKUPS} it can say something about in a few seconds; simulate a shorter period (--for) or a sparser cadence (--cadence), e.g. the policy's retention horizon at its real cadence",
            estimate,
            age(second.duration_since(first)),
            setup.groups,
            if setup.groups == 1 { "" } else { "s" }
        )
    })
}

/// What the policy held over the period.
#[derive(Clone, Debug, Serialize)]
pub struct Simulation {
    pub policy: String,
    pub timezone: String,
    pub cadence: String,
    pub runs_on: String,
    pub from: Timestamp,
    pub until: Timestamp,
    pub groups: usize,
    pub backups_made: usize,
    pub runs: usize,
    /// Runs a guard blocked (they deleted nothing).
    pub blocked_runs: usize,
    pub deleted: usize,
    /// The most backups held at once (all groups), and when.
    pub max_held: usize,
    pub max_held_at: Option<Timestamp>,
    /// Held at the end (all groups).
    pub held_at_end: usize,
    /// The ages at the end of what one group holds, youngest first (`1d 2d … 2w … 2mo … 2y`).
    pub ages_at_end: Vec<String>,
    pub oldest_at_end: Option<Timestamp>,
    /// When the count held after a run last reached a new high; `None` if it never grew.
    pub last_growth: Option<Timestamp>,
    /// Whether that was in the last tenth of the period: the count may still be growing.
    pub still_growing: bool,
    /// The count held after each run: `(time, count)`.
    pub counts: Vec<(Timestamp, usize)>,
    /// Every backup made, with what became of it: `kept` (held at the end, with the reasons
    /// of the last run) or the time it was deleted.
    #[serde(skip)]
    pub timeline: Vec<Fate>,
}

/// A backup of the simulation and what became of it.
#[derive(Clone, Debug)]
pub struct Fate {
    pub backup: Backup,
    /// `None`: held at the end.
    pub deleted_at: Option<Timestamp>,
    /// The reasons the last run kept it for (held ones).
    pub reasons: Vec<String>,
}

/// The first tick strictly after `after`.
fn next(schedule: &Schedule, tz: &TimeZone, after: Timestamp) -> Option<Timestamp> {
    schedule
        .cron
        .find_next_occurrence(&after.to_zoned(tz.clone()), false)
        .ok()
        .map(|z| z.timestamp())
}

fn group_name(n: usize, groups: usize) -> String {
    match groups {
        1 => "sim".to_string(),
        _ => format!("sim-{n}"),
    }
}

/// Runs the simulation. A backup and a run at the same instant: the backup comes first (the
/// run sees it).
pub fn simulate(setup: &Setup) -> Result<Simulation, String> {
    // The generated backups stand for whatever the policy selects: its rules and guards
    // apply, its name filters and ids do not.
    let mut unfiltered = setup.policy.clone();
    unfiltered.select = Default::default();
    let policy = &unfiltered;
    let tz = &setup.zone;
    let mut held: Vec<Backup> = Vec::new();
    // When each held backup was first doomed, without a run that kept it since (the journal's
    // decision spans, in a daemon).
    let mut since = crate::plan::DoomedSince::new();
    let mut timeline: Vec<Fate> = Vec::new();
    let (mut made, mut runs, mut blocked, mut deleted) = (0, 0, 0, 0);
    let (mut max_held, mut max_held_at) = (0, None);
    let mut counts = Vec::new();
    let mut high = 0;
    let mut last_growth = None;
    let mut last_run = None;
    // Ticks from `from` on, `from` itself included: a run at the very start sees the backup
    // made then, as at any other instant.
    let just_before = setup
        .from
        .checked_sub(jiff::SignedDuration::from_nanos(1))
        .unwrap_or(setup.from);
    let mut backup_at = next(setup.cadence, tz, just_before);
    let mut run_at = next(setup.runs, tz, just_before);
    loop {
        let b = backup_at.filter(|t| *t < setup.until);
        let r = run_at.filter(|t| *t < setup.until);
        match (b, r) {
            (None, None) => break,
            (Some(at), run) if run.is_none_or(|r| at <= r) => {
                if made + setup.groups > MAX_BACKUPS {
                    return Err(format!(
                        "the simulation made {made} backups by {at} and stopped: more than {MAX_BACKUPS}; simulate a shorter period (--for) or a sparser cadence (--cadence)"
                    ));
                }
                for g in 0..setup.groups {
                    let group = group_name(g, setup.groups);
                    // The instant in UTC: unique even in the hour an autumn change repeats.
                    let id = format!("{group}-{}", at.strftime("%Y%m%dT%H%M%SZ"));
                    let mut backup = Backup::new(&id, &group, at, Status::Complete);
                    backup.name = Some(id.as_str().into());
                    held.push(backup);
                }
                made += setup.groups;
                if held.len() > max_held {
                    max_held = held.len();
                    max_held_at = Some(at);
                }
                backup_at = next(setup.cadence, tz, at);
            }
            (_, Some(at)) => {
                runs += 1;
                let checks = Checks {
                    grace: setup.grace.map(|g| (g, &since)),
                    ..Checks::default()
                };
                let (plan, _, _) = runner::guarded_plan(policy, &held, at, tz, &checks);
                if setup.grace.is_some() {
                    let mut next = crate::plan::DoomedSince::new();
                    for d in plan
                        .decisions
                        .iter()
                        .filter(|d| matches!(d.action, Action::Delete | Action::Wait))
                    {
                        let (group, id) = (d.backup.group.as_str(), d.backup.id.as_str());
                        let first = since.get(group).and_then(|ids| ids.get(id)).copied();
                        next.entry(group.to_string())
                            .or_default()
                            .insert(id.to_string(), first.unwrap_or(at));
                    }
                    since = next;
                }
                let doomed: HashSet<Text> = match plan.blocked {
                    Some(_) => {
                        blocked += 1;
                        HashSet::new()
                    }
                    None => plan
                        .decisions
                        .iter()
                        .filter(|d| d.action == Action::Delete)
                        .map(|d| d.backup.id.clone())
                        .collect(),
                };
                last_run = Some(at);
                deleted += doomed.len();
                let (gone, stay): (Vec<Backup>, Vec<Backup>) =
                    held.drain(..).partition(|b| doomed.contains(&b.id));
                held = stay;
                if setup.timeline {
                    timeline.extend(gone.into_iter().map(|backup| Fate {
                        backup,
                        deleted_at: Some(at),
                        reasons: Vec::new(),
                    }));
                }
                counts.push((at, held.len()));
                if held.len() > high {
                    high = held.len();
                    last_growth = Some(at);
                }
                run_at = next(setup.runs, tz, at);
            }
            (Some(_), None) => unreachable!("handled by the first arm"),
        }
    }
    let end = setup.until;
    let one_group = group_name(0, setup.groups);
    let mut ages: Vec<Timestamp> = held
        .iter()
        .filter(|b| b.group == one_group)
        .map(|b| b.created_at)
        .collect();
    ages.sort_by(|a, b| b.cmp(a));
    let period = end.duration_since(setup.from).as_secs_f64();
    let still_growing = last_growth
        .is_some_and(|at: Timestamp| end.duration_since(at).as_secs_f64() < period / 10.0);
    // Why what is held is kept: the rules at the last run, over what it left.
    if let Some(at) = last_run {
        let checks = Checks {
            grace: setup.grace.map(|g| (g, &since)),
            ..Checks::default()
        };
        let (plan, _, _) = runner::guarded_plan(policy, &held, at, tz, &checks);
        timeline.extend(plan.decisions.iter().map(|d| Fate {
            backup: d.backup.clone(),
            deleted_at: None,
            reasons: d.reasons().iter().map(ToString::to_string).collect(),
        }));
    } else {
        timeline.extend(held.iter().map(|b| Fate {
            backup: b.clone(),
            deleted_at: None,
            reasons: Vec::new(),
        }));
    }
    timeline.sort_by(|a, b| {
        (a.backup.group.as_str(), a.backup.created_at)
            .cmp(&(b.backup.group.as_str(), b.backup.created_at))
    });
    Ok(Simulation {
        policy: policy.name.clone(),
        timezone: tz.iana_name().unwrap_or("UTC").to_string(),
        cadence: setup.cadence.text.clone(),
        runs_on: setup.runs.text.clone(),
        from: setup.from,
        until: end,
        groups: setup.groups,
        backups_made: made,
        runs,
        blocked_runs: blocked,
        deleted,
        max_held,
        max_held_at,
        held_at_end: held.len(),
        ages_at_end: ages.iter().map(|at| age(end.duration_since(*at))).collect(),
        oldest_at_end: ages.last().copied(),
        last_growth,
        still_growing,
        counts,
        timeline,
    })
}

/// An age in the unit a person would say it in: `5h`, `3d`, `2w`, `4mo`, `2y` (rounded).
pub fn age(span: jiff::SignedDuration) -> String {
    let hours = span.as_secs_f64() / 3600.0;
    let days = hours / 24.0;
    if hours < 36.0 {
        format!("{}h", hours.round() as i64)
    } else if days < 14.0 {
        format!("{}d", days.round() as i64)
    } else if days < 60.0 {
        format!("{}w", (days / 7.0).round() as i64)
    } else if days < 730.0 {
        format!("{}mo", (days / 30.44).round() as i64)
    } else {
        format!("{}y", (days / 365.25).round() as i64)
    }
}

/// `2d 2d 3w` as `2d×2 3w`.
fn runs_of(labels: &[String]) -> String {
    let mut out: Vec<(String, usize)> = Vec::new();
    for label in labels {
        match out.last_mut() {
            Some((last, n)) if last == label => *n += 1,
            _ => out.push((label.clone(), 1)),
        }
    }
    out.iter()
        .map(|(label, n)| match n {
            1 => label.clone(),
            n => format!("{label}×{n}"),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// What `simulate` prints in a terminal.
pub fn text(out: &mut dyn std::io::Write, s: &Simulation, zone: &TimeZone) -> std::io::Result<()> {
    let local = |at: Timestamp| {
        at.to_zoned(zone.clone())
            .strftime("%Y-%m-%d %H:%M %Z")
            .to_string()
    };
    let groups = match s.groups {
        1 => "1 group".to_string(),
        n => format!("{n} groups"),
    };
    writeln!(
        out,
        "simulate {} (zone {}): backups `{}`, runs `{}`, {} to {}, {groups}",
        s.policy,
        s.timezone,
        s.cadence,
        s.runs_on,
        local(s.from),
        local(s.until)
    )?;
    writeln!(
        out,
        "  made {} backups; {} runs deleted {} ({} runs blocked by a guard)",
        s.backups_made, s.runs, s.deleted, s.blocked_runs
    )?;
    let when = s
        .max_held_at
        .map(|at| format!(" (first at {})", local(at)))
        .unwrap_or_default();
    writeln!(
        out,
        "  held at most {} at once{when}; {} at the end",
        s.max_held, s.held_at_end
    )?;
    writeln!(
        out,
        "  ages at the end (one group): {}",
        runs_of(&s.ages_at_end)
    )?;
    if let Some(oldest) = s.oldest_at_end {
        writeln!(
            out,
            "  oldest at the end: {} ({} old)",
            local(oldest),
            age(s.until.duration_since(oldest))
        )?;
    }
    match (s.last_growth, s.still_growing) {
        (None, _) => writeln!(out, "  the count never grew"),
        (Some(at), false) => writeln!(
            out,
            "  the count stopped growing after {} ({}): steady from then on",
            age(at.duration_since(s.from)),
            local(at)
        ),
        (Some(at), true) => writeln!(
            out,
            "  the count was still growing at {} (in the last tenth of the period): simulate longer (--for) to see where it settles",
            local(at)
        ),
    }
}
