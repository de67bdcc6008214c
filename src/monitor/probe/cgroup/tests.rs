//! [`CgroupFs`] on fake v2 and v1 trees (the parsers' own tests are in
//! `parse.rs`), and on the real machine.

use std::time::Duration;

use super::fixture::FakeTree;
use super::CgroupFs;

/// The quota `fs` reads is `cpus` CPUs (in the tree called `name`).
#[track_caller]
fn assert_cpus(fs: &CgroupFs, cpus: f64, name: &str) {
    let q = fs.cpu_quota().unwrap().expect(name);
    assert!((q.cpus() - cpus).abs() < 1e-9, "{name}: {q:?}");
}

#[test]
fn v2_tree_with_limits_on_an_ancestor() {
    let tree = FakeTree::new();
    let fs = tree.fs();
    tree.files(&[
        ("cgroup/cgroup.controllers", "cpu memory\n"),
        ("proc/self/cgroup", "0::/app.slice/job\n"),
        ("cgroup/app.slice/cpu.max", "200000 100000\n"),
        ("cgroup/app.slice/job/cpu.max", "max 100000\n"),
        ("cgroup/app.slice/job/cpu.stat", "usage_usec 42\n"),
        ("cgroup/app.slice/memory.max", "1073741824\n"),
        ("cgroup/app.slice/job/memory.max", "2147483648\n"),
        ("cgroup/app.slice/job/memory.current", "1000\n"),
    ]);
    assert_cpus(&fs, 2.0, "v2");
    assert_eq!(fs.cpu_usage(), Ok(Some(Duration::from_micros(42))));
    assert_eq!(
        fs.memory_limit(1 << 40),
        Ok(Some(1 << 30)),
        "the tightest ancestor"
    );
    assert_eq!(fs.memory_usage(), Ok(Some(1000)));
    // A limit that changes mid-run is followed.
    tree.write("cgroup/app.slice/memory.max", "max\n");
    assert_eq!(fs.memory_limit(1 << 40), Ok(Some(1 << 31)));
}

/// A cgroup v1 layout: this process's `cgroup` file, the CPU files under
/// `cgroup/`, and links there. Every one holds 0.5 CPU of quota and 7000 ns
/// of usage where this process's controllers are, beside a memory
/// controller with a 512 MiB limit and 1000 bytes in use.
struct V1 {
    self_cgroup: &'static str,
    files: &'static [(&'static str, &'static str)],
    links: &'static [(&'static str, &'static str)],
}

/// One `cpu,cpuacct` mount, this process at its root.
const JOINED: V1 = V1 {
    self_cgroup: "5:memory:/\n4:cpu,cpuacct:/\n",
    files: &[
        ("cpu,cpuacct/cpu.cfs_quota_us", "50000\n"),
        ("cpu,cpuacct/cpu.cfs_period_us", "100000\n"),
        ("cpu,cpuacct/cpuacct.usage", "7000\n"),
    ],
    links: &[],
};

/// `cpu` and `cpuacct` mounted apart, `cpuacct` listed before `cpu`, in
/// another cgroup on another mount.
const SPLIT: V1 = V1 {
    self_cgroup: "3:memory:/\n2:cpuacct:/\n1:cpu:/limited\n",
    files: &[
        ("cpu/cpu.cfs_quota_us", "-1\n"),
        ("cpu/cpu.cfs_period_us", "100000\n"),
        ("cpu/limited/cpu.cfs_quota_us", "50000\n"),
        ("cpu/limited/cpu.cfs_period_us", "100000\n"),
        ("cpuacct/cpuacct.usage", "7000\n"),
        ("cpuacct/acct/cpuacct.usage", "9000\n"),
    ],
    links: &[],
};

/// The host's view of a Docker container: one `cpu,cpuacct` mount, the
/// limit on the container's cgroup, the usage counter there too.
const DOCKER_HOST: V1 = V1 {
    self_cgroup: "12:memory:/docker/abc\n4:cpu,cpuacct:/docker/abc\n1:name=systemd:/docker/abc\n",
    files: &[
        ("cpu,cpuacct/cpu.cfs_quota_us", "-1\n"),
        ("cpu,cpuacct/cpu.cfs_period_us", "100000\n"),
        ("cpu,cpuacct/cpuacct.usage", "1\n"),
        ("cpu,cpuacct/docker/abc/cpu.cfs_quota_us", "50000\n"),
        ("cpu,cpuacct/docker/abc/cpu.cfs_period_us", "100000\n"),
        ("cpu,cpuacct/docker/abc/cpuacct.usage", "7000\n"),
    ],
    links: &[],
};

/// The container's view without a cgroup namespace: the mount's root is
/// `/docker/abc`, so the path has no directory under it and the mount
/// itself is the cgroup; `cpu` and `cpuacct` are links to it.
const DOCKER_CONTAINER: V1 = V1 {
    self_cgroup: "12:memory:/docker/abc\n4:cpu,cpuacct:/docker/abc\n",
    files: &[
        ("cpu,cpuacct/cpu.cfs_quota_us", "50000\n"),
        ("cpu,cpuacct/cpu.cfs_period_us", "100000\n"),
        ("cpu,cpuacct/cpuacct.usage", "7000\n"),
    ],
    links: &[("cpu", "cpu,cpuacct"), ("cpuacct", "cpu,cpuacct")],
};

