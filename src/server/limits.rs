//! The descriptor limit and the connection cap sized from it. Every client
//! connection costs a descriptor, and so does every upstream connection and
//! the database: if clients could take them all, keygate could accept but
//! not serve (nor answer `/health`). So at start the soft RLIMIT_NOFILE is
//! raised to the hard limit, and the default MAX_CONNECTIONS keeps a
//! quarter of it for everything else.

/// The default cap, whatever the descriptor limit: beyond it one gateway
/// process is the wrong place to scale.
const DEFAULT_CAP: usize = 10_000;

/// RLIMIT_NOFILE before and after raising it.
#[derive(Clone, Copy, Debug)]
pub struct DescriptorLimit {
    pub before: u64,
    /// The soft limit in force now.
    pub soft: u64,
}

/// Raises the soft descriptor limit to the hard one (on macOS, to the
/// kernel's per-process maximum). A failure leaves the limit as it was.
pub fn raise_descriptor_limit() -> DescriptorLimit {
    let before = current_soft_limit();
    let soft = match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(soft) => soft,
        Err(error) => {
            tracing::warn!(%error, "cannot raise the open-file limit");
            before
        }
    };
    DescriptorLimit { before, soft }
}

#[cfg(unix)]
fn current_soft_limit() -> u64 {
    rlimit::Resource::NOFILE
        .get()
        .map(|(soft, _hard)| soft)
        .unwrap_or(u64::MAX)
}

#[cfg(not(unix))]
fn current_soft_limit() -> u64 {
    u64::MAX
}

/// The cap when MAX_CONNECTIONS is not set: three quarters of the
/// descriptors, at most `DEFAULT_CAP`.
pub fn default_max_connections(limit: DescriptorLimit) -> usize {
    let three_quarters = usize::try_from(limit.soft / 4 * 3).unwrap_or(usize::MAX);
    three_quarters.clamp(1, DEFAULT_CAP)
}

/// Whether `cap` connections leave less than a quarter of the descriptors
/// for upstream connections and the database.
pub fn cap_crowds_descriptors(cap: usize, limit: DescriptorLimit) -> bool {
    u64::try_from(cap).unwrap_or(u64::MAX) > limit.soft / 4 * 3
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(soft: u64) -> DescriptorLimit {
        DescriptorLimit { before: soft, soft }
    }

    #[test]
    fn the_default_cap_keeps_a_quarter_of_the_descriptors() {
        assert_eq!(default_max_connections(limit(1024)), 768);
        assert_eq!(default_max_connections(limit(20_000)), 10_000);
        assert_eq!(default_max_connections(limit(u64::MAX)), 10_000);
        assert_eq!(default_max_connections(limit(1)), 1);
        assert!(cap_crowds_descriptors(1000, limit(1024)));
        assert!(!cap_crowds_descriptors(768, limit(1024)));
    }
}
