//! `Autoscale`: the limit steps up when busy and idle and down under
//! overload.

use std::convert::Infallible;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tower::{Layer, Service, ServiceExt};
use tower_snapshotter::layer::{AutoscaleConfig, Limiter};
use tower_snapshotter::{Resources, SnapshotLayer, SnapshotService};

use crate::common::*;
use crate::{held, req, Req, Resp};

/// Spawns a request through a clone of `svc`, holding its permit while the
/// inner service holds its answer.
fn spawn_request<S>(
    svc: &SnapshotService<S>,
    url: &str,
) -> tokio::task::JoinHandle<Result<Resp, tower::BoxError>>
where
    S: Service<Req, Response = Resp, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    tokio::spawn(svc.clone().oneshot(req(url)))
}

#[tokio::test(start_paused = true)]
async fn autoscale_steps_up_when_busy_and_idle_and_down_under_overload() {
    bounded(async {
        let (snapshotter, cpu) = started(config().build().unwrap(), IDLE);
        let layer = SnapshotLayer::builder(snapshotter.clone())
            .limiter(Limiter::Autoscale(
                AutoscaleConfig::default().autoscale_interval(Duration::from_secs(2)),
            ))
            .build()
            .unwrap();
        let gate = Arc::new(Semaphore::new(0));
        let (inner, calls) = held(Arc::clone(&gate));
        let svc = layer.layer(inner);
        let stats = || layer.stats();
        assert_eq!(stats().desired_concurrency, Some(10));

        // Nine in flight, before the first interval ends: no step yet.
        let mut tasks: Vec<_> = (0..9)
            .map(|i| spawn_request(&svc, &format!("http://a.example/{i}")))
            .collect();
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(stats().in_flight, Some(9));
        assert_eq!(stats().desired_concurrency, Some(10));

        // After the interval, the next admission steps it: 9 ≥ floor(0.9 · 10),
        // and the system is idle.
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert!(snapshotter.system_status().historical().unwrap().is_system_idle());
        tasks.push(spawn_request(&svc, "http://a.example/9"));
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert_eq!(stats().desired_concurrency, Some(11));
        assert_eq!(stats().in_flight, Some(10));

        // The new limit holds: an eleventh request is admitted, a twelfth waits.
        tasks.push(spawn_request(&svc, "http://a.example/10"));
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert_eq!(stats().in_flight, Some(11));
        let mut twelfth = svc.clone();
        let mut ready = tokio_test::task::spawn(ServiceExt::<Req>::ready(&mut twelfth));
        assert!(ready.poll().is_pending(), "still waiting");
        assert_eq!(calls.load(Ordering::SeqCst), 11);

        // Overload: once the whole history shows it, each interval steps down
        // by ceil(5 %).
        cpu.set(BUSY);
        until("the history is overloaded", || {
            snapshotter
                .system_status()
                .historical()
                .is_ok_and(|i| i.overloaded().contains(Resources::CPU))
        })
        .await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert!(ready.poll().is_pending(), "still waiting");
        assert_eq!(stats().desired_concurrency, Some(10), "11 - ceil(0.55)");
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert!(ready.poll().is_pending(), "still waiting");
        assert_eq!(stats().desired_concurrency, Some(9), "10 - ceil(0.5)");
        drop(ready);

        gate.add_permits(100);
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        assert_eq!(stats().in_flight, Some(0));
    })
    .await;
}
