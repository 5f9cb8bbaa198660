//! `retentiond journal compact`: forget old runs (journal_keep) and give the space back.

use super::Cli;
use super::shared::{
    Failure, Outcome, journal_failure, open_journal, require_config, write_failure,
};
use crate::exit;
use crate::render;
use crate::retention::CalendarDuration;
use jiff::Timestamp;
use jiff::tz::TimeZone;
use std::io::Write;

/// `journal compact`: prunes every policy of the journal by `journal_keep`, then vacuums.
pub(super) fn compact_journal(cli: &Cli, keep: Option<&str>, out: &mut dyn Write) -> Outcome {
    let config = require_config(cli, "")?;
    let keep = match keep {
        Some(text) => Some(
            CalendarDuration::parse(text)
                .map_err(|e| Failure::new(exit::USAGE, format!("--keep {text}: {e}")))?,
        ),
        None => config.journal_keep,
    };
    let journal = open_journal(&config)?;
    let now = Timestamp::now();
    let mut forgotten = 0;
    if let Some(keep) = keep {
        let tz = config.default_timezone.clone().unwrap_or(TimeZone::UTC);
        let cutoff = keep.before(now, &tz);
        for name in journal.policies().map_err(journal_failure)? {
            forgotten += journal.prune(&name, cutoff).map_err(journal_failure)?;
        }
    }
    let (before, after) = journal.vacuum().map_err(journal_failure)?;
    let kept = match keep {
        Some(keep) => format!("runs older than {keep} forgotten: {forgotten}"),
        None => "journal_keep: forever, no run forgotten".to_string(),
    };
    writeln!(
        out,
        "journal {}: {kept}; {} before, {} after",
        journal.path().display(),
        render::bytes(before),
        render::bytes(after)
    )
    .map_err(write_failure)?;
    Ok(exit::OK)
}
