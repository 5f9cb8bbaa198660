//! Output formats: the plan JSON of DESIGN.md, the readable plan table, listings. Writes to
//! any `io::Write`; streams, so a million-backup plan is never held as a JSON tree.

use crate::executor::Execution;
use crate::model::Backup;
use crate::plan::{Action, Decision, PolicyPlan};
use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};
use std::io::{self, Write};

/// What one policy came to in a `plan` or `run`.
pub struct PolicyReport<'a> {
    pub name: String,
    pub account: String,
    pub plan: Option<PolicyPlan<'a>>,
    /// The listing failed: nothing was planned or deleted.
    pub error: Option<String>,
    /// `run` only: what was deleted, or why nothing was.
    pub execution: Option<Execution>,
    pub dry_run: Option<String>,
}

impl Serialize for Decision<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let b = self.backup;
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("id", &b.id)?;
        map.serialize_entry("group", &b.group)?;
        map.serialize_entry("created_at", &b.created_at)?;
        map.serialize_entry("status", &b.status)?;
        if let Some(name) = &b.name {
            map.serialize_entry("name", name)?;
        }
        map.serialize_entry("action", &self.action)?;
        map.serialize_entry("reasons", &self.reasons)?;
        if let Some(note) = &self.note {
            map.serialize_entry("note", note)?;
        }
        map.end()
    }
}

impl Serialize for PolicyReport<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("name", &self.name)?;
        map.serialize_entry("account", &self.account)?;
        if let Some(plan) = &self.plan {
            map.serialize_entry("mode", &plan.mode)?;
            map.serialize_entry("timezone", plan.timezone.iana_name().unwrap_or("UTC"))?;
            map.serialize_entry("evaluated_at", &plan.evaluated_at)?;
            map.serialize_entry("blocked", &plan.blocked)?;
            map.serialize_entry("warnings", &plan.warnings)?;
            map.serialize_entry("summary", &plan.summary)?;
            map.serialize_entry("backups", &plan.decisions)?;
        }
        if let Some(error) = &self.error {
            map.serialize_entry("error", error)?;
        }
        if let Some(execution) = &self.execution {
            map.serialize_entry("deleted", &execution.deleted)?;
            map.serialize_entry("failed", &execution.failed)?;
        }
        if let Some(reason) = &self.dry_run {
            map.serialize_entry("dry_run", reason)?;
        }
        map.end()
    }
}

/// `{"policies": [...]}`.
pub fn json(out: &mut dyn Write, reports: &[PolicyReport]) -> io::Result<()> {
    #[derive(Serialize)]
    struct Doc<'r, 'a> {
        policies: &'r [PolicyReport<'a>],
    }
    serde_json::to_writer_pretty(&mut *out, &Doc { policies: reports })?;
    writeln!(out)
}

fn local_time(plan: &PolicyPlan, backup: &Backup) -> String {
    let zoned = backup.created_at.to_zoned(plan.timezone.clone());
    zoned.strftime("%Y-%m-%d %H:%M %Z").to_string()
}

fn describe(d: &Decision) -> String {
    let reasons: Vec<String> = d.reasons.iter().map(ToString::to_string).collect();
    match (&d.note, reasons.is_empty()) {
        (Some(note), true) => note.clone(),
        (Some(note), false) => format!("{} ({note})", reasons.join(", ")),
        (None, false) => reasons.join(", "),
        (None, true) if d.action == Action::Delete => "no rule keeps it".to_string(),
        (None, true) => String::new(),
    }
}

fn header(out: &mut dyn Write, report: &PolicyReport) -> io::Result<()> {
    let Some(plan) = &report.plan else {
        writeln!(out, "policy {} (account {})", report.name, report.account)?;
        return writeln!(
            out,
            "  ERROR: {}; nothing was deleted",
            report.error.as_deref().unwrap_or("no plan")
        );
    };
    let zone = plan.timezone.iana_name().unwrap_or("UTC");
    let at = plan
        .evaluated_at
        .to_zoned(plan.timezone.clone())
        .strftime("%Y-%m-%d %H:%M:%S %Z");
    writeln!(
        out,
        "policy {} (account {}, mode {}, zone {zone}, evaluated at {at})",
        plan.name,
        plan.account,
        plan.mode.as_str()
    )?;
    if let Some(blocked) = &plan.blocked {
        writeln!(out, "  BLOCKED, nothing will be deleted: {blocked}")?;
    }
    for warning in &plan.warnings {
        writeln!(out, "  WARNING: {warning}")?;
    }
    Ok(())
}

fn summary_line(out: &mut dyn Write, plan: &PolicyPlan) -> io::Result<()> {
    let s = plan.summary;
    let groups = if s.groups == 1 { "group" } else { "groups" };
    writeln!(
        out,
        "  summary: keep {}, delete {}, ignore {} in {} {groups}",
        s.keep, s.delete, s.ignore, s.groups
    )
}

/// The readable plan: a table per group (date, name, action, reasons), then a summary.
pub fn plan_text(out: &mut dyn Write, reports: &[PolicyReport]) -> io::Result<()> {
    for (i, report) in reports.iter().enumerate() {
        if i > 0 {
            writeln!(out)?;
        }
        header(out, report)?;
        let Some(plan) = &report.plan else { continue };
        let width = plan
            .decisions
            .iter()
            .map(|d| {
                d.backup
                    .name
                    .as_deref()
                    .unwrap_or(&d.backup.id)
                    .chars()
                    .count()
            })
            .max()
            .unwrap_or(0)
            .min(60);
        let mut group: Option<&str> = None;
        for d in &plan.decisions {
            if group != Some(d.backup.group.as_str()) {
                group = Some(&d.backup.group);
                writeln!(out, "  group {}", d.backup.group)?;
            }
            let name = d.backup.name.as_deref().unwrap_or(&d.backup.id);
            writeln!(
                out,
                "    {:<22}  {name:<width$}  {:<6}  {}",
                local_time(plan, d.backup),
                d.action.as_str(),
                describe(d)
            )?;
        }
        summary_line(out, plan)?;
    }
    Ok(())
}

/// What `run` did: per policy the summary and every deletion or failure.
pub fn run_text(out: &mut dyn Write, reports: &[PolicyReport]) -> io::Result<()> {
    for report in reports {
        header(out, report)?;
        let Some(plan) = &report.plan else { continue };
        summary_line(out, plan)?;
        if let Some(reason) = &report.dry_run {
            writeln!(
                out,
                "  dry-run ({reason}): nothing deleted; would delete {}",
                plan.summary.delete
            )?;
        }
        if let Some(execution) = &report.execution {
            for id in &execution.deleted {
                writeln!(out, "  deleted {id}")?;
            }
            for failed in &execution.failed {
                writeln!(out, "  FAILED to delete {}: {}", failed.id, failed.error)?;
            }
            if plan.blocked.is_none() {
                writeln!(
                    out,
                    "  deleted {} of {}",
                    execution.deleted.len(),
                    plan.summary.delete
                )?;
            }
        }
    }
    Ok(())
}

/// A listing as a table, one backup a line.
pub fn listing_text(out: &mut dyn Write, backups: &[Backup]) -> io::Result<()> {
    for b in backups {
        let id = match b.name.as_deref() {
            Some(name) if name != b.id => format!("{name}  id {}", b.id),
            _ => b.id.clone(),
        };
        writeln!(
            out,
            "{}  {:<12}  {}  {id}{}",
            b.created_at,
            b.status.as_str(),
            b.group,
            if b.live { "  (live)" } else { "" }
        )?;
    }
    writeln!(out, "{} backups", backups.len())
}