impl V1 {
    /// The layout on a fake tree.
    fn tree(&self) -> FakeTree {
        let tree = FakeTree::new();
        // The memory controller: how v1 is recognised.
        tree.write("cgroup/memory/memory.limit_in_bytes", "536870912\n");
        tree.write("cgroup/memory/memory.usage_in_bytes", "1000\n");
        tree.write("proc/self/cgroup", self.self_cgroup);
        for (path, text) in self.files {
            tree.write(&format!("cgroup/{path}"), text);
        }
        #[cfg(unix)]
        for (link, target) in self.links {
            std::os::unix::fs::symlink(target, tree.path("cgroup").join(link)).unwrap();
        }
        tree
    }
}

#[test]
fn v1_tree() {
    for (name, layout) in [
        ("joined", JOINED),
        ("split", SPLIT),
        ("docker, host's view", DOCKER_HOST),
        ("docker, container's view", DOCKER_CONTAINER),
    ] {
        let tree = layout.tree();
        let fs = tree.fs();
        assert_cpus(&fs, 0.5, name);
        assert_eq!(fs.cpu_usage(), Ok(Some(Duration::from_nanos(7000))), "{name}");
        // Only the split layout's counter (`cpuacct:/`) is the host's.
        assert_eq!(fs.cpu_usage_counts_the_host(), Ok(name == "split"), "{name}");
        assert_eq!(fs.memory_limit(1 << 40), Ok(Some(512 << 20)), "{name}");
        assert_eq!(fs.memory_usage(), Ok(Some(1000)), "{name}");
    }
}

#[test]
fn v1_split_cpu_and_cpuacct_mounts() {
    let tree = SPLIT.tree();
    let fs = tree.fs();
    assert_cpus(&fs, 0.5, "split");
    assert_eq!(fs.cpu_usage(), Ok(Some(Duration::from_nanos(7000))));
    // That counter is `cpuacct`'s root, every cgroup's time: the host's.
    assert_eq!(fs.cpu_usage_counts_the_host(), Ok(true));

    // `cpu` first, `cpuacct` in a cgroup of its own: usage from there.
    tree.write(
        "proc/self/cgroup",
        "1:cpu:/limited\n2:cpuacct:/acct\n3:memory:/\n",
    );
    let fs = fs.clone();
    assert_cpus(&fs, 0.5, "split, cpu first");
    assert_eq!(fs.cpu_usage(), Ok(Some(Duration::from_nanos(9000))));
    assert_eq!(
        fs.cpu_usage_counts_the_host(),
        Ok(false),
        "a cgroup's own counter"
    );

    // Garbage is an error (the resource is then unavailable), not a
    // panic; a missing usage file is no usage.
    tree.write("cgroup/cpuacct/acct/cpuacct.usage", "lots\n");
    let err = fs.cpu_usage().unwrap_err();
    assert!(err.to_string().contains("cpuacct.usage"), "{err}");
    tree.write("cgroup/cpu/limited/cpu.cfs_quota_us", "\u{0}\u{fffd}\n");
    let err = fs.cpu_quota().unwrap_err();
    assert!(err.to_string().contains("cpu.cfs_quota_us"), "{err}");
    tree.remove("cgroup/cpuacct/acct/cpuacct.usage");
    tree.remove("cgroup/cpuacct/cpuacct.usage");
    assert_eq!(fs.cpu_usage(), Ok(None));
}

#[test]
fn no_cgroup_and_garbage() {
    let tree = FakeTree::new();
    let fs = tree.fs();
    assert_eq!(fs.cpu_quota(), Ok(None));
    assert_eq!(fs.memory_limit(1), Ok(None));
    assert_eq!(fs.cpu_usage(), Ok(None));
    assert!(fs.host_memory().is_err(), "missing meminfo");
    assert!(fs.process_memory().is_err(), "missing status");
    tree.write("cgroup/cgroup.controllers", "\n");
    tree.write("cgroup/memory.max", "garbage\n");
    // The layout is rediscovered by a new reader (or after REDISCOVER).
    let fs = fs.clone();
    let err = fs.memory_limit(1).unwrap_err();
    assert!(err.to_string().contains("memory.max"), "{err}");
}

#[test]
fn an_unreadable_file_is_an_error_and_recovers() {
    let tree = FakeTree::new();
    let fs = tree.fs();
    tree.write("cgroup/cgroup.controllers", "memory\n");
    tree.write("proc/self/cgroup", "0::/\n");
    // A directory where the file should be: it exists but cannot be read.
    tree.mkdir("cgroup/memory.max");
    let err = fs.memory_limit(1 << 40).unwrap_err();
    assert!(err.to_string().contains("memory.max"), "{err}");
    std::fs::remove_dir(tree.path("cgroup/memory.max")).unwrap();
    tree.write("cgroup/memory.max", "1048576\n");
    assert_eq!(fs.memory_limit(1 << 40), Ok(Some(1 << 20)));
}

#[test]
fn process_memory_prefers_pss() {
    let tree = FakeTree::new();
    let fs = tree.fs();
    tree.write("proc/self/status", "VmRSS:\t     200 kB\n");
    assert_eq!(fs.process_memory(), Ok(200 * 1024));
    tree.write("proc/self/smaps_rollup", "Pss: 64 kB\n");
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
