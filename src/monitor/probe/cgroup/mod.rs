//! Reading the limits that apply to this process: cgroup v2 and v1 files,
//! and the few `/proc` files the memory probe needs.
//!
//! Every file is parsed by a pure function in [`parse`]; [`CgroupFs`] finds
//! the files and reads them again on every call, so a limit that changes
//! mid-run is followed.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::ProbeError;

/// A CPU quota: `quota` of CPU time every `period`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuQuota {
    /// CPU time allowed per period.
    pub quota: Duration,
    /// The period.
    pub period: Duration,
}

impl CpuQuota {
    /// The quota in CPUs (`quota / period`), e.g. 1.5.
    pub fn cpus(&self) -> f64 {
        self.quota.as_secs_f64() / self.period.as_secs_f64()
    }
}

/// Pure parsers of cgroup and `/proc` file contents. None panics, whatever
/// the text; a malformed file is an `Err` naming it.
pub mod parse {
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
        let kb = |key: &str| -> Option<u64> {
            let line = text.lines().find(|l| l.starts_with(key))?;
            let v = line[key.len()..].trim().trim_end_matches("kB").trim();
            v.parse::<u64>().ok()?.checked_mul(1024)
        };
        match (kb("MemTotal:"), kb("MemAvailable:")) {
            (Some(t), Some(a)) if t > 0 => Ok((t, a.min(t))),
            _ => Err(ProbeError::new("meminfo", "no MemTotal or MemAvailable")),
        }
    }

    /// `/proc/self/smaps_rollup`: the proportional set size (`Pss`), bytes.
    pub fn smaps_rollup_pss(text: &str) -> Result<u64, ProbeError> {
        text.lines()
            .find_map(|l| {
                let v = l.strip_prefix("Pss:")?.trim().trim_end_matches("kB").trim();
                v.parse::<u64>().ok()?.checked_mul(1024)
            })
            .ok_or_else(|| ProbeError::new("smaps_rollup", "no Pss line"))
    }

    /// `/proc/self/status`: the resident set size (`VmRSS`), bytes. The
    /// kernel reports it in kB, whatever its page size.
    pub fn status_rss(text: &str) -> Result<u64, ProbeError> {
        text.lines()
            .find_map(|l| {
                let v = l.strip_prefix("VmRSS:")?.trim().trim_end_matches("kB").trim();
                v.parse::<u64>().ok()?.checked_mul(1024)
            })
            .ok_or_else(|| ProbeError::new("status", "no VmRSS line"))
    }
}

/// Which cgroup hierarchy the machine uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Version {
    V2,
    V1,
    None,
}

/// Where this process's cgroup files are: found by [`CgroupFs::discover`],
/// kept for [`REDISCOVER`].
#[derive(Debug)]
struct Layout {
    version: Version,
    /// Directories holding CPU limits, deepest first.
    cpu_dirs: Vec<PathBuf>,
    /// The directory holding the CPU usage counter.
    cpu_usage_dir: Option<PathBuf>,
    /// Directories holding memory limits, deepest first.
    memory_dirs: Vec<PathBuf>,
}

/// How long a discovered layout is trusted. The files themselves are read
/// again on every call; only where they are is remembered, which saves some
/// thirty filesystem look-ups per sample.
pub const REDISCOVER: Duration = Duration::from_secs(10);

/// Where this process's cgroup and `/proc` files are: `/proc` and
/// `/sys/fs/cgroup` by default, any directories in tests.
///
/// ```
/// use tower_snapshotter::probe::CgroupFs;
///
/// let fs = CgroupFs::new();
/// // On a host without limits both are Ok(None); in a container, the limits.
/// let _ = (fs.cpu_quota(), fs.memory_limit(0));
/// ```
#[derive(Debug)]
pub struct CgroupFs {
    proc_root: PathBuf,
    cgroup_root: PathBuf,
    layout: Mutex<Option<(Instant, Arc<Layout>)>>,
}

impl Clone for CgroupFs {
    fn clone(&self) -> Self {
        Self::with_roots(self.proc_root.clone(), self.cgroup_root.clone())
    }
}

