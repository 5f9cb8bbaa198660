//! `retentiond notify test SINK`: a sample message to one sink of the config's `notify:`.

use super::shared::{Failure, Outcome, block_on, require_config, write_failure};
use crate::exit;
use crate::notify::{Delivery, Message};
use crate::policy::notify::Event;
use std::io::Write;

pub(super) fn test(cli: &super::Cli, sink: &str, out: &mut dyn Write) -> Outcome {
    let config = require_config(cli, "")?;
    let Some(found) = config.notify.sinks.get(sink) else {
        let names: Vec<&str> = config.notify.sinks.keys().map(String::as_str).collect();
        let hint = crate::policy::diag::did_you_mean(sink, names.iter().copied());
        return Err(Failure::new(
            exit::INVALID,
            match names.is_empty() {
                true => format!(
                    "no sink named `{sink}`: {} has no `notify.sinks`",
                    config.file.display()
                ),
                false => format!(
                    "no sink named `{sink}` under notify.sinks{hint} (sinks: {})",
                    names.join(", ")
                ),
            },
        ));
    };
    let message = Message::new(
        "(test)",
        Event::Blocked,
        "info",
        format!("test message to sink {sink}"),
        "retentiond can reach this sink; real messages say which policy is blocked, awaits approval or failed, and the one command that unblocks it.".to_string(),
    );
    match block_on(crate::notify::deliver(found, &message)) {
        Delivery::Sent => {
            writeln!(out, "sent a test message to sink {sink} ({})", found.kind())
                .map_err(write_failure)?;
            Ok(exit::OK)
        }
        Delivery::Failed(e) => Err(Failure::new(
            exit::INVALID,
            format!("sink {sink} ({}): not delivered: {e}", found.kind()),
        )),
    }
}
