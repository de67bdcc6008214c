//! Pure parsers of cgroup and `/proc` file contents. None panics, whatever
//! the text; a malformed file is an `Err` naming it.

use std::time::Duration;

use super::CpuQuota;
use crate::monitor::probe::ProbeError;

/// v1 `memory.limit_in_bytes` at or above this means "no limit"
/// (the kernel's "unlimited" is 9223372036854771712).
pub const V1_UNLIMITED: u64 = 1 << 62;

fn number(file: &str, text: &str) -> Result<u64, ProbeError> {
    let t = text.trim();
    t.parse::<u64>()
        .map_err(|_| ProbeError::new(file, format!("expected a whole number, found {:?}", clip(t))))
}

fn clip(t: &str) -> &str {
    let end = t.char_indices().nth(40).map_or(t.len(), |(i, _)| i);
    &t[..end]
}

/// A `/proc` value in kB (`"  1000 kB"`), in bytes; `None` when it is not
/// a whole number or the bytes overflow.
fn kb(value: &str) -> Option<u64> {
    let v = value.trim().trim_end_matches("kB").trim();
    v.parse::<u64>().ok()?.checked_mul(1024)
}

/// The first line of `text` that starts with `key` and holds a value in kB,
/// in bytes.
fn kb_line(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| kb(l.strip_prefix(key)?))
}

/// v2 `cpu.max`: `"max 100000"` (no quota) or `"50000 100000"`.
pub fn cpu_max(text: &str) -> Result<Option<CpuQuota>, ProbeError> {
    let mut it = text.split_whitespace();
    let (Some(quota), Some(period), None) = (it.next(), it.next(), it.next()) else {
        return Err(ProbeError::new(
            "cpu.max",
            format!("expected \"<quota|max> <period>\", found {:?}", clip(text.trim())),
        ));
    };
    let period = number("cpu.max", period)?;
    if quota == "max" {
        return Ok(None);
    }
    quota_of("cpu.max", number("cpu.max", quota)?, period).map(Some)
}

/// v1 `cpu.cfs_quota_us` and `cpu.cfs_period_us`; a quota of `-1` means
/// none.
pub fn cfs_quota(quota: &str, period: &str) -> Result<Option<CpuQuota>, ProbeError> {
    let q = quota.trim();
    if q == "-1" {
        return Ok(None);
    }
    let period = number("cpu.cfs_period_us", period)?;
    quota_of("cpu.cfs_quota_us", number("cpu.cfs_quota_us", q)?, period).map(Some)
}

fn quota_of(file: &str, quota_us: u64, period_us: u64) -> Result<CpuQuota, ProbeError> {
    if quota_us == 0 || period_us == 0 {
        return Err(ProbeError::new(file, "a zero quota or period"));
    }
    Ok(CpuQuota {
        quota: Duration::from_micros(quota_us),
        period: Duration::from_micros(period_us),
    })
}

/// v2 `cpu.stat`: the cumulative `usage_usec`.
pub fn cpu_stat_usage(text: &str) -> Result<Duration, ProbeError> {
    for line in text.lines() {
        if let Some(v) = line.strip_prefix("usage_usec ") {
            return Ok(Duration::from_micros(number("cpu.stat", v)?));
        }
    }
    Err(ProbeError::new("cpu.stat", "no usage_usec line"))
}

/// v1 `cpuacct.usage`: cumulative CPU time in nanoseconds.
pub fn cpuacct_usage(text: &str) -> Result<Duration, ProbeError> {
    Ok(Duration::from_nanos(number("cpuacct.usage", text)?))
}

/// v2 `memory.max`: bytes, or `"max"` for no limit.
pub fn memory_max(text: &str) -> Result<Option<u64>, ProbeError> {
    if text.trim() == "max" {
        return Ok(None);
    }
    number("memory.max", text).map(Some)
}

/// v1 `memory.limit_in_bytes`: absurd values ([`V1_UNLIMITED`] and
/// above, or at least the host's total memory) mean no limit.
pub fn v1_memory_limit(text: &str, host_total: u64) -> Result<Option<u64>, ProbeError> {
    let v = number("memory.limit_in_bytes", text)?;
    Ok((v < V1_UNLIMITED && (host_total == 0 || v < host_total)).then_some(v))
}

