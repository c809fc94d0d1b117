//! This process as the standard `process_*` metrics describe it, read from Linux's `/proc` at
//! scrape time (`prometheus-client` has no process collector). Elsewhere every reading is
//! `None` and the series are left out.

use std::time::{SystemTime, UNIX_EPOCH};

/// Clock ticks per second of `/proc/*/stat` times: USER_HZ, 100 on every Linux ABI.
const TICKS_PER_SECOND: f64 = 100.0;

/// One reading; a field is `None` when its source could not be read.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ProcessStats {
    /// User plus system CPU time, seconds.
    pub cpu_seconds: Option<f64>,
    pub resident_bytes: Option<u64>,
    pub virtual_bytes: Option<u64>,
    pub threads: Option<u64>,
    pub open_fds: Option<u64>,
    pub max_fds: Option<u64>,
    /// Start time, seconds since the Unix epoch.
    pub start_time_seconds: Option<f64>,
}

/// Read this process's numbers now.
pub fn read() -> ProcessStats {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib = |key: &str| status_field(&status, key).map(|kb| kb * 1024);
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let times = stat_fields(&stat);
    let cpu_seconds = times
        .as_ref()
        .map(|f| (f.utime + f.stime) as f64 / TICKS_PER_SECOND);
    let start_time_seconds = times.as_ref().and_then(|f| {
        let boot = boot_time()?;
        Some(boot + f.start_ticks as f64 / TICKS_PER_SECOND)
    });
    ProcessStats {
        cpu_seconds,
        resident_bytes: kib("VmRSS:"),
        virtual_bytes: kib("VmSize:"),
        threads: status_field(&status, "Threads:"),
        open_fds: std::fs::read_dir("/proc/self/fd")
            .ok()
            .map(|dir| dir.count() as u64),
        max_fds: std::fs::read_to_string("/proc/self/limits")
            .ok()
            .and_then(|limits| max_open_files(&limits)),
        start_time_seconds,
    }
}

/// The first number after `key` in `/proc/self/status` (kB for memory lines).
fn status_field(status: &str, key: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|line| line.strip_prefix(key))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

struct StatTimes {
    utime: u64,
    stime: u64,
    start_ticks: u64,
}

/// utime, stime and starttime of `/proc/self/stat` (fields 14, 15 and 22). The command name
/// (field 2) may hold spaces and parentheses, so fields are counted after its last `)`.
fn stat_fields(stat: &str) -> Option<StatTimes> {
    let after = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    // `after` starts at field 3.
    let field = |n: usize| fields.get(n - 3).and_then(|v| v.parse::<u64>().ok());
    Some(StatTimes {
        utime: field(14)?,
        stime: field(15)?,
        start_ticks: field(22)?,
    })
}

/// Boot time, seconds since the epoch (`btime` of `/proc/stat`).
fn boot_time() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    stat.lines()
        .find_map(|line| line.strip_prefix("btime "))
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(|v| v as f64)
}

/// The soft limit on open files (`unlimited` reads as none).
fn max_open_files(limits: &str) -> Option<u64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()
        .and_then(|v| v.parse().ok())
}

/// Seconds since the Unix epoch now.
pub fn now_seconds() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_command_name_with_spaces_and_parentheses() {
        let stat = "42 (my (odd) name) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 7 0 12345 1000 10";
        let times = stat_fields(stat).expect("parsed");
        assert_eq!(
            (times.utime, times.stime, times.start_ticks),
            (250, 50, 12345)
        );
    }

    #[test]
    fn reads_this_process_on_linux() {
        if !cfg!(target_os = "linux") {
            return;
        }
        let stats = read();
        assert!(stats.resident_bytes.is_some_and(|b| b > 1024 * 1024));
        assert!(stats.open_fds.is_some_and(|n| n >= 3));
        assert!(stats.threads.is_some_and(|n| n >= 1));
        let started = stats.start_time_seconds.expect("start time");
        assert!(started <= now_seconds() + 1.0 && started > now_seconds() - 86_400.0 * 365.0);
        assert!(
            max_open_files(
                "Max open files            1024                 4096                 files\n"
            ) == Some(1024)
        );
    }
}
