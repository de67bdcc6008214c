//! The real CPU probe: the host's CPU use through `sysinfo`, or this
//! cgroup's use against its quota in a container.

use std::time::{Duration, Instant};

use sysinfo::{
    CpuRefreshKind, Pid, ProcessRefreshKind, ProcessesToUpdate, RefreshKind, System,
    MINIMUM_CPU_UPDATE_INTERVAL,
};

use super::cgroup::{CgroupFs, CpuQuota};
use super::{CpuProbe, ProbeError};

/// CPU use as a share of what this process may use.
///
/// When a cgroup CPU quota applies (v2 `cpu.max`, v1 `cpu.cfs_quota_us`),
/// the share is this cgroup's CPU time over the wall time since the previous
/// reading, divided by the quota: a container allowed 1.5 CPUs that uses 1.5
/// reads 1.0, whatever the host's core count. Where the cgroup's usage
/// counter is the whole host's (cgroup v1, `cpuacct` mounted apart at its
/// root), this process's own CPU time is measured instead. Otherwise it is
/// the host's
/// average use over all cores, from `sysinfo`. Readings closer together than
/// `sysinfo`'s minimum refresh interval (200 ms on Linux) repeat the
/// previous value rather than report a meaningless one.
#[derive(Debug)]
pub struct SystemCpuProbe {
    cgroup: CgroupFs,
    system: Option<System>,
    last_refresh: Instant,
    last_value: f64,
    /// The previous usage reading: whose, how much, when.
    baseline: Option<(Counter, Duration, Instant)>,
    /// This process, for its own CPU time; `None` until needed.
    own: Option<(System, Pid)>,
}

/// Where CPU time against a quota is read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Counter {
    Cgroup,
    OwnProcess,
}

real_machine!(SystemCpuProbe);

impl SystemCpuProbe {
    /// Reads the cgroup files of `cgroup` (and the host through `sysinfo`).
    pub fn with_cgroup(cgroup: CgroupFs) -> Self {
        let system = System::new_with_specifics(
            RefreshKind::nothing().with_cpu(CpuRefreshKind::nothing().with_usage()),
        )
        .ok();
        let mut probe = Self {
            cgroup,
            system,
            last_refresh: Instant::now(),
            last_value: 0.0,
            baseline: None,
            own: None,
        };
        if let Ok(Some(quota)) = probe.cgroup.cpu_quota() {
            let _ = probe.in_quota(quota);
        }
        probe
    }

    fn host(&mut self) -> Result<f64, ProbeError> {
        let Some(system) = self.system.as_mut() else {
            return Err(ProbeError::new(
                "sysinfo",
                "CPU information is not available on this platform",
            ));
        };
        if self.last_refresh.elapsed() >= MINIMUM_CPU_UPDATE_INTERVAL {
            system.refresh_cpu_usage();
            self.last_refresh = Instant::now();
            self.last_value = (f64::from(system.global_cpu_usage()) / 100.0).clamp(0.0, 1.0);
        }
        Ok(self.last_value)
    }

    fn in_quota(&mut self, quota: CpuQuota) -> Result<f64, ProbeError> {
        let (counter, usage) = if self.cgroup.cpu_usage_counts_the_host()? {
            (Counter::OwnProcess, self.own_cpu_time()?)
        } else {
            let usage = self.cgroup.cpu_usage()?.ok_or_else(|| {
                ProbeError::new("cgroup cpu usage", "a quota applies but no usage file was found")
            })?;
            (Counter::Cgroup, usage)
        };
        let now = Instant::now();
        let ratio = match self.baseline {
            Some((c, u0, t0)) if c == counter => {
                quota_ratio(usage.saturating_sub(u0), now.saturating_duration_since(t0), quota)
            }
            _ => 0.0,
        };
        self.baseline = Some((counter, usage, now));
        Ok(ratio)
    }

    /// This process's CPU time since it started, all threads.
    fn own_cpu_time(&mut self) -> Result<Duration, ProbeError> {
        if self.own.is_none() {
            let pid = sysinfo::get_current_pid().map_err(|e| ProbeError::new("sysinfo", e.to_string()))?;
            let system = System::new().map_err(|e| ProbeError::new("sysinfo", e.to_string()))?;
            self.own = Some((system, pid));
        }
        let Some((system, pid)) = self.own.as_mut() else {
            return Err(ProbeError::new("sysinfo", "no process"));
        };
        let pid = *pid;
        system.refresh_processes_specifics(
            ProcessesToUpdate::Some(&[pid]),
            false,
            ProcessRefreshKind::nothing().with_cpu(),
        );
        system
            .process(pid)
            .map(|p| Duration::from_millis(p.accumulated_cpu_time()))
            .ok_or_else(|| ProbeError::new("sysinfo", "this process's CPU time is not available"))
    }
}

/// CPU time `used` over `wall` time, as a share of `quota`.
///
/// ```
/// use std::time::Duration;
/// use tower_snapshotter::probe::{quota_ratio, CpuQuota};
///
/// let half_cpu = CpuQuota { quota: Duration::from_millis(50), period: Duration::from_millis(100) };
/// assert_eq!(quota_ratio(Duration::from_millis(250), Duration::from_secs(1), half_cpu), 0.5);
/// ```
pub fn quota_ratio(used: Duration, wall: Duration, quota: CpuQuota) -> f64 {
    let allowed = wall.as_secs_f64() * quota.cpus();
    if allowed <= 0.0 {
        return 0.0;
    }
    used.as_secs_f64() / allowed
}

