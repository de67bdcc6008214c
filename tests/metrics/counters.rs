//! The layer's counters: calls, answers by class, host pauses and
//! refusals.

use std::time::Duration;

use tokio::time::Instant;
use tower::{Layer, ServiceExt};
use tower_snapshotter::integrations::metrics::{
    ANSWERS, CONCURRENCY_LIMIT, HOST_PAUSES, IN_FLIGHT, OVERLOADED, PAUSED_HOSTS, REQUESTS_ADMITTED,
    REQUESTS_REJECTED, REQUESTS_WAITED,
};
use tower_snapshotter::{GatePolicy, SnapshotLayer};

use crate::common::*;
use crate::{labels_of, run, Labels};

#[test]
fn calls_answers_and_pauses_are_counted() {
    run(|mut m| async move {
        let server = TestServer::start(|hit| match hit.path.as_str() {
            "/throttle" if hit.nth == 0 => reply_with(429, &[("retry-after", "2")]),
            "/503" => reply(503),
            "/404" => reply(404),
            "/302" => reply(302),
            _ => reply(200),
        })
        .await;
        let (snapshotter, _cpu) = started(config().build().unwrap(), IDLE);
        let layer = SnapshotLayer::builder(snapshotter)
            .policy(GatePolicy::Wait)
            .build()
            .unwrap();
        let svc = layer.layer(client());
        let status = |path: &str| {
            let request = get(&server.url(path));
            let svc = svc.clone();
            async move { svc.oneshot(request).await.map(|r| r.status().as_u16()) }
        };

        // Built: every unlabelled series is there, described, at 0.
        m.read();
        for name in [REQUESTS_ADMITTED, REQUESTS_WAITED, REQUESTS_REJECTED, HOST_PAUSES] {
            assert_eq!(m.counter(name, &[]), 0, "{name}");
        }
        assert_eq!(m.gauge(PAUSED_HOSTS, &[]), 0.0);
        for name in [
            REQUESTS_ADMITTED,
            REQUESTS_WAITED,
            REQUESTS_REJECTED,
            ANSWERS,
            HOST_PAUSES,
            OVERLOADED,
            PAUSED_HOSTS,
        ] {
            assert!(m.described.iter().any(|d| d == name), "{name} is not described");
        }

        // A 429 with `Retry-After: 2` pauses the host.
        assert_eq!(status("/throttle").await.unwrap(), 429);
        m.observe().await;
        assert_eq!(m.counter(HOST_PAUSES, &[]), 1);
        assert_eq!(m.gauge(PAUSED_HOSTS, &[]), 1.0, "one host paused");

        // The next request to it waits for the pause, then goes.
        let before = Instant::now();
        assert_eq!(status("/throttle").await.unwrap(), 200);
        assert!(before.elapsed() >= Duration::from_millis(1500), "it waited");

        for (path, expected) in [
            ("/503", 503),
            ("/404", 404),
            ("/302", 302),
            ("/a", 200),
            ("/b", 200),
        ] {
            assert_eq!(status(path).await.unwrap(), expected);
        }
        // The inner service fails: nothing listens there.
        let closed = format!("http://{}/", closed_addr());
        assert!(svc.clone().oneshot(get(&closed)).await.is_err());

        m.observe().await;
        assert_eq!(
            m.counter(REQUESTS_ADMITTED, &[]),
            7,
            "the 429, five paths, the closed port"
        );
        assert_eq!(m.counter(REQUESTS_WAITED, &[]), 1);
        assert_eq!(m.counter(REQUESTS_REJECTED, &[]), 0);
        for (class, n) in [
            ("2xx", 3),
            ("429", 1),
            ("503", 1),
            ("error", 1),
            ("inner_error", 1),
            ("other", 1),
        ] {
            assert_eq!(m.counter(ANSWERS, &[("class", class)]), n, "class {class}");
        }
        assert_eq!(
            m.counter(HOST_PAUSES, &[]),
            1,
            "a 503 without Retry-After pauses nothing"
        );
        assert_eq!(m.gauge(PAUSED_HOSTS, &[]), 0.0, "the pause is over");
        // Not opted in: no host label anywhere; not Autoscale: no limit.
        assert_eq!(
            m.label_sets(ANSWERS),
            ["2xx", "429", "503", "error", "inner_error", "other"]
                .map(|c| labels_of(&[("class", c)]))
                .to_vec()
        );
        assert_eq!(m.label_sets(HOST_PAUSES), vec![Labels::new()]);
        assert!(m.label_sets(CONCURRENCY_LIMIT).is_empty());
        assert!(m.label_sets(IN_FLIGHT).is_empty());
    });
}

#[test]
fn refusals_are_counted() {
    run(|mut m| async move {
        let server = TestServer::start(|hit| {
            if hit.nth == 0 {
                reply_with(429, &[("retry-after", "5")])
            } else {
                reply(200)
            }
        })
        .await;
        let (snapshotter, _cpu) = started(config().build().unwrap(), IDLE);
        let layer = SnapshotLayer::builder(snapshotter)
            .policy(GatePolicy::Reject)
            .build()
            .unwrap();
        let svc = layer.layer(client());
        let first = svc.clone().oneshot(get(&server.url("/"))).await.unwrap();
        assert_eq!(first.status(), 429);
        for _ in 0..2 {
            assert!(
                svc.clone().oneshot(get(&server.url("/"))).await.is_err(),
                "paused: refused"
            );
        }
        m.observe().await;
        assert_eq!(m.counter(REQUESTS_ADMITTED, &[]), 1);
        assert_eq!(m.counter(REQUESTS_REJECTED, &[]), 2);
        assert_eq!(m.counter(REQUESTS_WAITED, &[]), 0);
        assert_eq!(m.counter(ANSWERS, &[("class", "429")]), 1);
        assert_eq!(
            m.counter(ANSWERS, &[("class", "2xx")]),
            0,
            "refused calls have no answer"
        );
        assert_eq!(m.counter(HOST_PAUSES, &[]), 1);
        assert_eq!(m.gauge(PAUSED_HOSTS, &[]), 1.0);
        assert_eq!(server.total(), 1);
    });
}
