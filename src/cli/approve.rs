//! `retentiond approve`: a person's approval of a policy version, recorded in the journal.

use super::Cli;
use super::shared::{
    Failure, Outcome, config_policies, open_journal, require_config, select_policies, write_failure,
};
use crate::exit;
use std::io::Write;

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
            policy.file.display()
        )
        .map_err(write_failure)?;
    }
    Ok(exit::OK)
}
