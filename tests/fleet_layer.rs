//! Layers sharing hosts through a fleet on a real `redis-server`, against
//! a real hyper server on loopback: a `Retry-After` one layer got pauses
//! the host for another, a new layer starts at the rate the fleet learned,
//! and the layers together keep to the host's learned rate. Real time (Redis
//! keeps its own clock); assertions are on what the server received.

#![cfg(feature = "redis")]

mod common;
#[path = "common/redis.rs"]
mod redis_server;

use std::time::{Duration, SystemTime};

use common::*;
use redis_server::{eventually, RedisServer};
use tower::ServiceExt;
use tower_snapshotter::fleet::{Fleet, FleetConfig, Learned};
use tower_snapshotter::{SnapshotLayer, Snapshotter};

fn fleet(server: &RedisServer, namespace: &str) -> Fleet {
    let config = FleetConfig::builder(server.url(), namespace)
        .refresh(Duration::from_millis(20))
        .lease(Duration::from_millis(100))
        .command_timeout(Duration::from_millis(250))
        .build()
        .expect("valid config");
    Fleet::start(config).expect("inside a runtime")
}

fn layer(fleet: Fleet) -> SnapshotLayer {
    let snapshotter = Snapshotter::with_probes(config().build().unwrap(), FakeCpu::new(IDLE), LowMemory);
    SnapshotLayer::builder(snapshotter).fleet(fleet).build().unwrap()
}

/// Another process of namespace `ns` that measured `host` at `rate`.
fn teach(redis: &RedisServer, ns: &str, host: &str, rate: f64) -> Fleet {
    let teacher = fleet(redis, ns);
    teacher.publish_learned(
        host,
        Learned {
            rate,
            measured: true,
            last_loss: Some(SystemTime::now()),
        },
    );
    teacher
}

/// A fleet of namespace `ns` that has heard what the fleet learned of
/// `host`.
async fn learned_fleet(redis: &RedisServer, ns: &str, host: &str) -> Fleet {
    let f = fleet(redis, ns);
    // The first look follows the host; its values arrive a round trip
    // later.
    let _ = f.learned(host);
    eventually("the learned rate to arrive", Duration::from_secs(5), || {
        f.learned(host).is_some()
    })
    .await;
    f
}

/// Eight tasks send to `url` through `layer` as fast as it lets them,
/// until two seconds after `start`.
async fn send_for_two_seconds(layer: &SnapshotLayer, url: &str, start: std::time::Instant) {
    let svc = tower::Layer::layer(layer, client());
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let (svc, url) = (svc.clone(), url.to_owned());
        tasks.spawn(async move {
            while start.elapsed() < Duration::from_secs(2) {
                let _ = svc.clone().oneshot(get(&url)).await;
            }
        });
    }
    tasks.join_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_after_one_layer_got_pauses_the_host_for_another() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let server = TestServer::start(|hit| {
        if hit.nth == 0 {
            reply_with(429, &[("retry-after", "2")])
        } else {
            reply(200)
        }
    })
    .await;
    let (fleet_a, fleet_b) = (fleet(&redis, "pause"), fleet(&redis, "pause"));
    let (a, b) = (layer(fleet_a), layer(fleet_b.clone()));
    let first = tower::Layer::layer(&a, client())
        .oneshot(get(&server.url("/p")))
        .await
        .unwrap();
    assert_eq!(first.status(), 429);
    eventually(
        "the other process to hear of the pause",
        Duration::from_secs(5),
        || fleet_b.paused_until(&server.authority()).is_some(),
    )
    .await;
    let second = tower::Layer::layer(&b, client())
        .oneshot(get(&server.url("/p")))
        .await
        .unwrap();
    assert_eq!(second.status(), 200);
    let times = server.times("/p");
    assert_eq!(times.len(), 2);
    // The pause began when the 429 was answered, a moment after it
    // arrived; 1.9 s leaves room for that moment, not for skipping the
    // pause.
    assert!(
        times[1] - times[0] >= Duration::from_millis(1900),
        "layer B reached the host {:?} after layer A's 429",
        times[1] - times[0]
    );
    assert_eq!(
        b.stats().host_waits,
        1,
        "layer B waited for a pause it never saw itself"
    );
    assert!(b.stats().fleet.is_some_and(|f| f.connected));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn layers_start_at_the_learned_rate_and_share_it() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let server = TestServer::start(|_| reply(200)).await;
    let host = server.authority();
    // Another process measured the host at 40/s.
    let _teacher = teach(&redis, "learn", &host, 40.0);
    let fleet_a = learned_fleet(&redis, "learn", &host).await;
    let fleet_b = learned_fleet(&redis, "learn", &host).await;
    let (a, b) = (layer(fleet_a), layer(fleet_b));
    // Both layers send as fast as the host lets them, for 2 s.
    let start = std::time::Instant::now();
    let run = |layer: SnapshotLayer, url: String| async move {
        send_for_two_seconds(&layer, &url, start).await;
        layer
    };
    let (a, b) = tokio::join!(run(a, server.url("/a")), run(b, server.url("/b")));
    let sent = server.total() as f64;
    if std::env::var_os("FLEET_TRACE").is_some() {
        let mut all: Vec<_> = server.hits().into_iter().map(|h| (h.at, h.path)).collect();
        all.sort();
        let t0 = all[0].0;
        for (at, path) in &all {
            eprintln!("{:>6} {path}", (*at - t0).as_millis());
        }
    }
    // Unpaced, 16 loopback workers send thousands a second; held to the
    // fleet's 40/s, two seconds carry 80, then the 16 requests waiting when
    // time is up, and at most a lease's lookahead (250 ms, 10) besides. Each
    // process seeded at the whole rate, or paced at it over a share of
    // one half, sends some 110 to 130.
    assert!(sent <= 40.0 * 2.0 + 16.0 + 10.0, "{sent} requests in 2 s");
    assert!(
        sent >= 40.0 * 2.0 * 0.5,
        "{sent} requests in 2 s: the budget starved them"
    );
    for (name, l) in [("a", &a), ("b", &b)] {
        let stats = l.stats();
        let host_stats = stats.adaptive_hosts.first().expect("the host is tracked");
        assert!(
            host_stats.estimate_measured,
            "{name}: started from the fleet's measurement"
        );
        assert!(server.count(&format!("/{name}")) > 0, "{name} was served too");
    }
}

