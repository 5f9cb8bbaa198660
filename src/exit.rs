//! The exit codes of every command and the daemon, in one place (README, "Exit codes"); when
//! several apply, the first of 7, 130, 3, 6, 4, 5, 9 in this order wins.

pub const OK: u8 = 0;
/// Invalid config, policy or listing files, or an unknown policy name.
pub const INVALID: u8 = 1;
/// Command-line usage error.
pub const USAGE: u8 = 2;
/// A listing failed: nothing was deleted for that policy.
pub const LISTING_FAILED: u8 = 3;
/// Some deletions failed.
pub const DELETE_FAILED: u8 = 4;
/// A guard blocked a policy: nothing was deleted for it.
pub const BLOCKED: u8 = 5;
/// `apply`: the reviewed plan no longer holds (or its policy changed): nothing was deleted
/// for that policy.
pub const REFUSED: u8 = 6;
/// The journal could not be used, or another process is running the policy: nothing was
/// deleted for that policy.
pub const JOURNAL: u8 = 7;
/// `diff`: the change would delete backups that the base keeps.
pub const DIFF_DELETES_MORE: u8 = 8;
/// A policy selected no backup at all (an empty listing, or a `select` that matches none of
/// it): nothing was kept or deleted, which is not success.
pub const NOTHING_SELECTED: u8 = 9;
/// Standard output was closed by its reader (`plan | head`): 128 + SIGPIPE, as a shell
/// reports a tool that SIGPIPE ended. Nothing is printed.
pub const CLOSED_PIPE: u8 = 141;
/// `run`/`apply` interrupted by Ctrl-C (SIGINT): what was sent finished and is recorded.
pub const INTERRUPTED: u8 = 130;