impl Default for CgroupFs {
    fn default() -> Self {
        Self::new()
    }
}

/// Reads a file: `Ok(None)` when it does not exist, an error when it cannot
/// be read; non-UTF-8 bytes are replaced.
fn read(path: &Path) -> Result<Option<String>, ProbeError> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(String::from_utf8_lossy(&bytes).into_owned())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(ProbeError::new(path.display().to_string(), e.to_string())),
    }
}

/// Adds the file name to a parse error.
fn at(path: &Path) -> impl Fn(ProbeError) -> ProbeError + '_ {
    move |e| ProbeError::new(path.display().to_string(), e.to_string())
}

impl CgroupFs {
    /// The real machine: `/proc` and `/sys/fs/cgroup`.
    pub fn new() -> Self {
        Self::with_roots("/proc", "/sys/fs/cgroup")
    }

    /// Another tree, laid out as `/proc` and `/sys/fs/cgroup` are.
    pub fn with_roots(proc_root: impl Into<PathBuf>, cgroup_root: impl Into<PathBuf>) -> Self {
        Self {
            proc_root: proc_root.into(),
            cgroup_root: cgroup_root.into(),
            layout: Mutex::new(None),
        }
    }

    /// The layout, discovered again when older than [`REDISCOVER`].
    fn layout(&self) -> Result<Arc<Layout>, ProbeError> {
        let mut cached = self.layout.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((at, layout)) = cached.as_ref() {
            if at.elapsed() < REDISCOVER {
                return Ok(Arc::clone(layout));
            }
        }
        let layout = Arc::new(self.discover()?);
        *cached = Some((Instant::now(), Arc::clone(&layout)));
        Ok(layout)
    }

    /// Finds the hierarchy and this process's directories in it.
    fn discover(&self) -> Result<Layout, ProbeError> {
        let text = read(&self.proc_root.join("self/cgroup"))?.unwrap_or_default();
        let me = parse::self_cgroup(&text);
        let version = if self.cgroup_root.join("cgroup.controllers").exists() {
            Version::V2
        } else if self.cgroup_root.join("memory").is_dir() {
            Version::V1
        } else {
            Version::None
        };
        let v1_base = |names: &[&str]| {
            names
                .iter()
                .map(|n| self.cgroup_root.join(n))
                .find(|d| d.is_dir())
        };
        Ok(match version {
            Version::V2 => {
                let dirs = Self::chain(&self.cgroup_root, me.unified.as_deref());
                Layout {
                    version,
                    cpu_usage_dir: dirs.first().cloned(),
                    cpu_dirs: dirs.clone(),
                    memory_dirs: dirs,
                }
            }
            Version::V1 => {
                // The quota under the `cpu` controller's mount and path, the
                // usage under `cpuacct`'s: mounted apart, they may differ.
                let cpu_dirs = v1_base(&["cpu,cpuacct", "cpu", "cpuacct,cpu"])
                    .map(|b| Self::chain(&b, me.cpu.as_deref()))
                    .unwrap_or_default();
                let cpu_usage_dir = v1_base(&["cpu,cpuacct", "cpuacct", "cpuacct,cpu"])
                    .and_then(|b| Self::chain(&b, me.cpuacct.as_deref()).into_iter().next());
                Layout {
                    version,
                    cpu_dirs,
                    cpu_usage_dir,
                    memory_dirs: Self::chain(&self.cgroup_root.join("memory"), me.memory.as_deref()),
                }
            }
            Version::None => Layout {
                version,
                cpu_dirs: Vec::new(),
                cpu_usage_dir: None,
                memory_dirs: Vec::new(),
            },
        })
    }

