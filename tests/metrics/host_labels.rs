//! The `host` label: only when opted in, at most `max_hosts` of them, and
//! none by default.

use tower::{Layer, ServiceExt};
use tower_snapshotter::integrations::metrics::{
    ANSWERS, CONCURRENCY_LIMIT, HOST_PAUSES, IN_FLIGHT, OTHER_HOSTS, REQUESTS_ADMITTED, REQUESTS_WAITED,
};
use tower_snapshotter::SnapshotLayer;

use crate::common::*;
use crate::{labels_of, run};

#[test]
fn host_labels_only_when_opted_in_and_at_most_max_hosts() {
    run(|mut m| async move {
        // The first request to `a` is answered 429 with `Retry-After: 1`.
        let a = TestServer::start(|hit| {
            if hit.nth == 0 {
                reply_with(429, &[("retry-after", "1")])
            } else {
                reply(200)
            }
        })
        .await;
        let b = TestServer::start(|_| reply(200)).await;
        let c = TestServer::start(|_| reply(200)).await;
        let (snapshotter, _cpu) = started(config().build().unwrap(), IDLE);
        // The default policy (Adaptive), two labelled hosts at most.
        let layer = SnapshotLayer::builder(snapshotter)
            .metrics_per_host(true)
            .max_hosts(2)
            .build()
            .unwrap();
        let svc = layer.layer(client());
        for (server, expected) in [(&a, 429), (&a, 200), (&b, 200), (&c, 200)] {
            let r = svc.clone().oneshot(get(&server.url("/"))).await.unwrap();
            assert_eq!(r.status(), expected);
        }
        m.observe().await;
        let (ha, hb) = (a.authority(), b.authority());
        assert_eq!(m.counter(ANSWERS, &[("class", "429"), ("host", &ha)]), 1);
        assert_eq!(m.counter(ANSWERS, &[("class", "2xx"), ("host", &ha)]), 1);
        assert_eq!(m.counter(ANSWERS, &[("class", "2xx"), ("host", &hb)]), 1);
        assert_eq!(
            m.counter(ANSWERS, &[("class", "2xx"), ("host", OTHER_HOSTS)]),
            1,
            "a third host shares <other>"
        );
        assert_eq!(m.counter(HOST_PAUSES, &[("host", &ha)]), 1);
        assert_eq!(m.counter(REQUESTS_WAITED, &[]), 1, "a's second request waited");
        assert_eq!(m.counter(REQUESTS_ADMITTED, &[]), 3);
        // Only labelled series: no unlabelled twin, no fourth host.
        let mut expected = vec![
            labels_of(&[("class", "2xx"), ("host", OTHER_HOSTS)]),
            labels_of(&[("class", "2xx"), ("host", &ha)]),
            labels_of(&[("class", "2xx"), ("host", &hb)]),
            labels_of(&[("class", "429"), ("host", &ha)]),
        ];
        expected.sort();
        assert_eq!(m.label_sets(ANSWERS), expected);
        assert_eq!(m.label_sets(HOST_PAUSES), vec![labels_of(&[("host", &ha)])]);

        // Adaptive limits per host: `a` was forgotten by the host map (2
        // hosts at most), `b` has its own series, `c` reports as <other>.
        let stats = layer.stats();
        let limit_of = |host: &str| {
            stats
                .adaptive_hosts
                .iter()
                .find(|h| h.host == host)
                .unwrap_or_else(|| panic!("{host} not in {:?}", stats.adaptive_hosts))
                .concurrency as f64
        };
        assert!(limit_of(&hb) > 0.0);
        assert_eq!(m.gauge(CONCURRENCY_LIMIT, &[("host", &hb)]), limit_of(&hb));
        assert_eq!(
            m.gauge(CONCURRENCY_LIMIT, &[("host", OTHER_HOSTS)]),
            limit_of(&c.authority())
        );
        assert_eq!(m.gauge(CONCURRENCY_LIMIT, &[("host", &ha)]), 0.0, "forgotten");
        assert_eq!(m.gauge(IN_FLIGHT, &[("host", &hb)]), 0.0);
        assert!(
            m.label_sets(CONCURRENCY_LIMIT)
                .iter()
                .all(|l| l.len() == 1 && l[0].0 == "host"),
            "no unlabelled limit under Adaptive"
        );
    });
}

#[test]
fn no_host_labels_by_default() {
    run(|mut m| async move {
        let server = TestServer::start(|_| reply(200)).await;
        let (snapshotter, _cpu) = started(config().build().unwrap(), IDLE);
        // The default policy, Adaptive, without `metrics_per_host`.
        let layer = SnapshotLayer::new(snapshotter);
        let svc = layer.layer(client());
        for _ in 0..2 {
            let r = svc.clone().oneshot(get(&server.url("/"))).await.unwrap();
            assert_eq!(r.status(), 200);
        }
        m.observe().await;
        assert_eq!(m.counter(ANSWERS, &[("class", "2xx")]), 2);
        assert_eq!(m.counter(REQUESTS_ADMITTED, &[]), 2);
        assert!(
            m.label_sets(ANSWERS)
                .iter()
                .all(|l| l.len() == 1 && l[0].0 == "class"),
            "{:?}",
            m.label_sets(ANSWERS)
        );
        assert!(
            m.label_sets(CONCURRENCY_LIMIT).is_empty(),
            "per host only, opt-in"
        );
        assert!(m.label_sets(IN_FLIGHT).is_empty());
    });
}
