//! `retentiond approve`: a person's approval of a policy version, recorded in the journal.

use super::shared::{
    Failure, Outcome, config_policies, open_journal, require_config, select_policies, write_failure,
};
use super::shared::{list_policies, open_providers};
use super::{Cli, Format};
use crate::exit;
use crate::policy::Policy;
use crate::runner;
use crate::visible::Visible;
use jiff::Timestamp;
use std::io::IsTerminal;
use std::io::Write;

/// `approve --list`: the journal's approvals, newest first (of the named policies only, when
/// some are named).
pub(super) fn list(cli: &Cli, names: &[String], format: Format, out: &mut dyn Write) -> Outcome {
    let config = require_config(cli, "")?;
    let journal = crate::journal::Journal::open_config_read_only(&config)
        .map_err(|e| Failure::new(exit::JOURNAL, e.to_string()))?;
    let mut approvals = match &journal {
        Some(journal) => journal
            .approvals(None)
            .map_err(|e| Failure::new(exit::JOURNAL, e.to_string()))?,
        None => Vec::new(),
    };
    approvals.retain(|a| names.is_empty() || names.contains(&a.policy));
    match format {
        Format::Json => {
            serde_json::to_writer_pretty(&mut *out, &serde_json::json!({ "approvals": approvals }))
                .map_err(|e| write_failure(e.into()))?;
            writeln!(out).map_err(write_failure)?;
        }
        Format::Text if approvals.is_empty() => {
            writeln!(out, "no approvals in the journal").map_err(write_failure)?;
        }
        Format::Text => {
            for a in &approvals {
                writeln!(
                    out,
                    "{}  policy {} version {} approved by {}  ({})",
                    a.at,
                    a.policy,
                    &a.fingerprint[..a.fingerprint.len().min(12)],
                    a.by.as_deref().unwrap_or("(unknown)"),
                    a.policy_file
                )
                .map_err(write_failure)?;
            }
        }
    }
    Ok(exit::OK)
}

/// Records a person's approval of each named policy's current version in the journal.
pub(super) fn approve(cli: &Cli, names: &[String], out: &mut dyn Write) -> Outcome {
    let config = require_config(cli, "")?;
    let all = config_policies(&config)?;
    let policies = select_policies(all.clone(), names)?;
    let journal = open_journal(&config)?;
    // A person at a terminal sees what the approved versions would delete now, and says yes
    // once; scripts and units (no terminal) approve as told.
    if std::io::stdin().is_terminal() && std::io::stdout().is_terminal() {
        let shown = impact(&config, &all, &policies);
        write!(out, "{shown}approve {}? [y/N] ", count(policies.len())).map_err(write_failure)?;
        out.flush().map_err(write_failure)?;
        let mut answer = String::new();
        let _ = std::io::stdin().read_line(&mut answer);
        if !matches!(answer.trim(), "y" | "Y" | "yes" | "Yes") {
            writeln!(out, "nothing was approved").map_err(write_failure)?;
            return Ok(exit::OK);
        }
    }
    let by = super::shared::who(None);
    for policy in &policies {
        let fingerprint = &policy.fingerprint[..policy.fingerprint.len().min(12)];
        let new = journal
            .approve(policy, by.as_deref())
            .map_err(|e| Failure::new(exit::JOURNAL, e.to_string()))?;
        let already = if new {
            ""
        } else {
            " (it was approved already)"
        };
        writeln!(
            out,
            "approved policy {} as in {} (fingerprint {fingerprint}){already}: its runs may delete more than guard.unapproved_max_delete; a change to the policy needs a new approval",
            policy.name,
            tidy(&policy.file).display()
        )
        .map_err(write_failure)?;
    }
    Ok(exit::OK)
}

fn count(n: usize) -> String {
    match n {
        1 => "this policy".to_string(),
        n => format!("these {n} policies"),
    }
}

/// What each policy, once approved, would delete now: per policy the count and share of its
/// complete backups, and the newest and oldest it deletes (from a fresh listing).
fn impact(config: &crate::policy::Config, all: &[Policy], policies: &[Policy]) -> String {
    use std::fmt::Write as _;
    let providers = open_providers(policies, config);
    let listings = list_policies(&providers);
    let places = config.places();
    let mut shown = String::new();
    for (policy, listing) in policies.iter().zip(&listings) {
        let version = &policy.fingerprint[..policy.fingerprint.len().min(12)];
        let _ = write!(shown, "policy {} (version {version}) ", policy.name);
        let backups = match listing {
            Ok(backups) => backups,
            Err(e) => {
                let _ = writeln!(shown, "cannot be planned now: {e}");
                continue;
            }
        };
        let checks = runner::Checks {
            approved: Some(true),
            policies: all,
            places: Some(&places),
            ..runner::Checks::default()
        };
        let tz = runner::zone(policy, Some(config));
        let (plan, _, _) = runner::guarded_plan(policy, backups, Timestamp::now(), &tz, &checks);
        let complete = plan
            .decisions
            .iter()
            .filter(|d| d.backup.status == crate::model::Status::Complete)
            .count();
        let deleted: Vec<_> = plan.deletions().collect();
        let share = deleted.len() as f64 * 100.0 / complete.max(1) as f64;
        let _ = write!(
            shown,
            "would delete {} of {complete} complete backups now ({share:.0}%)",
            deleted.len()
        );
        let name =
            |b: &crate::model::Backup| Visible(b.name.as_deref().unwrap_or(&b.id)).to_string();
        let newest = deleted.iter().max_by_key(|b| b.created_at);
        let oldest = deleted.iter().min_by_key(|b| b.created_at);
        if let (Some(newest), Some(oldest)) = (newest, oldest) {
            let _ = write!(
                shown,
                ": the newest {} ({}), the oldest {} ({})",
                name(newest),
                newest.created_at,
                name(oldest),
                oldest.created_at
            );
        }
        match &plan.blocked {
            Some(blocked) => {
                let _ = writeln!(shown, "; still blocked: {}", Visible(blocked));
            }
            None => shown.push('\n'),
        }
    }
    shown
}

/// `path` as a person writes it: without `.` and with `dir/..` folded away (for showing only;
/// the file is read by the path as given).
fn tidy(path: &std::path::Path) -> std::path::PathBuf {
    use std::path::Component;
    let mut out: Vec<Component> = Vec::new();
    for part in path.components() {
        match part {
            Component::CurDir => {}
            Component::ParentDir if matches!(out.last(), Some(Component::Normal(_))) => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out.iter().collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn paths_are_shown_without_dot_dot() {
        let tidy = |p: &str| super::tidy(std::path::Path::new(p)).display().to_string();
        assert_eq!(
            tidy("/etc/retentiond/../policies/./p.yaml"),
            "/etc/policies/p.yaml"
        );
        assert_eq!(tidy("../x/p.yaml"), "../x/p.yaml");
        assert_eq!(tidy("policies/p.yaml"), "policies/p.yaml");
    }
}
