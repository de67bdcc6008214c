//! Cancellation under every policy: random sequences of operations drop
//! response futures and service clones at every stage (before readiness,
//! ready but uncalled, waiting for a host, in flight, finished). Afterwards
//! no permit is held, a fresh request still gets through, and no task is
//! left running.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use proptest::prelude::*;
use tower::{Layer, Service, ServiceExt};
use tower_snapshotter::layer::{AdaptiveConfig, AutoscaleConfig, Limiter};
use tower_snapshotter::probe::{CpuProbe, MemoryProbe, MemoryReading, ProbeError};
use tower_snapshotter::{Config, GatePolicy, SnapshotLayer, Snapshotter};

struct Idle;
impl CpuProbe for Idle {
    fn used_ratio(&mut self) -> Result<f64, ProbeError> {
        Ok(0.1)
    }
}
impl MemoryProbe for Idle {
    fn read(&mut self) -> Result<MemoryReading, ProbeError> {
        Ok(MemoryReading {
            current_size: 1,
            limit: 1 << 30,
            system_wide_used_size: Some(0),
            system_wide_memory_size: Some(1 << 30),
        })
    }
}

type Req = http::Request<()>;

/// Answers 429 (with `Retry-After: 1`) for paths starting `/t`, else 200
/// after `ms` milliseconds taken from the path.
fn inner(
) -> impl Service<Req, Response = http::Response<()>, Error = Infallible, Future = impl Send> + Clone + Send {
    tower::service_fn(|req: Req| async move {
        let path = req.uri().path().to_owned();
        if path.starts_with("/t") {
            let r = http::Response::builder()
                .status(429)
                .header("retry-after", "1")
                .body(())
                .unwrap();
            return Ok(r);
        }
        let ms: u64 = path.trim_start_matches('/').parse().unwrap_or(0);
        tokio::time::sleep(Duration::from_millis(ms)).await;
        Ok(http::Response::new(()))
    })
}

/// Polls `f` once, then drops it.
async fn poll_once<F: Future>(f: F) {
    let mut f = Box::pin(f);
    std::future::poll_fn(|cx: &mut Context<'_>| {
        let _ = Pin::new(&mut f).poll(cx);
        Poll::Ready(())
    })
    .await;
}

fn run(policy: GatePolicy, ops: &[(u8, u8, u8)]) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap();
    rt.block_on(async {
        let metrics = tokio::runtime::Handle::current().metrics();
        let baseline = metrics.num_alive_tasks();
        let config = Config::builder()
            .event_loop_overload_threshold(1.0)
            .build()
            .unwrap();
        let snapshotter = Snapshotter::with_probes(config, Idle, Idle);
        snapshotter.start().unwrap();
        let layer = SnapshotLayer::builder(snapshotter.clone())
            .policy(policy)
            .limiter(match policy {
                GatePolicy::Autoscale => {
                    Limiter::Autoscale(AutoscaleConfig::default().desired_concurrency(4))
                }
                GatePolicy::Adaptive => Limiter::Adaptive(AdaptiveConfig::default().initial_concurrency(2)),
                _ => Limiter::None,
            })
            .build()
            .unwrap();
        let svc = layer.layer(inner());
        let mut spawned = Vec::new();
        for &(op, host, ms) in ops {
            let url = if op % 7 == 6 {
                format!("http://h{}.example/t", host % 4)
            } else {
                format!("http://h{}.example/{}", host % 4, ms % 50)
            };
            let req = http::Request::get(url).body(()).unwrap();
            let mut s = svc.clone();
            match op % 7 {
                // Dropped before readiness resolves.
                0 => poll_once(s.ready()).await,
                // Ready, never called.
                1 => {
                    let _ = tokio::time::timeout(Duration::from_millis(5), s.ready()).await;
                }
                // Called, polled once (maybe in flight, maybe waiting), dropped.
                2 => {
                    if let Ok(Ok(r)) = tokio::time::timeout(Duration::from_millis(5), s.ready()).await {
                        poll_once(r.call(req)).await;
                    }
                }
                // Called and dropped before any poll.
                3 => {
                    if let Ok(Ok(r)) = tokio::time::timeout(Duration::from_millis(5), s.ready()).await {
                        drop(r.call(req));
                    }
                }
                // Spawned and aborted a little later.
                4 => {
                    let h = tokio::spawn(s.oneshot(req));
                    tokio::time::sleep(Duration::from_millis(u64::from(ms % 20))).await;
                    h.abort();
                    spawned.push(h);
                }
                // Run to completion (with a bound: a paused host may hold it).
                _ => {
                    let _ = tokio::time::timeout(Duration::from_millis(200), s.oneshot(req)).await;
                }
            }
        }
        for h in spawned {
            let _ = h.await;
        }
        // Let every pause and every sleeping inner call run out.
        tokio::time::sleep(Duration::from_secs(70)).await;
        let stats = layer.stats();
        if policy == GatePolicy::Autoscale {
            assert_eq!(stats.in_flight, Some(0), "every Autoscale permit is back");
        }
        for h in &stats.adaptive_hosts {
            assert_eq!(h.in_flight, 0, "every adaptive permit of {} is back", h.host);
        }
        let fresh = http::Request::get("http://h0.example/0").body(()).unwrap();
        let r = tokio::time::timeout(Duration::from_secs(5), svc.clone().oneshot(fresh))
            .await
            .expect("a fresh request is not stuck")
            .expect("and succeeds");
        assert_eq!(r.status(), 200);
        drop((svc, layer));
        snapshotter.stop().unwrap();
        drop(snapshotter);
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        assert_eq!(metrics.num_alive_tasks(), baseline, "no task left running");
    });
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn cancellations_give_everything_back(ops in prop::collection::vec((any::<u8>(), any::<u8>(), any::<u8>()), 50..250)) {
        for policy in [GatePolicy::Reject, GatePolicy::Wait, GatePolicy::Autoscale, GatePolicy::Adaptive] {
            run(policy, &ops);
        }
    }
}
