//! `retentiond daemon`: hands the config's path to the daemon, which runs until stopped.

use super::Cli;
use super::shared::{DEFAULT_CONFIG, Failure, Outcome, config_path};
use crate::daemon::log::LogFormat;
use crate::exit;

pub(super) fn daemon(cli: &Cli, log_format: LogFormat) -> Outcome {
    let Some((path, _)) = config_path(cli) else {
        return Err(Failure::new(
            exit::INVALID,
            format!(
                "no config file at {DEFAULT_CONFIG}; pass --config PATH or set RETENTIOND_CONFIG"
            ),
        ));
    };
    Ok(crate::daemon::main(path, log_format))
}