/// v2 `memory.current` or v1 `memory.usage_in_bytes`: bytes in use.
pub fn memory_usage(text: &str) -> Result<u64, ProbeError> {
    number("memory.current", text)
}

/// This process's cgroup paths, from `/proc/self/cgroup`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SelfCgroup {
    /// The v2 (unified) path, from the `0::<path>` line.
    pub unified: Option<String>,
    /// The v1 memory controller's path.
    pub memory: Option<String>,
    /// The v1 `cpu` controller's path: where the quota is.
    pub cpu: Option<String>,
    /// The v1 `cpuacct` controller's path: where the usage counter is.
    /// The same as `cpu` when both share a hierarchy (`cpu,cpuacct`),
    /// its own when they are mounted apart.
    pub cpuacct: Option<String>,
}

/// `/proc/self/cgroup`: lines of `id:controllers:path`. Lines that do not
/// have that shape are skipped. Each v1 controller keeps its own line's
/// path: `cpu` and `cpuacct` may be mounted apart, in different cgroups.
pub fn self_cgroup(text: &str) -> SelfCgroup {
    let mut out = SelfCgroup::default();
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(id), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        if id == "0" && controllers.is_empty() {
            out.unified = Some(path.to_owned());
        }
        for c in controllers.split(',') {
            match c {
                "memory" => out.memory = Some(path.to_owned()),
                "cpu" => out.cpu = Some(path.to_owned()),
                "cpuacct" => out.cpuacct = Some(path.to_owned()),
                _ => {}
            }
        }
    }
    out
}

/// `/proc/meminfo`: `MemTotal` and `MemAvailable`, in bytes.
pub fn meminfo(text: &str) -> Result<(u64, u64), ProbeError> {
    // The first line with the key counts, whether its value parses or not.
    let first = |key: &str| kb(text.lines().find_map(|l| l.strip_prefix(key))?);
    match (first("MemTotal:"), first("MemAvailable:")) {
        (Some(t), Some(a)) if t > 0 => Ok((t, a.min(t))),
        _ => Err(ProbeError::new("meminfo", "no MemTotal or MemAvailable")),
    }
}

/// `/proc/self/smaps_rollup`: the proportional set size (`Pss`), bytes.
pub fn smaps_rollup_pss(text: &str) -> Result<u64, ProbeError> {
    kb_line(text, "Pss:").ok_or_else(|| ProbeError::new("smaps_rollup", "no Pss line"))
}

