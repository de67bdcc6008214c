//! The real memory probe: this process's memory against the limit that
//! applies to it.

use sysinfo::{MemoryRefreshKind, ProcessRefreshKind, ProcessesToUpdate, RefreshKind, System};

use super::cgroup::CgroupFs;
use super::{MemoryProbe, MemoryReading, ProbeError};

/// This process's memory (PSS where readable, RSS otherwise) against its
/// cgroup's memory limit when one is set, the host's total otherwise. The
/// system-wide figures, for the 97 % failsafe, are the cgroup's usage and
/// limit when it has one (a container is out of memory when its cgroup is,
/// whatever the host has free), the host's otherwise.
///
/// On Linux everything comes from `/proc` and the cgroup files; elsewhere
/// from `sysinfo`.
#[derive(Debug)]
pub struct SystemMemoryProbe {
    cgroup: CgroupFs,
    system: Option<System>,
}

real_machine!(SystemMemoryProbe);

impl SystemMemoryProbe {
    /// Reads the files of `cgroup` (a fake tree in tests).
    pub fn with_cgroup(cgroup: CgroupFs) -> Self {
        let system = if cfg!(target_os = "linux") {
            None
        } else {
            System::new_with_specifics(
                RefreshKind::nothing().with_memory(MemoryRefreshKind::nothing().with_ram()),
            )
            .ok()
        };
        Self { cgroup, system }
    }

    fn linux(&self) -> Result<MemoryReading, ProbeError> {
        let (host_total, host_available) = self.cgroup.host_memory()?;
        let current_size = self.cgroup.process_memory()?;
        Ok(match self.cgroup.memory_limit(host_total)? {
            Some(limit) => MemoryReading {
                current_size,
                limit,
                system_wide_used_size: self.cgroup.memory_usage()?,
                system_wide_memory_size: Some(limit),
            },
            None => MemoryReading {
                current_size,
                limit: host_total,
                system_wide_used_size: Some(host_total - host_available),
                system_wide_memory_size: Some(host_total),
            },
        })
    }

    fn other(&mut self) -> Result<MemoryReading, ProbeError> {
        let Some(system) = self.system.as_mut() else {
            return Err(ProbeError::new(
                "sysinfo",
                "memory information is not available on this platform",
            ));
        };
        system.refresh_memory_specifics(MemoryRefreshKind::nothing().with_ram());
        let pid = sysinfo::get_current_pid().map_err(|e| ProbeError::new("sysinfo", e.to_string()))?;
        system.refresh_processes_specifics(
            ProcessesToUpdate::Some(&[pid]),
            true,
            ProcessRefreshKind::nothing().with_memory(),
        );
        let current_size = system
            .process(pid)
            .map(|p| p.memory())
            .ok_or_else(|| ProbeError::new("sysinfo", "this process is not listed"))?;
        let total = system.total_memory();
        Ok(MemoryReading {
            current_size,
            limit: total,
            system_wide_used_size: Some(total.saturating_sub(system.available_memory())),
            system_wide_memory_size: Some(total),
        })
    }
}

impl MemoryProbe for SystemMemoryProbe {
    fn read(&mut self) -> Result<MemoryReading, ProbeError> {
        if self.system.is_some() {
            self.other()
        } else {
            self.linux()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::cgroup::fixture::FakeTree;
    use super::*;

    #[test]
    fn container_limit_and_recovery_on_a_fake_tree() {
        let tree = FakeTree::new();
        let meminfo = ("proc/meminfo", "MemTotal: 8388608 kB\nMemAvailable: 4194304 kB\n");
        tree.files(&[
            ("proc/self/cgroup", "0::/\n"),
            meminfo,
            ("proc/self/status", "VmRSS:\t    1024 kB\n"),
            ("cgroup/cgroup.controllers", "memory\n"),
            ("cgroup/memory.max", "1073741824\n"),
            ("cgroup/memory.current", "536870912\n"),
        ]);
        let mut p = SystemMemoryProbe::with_cgroup(tree.fs());
        let r = p.read().unwrap();
        assert_eq!(r.limit, 1 << 30);
        assert_eq!(r.current_size, 256 * 4096);
        assert_eq!(r.system_wide_used_size, Some(512 << 20));
        assert_eq!(r.system_wide_memory_size, Some(1 << 30));
        // No limit: the host's figures.
        tree.write("cgroup/memory.max", "max\n");
        let r = p.read().unwrap();
        assert_eq!(r.limit, 8 << 30);
        assert_eq!(r.system_wide_used_size, Some(4 << 30));
        // An unreadable source is an error, and the probe recovers.
        tree.remove(meminfo.0);
        assert!(p.read().is_err());
        tree.write(meminfo.0, meminfo.1);
        assert!(p.read().is_ok());
    }

    #[test]
    fn the_real_machine_reads() {
        let r = SystemMemoryProbe::new()
            .read()
            .expect("this machine has memory figures");
        assert!(r.current_size > 0 && r.limit > 0);
        assert!(r.system_wide_used_size.unwrap_or(0) <= r.system_wide_memory_size.unwrap_or(u64::MAX));
    }
}
