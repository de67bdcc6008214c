//! What the per-request benches (`overhead.rs`, `instructions.rs`) share:
//! a snapshotter whose gate stays open, the request they send and the
//! headers of an ordinary answer.

use std::sync::Arc;

use std::time::Duration;

use http::{HeaderMap, Request, Uri};
use tower_snapshotter::layer::{AutoscaleConfig, Limiter};
use tower_snapshotter::{Config, GatePolicy, SnapshotLayer, Snapshotter};

/// A snapshotter sampling with its real probes at the default intervals,
/// on a runtime of its own (returned: keep it alive), whose verdict never
/// closes the gate: these benches measure the open-gate path, and on a
/// shared 2-core machine the bench's own busy core plus a neighbour's load
/// closed the CPU gate now and then.
pub fn open_gate_snapshotter() -> (tokio::runtime::Runtime, Snapshotter) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let snapshotter = rt.block_on(async {
        let config = Config::builder()
            .cpu_overload_threshold(1.0)
            .memory_overload_threshold(1.0)
            .event_loop_overload_threshold(1.0)
            .build()
            .expect("config");
        let s = Snapshotter::new(config);
        s.start().expect("start the snapshotter");
        s
    });
    (rt, snapshotter)
}

/// The layer a bench measures: `policy`, per-host partitions as asked,
/// no back-off (a 429 without `Retry-After` must not pause the bench host),
/// and `Autoscale` at a limit of 64 (as `ConcurrencyLimit(64)`).
pub fn bench_layer(snapshotter: &Snapshotter, policy: GatePolicy, per_host: bool) -> SnapshotLayer {
    let builder = SnapshotLayer::builder(snapshotter.clone())
        .policy(policy)
        .per_host(per_host)
        .host_backoff(Duration::ZERO);
    let builder = if policy == GatePolicy::Autoscale {
        builder.limiter(Limiter::Autoscale(
            AutoscaleConfig::default().desired_concurrency(64),
        ))
    } else {
        builder
    };
    builder.build().expect("valid settings")
}

/// A GET with an authority, its URI cloned from one parsed per thread.
pub fn request() -> Request<()> {
    thread_local! {
        static URI: Uri = Uri::from_static("http://bench.example:8080/page");
    }
    let mut r = Request::new(());
    *r.uri_mut() = URI.with(Uri::clone);
    r
}

/// What a real server sends with a page, none of it a quota: eight
/// headers, shared so that each answer clones them.
pub fn ordinary_headers() -> Arc<HeaderMap> {
    let mut h = HeaderMap::new();
    for (name, value) in [
        ("date", "Tue, 01 Dec 2026 16:00:00 GMT"),
        ("server", "nginx/1.26.2"),
        ("content-type", "text/html; charset=utf-8"),
        ("content-length", "5120"),
        ("cache-control", "max-age=600"),
        ("etag", "\"5f3a-1b2c\""),
        ("vary", "Accept-Encoding"),
        ("x-request-id", "0f6c1d2e-7a8b"),
    ] {
        h.insert(name, value.parse().expect("header value"));
    }
    Arc::new(h)
}
