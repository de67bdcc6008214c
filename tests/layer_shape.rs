//! What the layer's shape guarantees, against real hyper servers on
//! loopback under tokio's paused clock: a waiting request holds no
//! reservation of the inner service, hosts are told apart by their full
//! authority, and `Reject` composes with the adaptive limiter.

mod common;

use common::*;
use tower::{Service, ServiceBuilder, ServiceExt};
use tower_snapshotter::layer::error::Overloaded;
use tower_snapshotter::layer::{AdaptiveConfig, Limiter, OnBlocked};
use tower_snapshotter::{GatePolicy, SnapshotLayer, Snapshotter};

fn idle_snapshotter() -> Snapshotter {
    Snapshotter::with_probes(config().build().unwrap(), FakeCpu::new(IDLE), LowMemory)
}

/// A server whose first request is refused with `Retry-After: 30`, and
/// every later one served.
async fn pauses_for_30s() -> TestServer {
    TestServer::start(|hit| {
        if hit.nth == 0 {
            reply_with(429, &[("retry-after", "30")])
        } else {
            reply(200)
        }
    })
    .await
}

#[tokio::test(start_paused = true)]
async fn a_paused_request_holds_no_permit_of_a_concurrency_limit_below() {
    for policy in [GatePolicy::Wait, GatePolicy::Adaptive] {
        bounded(async {
            let paused = pauses_for_30s().await;
            let healthy = TestServer::start(|_| reply(200)).await;
            let layer = SnapshotLayer::builder(idle_snapshotter())
                .policy(policy)
                .build()
                .unwrap();
            // One permit below the layer, shared by every host.
            let svc = ServiceBuilder::new()
                .layer(layer.clone())
                .concurrency_limit(1)
                .service(client());
            let first = svc.clone().oneshot(get(&paused.url("/a"))).await.unwrap();
            assert_eq!(first.status(), 429);
            // A second request to the paused host waits out its 30 s...
            let waiting = tokio::spawn(svc.clone().oneshot(get(&paused.url("/a"))));
            tokio::task::yield_now().await;
            assert_eq!(layer.stats().host_waits, 1, "{policy:?}: it waits for its host");
            // ...while another host is served through the one permit.
            let other = svc.clone().oneshot(get(&healthy.url("/b"))).await.unwrap();
            assert_eq!(other.status(), 200);
            assert_eq!(healthy.total(), 1);
            assert!(
                !waiting.is_finished() && paused.total() == 1,
                "{policy:?}: the other host was served before the pause ended"
            );
            let resumed = waiting.await.unwrap().unwrap();
            assert_eq!(resumed.status(), 200);
            assert_eq!(paused.total(), 2);
        })
        .await;
    }
}

/// The host key before this layout: a 64-bit hash of the authority with
/// 0x20 ORed into every byte, no seed.
fn old_host_key(authority: &str) -> u64 {
    const K: u64 = 0x517c_c1b7_2722_0a95;
    let bytes = authority.as_bytes();
    let mut h = bytes.len() as u64;
    for chunk in bytes.chunks(8) {
        let mut w = [0u8; 8];
        w[..chunk.len()].copy_from_slice(chunk);
        h = (h.rotate_left(5) ^ (u64::from_le_bytes(w) | 0x2020_2020_2020_2020)).wrapping_mul(K);
    }
    h | 1
}

#[tokio::test(start_paused = true)]
async fn hosts_whose_old_keys_collide_are_paused_apart() {
    bounded(async {
        // Found by solving the old hash for two 21-byte names.
        let (a, b) = ("xriot89pdrafvaaa.test", "b5a3azer98b88cac.test");
        assert_eq!(old_host_key(a), old_host_key(b), "the pair collided before");
        let throttled = pauses_for_30s().await;
        let healthy = TestServer::start(|_| reply(200)).await;
        // Each name is served by its own loopback server; the layer above
        // sees only the names.
        let routes = [
            (a.to_owned(), throttled.authority()),
            (b.to_owned(), healthy.authority()),
        ];
        let http = client();
        let routed = tower::service_fn(move |mut req: http::Request<_>| {
            let name = req.uri().authority().map(|a| a.as_str().to_owned());
            let to = routes
                .iter()
                .find(|(n, _)| Some(n) == name.as_ref())
                .map(|(_, to)| to.clone());
            let uri = format!("http://{}{}", to.unwrap_or_default(), req.uri().path());
            *req.uri_mut() = uri.parse().expect("a loopback URI");
            let http = http.clone();
            async move { http.request(req).await }
        });
        let layer = SnapshotLayer::builder(idle_snapshotter())
            .policy(GatePolicy::Wait)
            .build()
            .unwrap();
        let mut svc = ServiceBuilder::new().layer(layer.clone()).service(routed);
        let first = svc
            .ready()
            .await
            .unwrap()
            .call(get(&format!("http://{a}/x")))
            .await
            .unwrap();
        assert_eq!(first.status(), 429);
        let other = svc
            .ready()
            .await
            .unwrap()
            .call(get(&format!("http://{b}/x")))
            .await
            .unwrap();
        assert_eq!(other.status(), 200);
        let stats = layer.stats();
        assert_eq!(
            stats.host_waits, 0,
            "the healthy host did not wait for the other's pause"
        );
        let paused: Vec<&str> = stats.paused_hosts.iter().map(|p| p.host.as_str()).collect();
        assert_eq!(paused, [a]);
        assert_eq!(stats.tracked_hosts, 1, "only the throttled host has state");
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn reject_with_the_adaptive_limiter_refuses_what_would_wait() {
    bounded(async {
        let gate = std::sync::Arc::new(tokio::sync::Semaphore::new(0));
        let server = TestServer::start_async({
            let gate = std::sync::Arc::clone(&gate);
            move |_| {
                let gate = std::sync::Arc::clone(&gate);
                async move {
                    let _held = gate.acquire().await;
                    reply(200)
                }
            }
        })
        .await;
        let free = TestServer::start(|_| reply(200)).await;
        let layer = SnapshotLayer::builder(idle_snapshotter())
            .on_blocked(OnBlocked::Reject)
            .limiter(Limiter::Adaptive(
                AdaptiveConfig::default().initial_concurrency(1),
            ))
            .build()
            .unwrap();
        let svc = tower::Layer::layer(&layer, client());
        // The host's one permit is in use...
        let held = tokio::spawn(svc.clone().oneshot(get(&server.url("/1"))));
        until("the first request reached the server", || server.total() == 1).await;
        // ...so a second request to it is refused at once, naming the host.
        let err = svc.clone().oneshot(get(&server.url("/2"))).await.unwrap_err();
        let overloaded = err.downcast_ref::<Overloaded>().expect("an Overloaded error");
        assert_eq!(overloaded.host(), Some(server.authority().as_str()));
        assert_eq!(overloaded.retry_after(), None);
        // Another host has permits of its own.
        let ok = svc.clone().oneshot(get(&free.url("/3"))).await.unwrap();
        assert_eq!(ok.status(), 200);
        gate.add_permits(1);
        assert_eq!(held.await.unwrap().unwrap().status(), 200);
        assert_eq!(server.total(), 1, "the refused request never reached the server");
        assert_eq!(layer.stats().rejected, 1);
    })
    .await;
}
