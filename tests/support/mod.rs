//! Support code for the end-to-end tests: real MariaDB clusters started by `scripts/cluster.sh`.
//!
//! A test file says `mod support;` and then, typically:
//!
//! ```ignore
//! let cluster = support::Cluster::shared();
//! let s0 = &cluster.shards()[0];
//! cluster.exec(s0.primary, "CREATE TABLE t_mytest (id INT PRIMARY KEY)");
//! cluster.wait_replicated(s0);
//! ```
//!
//! Servers never outlive the test process: see [`process`].

// Each test binary uses its own subset of these helpers.
#![allow(dead_code, unused_imports)]

pub mod cluster;
pub mod corpus;
pub mod dataset;
pub mod diff;
pub mod diff_rules;
pub mod diff_run;
pub mod fixtures;
pub mod ha;
pub mod process;
pub mod proxy;
pub mod querygen;
pub mod sql;

pub use cluster::{Cluster, ClusterOptions, Shard};
