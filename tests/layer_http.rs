//! The layer in front of hyper-util's client, against real hyper servers on
//! loopback: 429 storms, `Retry-After`, per-host pauses, errors, stats, and
//! `ServiceBuilder` composition. Time is tokio's paused clock; what the
//! server received, and when, is read from its own log.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::*;
use tokio_test::{assert_pending, assert_ready_ok};
use tower::{Layer, Service, ServiceBuilder, ServiceExt};
use tower_snapshotter::layer::error::Overloaded;
use tower_snapshotter::layer::{AutoscaleConfig, Limiter, OnBlocked, PausedHost};
use tower_snapshotter::{GatePolicy, Resources, SnapshotLayer, Snapshotter};

type Req = http::Request<http_body_util::Empty<bytes::Bytes>>;

/// A snapshotter that is never started: per-host pauses work without it.
fn idle_snapshotter() -> Snapshotter {
    Snapshotter::with_probes(config().build().unwrap(), FakeCpu::new(IDLE), LowMemory)
}

/// A server whose first request to each path is answered 429 with these
/// headers, and every later one 200.
async fn throttle_first(headers: Vec<(&'static str, String)>) -> TestServer {
    TestServer::start(move |hit| {
        if hit.nth == 0 {
            let h: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
            reply_with(429, &h)
        } else {
            reply(200)
        }
    })
    .await
}

#[tokio::test(start_paused = true)]
async fn a_429_storm_closes_the_gate_until_the_window_clears() {
    bounded(async {
        let (snapshotter, _cpu) = started(
            config()
                .max_client_errors(1)
                .client_snapshot_interval(Duration::from_millis(500))
                .build()
                .unwrap(),
            IDLE,
        );
        let storm = Arc::new(AtomicBool::new(true));
        let server = TestServer::start({
            let storm = Arc::clone(&storm);
            move |_| reply(if storm.load(Ordering::SeqCst) { 429 } else { 200 })
        })
        .await;
        let layer = SnapshotLayer::builder(snapshotter.clone())
            .per_host(false)
            .host_backoff(Duration::ZERO) // the gate alone, no pause
            .min_concurrency(0)
            .build()
            .unwrap();
        let svc = layer.layer(client());

        // Ten 429s at once: far above one new error per client snapshot.
        let storm_requests: Vec<_> = (0..10)
            .map(|_| tokio::spawn(svc.clone().oneshot(get(&server.url("/storm")))))
            .collect();
        for r in storm_requests {
            assert_eq!(r.await.unwrap().unwrap().status(), 429);
        }
        assert_eq!(snapshotter.client_recorder().error_count(), 10);
        until("the client window shows overload", || {
            layer.stats().gate.contains(Resources::CLIENT)
        })
        .await;
        storm.store(false, Ordering::SeqCst);

        // The gate is closed: a new request is held in poll_ready.
        let mut blocked = svc.clone();
        let mut ready = tokio_test::task::spawn(ServiceExt::<Req>::ready(&mut blocked));
        assert_pending!(ready.poll());

        // Past max_snapshot_age (1 s) of calm snapshots the window is clear.
        tokio::time::sleep(Duration::from_millis(1600)).await;
        assert_eq!(server.total(), 10, "nothing was sent while the gate was closed");
        assert!(layer.stats().gate.is_empty(), "{:?}", layer.stats());
        assert!(ready.is_woken(), "the verdict change woke the waiting poll_ready");
        assert_ready_ok!(ready.poll());
        drop(ready);
        let response = blocked.call(get(&server.url("/after"))).await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(server.count("/after"), 1);
    })
    .await;
}

/// Checks that the server received nothing on `path` between the first
/// (throttled) request and `pause` after it, and that every later request
/// came soon after the pause ended (within `slack`).
fn assert_paused(server: &TestServer, path: &str, pause: Duration, slack: Duration) {
    let times = server.times(path);
    let t0 = times[0];
    for &t in &times[1..] {
        // The pause counts from the client's receipt of the 429, in whole
        // milliseconds of tokio time.
        assert!(
            t + Duration::from_millis(1) >= t0 + pause,
            "a request reached the server {:?} after the 429, inside the {pause:?} pause",
            t - t0
        );
        assert!(
            t <= t0 + pause + slack,
            "a request waited {:?}, far beyond the {pause:?} pause",
            t - t0
        );
    }
}

#[tokio::test(start_paused = true)]
async fn retry_after_seconds_pause_the_host_at_the_server() {
    bounded(async {
        let server = throttle_first(vec![("retry-after", "2".into())]).await;
        let layer = SnapshotLayer::builder(idle_snapshotter())
            .policy(GatePolicy::Wait)
            .build()
            .unwrap();
        let svc = layer.layer(client());

        let first = svc.clone().oneshot(get(&server.url("/a"))).await.unwrap();
        assert_eq!(first.status(), 429, "the 429 reaches the caller");
        let waiting: Vec<_> = (0..3)
            .map(|_| tokio::spawn(svc.clone().oneshot(get(&server.url("/a")))))
            .collect();

        tokio::time::sleep(Duration::from_millis(1900)).await;
        assert_eq!(
            server.count("/a"),
            1,
            "nothing sent inside the Retry-After window"
        );
        let stats = layer.stats();
        assert_eq!(stats.host_waits, 3);
        assert_eq!(stats.paused_hosts.len(), 1);
        assert_eq!(stats.paused_hosts[0].host, server.authority());
        assert!(waiting.iter().all(|t| !t.is_finished()));

        for t in waiting {
            assert_eq!(t.await.unwrap().unwrap().status(), 200);
        }
        assert_eq!(
            server.count("/a"),
            4,
            "the waiting requests were sent after the pause"
        );
        // Jitter adds at most a tenth of the wait.
        assert_paused(&server, "/a", Duration::from_secs(2), Duration::from_millis(500));
        let stats = layer.stats();
        assert!(stats.paused_hosts.is_empty());
        // The one pause, counted once although three requests waited in it.
        assert!(
            stats.time_paused >= Duration::from_secs(2) && stats.time_paused < Duration::from_millis(2100),
            "{:?}",
            stats.time_paused
        );
        assert_eq!(stats.time_paused_by_host.len(), 1);
        assert_eq!(stats.time_paused_by_host[0].host, server.authority());
        assert_eq!(stats.time_paused_by_host[0].total, stats.time_paused);
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn retry_after_http_date_pauses_the_host_at_the_server() {
    bounded(async {
        // HTTP-dates are wall-clock (SystemTime) and whole seconds, while the
        // pause runs on tokio's paused clock. The layer turns the date into a
        // duration against SystemTime::now() when the answer arrives, which is
        // (in real time) moments after the server formatted it; rounding the
        // date up to a whole second keeps that duration within (2 s, 4 s] as
        // long as less than a real second passes in between.
        let server = TestServer::start(|hit| {
            if hit.nth == 0 {
                let ahead = SystemTime::now() + Duration::from_secs(3);
                let secs = ahead.duration_since(UNIX_EPOCH).unwrap().as_secs_f64().ceil();
                let date = httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs_f64(secs));
                reply_with(429, &[("retry-after", &date)])
            } else {
                reply(200)
            }
        })
        .await;
        let layer = SnapshotLayer::builder(idle_snapshotter())
            .policy(GatePolicy::Wait)
            .build()
            .unwrap();
        let svc = layer.layer(client());

        assert_eq!(
            svc.clone()
                .oneshot(get(&server.url("/d")))
                .await
                .unwrap()
                .status(),
            429
        );
        let waiting = tokio::spawn(svc.clone().oneshot(get(&server.url("/d"))));
        tokio::task::yield_now().await;
        let stats = layer.stats();
        assert_eq!(stats.paused_hosts.len(), 1, "{stats:?}");
        let left = stats.paused_hosts[0].remaining;
        // The host back-off alone (no usable Retry-After) would be 500 ms.
        assert!(
            left > Duration::from_secs(2) && left <= Duration::from_secs(4),
            "paused for {left:?}"
        );

        tokio::time::sleep(Duration::from_millis(1900)).await;
        assert_eq!(
            server.count("/d"),
            1,
            "nothing sent inside the Retry-After window"
        );
        assert_eq!(waiting.await.unwrap().unwrap().status(), 200);
        assert_eq!(server.count("/d"), 2);
        assert_paused(&server, "/d", Duration::from_secs(2), Duration::from_secs(3));
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn retry_after_is_capped_by_max_retry_after() {
    bounded(async {
        let server = throttle_first(vec![("retry-after", "3600".into())]).await;
        let layer = SnapshotLayer::builder(idle_snapshotter())
            .max_retry_after(Duration::from_secs(1))
            .build()
            .unwrap();
        let svc = layer.layer(client());

        assert_eq!(
            svc.clone()
                .oneshot(get(&server.url("/c")))
                .await
                .unwrap()
                .status(),
            429
        );
        let waiting = tokio::spawn(svc.clone().oneshot(get(&server.url("/c"))));
        tokio::task::yield_now().await;
        let left = layer.stats().paused_hosts[0].remaining;
        assert!(left <= Duration::from_secs(1), "paused for {left:?}");

        assert_eq!(waiting.await.unwrap().unwrap().status(), 200);
        assert_paused(&server, "/c", Duration::from_secs(1), Duration::from_millis(500));
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_healthy_host_is_served_while_another_is_throttled() {
    bounded(async {
        let throttled = throttle_first(vec![("retry-after", "30".into())]).await;
        let healthy = TestServer::start(|_| reply(200)).await;
        let layer = SnapshotLayer::builder(idle_snapshotter())
            .policy(GatePolicy::Wait)
            .build()
            .unwrap();
        let svc = layer.layer(client());

        assert_eq!(
            svc.clone()
                .oneshot(get(&throttled.url("/x")))
                .await
                .unwrap()
                .status(),
            429
        );
        let waiting = tokio::spawn(svc.clone().oneshot(get(&throttled.url("/x"))));
        for _ in 0..5 {
            let r = svc.clone().oneshot(get(&healthy.url("/y"))).await.unwrap();
            assert_eq!(r.status(), 200);
        }
        assert_eq!(healthy.count("/y"), 5);
        assert_eq!(throttled.count("/x"), 1);
        assert!(!waiting.is_finished());
        let paused: Vec<String> = layer.stats().paused_hosts.into_iter().map(|p| p.host).collect();
        assert_eq!(paused, [throttled.authority()]);

        assert_eq!(waiting.await.unwrap().unwrap().status(), 200);
        assert_paused(&throttled, "/x", Duration::from_secs(30), Duration::from_secs(4));
        assert!(healthy.hits().iter().all(|h| h.host == healthy.authority()));
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn inner_errors_pass_through_uncounted() {
    bounded(async {
        let (snapshotter, _cpu) = started(config().build().unwrap(), IDLE);
        let layer = SnapshotLayer::builder(snapshotter.clone())
            .policy(GatePolicy::Autoscale)
            .build()
            .unwrap();
        let svc = layer.layer(client());
        let recorder = snapshotter.client_recorder();

        let err = svc
            .clone()
            .oneshot(get(&format!("http://{}/", closed_addr())))
            .await
            .expect_err("nothing listens there");
        assert!(err.downcast_ref::<Overloaded>().is_none(), "{err:?}");
        let inner = err
            .downcast_ref::<hyper_util::client::legacy::Error>()
            .expect("the client's own error");
        assert!(inner.is_connect(), "{inner:?}");
        assert_eq!(recorder.error_count(), 0);
        assert_eq!(layer.stats().tracked_hosts, 0);
        assert_eq!(layer.stats().in_flight, Some(0));

        // Control: a 500 is not counted, a 429 is.
        let server = TestServer::start(|hit| reply(if hit.path == "/500" { 500 } else { 429 })).await;
        let r = svc.clone().oneshot(get(&server.url("/500"))).await.unwrap();
        assert_eq!(r.status(), 500);
        assert_eq!(recorder.error_count(), 0);
        let r = svc.clone().oneshot(get(&server.url("/429"))).await.unwrap();
        assert_eq!(r.status(), 429);
        assert_eq!(recorder.error_count(), 1);
        assert_eq!(layer.stats().in_flight, Some(0));
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn stats_name_the_paused_host() {
    bounded(async {
        let server = throttle_first(vec![("retry-after", "5".into())]).await;
        let layer = SnapshotLayer::builder(idle_snapshotter())
            .policy(GatePolicy::Reject)
            .build()
            .unwrap();
        let svc = layer.layer(client());

        assert_eq!(
            svc.clone()
                .oneshot(get(&server.url("/s")))
                .await
                .unwrap()
                .status(),
            429
        );
        let err = svc
            .clone()
            .oneshot(get(&server.url("/s")))
            .await
            .expect_err("the host is paused");
        let overloaded = err.downcast_ref::<Overloaded>().expect("Overloaded");
        assert_eq!(overloaded.host(), Some(server.authority().as_str()));
        assert_eq!(overloaded.resources(), Resources::CLIENT);

        let stats = layer.stats();
        assert_eq!(stats.on_blocked, OnBlocked::Reject);
        assert_eq!(stats.limiter, Limiter::None);
        assert_eq!(stats.gate, Resources::NONE);
        assert_eq!(stats.status, None, "the snapshotter never ran");
        assert_eq!(stats.desired_concurrency, None);
        assert_eq!(stats.in_flight, None);
        assert_eq!(stats.rejected, 1);
        assert_eq!(stats.host_waits, 0);
        assert_eq!(stats.tracked_hosts, 1);
        let [PausedHost { host, remaining, .. }] = &stats.paused_hosts[..] else {
            panic!("one paused host: {stats:?}");
        };
        assert_eq!(*host, server.authority());
        assert!(*remaining > Duration::from_secs(4) && *remaining <= Duration::from_secs(5));
        assert_eq!(server.count("/s"), 1);
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn works_inside_service_builder_with_timeout() {
    bounded(async {
        let server = TestServer::start_async(|hit| async move {
            match hit.path.as_str() {
                "/hang" => std::future::pending().await,
                "/throttle" => reply_with(429, &[("retry-after", "30")]),
                _ => reply(200),
            }
        })
        .await;
        let (snapshotter, _cpu) = started(config().build().unwrap(), IDLE);
        let layer = SnapshotLayer::builder(snapshotter)
            .limiter(Limiter::Autoscale(
                AutoscaleConfig::default().desired_concurrency(2),
            ))
            .build()
            .unwrap();

        // The layer outside, the timeout around the client.
        let outer = ServiceBuilder::new()
            .layer(layer.clone())
            .timeout(Duration::from_secs(1))
            .service(client());
        let err = outer
            .clone()
            .oneshot(get(&server.url("/hang")))
            .await
            .expect_err("times out");
        assert!(err.is::<tower::timeout::error::Elapsed>(), "{err:?}");
        assert_eq!(
            layer.stats().in_flight,
            Some(0),
            "the timed-out request's permit is back"
        );
        let r = outer.clone().oneshot(get(&server.url("/ok"))).await.unwrap();
        assert_eq!(r.status(), 200);

        // The timeout outside: it also bounds the wait for a paused host.
        let inner = ServiceBuilder::new()
            .timeout(Duration::from_secs(1))
            .layer(layer.clone())
            .service(client());
        let r = inner
            .clone()
            .oneshot(get(&server.url("/throttle")))
            .await
            .unwrap();
        assert_eq!(r.status(), 429);
        let err = inner
            .clone()
            .oneshot(get(&server.url("/ok")))
            .await
            .expect_err("the host is paused for 30 s");
        assert!(err.is::<tower::timeout::error::Elapsed>(), "{err:?}");
        assert_eq!(server.count("/ok"), 1, "the waiting request was never sent");
        assert_eq!(layer.stats().host_waits, 1);
        assert_eq!(layer.stats().in_flight, Some(0));
    })
    .await;
}

/// Under `Autoscale` a request waiting for a paused host gives its permit
/// back for the pause, so requests to a throttled host cannot hold the whole
/// limit and stall a healthy host (before the fix the healthy request was
/// sent only when the 30 s pause ended).
#[tokio::test(start_paused = true)]
async fn autoscale_keeps_serving_a_healthy_host_while_another_is_throttled() {
    bounded(async {
        let throttled = throttle_first(vec![("retry-after", "30".into())]).await;
        let healthy = TestServer::start(|_| reply(200)).await;
        let layer = SnapshotLayer::builder(idle_snapshotter())
            .limiter(Limiter::Autoscale(
                AutoscaleConfig::default().desired_concurrency(2),
            ))
            .build()
            .unwrap();
        let svc = layer.layer(client());

        let r = svc.clone().oneshot(get(&throttled.url("/x"))).await.unwrap();
        assert_eq!(r.status(), 429);
        let t0 = throttled.times("/x")[0];
        let _waiting: Vec<_> = (0..2)
            .map(|_| tokio::spawn(svc.clone().oneshot(get(&throttled.url("/x")))))
            .collect();
        tokio::task::yield_now().await;
        let r = svc.clone().oneshot(get(&healthy.url("/y"))).await.unwrap();
        assert_eq!(r.status(), 200);
        let sent = healthy.times("/y")[0];
        assert!(
            sent < t0 + Duration::from_secs(1),
            "the healthy host waited {:?} for the throttled one",
            sent - t0
        );
    })
    .await;
}
