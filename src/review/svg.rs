//! A self-contained SVG timeline of what a plan or a simulation keeps: x is time in the
//! policy's zone, one row per group, a mark per backup coloured by the rule that kept it,
//! deleted ones faded, a legend and an axis. No script, no external font or style sheet, so it
//! opens in a browser and renders on git forges. Each mark has a class (`keep daily`,
//! `delete`, `ignore`) and a `<title>` (the backup and why). A row of more than 5,000 marks
//! keeps every kept mark but only one deleted and one ignored mark per pixel column.

use crate::plan::PolicyPlan;
use crate::review::simulate::Simulation;
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};
use std::fmt::Write;

/// What became of one backup.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fate {
    /// Kept, for these reasons (the first colours the mark).
    Kept(Vec<String>),
    Deleted,
    /// Doomed, deleted once the grace period has passed.
    Waiting,
    Ignored,
}

#[derive(Clone, Debug)]
pub struct Mark {
    pub at: Timestamp,
    pub label: String,
    pub fate: Fate,
}

#[derive(Clone, Debug)]
pub struct Row {
    pub label: String,
    pub marks: Vec<Mark>,
}

/// One policy's rows, under a title; a simulation adds the count held over time.
#[derive(Clone, Debug)]
pub struct Section {
    pub title: String,
    /// Why the policy deletes nothing though marks say `delete`: blocked, or dry-run.
    pub note: Option<String>,
    pub rows: Vec<Row>,
    pub counts: Vec<(Timestamp, usize)>,
}

/// The sections of a plan: one per policy, a row per group.
pub fn plan_sections(plans: &[&PolicyPlan]) -> Vec<Section> {
    plans
        .iter()
        .map(|plan| {
            let mut rows: Vec<Row> = Vec::new();
            for d in &plan.decisions {
                if rows.last().is_none_or(|r| r.label != d.backup.group) {
                    rows.push(Row {
                        label: d.backup.group.to_string(),
                        marks: Vec::new(),
                    });
                }
                let fate = match d.action {
                    crate::plan::Action::Keep => {
                        let mut reasons: Vec<String> =
                            d.reasons().iter().map(ToString::to_string).collect();
                        // A hold colours the mark whatever rule also keeps it.
                        reasons.sort_by_key(|r| colour(r).1 != "held");
                        Fate::Kept(reasons)
                    }
                    crate::plan::Action::Delete => Fate::Deleted,
                    crate::plan::Action::Wait => Fate::Waiting,
                    crate::plan::Action::Ignore => Fate::Ignored,
                };
                let name = d.backup.name.as_deref().unwrap_or(&d.backup.id);
                rows.last_mut().expect("pushed above").marks.push(Mark {
                    at: d.backup.created_at,
                    label: format!("{name}: {} {}", d.action.as_str(), d.explain()),
                    fate,
                });
            }
            let note = match (&plan.blocked, plan.mode) {
                (Some(blocked), _) => Some(format!("BLOCKED, nothing is deleted: {blocked}")),
                (None, crate::policy::Mode::DryRun) => Some(
                    "dry-run (mode): nothing is deleted; the marks say what enforce would do"
                        .into(),
                ),
                (None, crate::policy::Mode::Enforce) => None,
            };
            let waiting = match plan.summary.waiting {
                0 => String::new(),
                n => format!(", waiting {n}"),
            };
            Section {
                title: format!(
                    "policy {} — keep {}, delete {}{waiting}, ignore {}",
                    plan.name, plan.summary.keep, plan.summary.delete, plan.summary.ignore
                ),
                note,
                rows,
                counts: Vec::new(),
            }
        })
        .collect()
}

