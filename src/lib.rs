//! retentiond: a declarative retention-policy daemon.
//!
//! Data flows one way: config + policies ([`policy`]) → listing ([`provider`]) → plan
//! ([`retention`], [`plan`]) → execution ([`executor`]) → journal ([`journal`]) and output
//! ([`render`], [`cli`]). [`runner`] carries one policy run through all of them.
//! HTTP providers share [`http`].

pub mod cli;
pub mod daemon;
pub mod executor;
pub mod exit;
pub mod hash;
pub mod http;
pub mod journal;
pub mod model;
pub mod notify;
pub mod plan;
pub mod policy;
pub mod provider;
pub mod render;
pub mod retention;
pub mod review;
pub mod runner;
pub mod secret;
pub mod timestamp;
pub mod visible;