impl CpuProbe for SystemCpuProbe {
    fn used_ratio(&mut self) -> Result<f64, ProbeError> {
        match self.cgroup.cpu_quota()? {
            Some(quota) => self.in_quota(quota),
            None => self.host(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::cgroup::fixture::FakeTree;
    use super::*;

    #[test]
    fn quota_arithmetic() {
        let q = CpuQuota {
            quota: Duration::from_millis(150),
            period: Duration::from_millis(100),
        };
        assert!((quota_ratio(Duration::from_millis(1500), Duration::from_secs(1), q) - 1.0).abs() < 1e-9);
        assert!((quota_ratio(Duration::from_millis(300), Duration::from_secs(2), q) - 0.1).abs() < 1e-9);
        assert_eq!(quota_ratio(Duration::from_secs(1), Duration::ZERO, q), 0.0);
    }

    /// A tree with a CPU quota: its files, its usage counter and its quota
    /// file.
    struct QuotaTree {
        files: &'static [(&'static str, &'static str)],
        usage: &'static str,
        quota: &'static str,
    }

    /// cgroup v2, one CPU of quota, one CPU-second used.
    const V2: QuotaTree = QuotaTree {
        files: &[
            ("proc/self/cgroup", "0::/\n"),
            ("cgroup/cgroup.controllers", "cpu\n"),
            ("cgroup/cpu.max", "100000 100000\n"),
            ("cgroup/cpu.stat", "usage_usec 1000000\n"),
        ],
        usage: "cgroup/cpu.stat",
        quota: "cgroup/cpu.max",
    };

    /// cgroup v1 with `cpu` and `cpuacct` mounted apart, `cpuacct` listed
    /// first: the 0.5 CPU quota under cpu/limited applies, the usage is
    /// cpuacct's own (one CPU-second).
    const V1_SPLIT: QuotaTree = QuotaTree {
        files: &[
            (
                "proc/self/cgroup",
                "2:cpuacct:/acct\n1:cpu:/limited\n3:memory:/\n",
            ),
            ("cgroup/cpu/limited/cpu.cfs_quota_us", "50000\n"),
            ("cgroup/cpu/limited/cpu.cfs_period_us", "100000\n"),
            ("cgroup/cpuacct/cpuacct.usage", "0\n"),
            ("cgroup/cpuacct/acct/cpuacct.usage", "1000000000\n"),
        ],
        usage: "cgroup/cpuacct/acct/cpuacct.usage",
        quota: "cgroup/cpu/limited/cpu.cfs_quota_us",
    };

    #[test]
    fn quota_probe_reads_the_cgroup_delta() {
        for (name, layout, eleven_cpu_seconds) in [
            ("v2", V2, "usage_usec 11000000\n"),
            ("v1, cpu and cpuacct apart", V1_SPLIT, "11000000000\n"),
        ] {
            let tree = FakeTree::new();
            // The memory controller: how v1 is recognised (v2 is, first, by
            // `cgroup.controllers`).
            tree.mkdir("cgroup/memory");
            tree.files(layout.files);
            let mut p = SystemCpuProbe::with_cgroup(tree.fs());
            // Ten CPU-seconds more than the baseline: far over the quota in
            // the (sub-second) wall time of this test.
            tree.write(layout.usage, eleven_cpu_seconds);
            assert!(p.used_ratio().unwrap() > 1.0, "{name}");
            // No CPU time since: zero.
            assert_eq!(p.used_ratio().unwrap(), 0.0, "{name}");
            // Garbage: an error (the resource is then unavailable), not a panic.
            tree.write(layout.quota, "lots\n");
            assert!(p.used_ratio().is_err(), "{name}");
        }
    }

    #[test]
    fn a_usage_counter_of_the_whole_host_is_not_read_against_the_quota() {
        // cgroup v1 as the issue found it: `cpu` and `cpuacct` mounted
        // apart, a 0.5 CPU quota on cpu/limited, this process at
        // `cpuacct`'s root, whose counter holds every cgroup's CPU time.
        let tree = FakeTree::new();
        tree.mkdir("cgroup/memory");
        tree.files(&[
            ("proc/self/cgroup", "3:memory:/\n2:cpuacct:/\n1:cpu:/limited\n"),
            ("cgroup/cpu/cpu.cfs_quota_us", "-1\n"),
            ("cgroup/cpu/cpu.cfs_period_us", "100000\n"),
            ("cgroup/cpu/limited/cpu.cfs_quota_us", "50000\n"),
            ("cgroup/cpu/limited/cpu.cfs_period_us", "100000\n"),
            ("cgroup/cpuacct/cpuacct.usage", "0\n"),
        ]);
        let mut p = SystemCpuProbe::with_cgroup(tree.fs());
        // The host used a thousand CPU-seconds meanwhile. Read against half
        // a CPU over this sub-second wall time, that is thousands; this
        // process's own time is at most its threads' share of the cores.
        tree.write("cgroup/cpuacct/cpuacct.usage", "1000000000000\n");
        std::thread::sleep(Duration::from_millis(20));
        let r = p.used_ratio().expect("this process's CPU time");
        assert!((0.0..100.0).contains(&r), "{r}");
    }

    #[test]
    fn the_real_machine_reads() {
        let mut p = SystemCpuProbe::new();
        std::thread::sleep(MINIMUM_CPU_UPDATE_INTERVAL);
        let r = p.used_ratio().expect("this machine has CPU figures");
        assert!((0.0..=4.0).contains(&r), "{r}");
    }
}
