//! `retentiond daemon`: runs each policy on its schedule, reloads on SIGHUP and file changes,
//! speaks systemd's notify protocol, serves metrics and health, stops cleanly.

pub mod clock;
pub mod metrics;
pub mod schedule;
pub mod scheduler;
pub mod server;
pub mod systemd;
pub mod watch;