    /// The directories from this process's cgroup up to `base`, deepest
    /// first: a limit may be set on any ancestor. Inside a container the
    /// path is usually `/`, so this is `base` alone.
    fn chain(base: &Path, path: Option<&str>) -> Vec<PathBuf> {
        let mut dirs = Vec::new();
        if let Some(p) = path {
            let mut dir = base.to_path_buf();
            let mut parts = Vec::new();
            for part in p.split('/').filter(|s| !s.is_empty() && *s != "." && *s != "..") {
                dir.push(part);
                parts.push(dir.clone());
            }
            dirs.extend(parts.into_iter().rev().filter(|d| d.is_dir()));
        }
        dirs.push(base.to_path_buf());
        dirs
    }

    /// The CPU quota that applies (the tightest along the cgroup's
    /// ancestors), `None` when there is none.
    pub fn cpu_quota(&self) -> Result<Option<CpuQuota>, ProbeError> {
        let layout = self.layout()?;
        let mut best: Option<CpuQuota> = None;
        for dir in &layout.cpu_dirs {
            let quota = match layout.version {
                Version::V2 => {
                    let path = dir.join("cpu.max");
                    match read(&path)? {
                        Some(text) => parse::cpu_max(&text).map_err(at(&path))?,
                        None => None,
                    }
                }
                Version::V1 => {
                    let (qp, pp) = (dir.join("cpu.cfs_quota_us"), dir.join("cpu.cfs_period_us"));
                    match (read(&qp)?, read(&pp)?) {
                        (Some(q), Some(p)) => parse::cfs_quota(&q, &p).map_err(at(&qp))?,
                        _ => None,
                    }
                }
                Version::None => None,
            };
            if let Some(q) = quota {
                if best.is_none_or(|b| q.cpus() < b.cpus()) {
                    best = Some(q);
                }
            }
        }
        Ok(best)
    }

    /// CPU time used by this process's cgroup since it was created, `None`
    /// outside a cgroup hierarchy.
    pub fn cpu_usage(&self) -> Result<Option<Duration>, ProbeError> {
        let layout = self.layout()?;
        let Some(dir) = &layout.cpu_usage_dir else {
            return Ok(None);
        };
        match layout.version {
            Version::V2 => {
                let path = dir.join("cpu.stat");
                read(&path)?
                    .map(|t| parse::cpu_stat_usage(&t).map_err(at(&path)))
                    .transpose()
            }
            Version::V1 => {
                let path = dir.join("cpuacct.usage");
                read(&path)?
                    .map(|t| parse::cpuacct_usage(&t).map_err(at(&path)))
                    .transpose()
            }
            Version::None => Ok(None),
        }
    }

    /// The memory limit that applies (the tightest along the ancestors),
    /// `None` when there is none. `host_total` lets absurd v1 values be
    /// recognised.
    pub fn memory_limit(&self, host_total: u64) -> Result<Option<u64>, ProbeError> {
        let layout = self.layout()?;
        let mut best: Option<u64> = None;
        for dir in &layout.memory_dirs {
            let limit = match layout.version {
                Version::V2 => {
                    let path = dir.join("memory.max");
                    match read(&path)? {
                        Some(text) => parse::memory_max(&text).map_err(at(&path))?,
                        None => None,
                    }
                }
                Version::V1 => {
                    let path = dir.join("memory.limit_in_bytes");
                    match read(&path)? {
                        Some(text) => parse::v1_memory_limit(&text, host_total).map_err(at(&path))?,
                        None => None,
                    }
                }
                Version::None => None,
            };
            if let Some(l) = limit {
                best = Some(best.map_or(l, |b| b.min(l)));
            }
        }
        Ok(best)
    }

    /// Bytes in use in this process's memory cgroup, `None` outside one.
    pub fn memory_usage(&self) -> Result<Option<u64>, ProbeError> {
        let layout = self.layout()?;
        let Some(dir) = layout.memory_dirs.first() else {
            return Ok(None);
        };
        let path = match layout.version {
            Version::V2 => dir.join("memory.current"),
            Version::V1 => dir.join("memory.usage_in_bytes"),
            Version::None => return Ok(None),
        };
        read(&path)?
            .map(|t| parse::memory_usage(&t).map_err(at(&path)))
            .transpose()
    }