/// The section of a simulation: a row per group, and the count held after each run.
pub fn simulation_section(s: &Simulation) -> Section {
    let mut rows: Vec<Row> = Vec::new();
    for fate in &s.timeline {
        let b = &fate.backup;
        if rows.last().is_none_or(|r| r.label != b.group) {
            rows.push(Row {
                label: b.group.to_string(),
                marks: Vec::new(),
            });
        }
        let (fate, why) = match fate.deleted_at {
            Some(at) => (Fate::Deleted, format!("deleted at {at}")),
            None => (
                Fate::Kept(fate.reasons.clone()),
                format!("held: {}", fate.reasons.join(", ")),
            ),
        };
        rows.last_mut().expect("pushed above").marks.push(Mark {
            at: b.created_at,
            label: format!("{}: {why}", b.name.as_deref().unwrap_or(&b.id)),
            fate,
        });
    }
    Section {
        title: format!(
            "simulate {} — backups `{}`, runs `{}`: at most {} held at once, {} at the end",
            s.policy, s.cadence, s.runs_on, s.max_held, s.held_at_end
        ),
        note: Some(format!(
            "at most {} at once: a backup counts from when it is made, before the run that may delete it; the line counts what each run leaves",
            s.max_held
        )),
        rows,
        counts: s.counts.clone(),
    }
}

/// The colour of a rule (the first reason of a kept backup); `oldest daily` is the daily
/// rule's, which kept it with its budget left at the group's oldest backup.
fn colour(reason: &str) -> (&'static str, &'static str) {
    let reason = reason.strip_prefix("oldest ").unwrap_or(reason);
    let rule = reason.split_whitespace().next().unwrap_or("");
    match rule {
        "last" => ("#1f77b4", "last"),
        "hourly" => ("#17becf", "hourly"),
        "daily" => ("#2ca02c", "daily"),
        "weekly" => ("#8c8c00", "weekly"),
        "monthly" => ("#ff7f0e", "monthly"),
        "yearly" => ("#d62728", "yearly"),
        "within" => ("#9467bd", "within"),
        "tag" => ("#8c564b", "tag"),
        "protected" => ("#e377c2", "protected"),
        "held:" | "locked" | "legal" => ("#000000", "held"),
        _ => ("#555555", "guard"),
    }
}

/// A row label that fits the margin: long ones shortened in the middle (the two ends tell
/// groups apart), the whole label in a tooltip.
fn row_label(label: &str) -> String {
    const FITS: usize = 26;
    let chars: Vec<char> = label.chars().collect();
    if chars.len() <= FITS {
        return escape(label);
    }
    let head: String = chars[..12].iter().collect();
    let tail: String = chars[chars.len() - 12..].iter().collect();
    format!(
        "{}…{}<title>{}</title>",
        escape(&head),
        escape(&tail),
        escape(label)
    )
}

/// Where an instant goes across: linear for a short period; for a long one the age is read
/// on a logarithmic scale from the newest instant, so that the last days and weeks (what a
/// reviewer wants to see go) get room of their own and years fold to the left.
struct Axis {
    from: Timestamp,
    until: Timestamp,
    log: bool,
}

/// The scale of ages on a logarithmic axis: a week, which keeps the daily marks of the last
/// 30 days of a two-year plan at least 4 px apart (at most a few pixels more are possible
/// across 810 px for any scale that still shows the two years).
const AGE_UNIT: f64 = 7.0 * 86_400.0;

impl Axis {
    fn new(from: Timestamp, until: Timestamp) -> Axis {
        let days = until.duration_since(from).as_secs_f64() / 86_400.0;
        Axis {
            from,
            until,
            log: days > 60.0,
        }
    }

