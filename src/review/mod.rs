//! Reviewing a policy change before it merges: `diff` (two policy sets on one listing),
//! `simulate` (a policy over time) and SVG pictures of what a plan keeps. Pure: listings,
//! policies, zones and clocks come in as arguments; the CLI reads files and git.

pub mod diff;
pub mod simulate;
pub mod svg;