/// `/proc/self/status`: the resident set size (`VmRSS`), bytes. The
/// kernel reports it in kB, whatever its page size.
pub fn status_rss(text: &str) -> Result<u64, ProbeError> {
    kb_line(text, "VmRSS:").ok_or_else(|| ProbeError::new("status", "no VmRSS line"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_max_forms() {
        assert_eq!(cpu_max("max 100000\n"), Ok(None));
        let q = cpu_max("150000 100000").unwrap().unwrap();
        assert!((q.cpus() - 1.5).abs() < 1e-9);
        for bad in [
            "",
            "max",
            "50000",
            "a b",
            "-1 100000",
            "0 100000",
            "50000 0",
            "1 2 3",
            "99999999999999999999 1",
        ] {
            assert!(cpu_max(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn cfs_forms() {
        assert_eq!(cfs_quota("-1\n", "100000\n"), Ok(None));
        assert!((cfs_quota("50000", "100000").unwrap().unwrap().cpus() - 0.5).abs() < 1e-9);
        assert!(cfs_quota("x", "100000").is_err());
        assert!(cfs_quota("50000", "0").is_err());
        assert!(cfs_quota("-2", "100000").is_err());
    }

    #[test]
    fn usage_forms() {
        let stat = "usage_usec 2500000\nuser_usec 2000000\nsystem_usec 500000\n";
        assert_eq!(cpu_stat_usage(stat), Ok(Duration::from_millis(2500)));
        assert!(cpu_stat_usage("user_usec 1\n").is_err());
        assert!(cpu_stat_usage("usage_usec lots\n").is_err());
        assert_eq!(cpuacct_usage("1000000000\n"), Ok(Duration::from_secs(1)));
        assert!(cpuacct_usage("").is_err());
    }

    #[test]
    fn memory_forms() {
        assert_eq!(memory_max("max\n"), Ok(None));
        assert_eq!(memory_max("536870912\n"), Ok(Some(512 << 20)));
        assert!(memory_max("-1").is_err());
        assert!(memory_max("").is_err());
        assert_eq!(
            v1_memory_limit("9223372036854771712\n", 1 << 34),
            Ok(None),
            "v1 unlimited"
        );
        assert_eq!(
            v1_memory_limit("17179869184", 1 << 34),
            Ok(None),
            "at least the host total"
        );
        assert_eq!(v1_memory_limit("1073741824", 1 << 34), Ok(Some(1 << 30)));
        assert!(v1_memory_limit("lots", 1 << 34).is_err());
        assert_eq!(memory_usage("123\n"), Ok(123));
        assert!(memory_usage("1e9").is_err());
    }

    #[test]
    fn self_cgroup_forms() {
        let v2 = self_cgroup("0::/system.slice/app.service\n");
        assert_eq!(v2.unified.as_deref(), Some("/system.slice/app.service"));
        let v1 = self_cgroup("12:memory:/docker/abc\n4:cpu,cpuacct:/docker/abc\n1:name=systemd:/\n");
        assert_eq!(v1.memory.as_deref(), Some("/docker/abc"));
        assert_eq!(v1.cpu.as_deref(), Some("/docker/abc"));
        assert_eq!(v1.unified, None);
        assert_eq!(self_cgroup("garbage\n::\n"), SelfCgroup::default());
        assert_eq!(self_cgroup(""), SelfCgroup::default());
    }

    #[test]
    fn self_cgroup_keeps_cpu_and_cpuacct_apart() {
        // Mounted apart, `cpuacct` listed first: each keeps its own path.
        let split = self_cgroup("3:memory:/\n2:cpuacct:/\n1:cpu:/limited\n");
        assert_eq!(split.cpu.as_deref(), Some("/limited"));
        assert_eq!(split.cpuacct.as_deref(), Some("/"));
        assert_eq!(split.memory.as_deref(), Some("/"));
        let split = self_cgroup("1:cpu:/limited\n2:cpuacct:/acct\n");
        assert_eq!(split.cpu.as_deref(), Some("/limited"));
        assert_eq!(split.cpuacct.as_deref(), Some("/acct"));
        // Joined, as Docker mounts them: one path for both.
        for joined in ["4:cpu,cpuacct:/docker/abc\n", "4:cpuacct,cpu:/docker/abc\n"] {
            let j = self_cgroup(joined);
            assert_eq!(j.cpu.as_deref(), Some("/docker/abc"), "{joined:?}");
            assert_eq!(j.cpuacct.as_deref(), Some("/docker/abc"), "{joined:?}");
        }
    }

    #[test]
    fn proc_forms() {
        let mi = "MemTotal:       16384 kB\nMemFree: 1 kB\nMemAvailable:    8192 kB\n";
        assert_eq!(meminfo(mi), Ok((16384 * 1024, 8192 * 1024)));
        assert!(meminfo("MemTotal: 1 kB\n").is_err());
        assert!(meminfo("MemTotal: 0 kB\nMemAvailable: 0 kB\n").is_err());
        assert_eq!(smaps_rollup_pss("Rss: 200 kB\nPss:  100 kB\n"), Ok(100 * 1024));
        assert!(smaps_rollup_pss("Rss: 1 kB\n").is_err());
        assert_eq!(
            status_rss("Name:\tx\nVmRSS:\t    1000 kB\nThreads: 3\n"),
            Ok(1000 * 1024)
        );
        assert!(status_rss("Name:\tx\n").is_err());
        assert!(status_rss("VmRSS: 18446744073709551615 kB").is_err(), "overflow");
    }
}
