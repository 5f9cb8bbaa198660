//! `retentiond validate`: config and policy files checked before anything runs.

use super::Cli;
use super::shared::{DEFAULT_CONFIG, Failure, Outcome, config_path, write_failure};
use crate::exit;
use crate::policy::{self, Config};
use std::io::Write;
use std::path::PathBuf;

pub(super) fn validate(
    cli: &Cli,
    paths: &[PathBuf],
    skip_secrets: bool,
    out: &mut dyn Write,
) -> Outcome {
    // A config file given, or a folder holding one at its top (`validate /etc/retentiond`):
    // the config, with its policies.
    let config_in = |dir: &PathBuf| -> Option<PathBuf> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .ok()?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.is_file()
                    && p.extension().is_some_and(|x| x == "yaml" || x == "yml")
                    && policy::file_is_config(p)
            })
            .collect();
        files.sort();
        files.into_iter().next()
    };
    let mut configs = Vec::new();
    let mut policy_paths = Vec::new();
    for path in paths {
        if path.is_file() && policy::file_is_config(path) {
            configs.push(path.clone());
        } else if let Some(config) = path.is_dir().then(|| config_in(path)).flatten() {
            configs.push(config);
        } else {
            policy_paths.push(path.clone());
        }
    }
    let config_file = configs
        .first()
        .cloned()
        .or_else(|| config_path(cli).map(|(p, _)| p));
    if paths.is_empty() && config_file.is_none() {
        return Err(Failure::new(
            exit::INVALID,
            format!(
                "nothing to validate: give policy files or folders, or a config (--config PATH; none at {DEFAULT_CONFIG})"
            ),
        ));
    }
    let mut errors = Vec::new();
    let config = config_file.and_then(|path| {
        policy::load_config(&path)
            .map_err(|e| errors.extend(e))
            .ok()
    });
    let policy_paths = match (&config, policy_paths.is_empty()) {
        (Some(config), true) => config.policies.clone(),
        _ => policy_paths,
    };
    let (policies, policy_errors) = policy::load_policies(&policy_paths);
    errors.extend(policy_errors);
    if let Some(config) = &config {
        errors.extend(policy::check_against_config(&policies, config));
        // The unit's ExecStartPre and ExecReload: a secret the daemon could not read must
        // fail here, not after `systemctl reload` reported success.
        if !skip_secrets {
            let secrets = config.check_secrets();
            let resolved = secrets.is_empty();
            errors.extend(secrets);
            // With its secret resolved, the journal's URL must be one that can work.
            if resolved && let Err(e) = crate::journal::Journal::check_target(config) {
                errors.push(policy::Diagnostic {
                    file: config.file.clone(),
                    pos: Default::default(),
                    message: e.to_string(),
                    source_line: None,
                });
            }
        }
    }
    if !errors.is_empty() {
        return Err(Failure::invalid(errors));
    }
    let config_warnings = config.iter().flat_map(Config::warnings);
    let places = config.as_ref().map(Config::places).unwrap_or_default();
    for warning in policy::overlap_warnings(&policies, &places)
        .into_iter()
        .chain(policy::zone_warnings(&policies, config.as_ref()))
        .chain(config_warnings)
    {
        eprintln!("warning: {warning}");
    }
    let checked = config
        .as_ref()
        .map(|c| format!(", accounts checked against {}", c.file.display()))
        .unwrap_or_default();
    let policies = match policies.len() {
        1 => "1 policy".to_string(),
        n => format!("{n} policies"),
    };
    writeln!(out, "ok: {policies} valid{checked}").map_err(write_failure)?;
    Ok(exit::OK)
}
