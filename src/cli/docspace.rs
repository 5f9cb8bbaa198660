//! `retentiond docspace purge-history`: an operator command for decommissioning a portal.

use super::Cli;
use super::shared::{Failure, Outcome, block_on, require_config, write_failure};
use crate::exit;
use crate::policy;
use crate::provider::{self, Registry};
use crate::render;
use std::io::Write;

pub(super) fn purge_history(
    cli: &Cli,
    name: &str,
    dump: bool,
    yes: bool,
    out: &mut dyn Write,
) -> Outcome {
    let config = require_config(cli, "")?;
    let docspace: Vec<&str> = config
        .accounts
        .values()
        .filter(|a| a.kind == policy::select::ProviderKind::Docspace)
        .map(|a| a.name.as_str())
        .collect();
    let account = config
        .accounts
        .get(name)
        .filter(|a| a.kind == policy::select::ProviderKind::Docspace)
        .ok_or_else(|| {
            let hint = policy::diag::did_you_mean(name, docspace.iter().copied());
            Failure::new(
                exit::INVALID,
                format!(
                    "no onlyoffice-docspace account `{name}` in {}{hint} (docspace accounts: {})",
                    config.file.display(),
                    if docspace.is_empty() {
                        "none".to_string()
                    } else {
                        docspace.join(", ")
                    }
                ),
            )
        })?;
    let policy::AccountSettings::Docspace { base_url, auth } = &account.settings else {
        unreachable!("the account kind was checked");
    };
    let provider = Registry::new()
        .http(
            account,
            || provider::docspace::authorization(auth),
            provider::docspace::HINT,
        )
        .and_then(|http| {
            provider::docspace::DocspaceProvider::new(http, base_url, &Default::default())
        })
        .map_err(|e| Failure::new(exit::LISTING_FAILED, e.to_string()))?;
    let which = if dump {
        "dump history"
    } else {
        "backup history"
    };
    let history = block_on(provider.history(dump))
        .map_err(|e| Failure::new(exit::LISTING_FAILED, e.to_string()))?;
    writeln!(out, "{which} of account {name} ({base_url}):").map_err(write_failure)?;
    render::listing_text(out, &history).map_err(write_failure)?;
    if history.is_empty() {
        writeln!(out, "nothing to delete").map_err(write_failure)?;
        return Ok(exit::OK);
    }
    if !yes || config.dry_run {
        let why = if yes {
            format!("dry_run: true in {}", config.file.display())
        } else {
            "add --yes to delete all of them".to_string()
        };
        writeln!(out, "dry run: nothing deleted ({why})").map_err(write_failure)?;
        return Ok(exit::OK);
    }
    block_on(provider.purge_history(dump))
        .map_err(|e| Failure::new(exit::DELETE_FAILED, e.to_string()))?;
    let left = block_on(provider.history(dump)).map_err(|e| {
        Failure::new(
            exit::LISTING_FAILED,
            format!("deleted, but the re-listing failed: {e}"),
        )
    })?;
    writeln!(
        out,
        "deleted the {which}: {} backups before, {} listed now",
        history.len(),
        left.len()
    )
    .map_err(write_failure)?;
    Ok(if left.is_empty() {
        exit::OK
    } else {
        exit::DELETE_FAILED
    })
}
