//! The chaos suite (issue 5, part 2): keygate under concurrent load while
//! the fake upstream injects faults (`fake_upstream` chaos mode),
//! the real binary killed and stopped under load, bad input at the edge,
//! and hostile connections (silent, slow, too many).
//! Long variants run with `KEYGATE_CHAOS_LONG=1`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../api/helpers.rs"]
#[allow(dead_code, unused_imports)]
mod helpers;

mod connections;
mod crash;
mod edge;
mod load;
mod memory;
mod props;

/// Whether the long variants were asked for.
pub fn long_run() -> bool {
    std::env::var("KEYGATE_CHAOS_LONG").is_ok_and(|v| v == "1")
}
