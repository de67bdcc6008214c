//! `Retry-After` in seconds and as an HTTP-date pauses the host at the
//! server, capped by `max_retry_after`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tower::{Layer, ServiceExt};
use tower_snapshotter::{GatePolicy, SnapshotLayer};

use crate::common::*;
use crate::{assert_paused, idle_snapshotter, throttle_first};

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
