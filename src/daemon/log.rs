//! The daemon's logs (tracing): plain text on stderr, without timestamps when stderr is
//! journald's stream (journald stamps each line itself), or JSON lines for shipping.

use std::os::unix::fs::MetadataExt;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Installs the process's log subscriber: `info` and above, or what `RUST_LOG` says
/// (`debug`, `warn`, `retentiond=debug,hyper=warn`: a level, or `target=level` pairs).
pub fn init(format: LogFormat) {
    let (targets, problem) = targets(std::env::var("RUST_LOG").ok().as_deref());
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_target(false)
        .with_max_level(tracing::Level::TRACE);
    let _ = match format {
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .finish()
            .with(targets)
            .try_init(),
        LogFormat::Text if stderr_is_journald() => {
            builder.without_time().finish().with(targets).try_init()
        }
        LogFormat::Text => builder.finish().with(targets).try_init(),
    };
    if let Some(problem) = problem {
        tracing::warn!("{problem}");
    }
}

/// The log filter of `RUST_LOG`, and what was wrong with it (then `info`).
fn targets(rust_log: Option<&str>) -> (Targets, Option<String>) {
    let default = Targets::new().with_default(tracing::Level::INFO);
    match rust_log.map(str::trim) {
        None | Some("") => (default, None),
        Some(text) => match text.parse::<Targets>() {
            Ok(targets) => (targets, None),
            Err(e) => (
                default,
                Some(format!(
                    "RUST_LOG={text} is not a log filter ({e}): logging at info; write a level (`debug`) or `target=level` pairs (`retentiond=debug,hyper=warn`)"
                )),
            ),
        },
    }
}

/// systemd sets `JOURNAL_STREAM=device:inode` of the stream it connected; it is ours only if
/// stderr is still that stream (not redirected by a wrapper).
fn stderr_is_journald() -> bool {
    let Ok(stream) = std::env::var("JOURNAL_STREAM") else {
        return false;
    };
    let Ok(stderr) = std::fs::metadata("/proc/self/fd/2") else {
        return false;
    };
    stream == format!("{}:{}", stderr.dev(), stderr.ino())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing::Level;
    use tracing_subscriber::filter::LevelFilter;

    #[test]
    fn rust_log_sets_the_level_per_target() {
        let (default, none) = targets(None);
        assert_eq!(none, None);
        assert!(default.would_enable("retentiond", &Level::INFO));
        assert!(!default.would_enable("retentiond", &Level::DEBUG));
        let (debug, _) = targets(Some("retentiond=debug,hyper=warn"));
        assert!(debug.would_enable("retentiond::daemon", &Level::DEBUG));
        assert!(!debug.would_enable("hyper::proto", &Level::INFO));
        let (quiet, _) = targets(Some("warn"));
        assert_eq!(quiet.default_level(), Some(LevelFilter::WARN));
        let (fallback, problem) = targets(Some("retentiond=loud"));
        assert!(fallback.would_enable("retentiond", &Level::INFO));
        assert!(
            problem
                .unwrap()
                .starts_with("RUST_LOG=retentiond=loud is not a log filter")
        );
    }
}
