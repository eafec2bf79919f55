//! What the bench reads from /proc: a process's CPU ticks and peak RSS, the
//! CPUs it may run on, and the machine's description. Parsing is split from
//! reading so it can be tested on sample text.

use std::fs;
use std::process::Command;

use serde::Serialize;

/// CPU time of a process (all threads) in clock ticks: in its own code
/// (utime) and in the kernel on its behalf (stime).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuTicks {
    pub user: u64,
    pub kernel: u64,
}

impl CpuTicks {
    pub fn total(self) -> u64 {
        self.user + self.kernel
    }

    /// The ticks spent since `before`.
    pub fn since(self, before: CpuTicks) -> CpuTicks {
        CpuTicks {
            user: self.user.saturating_sub(before.user),
            kernel: self.kernel.saturating_sub(before.kernel),
        }
    }
}

/// The CPU time process `pid` has spent so far.
pub fn cpu_ticks(pid: u32) -> Option<CpuTicks> {
    parse_cpu_ticks(&fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// Peak resident set size (VmHWM) of process `pid`, in KiB.
pub fn peak_rss_kib(pid: u32) -> Option<u64> {
    parse_status_kib(
        &fs::read_to_string(format!("/proc/{pid}/status")).ok()?,
        "VmHWM:",
    )
}

/// Resident set size now (VmRSS) of process `pid`, in KiB.
pub fn rss_kib(pid: u32) -> Option<u64> {
    parse_status_kib(
        &fs::read_to_string(format!("/proc/{pid}/status")).ok()?,
        "VmRSS:",
    )
}

/// The CPUs this process may run on (`Cpus_allowed_list`), e.g. `[0, 1]`.
pub fn allowed_cpus() -> Vec<usize> {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("Cpus_allowed_list:"))
                .map(parse_cpu_list)
        })
        .unwrap_or_default()
}

/// Clock ticks per second of the `utime`/`stime` fields (`getconf CLK_TCK`;
/// 100 on every Linux build in practice, used when getconf is missing).
pub fn clock_ticks_per_sec() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(100)
}

/// The machine a run happened on.
#[derive(Clone, Debug, Serialize)]
pub struct Machine {
    pub cpu_model: String,
    pub logical_cpus: usize,
    pub kernel: String,
    /// /proc/loadavg when the bench started: other work on the machine.
    pub load_average_at_start: String,
}

impl Machine {
    pub fn describe() -> Self {
        let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let read = |path: &str| {
            fs::read_to_string(path)
                .map(|text| text.trim().to_string())
                .unwrap_or_else(|_| "unknown".into())
        };
        Self {
            cpu_model: cpuinfo
                .lines()
                .find_map(|line| line.strip_prefix("model name"))
                .and_then(|rest| rest.split_once(':'))
                .map_or_else(|| "unknown".into(), |(_, model)| model.trim().into()),
            logical_cpus: cpuinfo
                .lines()
                .filter(|line| line.starts_with("processor"))
                .count(),
            kernel: read("/proc/sys/kernel/osrelease"),
            load_average_at_start: read("/proc/loadavg"),
        }
    }
}

/// utime and stime from a /proc/<pid>/stat line. The command name (field
/// 2) may hold spaces and parentheses, so fields are counted after its last
/// `)`.
fn parse_cpu_ticks(stat: &str) -> Option<CpuTicks> {
    let (_, rest) = stat.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state); utime is field 14, stime field 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(CpuTicks {
        user: utime,
        kernel: stime,
    })
}

/// The value of a `Name:   1234 kB` line of /proc/<pid>/status.
fn parse_status_kib(status: &str, name: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|line| line.strip_prefix(name))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// "0-2,4" → [0, 1, 2, 4]; malformed parts are skipped.
fn parse_cpu_list(list: &str) -> Vec<usize> {
    let mut cpus = Vec::new();
    for part in list.trim().split(',') {
        match part.split_once('-') {
            Some((from, to)) => {
                if let (Ok(from), Ok(to)) = (from.parse::<usize>(), to.parse::<usize>()) {
                    cpus.extend(from..=to);
                }
            }
            None => cpus.extend(part.parse::<usize>().ok()),
        }
    }
    cpus
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_ticks_are_counted_after_a_command_name_with_spaces() {
        let stat = "4242 (key gate) S 1 4242 4242 0 -1 4194560 1500 0 0 0 \
                    731 269 0 0 20 0 3 0 100 12345678 2000 18446744073709551615";
        let ticks = parse_cpu_ticks(stat).unwrap();
        assert_eq!(
            ticks,
            CpuTicks {
                user: 731,
                kernel: 269
            }
        );
        assert_eq!(ticks.total(), 1000);
        assert_eq!(parse_cpu_ticks("garbage"), None);
    }

    #[test]
    fn peak_rss_is_read_from_vm_hwm() {
        let status =
            "Name:\tkeygate\nVmPeak:\t  900000 kB\nVmHWM:\t   14336 kB\nVmRSS:\t 12000 kB\n";
        assert_eq!(parse_status_kib(status, "VmHWM:"), Some(14336));
        assert_eq!(parse_status_kib(status, "VmSwap:"), None);
    }

    #[test]
    fn cpu_lists_expand_ranges() {
        assert_eq!(parse_cpu_list("0-2,4\n"), vec![0, 1, 2, 4]);
        assert_eq!(parse_cpu_list("1"), vec![1]);
    }
}
