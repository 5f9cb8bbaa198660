//! `retentiond status`: every policy at a glance, from the config and the journal.

use super::Format;
use super::shared::{Outcome, config_policies, journal_failure, require_config, write_failure};
use crate::daemon::status;
use crate::exit;
use crate::journal::Journal;
use jiff::Timestamp;
use std::io::Write;

pub(super) fn status_command(cli: &super::Cli, format: Format, out: &mut dyn Write) -> Outcome {
    let config = require_config(cli, "")?;
    let policies = config_policies(&config)?;
    let journal = Journal::open_config_read_only(&config).map_err(journal_failure)?;
    let all = status::status(&config, &policies, journal.as_ref(), Timestamp::now())
        .map_err(journal_failure)?;
    match format {
        Format::Text => status::text(out, &all).map_err(write_failure)?,
        Format::Json => {
            serde_json::to_writer_pretty(&mut *out, &serde_json::json!({ "policies": all }))
                .map_err(|e| write_failure(e.into()))?;
            writeln!(out).map_err(write_failure)?;
        }
    }
    Ok(exit::OK)
}
