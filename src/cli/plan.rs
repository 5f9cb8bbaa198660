//! `retentiond plan`: what each policy keeps and deletes, live or from a saved listing.

use super::shared::{
    DEFAULT_CONFIG, Failure, Outcome, config_path, config_policies, finish, instant, list_policies,
    open_providers, require_config, select_policies, terminal, write_failure,
};
use super::simulate::write_svg;
use super::{Cli, Format};
use crate::exit;
use crate::journal::{Journal, JournalError};
use crate::model::{Backup, Listing};
use crate::policy;
use crate::provider::ProviderError;
use crate::render::{self, PolicyReport};
use crate::review::svg;
use crate::runner;
use std::io::{self, Write};
use std::path::Path;

pub(super) struct PlanArgs<'a> {
    pub(super) names: &'a [String],
    pub(super) policies: Option<&'a Path>,
    pub(super) listing: Option<&'a Path>,
    pub(super) now: Option<&'a str>,
    pub(super) out: Option<&'a Path>,
    pub(super) accept_listing_drop: bool,
    pub(super) accept_max_delete: bool,
    pub(super) approve: bool,
    pub(super) summary: bool,
    pub(super) svg: Option<&'a Path>,
    pub(super) format: Format,
}

pub(super) fn plan_command(cli: &Cli, args: PlanArgs, out: &mut dyn Write) -> Outcome {
    let now = instant("--now", args.now)?;
    let offline = args.policies.is_some() && args.listing.is_some();
    // Offline, the config is still used when there is one (its default zone), but not
    // required.
    let config = match (config_path(cli), offline) {
        (None, true) => None,
        _ => Some(require_config(
            cli,
            "; or plan offline with --policies and --listing",
        )?),
    };
    let policies = match (args.policies, &config) {
        (Some(path), _) => {
            let (policies, mut errors) = policy::load_policies(&[path.to_path_buf()]);
            if let Some(config) = &config {
                errors.extend(policy::check_against_config(&policies, config));
            }
            if !errors.is_empty() {
                return Err(Failure::invalid(errors));
            }
            policies
        }
        (None, Some(config)) => config_policies(config)?,
        (None, None) => unreachable!("a config is loaded unless --policies is given"),
    };
    let all_policies = policies.clone();
    let places = config.as_ref().map(policy::Config::places);
    let policies = select_policies(policies, args.names)?;
    let saved = match args.listing {
        Some(path) => Some(Listing::read(path).map_err(|e| Failure::new(exit::INVALID, e))?),
        None => None,
    };
    let opened = match (&saved, &config) {
        (None, Some(config)) => open_providers(&policies, config),
        _ => Vec::new(),
    };
    let listings: Vec<Result<Vec<Backup>, ProviderError>> = match (&saved, &config) {
        (Some(_), _) => policies.iter().map(|_| Ok(Vec::new())).collect(),
        (None, Some(_)) => list_policies(&opened),
        (None, None) => unreachable!("a config is loaded unless --listing is given"),
    };
    // A live listing is checked against the journal's last one and the policy's approvals
    // (read only; plan writes nothing). A journal that cannot be read (another user's
    // state_dir) only loses those guards here.
    let mut unchecked = None;
    let mut not_checked = |e: JournalError| {
        unchecked = Some(format!(
            "the listing-drop guard was not checked: {e} (run and apply check it); nor was the approval of new and changed policies"
        ));
    };
    let (journal, journal_read) = match (&saved, &config) {
        (None, Some(config)) => match Journal::open_config_read_only(config) {
            Ok(journal) => (journal, true),
            Err(e) => {
                not_checked(e);
                (None, false)
            }
        },
        _ => (None, false),
    };
    let mut reports = Vec::new();
    for (i, (policy, listing)) in policies.iter().zip(&listings).enumerate() {
        let backups = match (&saved, listing) {
            (Some(saved), _) => Ok(saved.backups.as_slice()),
            (None, Ok(backups)) => Ok(backups.as_slice()),
            (None, Err(e)) => Err(e.to_string()),
        };
        let baseline = journal
            .as_ref()
            .and_then(|j| {
                j.baseline(&policy.name, None)
                    .map_err(&mut not_checked)
                    .ok()
            })
            .flatten();
        // Live: a policy with no journal yet never ran, so it is unapproved.
        let approved = match (&journal, &saved) {
            _ if args.approve => Some(true),
            (Some(j), _) => j
                .approved(&policy.name, &policy.fingerprint)
                .map_err(&mut not_checked)
                .ok(),
            (None, None) if journal_read => Some(false),
            _ => None,
        };
        // Holds and the grace period's clock, from the journal (none from a saved listing).
        let holds = journal
            .as_ref()
            .and_then(|j| {
                j.holds_on(&policy.name, &policy.account)
                    .map_err(&mut not_checked)
                    .ok()
            })
            .unwrap_or_default();
        let grace = runner::grace(policy, config.as_ref().and_then(|c| c.default_grace));
        let since = match (&journal, grace) {
            (Some(j), Some(_)) => j
                .doomed_since(&policy.name)
                .map_err(&mut not_checked)
                .ok()
                .unwrap_or_default(),
            _ => Default::default(),
        };
        let mut report = PolicyReport::new(policy);
        match backups {
            Ok(backups) => {
                let checks = runner::Checks {
                    baseline: baseline.as_ref(),
                    accept_listing_drop: args.accept_listing_drop,
                    accept_max_delete: args.accept_max_delete,
                    approved,
                    policies: &all_policies,
                    places: places.as_ref(),
                    unmatched: match (backups.is_empty(), opened.get(i)) {
                        (true, Some(Ok(provider))) => provider.unmatched(),
                        _ => None,
                    },
                    holds: Some(&holds),
                    locks: None,
                    grace: grace.map(|g| (g, &since)),
                };
                let tz = runner::zone(policy, config.as_ref());
                let (plan, _, _) = match opened.get(i) {
                    Some(Ok(provider)) => super::shared::block_on(runner::locked_plan(
                        policy,
                        backups,
                        now,
                        &tz,
                        &checks,
                        provider.as_ref(),
                    )),
                    _ => runner::guarded_plan(policy, backups, now, &tz, &checks),
                };
                if config.is_none() && policy.timezone.is_none() && !terminal().quiet {
                    eprintln!(
                        "note: policy {} has no `timezone` and no config was found (--config, $RETENTIOND_CONFIG, {DEFAULT_CONFIG}) for a default: its days, weeks, months and years are computed in UTC",
                        policy.name
                    );
                }
                report.plan = Some(plan);
            }
            Err(e) => report.error = Some(e),
        }
        reports.push(report);
    }
    if let Some(warning) = unchecked {
        eprintln!("warning: {warning}");
        for plan in reports.iter_mut().filter_map(|r| r.plan.as_mut()) {
            plan.warnings.push(warning.clone());
        }
    }
    match args.format {
        Format::Text => render::plan_text(out, &reports, args.summary),
        Format::Json => render::json(out, &reports),
    }
    .map_err(write_failure)?;
    if let Some(path) = args.out {
        write_plan_file(path, &reports)?;
    }
    if let Some(path) = args.svg {
        let plans: Vec<&crate::plan::PolicyPlan> =
            reports.iter().filter_map(|r| r.plan.as_ref()).collect();
        let zone = plans
            .first()
            .map_or(jiff::tz::TimeZone::UTC, |p| p.timezone.clone());
        let picture = svg::render("retentiond plan", &svg::plan_sections(&plans), &zone);
        write_svg(path, &picture)?;
    }
    Ok(finish(&reports))
}

/// Writes the plan JSON to `path` whole or not at all (a temporary file, then a rename).
pub(super) fn write_plan_file(path: &Path, reports: &[PolicyReport]) -> Result<(), Failure> {
    let failure = |e: io::Error| {
        Failure::new(
            exit::INVALID,
            format!("cannot write the plan to {}: {e}", path.display()),
        )
    };
    // A name of this process's own, created anew (never an existing file, never through a
    // symlink someone left there), then renamed over `path`.
    let mut name = std::ffi::OsString::from(".");
    name.push(path.file_name().unwrap_or_default());
    name.push(format!(".{}.tmp", std::process::id()));
    let temporary = path.with_file_name(name);
    let created = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&temporary)
        .map_err(|e| {
            Failure::new(
                exit::INVALID,
                format!(
                    "cannot write the plan to {}: cannot create {}: {e}",
                    path.display(),
                    temporary.display()
                ),
            )
        })?;
    let written = (|| {
        let mut file = io::BufWriter::new(created);
        render::json(&mut file, reports)?;
        file.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        std::fs::rename(&temporary, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    written.map_err(failure)
}
