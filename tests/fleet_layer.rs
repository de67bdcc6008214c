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
    let teacher = fleet(&redis, "learn");
    teacher.publish_learned(
        &host,
        Learned {
            rate: 40.0,
            measured: true,
            last_loss: Some(SystemTime::now()),
        },
    );
    let (fleet_a, fleet_b) = (fleet(&redis, "learn"), fleet(&redis, "learn"));
    for f in [&fleet_a, &fleet_b] {
        // The first look follows the host; its values arrive a round trip
        // later.
        let _ = f.learned(&host);
        eventually("the learned rate to arrive", Duration::from_secs(5), || {
            f.learned(&host).is_some()
        })
        .await;
    }
    let (a, b) = (layer(fleet_a), layer(fleet_b));
    // Both layers send as fast as the host lets them, for 2 s.
    let start = std::time::Instant::now();
    let run = |layer: SnapshotLayer, url: String| async move {
        let svc = tower::Layer::layer(&layer, client());
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..8 {
            let (svc, url) = (svc.clone(), url.clone());
            tasks.spawn(async move {
                while start.elapsed() < Duration::from_secs(2) {
                    let _ = svc.clone().oneshot(get(&url)).await;
                }
            });
        }
        tasks.join_all().await;
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
