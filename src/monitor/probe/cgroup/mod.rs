//! Reading the limits that apply to this process: cgroup v2 and v1 files,
//! and the few `/proc` files the memory probe needs.
//!
//! Every file is parsed by a pure function in [`parse`]; [`CgroupFs`] finds
//! the files and reads them again on every call, so a limit that changes
//! mid-run is followed.
//!
//! | file | holds |
//! | --- | --- |
//! | `mod.rs` | [`CpuQuota`], and [`CgroupFs`]: discovery of the hierarchy and of this process's directories, and the readers |
//! | `parse.rs` | the pure parsers, with their unit tests |
//! | `tests.rs` | [`CgroupFs`] on fake v1 and v2 trees, and on the real machine |
//! | `fixture.rs` | the fake tree those tests, and the CPU and memory probes' tests, write |

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::ProbeError;

#[cfg(test)]
pub(crate) mod fixture;
pub mod parse;
#[cfg(test)]
mod tests;

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
    /// That counter is its hierarchy's root while the CPU limits are set
    /// below theirs (v1, `cpu` and `cpuacct` mounted apart, `cpuacct:/`):
    /// it holds every cgroup's CPU time, the whole host's.
    usage_counts_the_host: bool,
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

/// Reads a file and parses it: `Ok(None)` when it does not exist, an error
/// naming it when it cannot be read or parsed.
fn parsed<T>(
    path: &Path,
    parse: impl FnOnce(&str) -> Result<T, ProbeError>,
) -> Result<Option<T>, ProbeError> {
    read(path)?.map(|t| parse(&t).map_err(at(path))).transpose()
}

/// Reads a file that must exist and parses it.
fn required<T>(path: &Path, parse: impl FnOnce(&str) -> Result<T, ProbeError>) -> Result<T, ProbeError> {
    parsed(path, parse)?.ok_or_else(|| ProbeError::new(path.display().to_string(), "missing"))
}

/// The tightest of the limits `limit` finds in `dirs` (the lowest `key`;
/// the first of equals): a limit on any ancestor applies.
fn tightest<T, K: PartialOrd>(
    dirs: &[PathBuf],
    mut limit: impl FnMut(&Path) -> Result<Option<T>, ProbeError>,
    key: impl Fn(&T) -> K,
) -> Result<Option<T>, ProbeError> {
    let mut best: Option<T> = None;
    for dir in dirs {
        if let Some(l) = limit(dir)? {
            if best.as_ref().is_none_or(|b| key(&l) < key(b)) {
                best = Some(l);
            }
        }
    }
    Ok(best)
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
                    usage_counts_the_host: false,
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
                let usage_base = v1_base(&["cpu,cpuacct", "cpuacct", "cpuacct,cpu"]);
                let cpu_usage_dir = usage_base
                    .as_ref()
                    .and_then(|b| Self::chain(b, me.cpuacct.as_deref()).into_iter().next());
                let usage_counts_the_host =
                    cpu_dirs.len() > 1 && cpu_usage_dir.is_some() && cpu_usage_dir == usage_base;
                Layout {
                    version,
                    cpu_dirs,
                    cpu_usage_dir,
                    usage_counts_the_host,
                    memory_dirs: Self::chain(&self.cgroup_root.join("memory"), me.memory.as_deref()),
                }
            }
            Version::None => Layout {
                version,
                cpu_dirs: Vec::new(),
                cpu_usage_dir: None,
                usage_counts_the_host: false,
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
        let quota = |dir: &Path| match layout.version {
            Version::V2 => Ok(parsed(&dir.join("cpu.max"), parse::cpu_max)?.flatten()),
            Version::V1 => {
                let (qp, pp) = (dir.join("cpu.cfs_quota_us"), dir.join("cpu.cfs_period_us"));
                match (read(&qp)?, read(&pp)?) {
                    (Some(q), Some(p)) => parse::cfs_quota(&q, &p).map_err(at(&qp)),
                    _ => Ok(None),
                }
            }
            Version::None => Ok(None),
        };
        tightest(&layout.cpu_dirs, quota, CpuQuota::cpus)
    }

    /// CPU time used by this process's cgroup since it was created, `None`
    /// outside a cgroup hierarchy.
    pub fn cpu_usage(&self) -> Result<Option<Duration>, ProbeError> {
        let layout = self.layout()?;
        let Some(dir) = &layout.cpu_usage_dir else {
            return Ok(None);
        };
        match layout.version {
            Version::V2 => parsed(&dir.join("cpu.stat"), parse::cpu_stat_usage),
            Version::V1 => parsed(&dir.join("cpuacct.usage"), parse::cpuacct_usage),
            Version::None => Ok(None),
        }
    }

    /// Whether [`cpu_usage`](Self::cpu_usage) reads the whole host's CPU
    /// time rather than this cgroup's: cgroup v1 with `cpu` and `cpuacct`
    /// mounted apart, the quota set on a `cpu` cgroup below its root and
    /// this process at `cpuacct`'s root. Against the quota, this process
    /// then measures its own CPU time instead.
    pub fn cpu_usage_counts_the_host(&self) -> Result<bool, ProbeError> {
        Ok(self.layout()?.usage_counts_the_host)
    }

    /// The memory limit that applies (the tightest along the ancestors),
    /// `None` when there is none. `host_total` lets absurd v1 values be
    /// recognised.
    pub fn memory_limit(&self, host_total: u64) -> Result<Option<u64>, ProbeError> {
        let layout = self.layout()?;
        let limit = |dir: &Path| match layout.version {
            Version::V2 => Ok(parsed(&dir.join("memory.max"), parse::memory_max)?.flatten()),
            Version::V1 => {
                let path = dir.join("memory.limit_in_bytes");
                Ok(parsed(&path, |t| parse::v1_memory_limit(t, host_total))?.flatten())
            }
            Version::None => Ok(None),
        };
        tightest(&layout.memory_dirs, limit, |l| *l)
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
        parsed(&path, parse::memory_usage)
    }

    /// This process's memory: PSS from `self/smaps_rollup` where readable,
    /// else RSS from `self/status`.
    pub fn process_memory(&self) -> Result<u64, ProbeError> {
        let rollup = self.proc_root.join("self/smaps_rollup");
        if let Ok(Some(pss)) = parsed(&rollup, parse::smaps_rollup_pss) {
            if pss > 0 {
                return Ok(pss);
            }
        }
        required(&self.proc_root.join("self/status"), parse::status_rss)
    }

    /// The host's total and available memory, from `meminfo`.
    pub fn host_memory(&self) -> Result<(u64, u64), ProbeError> {
        required(&self.proc_root.join("meminfo"), parse::meminfo)
    }
}