    /// This process's memory: PSS from `self/smaps_rollup` where readable,
    /// else RSS from `self/status`.
    pub fn process_memory(&self) -> Result<u64, ProbeError> {
        let rollup = self.proc_root.join("self/smaps_rollup");
        if let Ok(Some(text)) = read(&rollup) {
            if let Ok(pss) = parse::smaps_rollup_pss(&text) {
                if pss > 0 {
                    return Ok(pss);
                }
            }
        }
        let status = self.proc_root.join("self/status");
        let text = read(&status)?.ok_or_else(|| ProbeError::new(status.display().to_string(), "missing"))?;
        parse::status_rss(&text).map_err(at(&status))
    }

    /// The host's total and available memory, from `meminfo`.
    pub fn host_memory(&self) -> Result<(u64, u64), ProbeError> {
        let path = self.proc_root.join("meminfo");
        let text = read(&path)?.ok_or_else(|| ProbeError::new(path.display().to_string(), "missing"))?;
        parse::meminfo(&text).map_err(at(&path))
    }
}

#[cfg(test)]
mod tests {
    use super::parse::*;
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

    fn tree() -> (tempfile::TempDir, CgroupFs) {
        let dir = tempfile::tempdir().unwrap();
        let fs = CgroupFs::with_roots(dir.path().join("proc"), dir.path().join("cgroup"));
        std::fs::create_dir_all(dir.path().join("proc/self")).unwrap();
        std::fs::create_dir_all(dir.path().join("cgroup")).unwrap();
        (dir, fs)
    }

