//! What the layer holds is given back whatever the caller drops, and the
//! per-host map stays bounded. Inner services are `tower::service_fn`s;
//! time is tokio's paused clock, moved with `tokio::time::advance`.

mod common;

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use common::*;
use tokio_test::task::Spawn;
use tower::{Layer, Service, ServiceExt};
use tower_snapshotter::layer::error::Overloaded;
use tower_snapshotter::{GatePolicy, Resources, SnapshotLayer, Snapshotter};

type Req = http::Request<()>;
type Resp = http::Response<()>;

fn req(url: &str) -> Req {
    http::Request::get(url).body(()).unwrap()
}

/// An inner service that answers by host: `slow.example` after a random
/// 0–50 ms, `limited.example` 429 with `Retry-After: 1`, `never.example`
/// never, anything else at once.
fn mixed() -> impl Service<Req, Response = Resp, Error = Infallible, Future = impl Send + 'static> + Clone {
    tower::service_fn(|req: Req| {
        let host = req.uri().host().unwrap_or_default().to_owned();
        async move {
            match host.as_str() {
                "slow.example" => {
                    tokio::time::sleep(Duration::from_millis(fastrand::u64(0..50))).await;
                }
                "never.example" => std::future::pending::<()>().await,
                "limited.example" => {
                    return Ok(http::Response::builder()
                        .status(429)
                        .header("retry-after", "1")
                        .body(())
                        .unwrap())
                }
                _ => {}
            }
            Ok::<_, Infallible>(http::Response::new(()))
        }
    })
}

const HOSTS: [&str; 4] = ["slow.example", "limited.example", "never.example", "ok.example"];

/// What [`churn`] did.
#[derive(Debug, Default)]
struct Churn {
    completed: usize,
    dropped_ready: usize,
    dropped_pending_ready: usize,
    dropped_unpolled: usize,
    dropped_waiting_for_host: usize,
    dropped_in_inner_call: usize,
}

impl Churn {
    /// Drops a response future, noting where it was.
    fn drop_call<F: std::fmt::Debug>(&mut self, (fut, polled): (Spawn<F>, bool)) {
        let state = format!("{fut:?}");
        if !polled {
            self.dropped_unpolled += 1;
        } else if state.contains("waiting for its host") {
            self.dropped_waiting_for_host += 1;
        } else if state.contains("called") {
            self.dropped_in_inner_call += 1;
        } else {
            panic!("unexpected state {state}");
        }
    }

    /// Checks that every kind of cancellation happened.
    fn assert_varied(&self) {
        let Churn {
            completed,
            dropped_ready,
            dropped_pending_ready,
            dropped_unpolled,
            dropped_waiting_for_host,
            dropped_in_inner_call,
        } = *self;
        for n in [
            completed,
            dropped_ready,
            dropped_pending_ready,
            dropped_unpolled,
            dropped_waiting_for_host,
            dropped_in_inner_call,
        ] {
            assert!(n > 10, "too little of something: {self:?}");
        }
    }
}

/// Thousands of random operations on clones of a layered service: ready
/// services dropped uncalled, `ready()` futures dropped while pending,
/// response futures dropped before their first poll, while waiting for a
/// paused host, or while the inner call runs, and some left to finish.
async fn churn(layer: &SnapshotLayer, seed: u64) -> Churn {
    let mut rng = fastrand::Rng::with_seed(seed);
    let svc = layer.layer(mixed());
    let mut live = Vec::new();
    let mut did = Churn::default();
    for _ in 0..4000 {
        match rng.u8(0..10) {
            // A ready service dropped without a call.
            0 => {
                let mut s = svc.clone();
                let mut ready = tokio_test::task::spawn(ServiceExt::<Req>::ready(&mut s));
                if ready.poll().is_ready() {
                    did.dropped_ready += 1;
                } else {
                    did.dropped_pending_ready += 1;
                }
            }
            // A call, kept for later polls or drops.
            1..=4 => {
                let mut s = svc.clone();
                let mut ready = tokio_test::task::spawn(ServiceExt::<Req>::ready(&mut s));
                match ready.poll() {
                    Poll::Ready(Ok(_)) => {
                        drop(ready);
                        let host = HOSTS[rng.usize(0..HOSTS.len())];
                        let mut fut = tokio_test::task::spawn(s.call(req(&format!("http://{host}/"))));
                        let polled = rng.bool();
                        if polled && fut.poll().is_ready() {
                            did.completed += 1;
                            continue;
                        }
                        live.push((fut, polled));
                    }
                    Poll::Ready(Err(e)) => panic!("poll_ready failed: {e}"),
                    // Full: drop the pending ready() and some calls.
                    Poll::Pending => {
                        drop(ready);
                        did.dropped_pending_ready += 1;
                        for _ in 0..rng.usize(1..4) {
                            if !live.is_empty() {
                                did.drop_call(live.swap_remove(rng.usize(0..live.len())));
                            }
                        }
                    }
                }
            }
            // Poll a live call.
            5..=6 => {
                if !live.is_empty() {
                    let i = rng.usize(0..live.len());
                    live[i].1 = true;
                    if let Poll::Ready(r) = live[i].0.poll() {
                        r.expect("no error from the inner service");
                        did.completed += 1;
                        drop(live.swap_remove(i));
                    }
                }
            }
            // Drop a live call, wherever it is.
            7..=8 => {
                if !live.is_empty() {
                    did.drop_call(live.swap_remove(rng.usize(0..live.len())));
                }
            }
            // Let time pass: inner sleeps and host pauses end.
            _ => tokio::time::advance(Duration::from_millis(rng.u64(0..300))).await,
        }
    }
    for call in live.drain(..) {
        did.drop_call(call);
    }
    did
}

