//! `retentiond apply PLAN.json`: delete exactly a reviewed plan's delete set, or refuse.

use super::run::run_policies;
use super::shared::{Failure, Outcome, config_policies, open_journal, require_config};
use super::{Cli, RunArgs};
use crate::exit;
use crate::journal::{RunEnd, RunStart};
use crate::plan;
use crate::policy::{self, Config, Policy};
use crate::render::PolicyReport;
use jiff::Timestamp;
use std::io::Write;
use std::path::Path;

pub(super) fn apply(cli: &Cli, file: &Path, settings: RunArgs, out: &mut dyn Write) -> Outcome {
    let reviewed = std::fs::read(file)
        .map_err(|e| format!("{}: cannot read the plan: {e}", file.display()))
        .and_then(|text| plan::file::parse(&text, file))
        .map_err(|e| Failure::new(exit::INVALID, e))?;
    let config = require_config(cli, "")?;
    let policies = config_policies(&config)?;
    let mut runnable = Vec::new();
    let mut reports = Vec::new();
    for entry in reviewed {
        let Some(policy) = policies.iter().find(|p| p.name == entry.name) else {
            let known: Vec<&str> = policies.iter().map(|p| p.name.as_str()).collect();
            reports.push(PolicyReport {
                name: entry.name.clone(),
                refused: vec![format!(
                    "policy {} of the plan is no longer among the config's policies{}",
                    entry.name,
                    policy::diag::did_you_mean(&entry.name, known.iter().copied())
                )],
                ..Default::default()
            });
            continue;
        };
        let mut report = PolicyReport::new(policy);
        if policy.fingerprint != entry.fingerprint {
            let what = match &entry.as_written {
                Some(before) => {
                    let mut changes = policy::definition::changes(before, &policy.as_written);
                    if changes.len() > 10 {
                        let more = changes.len() - 9;
                        changes.truncate(9);
                        changes.push(format!("{more} more"));
                    }
                    format!(": {}", changes.join(", "))
                }
                None => String::new(),
            };
            report.refused.push(format!(
                "policy {} in {} changed since the plan was made{}{what}; make and review a new plan",
                policy.name,
                policy.file.display(),
                entry
                    .evaluated_at
                    .map(|at| format!(" (evaluated at {at})"))
                    .unwrap_or_default()
            ));
            journal_refusal(&config, policy, &mut report);
            reports.push(report);
        } else if let Some(why) = entry.not_applicable {
            report.skipped = Some(format!("nothing to apply: {why}"));
            reports.push(report);
        } else if entry.deletions.is_empty() {
            report.skipped = Some("nothing to apply: the reviewed plan deletes nothing".into());
            reports.push(report);
        } else {
            runnable.push((policy.clone(), Some(entry.deletions)));
        }
    }
    run_policies(
        &config, &policies, runnable, reports, "apply", settings, out,
    )
}

/// Records an `apply` refused before anything was listed (the policy changed) as a run of
/// the policy ending `refused`, with the reason.
pub(super) fn journal_refusal(config: &Config, policy: &Policy, report: &mut PolicyReport) {
    let message = report.refused.join("; ");
    let recorded = open_journal(config)
        .map_err(|f| f.messages.join("; "))
        .and_then(|journal| {
            let start = RunStart {
                policy,
                command: "apply",
                dry_run: None,
                started_at: Timestamp::now(),
                overrides: Vec::new(),
            };
            let run = journal.begin_run(&start).map_err(|e| e.to_string())?;
            let end = RunEnd {
                outcome: "refused",
                message: Some(&message),
            };
            journal.finish_run(run, &end).map_err(|e| e.to_string())?;
            Ok(run)
        });
    match recorded {
        Ok(run) => {
            report.run_id = Some(run);
            report.outcome = Some("refused");
        }
        Err(e) => report.journal_error = Some(e),
    }
}