/// Two layers in two threads, each with its own runtime and its own fleet,
/// as two processes would run them: together they keep to the one learned
/// rate of the host they share, each sends its part of it, and each is
/// connected to the fleet throughout.
#[test]
fn two_layers_in_separate_runtimes_share_one_hosts_budget() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let runtime = |what: &str| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap_or_else(|e| panic!("{what}'s runtime: {e}"))
    };
    // The host, and the teacher, in the test's own runtime.
    let main = runtime("the host");
    let server = main.block_on(TestServer::start(|_| reply(200)));
    let host = server.authority();
    // Another process measured the host at 40/s.
    let _teacher = main.block_on(async { teach(&redis, "apart", &host, 40.0) });
    let ready = std::sync::Barrier::new(2);
    // One process: its runtime, its fleet, its layer; sends as fast as the
    // host lets it for 2 s from when both are ready, then reports.
    let process = |path: &str| {
        let rt = runtime(path);
        let snapshot_layer = rt.block_on(async { layer(learned_fleet(&redis, "apart", &host).await) });
        ready.wait();
        rt.block_on(async {
            send_for_two_seconds(&snapshot_layer, &server.url(path), std::time::Instant::now()).await;
            snapshot_layer.stats()
        })
    };
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| process("/a"));
        let b = s.spawn(|| process("/b"));
        (
            a.join().expect("process a panicked"),
            b.join().expect("process b panicked"),
        )
    });
    let sent = server.total() as f64;
    // As in `layers_start_at_the_learned_rate_and_share_it`: held to the
    // fleet's 40/s, two seconds carry 80, then the 16 requests waiting when
    // time is up, and at most a lease's lookahead (250 ms, 10) besides. Two
    // processes each keeping the whole rate send some 110 to 130; unpaced,
    // thousands.
    assert!(sent <= 40.0 * 2.0 + 16.0 + 10.0, "{sent} requests in 2 s");
    assert!(
        sent >= 40.0 * 2.0 * 0.5,
        "{sent} requests in 2 s: the budget starved them"
    );
    for (name, stats) in [("a", &a), ("b", &b)] {
        assert!(server.count(&format!("/{name}")) > 0, "{name} was served too");
        let fleet = stats.fleet.as_ref().expect("the layer has a fleet");
        assert!(fleet.connected, "{name}: {fleet:?}");
        assert!(fleet.leased > 0, "{name} spent the fleet's budget: {fleet:?}");
    }
}

