//! The gauges: the snapshotter's verdict per resource, and `Autoscale`'s
//! limit and requests in flight.

use std::time::Duration;

use tower::{Layer, ServiceExt};
use tower_snapshotter::integrations::metrics::{
    ANSWERS, CONCURRENCY_LIMIT, IN_FLIGHT, OVERLOADED, REQUESTS_ADMITTED,
};
use tower_snapshotter::layer::{AutoscaleConfig, Limiter};
use tower_snapshotter::{Resources, SnapshotLayer};

use crate::common::*;
use crate::run;

#[test]
fn verdict_gauges_follow_the_snapshotter() {
    run(|mut m| async move {
        let (snapshotter, cpu) = started(config().build().unwrap(), IDLE);
        let _layer = SnapshotLayer::builder(snapshotter.clone()).build().unwrap();
        let resources = ["cpu", "memory", "event_loop", "client"];
        m.observe().await;
        for r in resources {
            assert_eq!(m.gauge(OVERLOADED, &[("resource", r)]), 0.0, "{r}");
        }

        cpu.set(BUSY);
        until("the CPU is overloaded", || {
            snapshotter.overloaded().contains(Resources::CPU)
        })
        .await;
        m.observe().await;
        assert_eq!(m.gauge(OVERLOADED, &[("resource", "cpu")]), 1.0);
        for r in ["memory", "event_loop", "client"] {
            assert_eq!(m.gauge(OVERLOADED, &[("resource", r)]), 0.0, "{r}");
        }

        // Stopping clears the verdict, and the gauges with it (read with no
        // snapshot in between: the CPU gauge was set to 1 at the last one).
        tokio::time::sleep(Duration::from_millis(250)).await;
        snapshotter.stop().unwrap();
        m.read();
        assert_eq!(m.gauge(OVERLOADED, &[("resource", "cpu")]), 0.0);
    });
}

#[test]
fn autoscale_reports_its_limit_and_requests_in_flight() {
    run(|mut m| async move {
        let server = TestServer::start_async(|_| async {
            tokio::time::sleep(Duration::from_secs(3)).await;
            reply(200)
        })
        .await;
        let (snapshotter, _cpu) = started(config().build().unwrap(), IDLE);
        let layer = SnapshotLayer::builder(snapshotter)
            .limiter(Limiter::Autoscale(
                AutoscaleConfig::default().desired_concurrency(5),
            ))
            .build()
            .unwrap();
        let svc = layer.layer(client());
        let requests: Vec<_> = (0..3)
            .map(|i| tokio::spawn(svc.clone().oneshot(get(&server.url(&format!("/{i}"))))))
            .collect();
        m.observe().await;
        assert_eq!(m.gauge(CONCURRENCY_LIMIT, &[]), 5.0);
        assert_eq!(m.gauge(IN_FLIGHT, &[]), 3.0);
        for name in [CONCURRENCY_LIMIT, IN_FLIGHT] {
            assert!(m.described.iter().any(|d| d == name), "{name} is not described");
        }
        for r in requests {
            assert_eq!(r.await.unwrap().unwrap().status(), 200);
        }
        m.observe().await;
        assert_eq!(m.gauge(IN_FLIGHT, &[]), 0.0);
        assert_eq!(m.gauge(CONCURRENCY_LIMIT, &[]), 5.0);
        assert_eq!(m.counter(REQUESTS_ADMITTED, &[]), 3);
        assert_eq!(m.counter(ANSWERS, &[("class", "2xx")]), 3);
    });
}
