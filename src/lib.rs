//! shardgate: a MySQL-protocol sharding proxy.
//!
//! See ARCHITECTURE.md for the module map and how one query flows through it.

pub mod admin;
pub mod backend;
pub mod config;
pub mod frontend;
pub mod health;
pub mod merge;
pub mod protocol;
pub mod router;
pub mod sql;