    fn x(&self, at: Timestamp) -> f64 {
        let width = WIDTH - LEFT - RIGHT;
        let span = self.until.duration_since(self.from).as_secs_f64().max(1.0);
        if !self.log {
            return LEFT + width * (at.duration_since(self.from).as_secs_f64() / span);
        }
        let age = self.until.duration_since(at).as_secs_f64().max(0.0);
        let scale = (1.0 + span / AGE_UNIT).ln();
        LEFT + width * (1.0 - (1.0 + age / AGE_UNIT).ln() / scale)
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A doomed backup that waits for its grace period: a red ring.
const WAITING: &str = r##"r="3.5" fill="#fff" stroke="#d62728""##;

const WIDTH: f64 = 1000.0;
const LEFT: f64 = 170.0;
const RIGHT: f64 = 20.0;
const ROW: f64 = 26.0;
const COUNTS: f64 = 70.0;
/// Marks in a row beyond which deleted and ignored ones are thinned to one per pixel column.
pub const DENSE_ROW: usize = 5_000;

/// Axis ticks between `from` and `until` in `zone`: days, weeks, months or years, whichever
/// gives a readable number of labels.
fn ticks(
    from: Timestamp,
    until: Timestamp,
    zone: &TimeZone,
    log: bool,
) -> Vec<(Timestamp, String)> {
    let mut out = calendar_ticks(from, until, zone);
    if log {
        // The recent end has room on a logarithmic axis: weeks and days there.
        let recent = until
            .checked_sub(jiff::SignedDuration::from_hours(24 * 56))
            .unwrap_or(from)
            .max(from);
        out.extend(calendar_ticks(recent, until, zone));
        let week_ago = until
            .checked_sub(jiff::SignedDuration::from_hours(24 * 8))
            .unwrap_or(from)
            .max(from);
        out.extend(calendar_ticks(week_ago, until, zone));
    }
    out.sort_by_key(|(at, _)| *at);
    out.dedup_by_key(|(at, _)| *at);
    out
}

/// Ticks at least 60 px apart, the newest kept first (on a logarithmic axis old ones crowd).
fn spaced(
    ticks: Vec<(Timestamp, String)>,
    x: &impl Fn(Timestamp) -> f64,
) -> Vec<(Timestamp, String)> {
    let mut kept: Vec<(Timestamp, String)> = Vec::new();
    for tick in ticks.into_iter().rev() {
        if kept.last().is_none_or(|last| x(last.0) - x(tick.0) >= 60.0) {
            kept.push(tick);
        }
    }
    kept.reverse();
    kept
}

fn calendar_ticks(from: Timestamp, until: Timestamp, zone: &TimeZone) -> Vec<(Timestamp, String)> {
    let days = until.duration_since(from).as_secs_f64() / 86_400.0;
    let start = from.to_zoned(zone.clone()).date();
    let (first, step, format) = if days > 4.0 * 365.0 {
        (jiff::civil::date(start.year(), 1, 1), 1.year(), "%Y")
    } else if days > 120.0 {
        let months = ((days / 30.0) / 10.0).ceil().max(1.0) as i64;
        (start.first_of_month(), months.months(), "%Y-%m")
    } else if days > 20.0 {
        (start, 7.days(), "%b %d")
    } else {
        (start, 1.day(), "%b %d")
    };
    let mut out = Vec::new();
    let mut date = first;
    while let Ok(at) = date.to_zoned(zone.clone()).map(|z| z.timestamp()) {
        if at > until {
            break;
        }
        if at >= from {
            out.push((at, date.strftime(format).to_string()));
        }
        match date.checked_add(step) {
            Ok(next) => date = next,
            Err(_) => break,
        }
        if out.len() > 60 {
            break;
        }
    }
    out
}

/// The whole picture.
pub fn render(title: &str, sections: &[Section], zone: &TimeZone) -> String {
    let all = sections
        .iter()
        .flat_map(|s| s.rows.iter().flat_map(|r| r.marks.iter().map(|m| m.at)))
        .chain(sections.iter().flat_map(|s| s.counts.iter().map(|c| c.0)));
    let (mut from, mut until) = (Timestamp::MAX, Timestamp::MIN);
    for at in all {
        from = from.min(at);
        until = until.max(at);
    }
    if from > until {
        (from, until) = (Timestamp::UNIX_EPOCH, Timestamp::UNIX_EPOCH);
    }
    // A little room on both sides, and at least a day; on a logarithmic axis the newest end
    // gets a few hours only (a day there is a fair share of the width).
    let span = until.duration_since(from).as_secs_f64().max(86_400.0);
    let pad = jiff::SignedDuration::from_secs_f64(span * 0.02);
    let log = Axis::new(from, until).log;
    let right = match log {
        true => jiff::SignedDuration::from_hours(3),
        false => pad,
    };
    let (from, until) = (
        from.checked_sub(pad).unwrap_or(from),
        until.checked_add(right).unwrap_or(until),
    );
    let axis = Axis::new(from, until);
    let x = |at: Timestamp| axis.x(at);
    let mut body = String::new();
    let mut y = 40.0;
    let mut used: Vec<(&'static str, &'static str)> = Vec::new();
    let (mut any_deleted, mut any_ignored, mut any_waiting) = (false, false, false);
    let ticks = spaced(ticks(from, until, zone, axis.log), &x);
    for section in sections {
        let _ = writeln!(
            body,
            r#"<text x="10" y="{:.1}" font-size="14" font-weight="bold">{}</text>"#,
            y + 4.0,
            escape(&section.title)
        );
        y += 16.0;
        if let Some(note) = &section.note {
            let fill = match note.starts_with("BLOCKED") {
                true => "#c00",
                false => "#555",
            };
            // A long reason is cut to the width, whole in its tooltip.
            let shown: String = note.chars().take(150).collect();
            let (shown, whole) = match shown.len() < note.len() {
                true => (
                    format!("{}…", escape(&shown)),
                    format!("<title>{}</title>", escape(note)),
                ),
                false => (escape(note), String::new()),
            };
            let _ = writeln!(
                body,
                r##"<text class="note" x="10" y="{:.1}" font-size="12" fill="{fill}">{shown}{whole}</text>"##,
                y + 2.0
            );
            y += 16.0;
        }
        if !section.counts.is_empty() {
            let max = section.counts.iter().map(|c| c.1).max().unwrap_or(1).max(1) as f64;
            let top = y + 8.0;
            let points: Vec<String> = section
                .counts
                .iter()
                .map(|(at, n)| {
                    format!(
                        "{:.1},{:.1}",
                        x(*at),
                        top + COUNTS - COUNTS * (*n as f64 / max)
                    )
                })
                .collect();
            // A scale: the count at the top and at the bottom of the line's band.
            let _ = writeln!(
                body,
                r##"<text x="10" y="{:.1}" font-size="12">held after each run</text><g class="scale" font-size="11" text-anchor="end"><text x="{:.1}" y="{:.1}">{max}</text><text x="{:.1}" y="{:.1}">0</text></g><line x1="{LEFT}" y1="{top:.1}" x2="{:.1}" y2="{top:.1}" stroke="#eee"/><line x1="{LEFT}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#ccc"/><polyline class="held" fill="none" stroke="#1f77b4" stroke-width="1.5" points="{}"/>"##,
                top + COUNTS / 2.0,
                LEFT - 6.0,
                top + 4.0,
                LEFT - 6.0,
                top + COUNTS + 4.0,
                WIDTH - RIGHT,
                top + COUNTS,
                WIDTH - RIGHT,
                top + COUNTS,
                points.join(" ")
            );
            y += COUNTS + 16.0;
        }
        for row in &section.rows {
            let mid = y + ROW / 2.0;
            let _ = writeln!(
                body,
                r##"<g class="row"><text x="10" y="{:.1}" font-size="12">{}</text><line x1="{LEFT}" y1="{mid:.1}" x2="{:.1}" y2="{mid:.1}" stroke="#eee"/>"##,
                mid + 4.0,
                row_label(&row.label),
                WIDTH - RIGHT
            );
            // Deleted and ignored first, so kept marks are drawn on top.
            let mut marks: Vec<&Mark> = row.marks.iter().collect();
            marks.sort_by_key(|m| matches!(m.fate, Fate::Kept(_)));
            // A row of many thousands: one faded mark per pixel column is all the eye can
            // see (kept marks are always drawn, each with its title).
            let dense = marks.len() > DENSE_ROW;
            let mut columns = std::collections::HashSet::new();
            if dense {
                marks.retain(|m| {
                    matches!(m.fate, Fate::Kept(_))
                        || columns.insert((x(m.at) as i64, std::mem::discriminant(&m.fate)))
                });
            }
            for m in marks {
                let (class, circle) = match &m.fate {
                    Fate::Kept(reasons) => {
                        let (fill, name) = colour(reasons.first().map_or("", String::as_str));
                        if !used.contains(&(fill, name)) {
                            used.push((fill, name));
                        }
                        (format!("keep {name}"), format!(r#"r="4.5" fill="{fill}""#))
                    }
                    Fate::Deleted => {
                        any_deleted = true;
                        (
                            "delete".to_string(),
                            r##"r="3" fill="#999" fill-opacity="0.35""##.to_string(),
                        )
                    }
                    Fate::Waiting => {
                        any_waiting = true;
                        ("wait".to_string(), WAITING.to_string())
                    }
                    Fate::Ignored => {
                        any_ignored = true;
                        (
                            "ignore".to_string(),
                            r##"r="3.5" fill="none" stroke="#999""##.to_string(),
                        )
                    }
                };
                let _ = writeln!(
                    body,
                    r#"<circle class="{class}" cx="{:.1}" cy="{mid:.1}" {circle}><title>{}</title></circle>"#,
                    x(m.at),
                    escape(&m.label)
                );
            }
            body.push_str("</g>\n");
            y += ROW;
        }
        y += 14.0;
    }
    // The axis.
    let _ = writeln!(
        body,
        r##"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#333"/>"##,
        WIDTH - RIGHT
    );
    for (at, label) in &ticks {
        let _ = writeln!(
            body,
            r##"<line x1="{0:.1}" y1="{y:.1}" x2="{0:.1}" y2="{1:.1}" stroke="#333"/><text x="{0:.1}" y="{2:.1}" font-size="11" text-anchor="middle">{3}</text>"##,
            x(*at),
            y + 5.0,
            y + 18.0,
            escape(label)
        );
    }
    y += 36.0;
    // The legend.
    let mut lx = 10.0;
    used.sort_by_key(|(_, name)| *name);
    let legend = used
        .iter()
        .map(|(fill, name)| (format!(r#"r="4.5" fill="{fill}""#), format!("kept: {name}")))
        .chain(any_deleted.then(|| {
            (
                r##"r="3" fill="#999" fill-opacity="0.35""##.to_string(),
                "deleted".to_string(),
            )
        }))
        .chain(any_waiting.then(|| (WAITING.to_string(), "deleted after grace".to_string())))
        .chain(any_ignored.then(|| {
            (
                r##"r="3.5" fill="none" stroke="#999""##.to_string(),
                "ignored".to_string(),
            )
        }));
    for (circle, name) in legend {
        let _ = writeln!(
            body,
            r#"<g class="legend"><circle cx="{:.1}" cy="{:.1}" {circle}/><text x="{:.1}" y="{:.1}" font-size="12">{}</text></g>"#,
            lx + 5.0,
            y - 4.0,
            lx + 14.0,
            y,
            escape(&name)
        );
        lx += 24.0 + 7.0 * name.len() as f64;
    }
    let height = y + 16.0;
    let zone_name = zone.iana_name().unwrap_or("UTC");
    format!(
        r##"<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height:.0}" viewBox="0 0 {WIDTH} {height:.0}" font-family="Helvetica, Arial, sans-serif">
<title>{}</title>
<rect width="100%" height="100%" fill="#fff"/>
<text x="10" y="20" font-size="16">{} <tspan font-size="12" fill="#555">(times in {})</tspan></text>
{body}</svg>
"##,
        escape(title),
        escape(title),
        escape(zone_name)
    )
}
