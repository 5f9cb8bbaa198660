//! `retentiond approve`: a person's approval of a policy version, recorded in the journal.

use super::shared::{
    Failure, Outcome, config_policies, open_journal, require_config, select_policies, write_failure,
};
use super::{Cli, Format};
use crate::exit;
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
    let policies = select_policies(config_policies(&config)?, names)?;
    let journal = open_journal(&config)?;
    let by = std::env::var("SUDO_USER")
        .or_else(|_| std::env::var("USER"))
        .ok();
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