#[tokio::test(start_paused = true)]
async fn dropped_futures_and_services_release_permits() {
    bounded(async {
        let snapshotter = Snapshotter::with_probes(config().build().unwrap(), FakeCpu::new(IDLE), LowMemory);
        let layer = SnapshotLayer::builder(snapshotter)
            .policy(GatePolicy::Autoscale)
            .build()
            .unwrap();
        churn(&layer, 7).await.assert_varied();
        let stats = layer.stats();
        assert!(
            stats.host_waits > 100,
            "the churn also dropped host waits: {stats:?}"
        );
        assert_eq!(stats.in_flight, Some(0), "every permit came back: {stats:?}");

        // All ten permits are free: ten calls that never finish are admitted.
        let svc = layer.layer(mixed());
        let mut never: Vec<_> = (0..10).map(|_| svc.clone()).collect();
        let mut futs = Vec::new();
        for s in &mut never {
            let mut ready = tokio_test::task::spawn(ServiceExt::<Req>::ready(s));
            assert!(ready.poll().is_ready(), "a permit was free");
            drop(ready);
            futs.push(s.call(req("http://never.example/")));
        }
        assert_eq!(layer.stats().in_flight, Some(10));
        drop(futs);
        let r = svc.oneshot(req("http://ok.example/")).await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(layer.stats().in_flight, Some(0));
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn dropped_futures_release_the_min_concurrency_floor() {
    bounded(async {
        let (snapshotter, _cpu) = started(config().build().unwrap(), BUSY);
        until("the CPU is overloaded", || {
            snapshotter.overloaded().contains(Resources::CPU)
        })
        .await;
        let layer = SnapshotLayer::builder(snapshotter.clone())
            .policy(GatePolicy::Wait)
            .min_concurrency(2)
            .build()
            .unwrap();
        let did = churn(&layer, 11).await;
        assert!(did.completed > 10 && did.dropped_pending_ready > 10, "{did:?}");
        assert!(
            snapshotter.overloaded().contains(Resources::CPU),
            "still overloaded"
        );

        // Exactly the floor's two slots are free: two admitted, a third waits
        // until a ready service holding a slot is dropped uncalled.
        let svc = layer.layer(mixed());
        let (mut a, mut b, mut c) = (svc.clone(), svc.clone(), svc.clone());
        assert!(ready_now(&mut a), "first slot of the floor");
        assert!(ready_now(&mut b), "second slot of the floor");
        let mut rc = tokio_test::task::spawn(ServiceExt::<Req>::ready(&mut c));
        assert!(rc.poll().is_pending(), "the floor is 2");
        drop(a);
        assert!(rc.is_woken(), "the dropped ready service gave its slot back");
        assert!(rc.poll().is_ready());
        drop(rc);
        let r = c.call(req("http://ok.example/")).await.unwrap();
        assert_eq!(r.status(), 200);
        drop(b);
    })
    .await;
}

/// Polls `svc` ready once; whether it is.
fn ready_now<S: Service<Req>>(svc: &mut S) -> bool {
    tokio_test::task::spawn(ServiceExt::<Req>::ready(svc))
        .poll()
        .is_ready()
}

#[tokio::test(start_paused = true)]
async fn the_host_map_stays_within_its_cap() {
    bounded(async {
        let snapshotter = Snapshotter::with_probes(config().build().unwrap(), FakeCpu::new(IDLE), LowMemory);
        let layer = SnapshotLayer::builder(snapshotter.clone())
            .policy(GatePolicy::Reject)
            .max_hosts(10)
            .build()
            .unwrap();
        let calls = Arc::new(AtomicUsize::new(0));
        let inner = {
            let calls = Arc::clone(&calls);
            tower::service_fn(move |_req: Req| {
                calls.fetch_add(1, Ordering::SeqCst);
                async {
                    Ok::<_, Infallible>(
                        http::Response::builder()
                            .status(429)
                            .header("retry-after", "60")
                            .body(())
                            .unwrap(),
                    )
                }
            })
        };
        let svc = layer.layer(inner);
        for i in 0..1000 {
            let r = svc
                .clone()
                .oneshot(req(&format!("http://h{i}.example/")))
                .await
                .unwrap();
            assert_eq!(r.status(), 429);
        }
        let stats = layer.stats();
        assert_eq!(stats.tracked_hosts, 10);
        assert_eq!(stats.paused_hosts.len(), 10);
        assert_eq!(snapshotter.client_recorder().error_count(), 1000);

        // The most recent host is still paused; the oldest was forgotten.
        let err = svc
            .clone()
            .oneshot(req("http://h999.example/"))
            .await
            .expect_err("paused");
        assert_eq!(
            err.downcast_ref::<Overloaded>().and_then(|o| o.host()),
            Some("h999.example")
        );
        let r = svc.clone().oneshot(req("http://h0.example/")).await.unwrap();
        assert_eq!(r.status(), 429, "h0 was evicted, so it is sent again");
        assert_eq!(calls.load(Ordering::SeqCst), 1001);
        assert!(layer.stats().tracked_hosts <= 10);
    })
    .await;
}
