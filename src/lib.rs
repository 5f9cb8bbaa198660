//! retentiond: a declarative retention-policy daemon.
//!
//! Data flows one way: config + policies ([`policy`]) → listing ([`provider`]) → plan
//! ([`retention`], [`plan`]) → execution ([`executor`]) → output ([`render`], [`cli`]).
//! HTTP providers share [`http`].

pub mod cli;
pub mod executor;
pub mod http;
pub mod model;
pub mod plan;
pub mod policy;
pub mod provider;
pub mod render;
pub mod retention;
