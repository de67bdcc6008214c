//! What the snapshotter costs when nobody is looking: CPU time of the
//! sampling at the default intervals, and memory held by the windows and by
//! each tracked host.
//!
//! ```text
//! cargo bench --bench background            # 20 s idle baseline + 20 s sampling
//! cargo bench --bench background -- --secs 60
//! ```
//!
//! CPU time is the sum of `/proc/self/task/*/schedstat` (nanoseconds on a
//! CPU, per thread) over the measured span, minus the same span of an idle
//! runtime measured first in the same process. Linux only.

use std::convert::Infallible;
use std::time::{Duration, Instant};

use http::{Request, Response, StatusCode, Uri};
use tower::{Layer, Service, ServiceExt};
use tower_snapshotter::snapshot::{ClientSnapshot, CpuSnapshot, EventLoopSnapshot, MemorySnapshot};
use tower_snapshotter::{Config, SnapshotLayer, Snapshotter};

/// Nanoseconds this process's live threads have spent on a CPU.
fn cpu_ns() -> u64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

/// Resident set size in bytes, from `/proc/self/statm` (4 KiB pages).
fn rss() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4096)
}

fn secs_arg() -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == "--secs")
        .and_then(|i| args.get(i + 1)?.parse().ok())
        .unwrap_or(20)
}

fn main() {
    let secs = secs_arg();
    let span = Duration::from_secs(secs);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");

    // 1. CPU: idle runtime, then the same runtime with a started snapshotter.
    let idle = rt.block_on(async {
        let (c0, t0) = (cpu_ns(), Instant::now());
        tokio::time::sleep(span).await;
        (cpu_ns() - c0, t0.elapsed())
    });
    let (sampling, snapshotter) = rt.block_on(async {
        let s = Snapshotter::new(Config::default());
        s.start().expect("start");
        let (c0, t0) = (cpu_ns(), Instant::now());
        tokio::time::sleep(span).await;
        ((cpu_ns() - c0, t0.elapsed()), s)
    });
    let share = |(ns, wall): (u64, Duration)| ns as f64 / wall.as_nanos() as f64 * 100.0;
    let extra = sampling.0.saturating_sub(idle.0);
    println!("## Background cost ({secs} s per span, default intervals)\n");
    println!("| what | CPU time | share of one core |");
    println!("| --- | --- | --- |");
    println!(
        "| idle runtime (baseline) | {:.2} ms | {:.4} % |",
        idle.0 as f64 / 1e6,
        share(idle)
    );
    println!(
        "| runtime + started snapshotter | {:.2} ms | {:.4} % |",
        sampling.0 as f64 / 1e6,
        share(sampling)
    );
    println!(
        "| **sampling alone** (difference) | {:.2} ms | **{:.4} %** (target < 0.1 %) |",
        extra as f64 / 1e6,
        extra as f64 / sampling.1.as_nanos() as f64 * 100.0
    );

    // 2. Memory of the windows at the default history (30 s): snapshots held
    // times their size; a VecDeque may hold up to twice that in capacity.
    let held = |n: usize, size: usize| (n, n * size);
    let lens = [
        (
            "cpu",
            held(
                snapshotter.cpu_sample(None).map_or(0, |v| v.len()),
                size_of::<CpuSnapshot>(),
            ),
        ),
        (
            "memory",
            held(
                snapshotter.memory_sample(None).map_or(0, |v| v.len()),
                size_of::<MemorySnapshot>(),
            ),
        ),
        (
            "event loop",
            held(
                snapshotter.event_loop_sample(None).map_or(0, |v| v.len()),
                size_of::<EventLoopSnapshot>(),
            ),
        ),
        (
            "client",
            held(
                snapshotter.client_sample(None).map_or(0, |v| v.len()),
                size_of::<ClientSnapshot>(),
            ),
        ),
    ];
    println!("\n## Memory held by a snapshotter after {secs} s (history 30 s)\n");
    println!("| window | snapshots | bytes (len × size) |");
    println!("| --- | --- | --- |");
    let mut total = 0;
    for (name, (n, bytes)) in lens {
        total += bytes;
        println!("| {name} | {n} | {bytes} |");
    }
    println!(
        "| **all windows** | | **{total}** (at most {} with VecDeque capacity) |",
        total * 2
    );

    // 3. Memory per tracked host: one million distinct hosts answering 429
    // through a layer whose host map may hold them all.
    let hosts = 1_000_000u64;
    let per_host = rt.block_on(async {
        let layer = SnapshotLayer::builder(snapshotter.clone())
            .max_hosts(hosts as usize)
            .host_backoff(Duration::ZERO)
            .build()
            .expect("layer");
        let mut svc = layer.layer(tower::service_fn(|_r: Request<()>| async {
            let mut r = Response::new(());
            *r.status_mut() = StatusCode::TOO_MANY_REQUESTS;
            Ok::<_, Infallible>(r)
        }));
        let before = rss();
        for i in 0..hosts {
            let mut req = Request::new(());
            *req.uri_mut() = Uri::try_from(format!("http://h{i}.example/")).expect("uri");
            let s = svc.ready().await.expect("ready");
            let _ = s.call(req).await;
        }
        let after = rss();
        assert_eq!(layer.stats().tracked_hosts, hosts as usize);
        (after.saturating_sub(before)) as f64 / hosts as f64
    });
    println!("\n## Memory per tracked host\n");
    println!("{hosts} distinct hosts answering 429 (RSS growth / hosts): **{per_host:.0} bytes per host**");
}
