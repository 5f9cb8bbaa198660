//! `retentiond list`: the listing each policy sees.

use super::shared::{
    Outcome, config_policies, list_policies, open_providers, require_config, select_policies,
    write_failure,
};
use super::{Cli, Format};
use crate::exit;
use crate::model::Backup;
use crate::render;
use std::io::Write;

pub(super) fn list(cli: &Cli, names: &[String], format: Format, out: &mut dyn Write) -> Outcome {
    let config = require_config(cli, "")?;
    let policies = select_policies(config_policies(&config)?, names)?;
    let mut code = exit::OK;
    let mut union: Vec<Backup> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let listings = list_policies(&open_providers(&policies, &config));
    for (policy, listing) in policies.iter().zip(listings) {
        match (listing, format) {
            (Err(e), _) => {
                let message = format!("policy {}: {e}", policy.name);
                eprintln!("{}", crate::visible::Visible(&message));
                code = exit::LISTING_FAILED;
            }
            (Ok(mut backups), Format::Text) => {
                // As `plan` shows them: groups in name order, the newest first in each.
                backups.sort_by(|a, b| {
                    (a.group.as_str(), b.created_at).cmp(&(b.group.as_str(), a.created_at))
                });
                writeln!(out, "policy {} (account {})", policy.name, policy.account)
                    .map_err(write_failure)?;
                render::listing_text(out, &backups).map_err(write_failure)?;
            }
            (Ok(backups), Format::Json) => {
                for b in backups {
                    if seen.insert((b.group.clone(), b.id.clone())) {
                        union.push(b);
                    }
                }
            }
        }
    }
    if let Format::Json = format {
        render::listing_json(out, &union).map_err(write_failure)?;
    }
    Ok(code)
}