    fn write(dir: &tempfile::TempDir, path: &str, text: &str) {
        let p = dir.path().join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    #[test]
    fn v2_tree_with_limits_on_an_ancestor() {
        let (dir, fs) = tree();
        write(&dir, "cgroup/cgroup.controllers", "cpu memory\n");
        write(&dir, "proc/self/cgroup", "0::/app.slice/job\n");
        write(&dir, "cgroup/app.slice/cpu.max", "200000 100000\n");
        write(&dir, "cgroup/app.slice/job/cpu.max", "max 100000\n");
        write(&dir, "cgroup/app.slice/job/cpu.stat", "usage_usec 42\n");
        write(&dir, "cgroup/app.slice/memory.max", "1073741824\n");
        write(&dir, "cgroup/app.slice/job/memory.max", "2147483648\n");
        write(&dir, "cgroup/app.slice/job/memory.current", "1000\n");
        assert!((fs.cpu_quota().unwrap().unwrap().cpus() - 2.0).abs() < 1e-9);
        assert_eq!(fs.cpu_usage(), Ok(Some(Duration::from_micros(42))));
        assert_eq!(
            fs.memory_limit(1 << 40),
            Ok(Some(1 << 30)),
            "the tightest ancestor"
        );
        assert_eq!(fs.memory_usage(), Ok(Some(1000)));
        // A limit that changes mid-run is followed.
        write(&dir, "cgroup/app.slice/memory.max", "max\n");
        assert_eq!(fs.memory_limit(1 << 40), Ok(Some(1 << 31)));
    }

    #[test]
    fn v1_tree() {
        let (dir, fs) = tree();
        write(&dir, "proc/self/cgroup", "5:memory:/\n4:cpu,cpuacct:/\n");
        write(&dir, "cgroup/memory/memory.limit_in_bytes", "536870912\n");
        write(&dir, "cgroup/memory/memory.usage_in_bytes", "1000\n");
        write(&dir, "cgroup/cpu,cpuacct/cpu.cfs_quota_us", "50000\n");
        write(&dir, "cgroup/cpu,cpuacct/cpu.cfs_period_us", "100000\n");
        write(&dir, "cgroup/cpu,cpuacct/cpuacct.usage", "7000\n");
        assert!((fs.cpu_quota().unwrap().unwrap().cpus() - 0.5).abs() < 1e-9);
        assert_eq!(fs.cpu_usage(), Ok(Some(Duration::from_nanos(7000))));
        assert_eq!(fs.memory_limit(1 << 40), Ok(Some(512 << 20)));
        assert_eq!(fs.memory_usage(), Ok(Some(1000)));
    }

    /// A v1 tree with the memory controller (how v1 is recognised).
    fn v1_memory(dir: &tempfile::TempDir) {
        write(dir, "cgroup/memory/memory.limit_in_bytes", "536870912\n");
        write(dir, "cgroup/memory/memory.usage_in_bytes", "1000\n");
    }

    #[test]
    fn v1_split_cpu_and_cpuacct_mounts() {
        let (dir, fs) = tree();
        v1_memory(&dir);
        // `cpuacct` listed before `cpu`, in another cgroup on another mount.
        write(
            &dir,
            "proc/self/cgroup",
            "3:memory:/\n2:cpuacct:/\n1:cpu:/limited\n",
        );
        write(&dir, "cgroup/cpu/cpu.cfs_quota_us", "-1\n");
        write(&dir, "cgroup/cpu/cpu.cfs_period_us", "100000\n");
        write(&dir, "cgroup/cpu/limited/cpu.cfs_quota_us", "50000\n");
        write(&dir, "cgroup/cpu/limited/cpu.cfs_period_us", "100000\n");
        write(&dir, "cgroup/cpuacct/cpuacct.usage", "7000\n");
        write(&dir, "cgroup/cpuacct/acct/cpuacct.usage", "9000\n");
        let q = fs.cpu_quota().unwrap().expect("the quota under cpu/limited");
        assert!((q.cpus() - 0.5).abs() < 1e-9, "{q:?}");
        assert_eq!(fs.cpu_usage(), Ok(Some(Duration::from_nanos(7000))));
        assert_eq!(fs.memory_limit(1 << 40), Ok(Some(512 << 20)));

        // `cpu` first, `cpuacct` in a cgroup of its own: usage from there.
        write(
            &dir,
            "proc/self/cgroup",
            "1:cpu:/limited\n2:cpuacct:/acct\n3:memory:/\n",
        );
        let fs = fs.clone();
        assert!((fs.cpu_quota().unwrap().unwrap().cpus() - 0.5).abs() < 1e-9);
        assert_eq!(fs.cpu_usage(), Ok(Some(Duration::from_nanos(9000))));

        // Garbage is an error (the resource is then unavailable), not a
        // panic; a missing usage file is no usage.
        write(&dir, "cgroup/cpuacct/acct/cpuacct.usage", "lots\n");
        let err = fs.cpu_usage().unwrap_err();
        assert!(err.to_string().contains("cpuacct.usage"), "{err}");
        write(&dir, "cgroup/cpu/limited/cpu.cfs_quota_us", "\u{0}\u{fffd}\n");
        let err = fs.cpu_quota().unwrap_err();
        assert!(err.to_string().contains("cpu.cfs_quota_us"), "{err}");
        std::fs::remove_file(dir.path().join("cgroup/cpuacct/acct/cpuacct.usage")).unwrap();
        std::fs::remove_file(dir.path().join("cgroup/cpuacct/cpuacct.usage")).unwrap();
        assert_eq!(fs.cpu_usage(), Ok(None));
    }

    #[test]
    fn v1_joined_cpu_cpuacct_as_docker_mounts_them() {
        // The host's view: one `cpu,cpuacct` mount, the limit on the
        // container's cgroup, the usage counter there too.
        let (dir, fs) = tree();
        v1_memory(&dir);
        write(
            &dir,
            "proc/self/cgroup",
            "12:memory:/docker/abc\n4:cpu,cpuacct:/docker/abc\n1:name=systemd:/docker/abc\n",
        );
        write(&dir, "cgroup/cpu,cpuacct/cpu.cfs_quota_us", "-1\n");
        write(&dir, "cgroup/cpu,cpuacct/cpu.cfs_period_us", "100000\n");
        write(&dir, "cgroup/cpu,cpuacct/cpuacct.usage", "1\n");
        write(&dir, "cgroup/cpu,cpuacct/docker/abc/cpu.cfs_quota_us", "50000\n");
        write(
            &dir,
            "cgroup/cpu,cpuacct/docker/abc/cpu.cfs_period_us",
            "100000\n",
        );
        write(&dir, "cgroup/cpu,cpuacct/docker/abc/cpuacct.usage", "7000\n");
        assert!((fs.cpu_quota().unwrap().unwrap().cpus() - 0.5).abs() < 1e-9);
        assert_eq!(fs.cpu_usage(), Ok(Some(Duration::from_nanos(7000))));

        // The container's view without a cgroup namespace: the mount's root
        // is `/docker/abc`, so the path has no directory under it and the
        // mount itself is the cgroup; `cpu` and `cpuacct` are links to it.
        let (dir, fs) = tree();
        v1_memory(&dir);
        write(
            &dir,
            "proc/self/cgroup",
            "12:memory:/docker/abc\n4:cpu,cpuacct:/docker/abc\n",
        );
        write(&dir, "cgroup/cpu,cpuacct/cpu.cfs_quota_us", "50000\n");
        write(&dir, "cgroup/cpu,cpuacct/cpu.cfs_period_us", "100000\n");
        write(&dir, "cgroup/cpu,cpuacct/cpuacct.usage", "7000\n");
        #[cfg(unix)]
        for link in ["cpu", "cpuacct"] {
            std::os::unix::fs::symlink("cpu,cpuacct", dir.path().join("cgroup").join(link)).unwrap();
        }
        assert!((fs.cpu_quota().unwrap().unwrap().cpus() - 0.5).abs() < 1e-9);
        assert_eq!(fs.cpu_usage(), Ok(Some(Duration::from_nanos(7000))));
        assert_eq!(fs.memory_limit(1 << 40), Ok(Some(512 << 20)));
    }

    #[test]
    fn no_cgroup_and_garbage() {
        let (dir, fs) = tree();
        assert_eq!(fs.cpu_quota(), Ok(None));
        assert_eq!(fs.memory_limit(1), Ok(None));
        assert_eq!(fs.cpu_usage(), Ok(None));
        assert!(fs.host_memory().is_err(), "missing meminfo");
        assert!(fs.process_memory().is_err(), "missing status");
        write(&dir, "cgroup/cgroup.controllers", "\n");
        write(&dir, "cgroup/memory.max", "garbage\n");
        // The layout is rediscovered by a new reader (or after REDISCOVER).
        let fs = fs.clone();
        let err = fs.memory_limit(1).unwrap_err();
        assert!(err.to_string().contains("memory.max"), "{err}");
    }

    #[test]
    fn an_unreadable_file_is_an_error_and_recovers() {
        let (dir, fs) = tree();
        write(&dir, "cgroup/cgroup.controllers", "memory\n");
        write(&dir, "proc/self/cgroup", "0::/\n");
        // A directory where the file should be: it exists but cannot be read.
        std::fs::create_dir_all(dir.path().join("cgroup/memory.max")).unwrap();
        let err = fs.memory_limit(1 << 40).unwrap_err();
        assert!(err.to_string().contains("memory.max"), "{err}");
        std::fs::remove_dir(dir.path().join("cgroup/memory.max")).unwrap();
        write(&dir, "cgroup/memory.max", "1048576\n");
        assert_eq!(fs.memory_limit(1 << 40), Ok(Some(1 << 20)));
    }

    #[test]
    fn process_memory_prefers_pss() {
        let (dir, fs) = tree();
        write(&dir, "proc/self/status", "VmRSS:\t     200 kB\n");
        assert_eq!(fs.process_memory(), Ok(200 * 1024));
        write(&dir, "proc/self/smaps_rollup", "Pss: 64 kB\n");
        assert_eq!(fs.process_memory(), Ok(64 * 1024));
    }

    #[test]
    fn the_real_machine_reads() {
        let fs = CgroupFs::new();
        let (total, available) = fs.host_memory().expect("meminfo is readable here");
        assert!(total > 0 && available <= total);
        assert!(fs.process_memory().expect("status is readable here") > 0);
        assert!(fs.cpu_quota().is_ok());
        assert!(fs.memory_limit(total).is_ok());
    }
}
