//! The daemon's logs (tracing): plain text on stderr, without timestamps when stderr is
//! journald's stream (journald stamps each line itself), or JSON lines for shipping.

use std::os::unix::fs::MetadataExt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Installs the process's log subscriber.
pub fn init(format: LogFormat) {
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_target(false)
        .with_max_level(tracing::Level::INFO);
    let _ = match format {
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
        LogFormat::Text if stderr_is_journald() => builder.without_time().try_init(),
        LogFormat::Text => builder.try_init(),
    };
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
