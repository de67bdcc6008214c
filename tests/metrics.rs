//! The `metrics` feature: what the layer and the snapshotter report, read
//! back from `metrics-util`'s `DebuggingRecorder`, against real hyper
//! servers on loopback under tokio's paused clock.
//!
//! Each test installs its own recorder for its thread
//! (`metrics::with_local_recorder`) and runs a current-thread runtime inside
//! it, so the layer (built in the test), the server, the client and the
//! snapshotter's sampler all register with that recorder and tests do not
//! share one.

#![cfg(feature = "metrics")]

mod common;

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use common::*;
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter as Recorded};
use metrics_util::MetricKind;
use tokio::time::Instant;
use tower::{Layer, ServiceExt};
use tower_snapshotter::integrations::metrics::{
    ANSWERS, CONCURRENCY_LIMIT, HOST_PAUSES, IN_FLIGHT, OTHER_HOSTS, OVERLOADED, PAUSED_HOSTS,
    REQUESTS_ADMITTED, REQUESTS_REJECTED, REQUESTS_WAITED,
};
use tower_snapshotter::layer::{AutoscaleConfig, Limiter};
use tower_snapshotter::{GatePolicy, Resources, SnapshotLayer};

/// A metric's labels, sorted.
type Labels = Vec<(String, String)>;

/// What the recorder holds, read at chosen instants. Counters add up over
/// reads; a gauge keeps the value of the latest read (the debugging
/// recorder zeroes both when read, and the layer sets its gauges at each
/// client snapshot, every 100 ms with the tests' configuration).
struct Metrics {
    recorded: Recorded,
    counters: HashMap<(MetricKind, String, Labels), u64>,
    gauges: HashMap<(String, Labels), f64>,
    described: Vec<String>,
}

impl Metrics {
    fn new(recorded: Recorded) -> Self {
        Self {
            recorded,
            counters: HashMap::new(),
            gauges: HashMap::new(),
            described: Vec::new(),
        }
    }

    /// Lets 250 ms of tokio time pass (two client snapshots at least), then
    /// reads the recorder.
    async fn observe(&mut self) {
        tokio::time::sleep(Duration::from_millis(250)).await;
        self.read();
    }

    fn read(&mut self) {
        self.gauges.clear();
        for (key, _unit, description, value) in self.recorded.snapshot().into_vec() {
            let (kind, key) = key.into_parts();
            let name = key.name().to_owned();
            let mut labels: Labels = key
                .labels()
                .map(|l| (l.key().to_owned(), l.value().to_owned()))
                .collect();
            labels.sort();
            if description.is_some() && !self.described.contains(&name) {
                self.described.push(name.clone());
            }
            match value {
                DebugValue::Counter(n) => *self.counters.entry((kind, name, labels)).or_default() += n,
                DebugValue::Gauge(g) => {
                    self.gauges.insert((name, labels), g.0);
                }
                DebugValue::Histogram(_) => panic!("no histogram expected: {name}"),
            }
        }
    }

    /// A counter's total so far; panics if it was never registered.
    fn counter(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        let key = (MetricKind::Counter, name.to_owned(), labels_of(labels));
        *self
            .counters
            .get(&key)
            .unwrap_or_else(|| panic!("no counter {key:?} in {:?}", self.counters.keys()))
    }

    /// A gauge's value at the latest read; panics if it was never registered.
    fn gauge(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let key = (name.to_owned(), labels_of(labels));
        *self
            .gauges
            .get(&key)
            .unwrap_or_else(|| panic!("no gauge {key:?} in {:?}", self.gauges.keys()))
    }

    /// The label sets registered under `name`, counters and gauges.
    fn label_sets(&self, name: &str) -> Vec<Labels> {
        let mut sets: Vec<Labels> = self
            .counters
            .keys()
            .filter(|(_, n, _)| n == name)
            .map(|(_, _, l)| l.clone())
            .chain(
                self.gauges
                    .keys()
                    .filter(|(n, _)| n == name)
                    .map(|(_, l)| l.clone()),
            )
            .collect();
        sets.sort();
        sets
    }
}

fn labels_of(labels: &[(&str, &str)]) -> Labels {
    let mut l: Labels = labels
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    l.sort();
    l
}

/// Runs `body` under tokio's paused clock, on a current-thread runtime,
/// with a fresh `DebuggingRecorder` installed for this thread.
fn run<F, Fut>(body: F)
where
    F: FnOnce(Metrics) -> Fut,
    Fut: Future<Output = ()>,
{
    let recorder = DebuggingRecorder::new();
    let metrics = Metrics::new(recorder.snapshotter());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .expect("runtime");
    metrics::with_local_recorder(&recorder, || rt.block_on(bounded(body(metrics))));
}

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
