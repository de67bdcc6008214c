//! A bounded soak: full speed against a local server for 60 s (`SOAK_SECS`
//! to change it), alternating 5 s of overload (the fake CPU probe at 100 %,
//! the server answering 429 with `Retry-After: 1` to three requests in four)
//! and 5 s of calm. Checks that RSS stays flat after warm-up, the windows
//! stay within their bound, and the gate follows the phases.
//!
//! ```text
//! cargo test --test soak -- --nocapture          # 60 s, prints the figures
//! SOAK_SECS=600 cargo test --test soak -- --nocapture
//! ```

use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tower::{Layer, ServiceExt};
use tower_snapshotter::probe::{CpuProbe, MemoryProbe, MemoryReading, ProbeError};
use tower_snapshotter::{Config, GatePolicy, Resources, SnapshotLayer, Snapshotter};

struct PhaseCpu(Arc<AtomicBool>);

impl CpuProbe for PhaseCpu {
    fn used_ratio(&mut self) -> Result<f64, ProbeError> {
        Ok(if self.0.load(Ordering::Relaxed) { 1.0 } else { 0.1 })
    }
}

struct Low;

impl MemoryProbe for Low {
    fn read(&mut self) -> Result<MemoryReading, ProbeError> {
        Ok(MemoryReading {
            current_size: 1 << 20,
            limit: 1 << 34,
            system_wide_used_size: Some(1 << 30),
            system_wide_memory_size: Some(1 << 34),
        })
    }
}

fn rss() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |p| p * 4096)
}

async fn server(overload: Arc<AtomicBool>) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let n = Arc::new(AtomicU64::new(0));
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (overload, n) = (Arc::clone(&overload), Arc::clone(&n));
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |_req| {
                    let throttle =
                        overload.load(Ordering::Relaxed) && n.fetch_add(1, Ordering::Relaxed) % 4 != 0;
                    async move {
                        let mut r = http::Response::new(Full::new(Bytes::from_static(b"ok")));
                        if throttle {
                            *r.status_mut() = http::StatusCode::TOO_MANY_REQUESTS;
                            r.headers_mut()
                                .insert("retry-after", http::HeaderValue::from_static("1"));
                        }
                        Ok::<_, Infallible>(r)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    addr
}

#[test]
fn soak_alternating_overload_and_calm() {
    let secs: u64 = std::env::var("SOAK_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let overload = Arc::new(AtomicBool::new(false));
        let addr = server(Arc::clone(&overload)).await;
        let config = Config::builder()
            .system_info_interval(Duration::from_millis(250))
            .max_snapshot_age(Duration::from_secs(1))
            .snapshot_history(Duration::from_secs(5))
            .event_loop_overload_threshold(1.0)
            .build()
            .unwrap();
        let snapshotter = Snapshotter::with_probes(config, PhaseCpu(Arc::clone(&overload)), Low);
        snapshotter.start().unwrap();
        let layer = SnapshotLayer::builder(snapshotter.clone())
            .policy(GatePolicy::Wait)
            .max_hosts(100)
            .build()
            .unwrap();
        let svc = layer.layer(Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>());
        let start = tokio::time::Instant::now();
        let end = start + Duration::from_secs(secs);
        let done = Arc::new(AtomicU64::new(0));
        let mut workers = Vec::new();
        for _ in 0..4 {
            let (svc, done) = (svc.clone(), Arc::clone(&done));
            let url = format!("http://{addr}/");
            workers.push(tokio::spawn(async move {
                while tokio::time::Instant::now() < end {
                    let req = http::Request::get(url.as_str()).body(Empty::new()).unwrap();
                    if let Ok(Ok(r)) = tokio::time::timeout(Duration::from_secs(5), svc.clone().oneshot(req)).await {
                        let _ = r.into_body().collect().await;
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }));
        }
        let (mut closed_in_overload, mut open_in_calm, mut transitions) = (0u32, 0u32, 0u32);
        let mut last_gate = false;
        let (mut rss_warm, mut max_window) = (0u64, 0usize);
        while tokio::time::Instant::now() < end {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let t = start.elapsed().as_secs_f64();
            let phase_overload = (t as u64 / 5) % 2 == 1;
            overload.store(phase_overload, Ordering::Relaxed);
            let gate = layer.stats().gate.contains(Resources::CPU);
            if gate != last_gate {
                transitions += 1;
                last_gate = gate;
            }
            // Judge the last second of each 5 s phase, once the window caught up.
            if t % 5.0 > 4.0 {
                if phase_overload && gate {
                    closed_in_overload += 1;
                }
                if !phase_overload && !gate {
                    open_in_calm += 1;
                }
            }
            let window = snapshotter.cpu_sample(None).unwrap().len();
            max_window = max_window.max(window);
            assert!(window <= 5 * 4 + 2, "cpu window {window} over its 5 s bound");
            assert!(snapshotter.event_loop_sample(None).unwrap().len() <= 5 * 2 + 2);
            assert!(snapshotter.client_sample(None).unwrap().len() <= 5 + 2);
            if rss_warm == 0 && t >= 10.0 {
                rss_warm = rss();
            }
        }
        for w in workers {
            let _ = w.await;
        }
        let rss_end = rss();
        let growth = rss_end.saturating_sub(rss_warm);
        println!(
            "soak {secs} s: {} requests, {transitions} gate transitions, max cpu window {max_window}, RSS after warm-up {} KiB, at the end {} KiB (+{} KiB)",
            done.load(Ordering::Relaxed),
            rss_warm / 1024,
            rss_end / 1024,
            growth / 1024
        );
        assert!(closed_in_overload > 0, "the gate closed during overload phases");
        assert!(open_in_calm > 0, "the gate was open during calm phases");
        assert!(transitions >= 2);
        assert!(growth < 8 << 20, "RSS grew {growth} bytes after warm-up");
        assert!(done.load(Ordering::Relaxed) > 1000);
    });
}
