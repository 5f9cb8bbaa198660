//! retentiond: a declarative retention-policy daemon.
//!
//! Data flows one way: config + policies ([`policy`]) → listing ([`provider`]) → plan
//! ([`retention`], [`plan`]) → execution ([`executor`]) → output ([`render`], [`cli`]).

pub mod cli;
pub mod executor;
pub mod model;
pub mod plan;
pub mod policy;
pub mod provider;
pub mod render;
pub mod retention;
