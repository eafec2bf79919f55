//! Cluster tests: three keygate replicas in this process, on loopback,
//! sharing one key store (a SQLite file in a temporary folder, or a fresh
//! PostgreSQL database in `postgres`) and a Redis,
//! in front of one fake upstream. Each test uses a cluster prefix of its
//! own and deletes its Redis keys afterwards. The shared cases use the
//! machine's Redis (`KEYGATE_TEST_REDIS`, default 127.0.0.1:6379); the
//! fault cases start and kill a `redis-server` of their own.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[allow(dead_code, unused_imports)]
#[path = "../api/helpers.rs"]
mod helpers;

#[allow(dead_code)]
#[path = "../api/pg_support.rs"]
mod pg_support;

mod affinity;
mod faults;
mod postgres;
mod replicas;
mod support;
