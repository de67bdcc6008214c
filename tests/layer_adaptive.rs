//! `GatePolicy::Adaptive` against real hyper servers on loopback, on
//! tokio's paused clock: a token bucket without `Retry-After`, a quota that
//! changes while requests wait, and a server whose latency grows past a
//! knee.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use tokio::time::Instant;
use tower::{Layer, ServiceExt};
use tower_snapshotter::{GatePolicy, SnapshotLayer, Snapshotter};

fn idle_snapshotter() -> Snapshotter {
    started(config().build().expect("config"), 0.0).0
}

fn adaptive_layer() -> SnapshotLayer {
    SnapshotLayer::builder(idle_snapshotter())
        .policy(GatePolicy::Adaptive)
        .build()
        .expect("layer")
}

/// Runs `workers` closed-loop clients against `url` until `until`.
async fn closed_loop<S>(svc: S, url: String, workers: usize, until: Instant)
where
    S: tower::Service<
            http::Request<http_body_util::Empty<bytes::Bytes>>,
            Response = http::Response<hyper::body::Incoming>,
        > + Clone
        + Send
        + 'static,
    S::Error: std::fmt::Debug,
    S::Future: Send,
{
    let mut tasks = Vec::new();
    for _ in 0..workers {
        let (svc, url) = (svc.clone(), url.clone());
        tasks.push(tokio::spawn(async move {
            while Instant::now() < until {
                let _ = svc.clone().oneshot(get(&url)).await;
            }
        }));
    }
    for t in tasks {
        t.await.expect("worker");
    }
}

#[tokio::test(start_paused = true)]
async fn a_token_bucket_without_retry_after_is_paced_near_its_rate() {
    bounded(async {
        // 50 requests a second, a burst of 5, 429 without Retry-After above.
        let rate = 50.0;
        let bucket = Arc::new(Mutex::new((5.0f64, Instant::now())));
        let answers: Arc<Mutex<Vec<(Instant, bool)>>> = Arc::default();
        let (b, log) = (Arc::clone(&bucket), Arc::clone(&answers));
        let server = TestServer::start(move |_| {
            let mut s = b.lock().unwrap_or_else(|e| e.into_inner());
            let now = Instant::now();
            s.0 = (s.0 + now.duration_since(s.1).as_secs_f64() * rate).min(5.0);
            s.1 = now;
            let ok = s.0 >= 1.0;
            if ok {
                s.0 -= 1.0;
            }
            log.lock().unwrap_or_else(|e| e.into_inner()).push((now, ok));
            reply(if ok { 200 } else { 429 })
        })
        .await;
        let svc = adaptive_layer().layer(client());
        let t0 = Instant::now();
        closed_loop(svc, server.url("/"), 16, t0 + Duration::from_secs(20)).await;

        let answers = answers.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let steady: Vec<bool> = answers
            .iter()
            .filter(|(at, _)| *at >= t0 + Duration::from_secs(5))
            .map(|(_, ok)| *ok)
            .collect();
        let ok = steady.iter().filter(|ok| **ok).count() as f64;
        let goodput = ok / 15.0;
        let refused = (steady.len() as f64 - ok) / steady.len() as f64;
        // Unpaced, 16 workers on loopback would send thousands a second.
        assert!(
            goodput >= 0.9 * rate,
            "goodput {goodput}/s against a {rate}/s bucket"
        );
        assert!(
            refused <= 0.05,
            "{:.1} % of the answers were 429s",
            refused * 100.0
        );
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_quota_change_reaches_the_requests_already_waiting() {
    bounded(async {
        // The first six answers allow 2 requests a second, the rest 1 000.
        let server = TestServer::start(|hit| {
            let quota = if hit.nth < 6 {
                r#""q";r=2;t=1"#
            } else {
                r#""q";r=1000;t=1"#
            };
            reply_with(200, &[("ratelimit", quota)])
        })
        .await;
        let svc = adaptive_layer().layer(client());
        // One request first, so the quota is known when the others queue.
        svc.clone().oneshot(get(&server.url("/"))).await.expect("first");
        let waiting: Vec<_> = (0..29)
            .map(|_| tokio::spawn(svc.clone().oneshot(get(&server.url("/")))))
            .collect();
        for w in waiting {
            assert_eq!(w.await.expect("task").expect("answer").status(), 200);
        }
        let times = server.times("/");
        assert_eq!(times.len(), 30);
        // Paced at 2/s while the quota said so ...
        let slow = times[5].duration_since(times[1]);
        assert!(
            slow >= Duration::from_millis(1900),
            "4 sends at 2/s took {slow:?}"
        );
        // ... and the 23 requests still waiting when it rose left at the new
        // rate, not at the slots of the old one (23 × 0.5 s).
        let rest = times[29].duration_since(times[6]);
        assert!(rest < Duration::from_secs(1), "the last 23 took {rest:?}");
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_queueing_server_is_held_near_its_knee() {
    bounded(async {
        // 20 ms up to 4 requests in flight, 20 ms more for each beyond.
        let in_flight = Arc::new(AtomicUsize::new(0));
        let arrivals: Arc<Mutex<Vec<(Instant, usize)>>> = Arc::default();
        let (n, log) = (Arc::clone(&in_flight), Arc::clone(&arrivals));
        let server = TestServer::start_async(move |hit| {
            let (n, log) = (Arc::clone(&n), Arc::clone(&log));
            async move {
                let now = n.fetch_add(1, Ordering::SeqCst) + 1;
                log.lock().unwrap_or_else(|e| e.into_inner()).push((hit.at, now));
                let extra = now.saturating_sub(4) as u32;
                tokio::time::sleep(Duration::from_millis(20) * (1 + extra)).await;
                n.fetch_sub(1, Ordering::SeqCst);
                reply(200)
            }
        })
        .await;
        let layer = adaptive_layer();
        let svc = layer.layer(client());
        let t0 = Instant::now();
        closed_loop(svc, server.url("/"), 24, t0 + Duration::from_secs(20)).await;

        let arrivals = arrivals.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let steady: Vec<usize> = arrivals
            .iter()
            .filter(|(at, _)| *at >= t0 + Duration::from_secs(2))
            .map(|(_, n)| *n)
            .collect();
        let over = steady.iter().filter(|n| **n > 4).count() as f64 / steady.len() as f64;
        let rate = steady.len() as f64 / 18.0;
        // 24 workers unlimited would keep 24 in flight: 2 000 ms a request.
        assert!(
            over < 0.05,
            "{:.1} % of requests arrived past the knee",
            over * 100.0
        );
        // At the knee: 4 per 20 ms is 200/s.
        assert!(rate >= 0.85 * 200.0, "{rate}/s");
    })
    .await;
}