/// Redis killed under two layers' steady traffic: every request still gets
/// its answer, requests go on reaching the host at much the pace they had
/// (the layers work locally, and count the time), and once Redis is back,
/// empty, the layers reconnect, lease from it again, and requests go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_mid_run_requests_through_the_layer_go_on_and_rejoin() {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::sync::{Arc, Mutex};

    let Some(mut redis) = RedisServer::start() else {
        return;
    };
    let server = TestServer::start(|_| reply(200)).await;
    let host = server.authority();
    // A learned rate for the host, so the layers pace it and lease their
    // slots from the fleet: unpaced, they would never ask Redis for one.
    let _teacher = teach(&redis, "outage", &host, 200.0);
    let fleet_a = learned_fleet(&redis, "outage", &host).await;
    let fleet_b = learned_fleet(&redis, "outage", &host).await;
    let layers = [layer(fleet_a), layer(fleet_b)];
    let fleets = || {
        layers
            .iter()
            .map(|l| l.stats().fleet.expect("the layer has a fleet"))
            .collect::<Vec<_>>()
    };

    // Four senders per layer, until told to stop; every answer is counted.
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let first_failure: Arc<Mutex<Option<String>>> = Arc::default();
    let mut tasks = tokio::task::JoinSet::new();
    for l in &layers {
        let svc = tower::Layer::layer(l, client());
        for _ in 0..4 {
            let (svc, url) = (svc.clone(), server.url("/o"));
            let (stop, ok, failed) = (stop.clone(), ok.clone(), failed.clone());
            let first_failure = first_failure.clone();
            tasks.spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let failure = match svc.clone().oneshot(get(&url)).await {
                        Ok(r) if r.status() == 200 => {
                            ok.fetch_add(1, Ordering::Relaxed);
                            continue;
                        }
                        Ok(r) => format!("status {}", r.status()),
                        Err(e) => format!("error {e}"),
                    };
                    failed.fetch_add(1, Ordering::Relaxed);
                    first_failure
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .get_or_insert(failure);
                }
            });
        }
    }
    let failures = || {
        (
            failed.load(Ordering::Relaxed),
            first_failure.lock().unwrap_or_else(|e| e.into_inner()).clone(),
        )
    };

    eventually(
        "both layers to lease from the fleet",
        Duration::from_secs(5),
        || fleets().iter().all(|f| f.connected && f.leased > 0),
    )
    .await;
    // The pace with Redis up, over 1 s.
    let before = server.total();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let connected_pace = server.total() - before;

    redis.kill();
    eventually("both layers to go local", Duration::from_secs(5), || {
        fleets().iter().all(|f| !f.connected)
    })
    .await;
    let outage_start = server.total();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let during = server.total() - outage_start;
    // At the local pace, 1.5 s carry 1.5 times the connected second's; a
    // layer that waited on the dead Redis (250 ms a command) would send a
    // fraction of that, one that blocked none at all.
    assert!(
        during * 2 >= connected_pace && during >= 20,
        "{during} requests in 1.5 s without Redis, {connected_pace} in 1 s with it"
    );
    assert_eq!(failures(), (0, None), "requests failed while Redis was down");
    for f in fleets() {
        assert!(!f.connected, "{f:?}");
        assert!(
            f.local_since.is_some_and(|d| d >= Duration::from_secs(1)),
            "the time local is counted: {f:?}"
        );
        assert!(f.local_total >= Duration::from_secs(1), "{f:?}");
    }

    // A new, empty server on the same port, flushed for good measure.
    redis.restart();
    redis.cmd::<()>(&["FLUSHALL"]);
    eventually("both layers to reconnect", Duration::from_secs(10), || {
        fleets().iter().all(|f| f.connected && f.local_since.is_none())
    })
    .await;
    let leased: Vec<u64> = fleets().iter().map(|f| f.leased).collect();
    let rejoined = server.total();
    eventually("both layers to lease again", Duration::from_secs(5), || {
        fleets().iter().zip(&leased).all(|(f, &n)| f.leased > n)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    tasks.join_all().await;
    let after = server.total() - rejoined;
    assert!(after >= 20, "{after} requests after Redis came back");
    assert_eq!(failures(), (0, None), "requests failed");
    let ok = ok.load(Ordering::Relaxed);
    assert_eq!(
        ok as usize,
        server.total(),
        "every request the host received was answered Ok"
    );
    eprintln!("{ok} requests; {connected_pace}/s connected, {during} in 1.5 s local, {after} after");
}
