//! retentiond: a declarative retention-policy daemon.
//!
//! Data flows one way: config + policies ([`policy`]) → listing ([`provider`]) → plan
//! ([`retention`], [`plan`]) → execution ([`executor`]) → output.

pub mod model;
pub mod retention;
