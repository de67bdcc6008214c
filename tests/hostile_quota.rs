//! Quota headers as real servers write them, and as no server should, for
//! real, on loopback: a reset named as an epoch where the draft has
//! seconds (Twitch), a spent quota whose reset is far, and resets no
//! window is that long. None may hold a crawl longer than the server
//! asked, nor than `max_retry_after` for a spent quota.
//!
//! Time is tokio's paused clock; a 1 ms heartbeat keeps the auto-advance
//! from skipping ahead while the runtime waits for loopback sockets.

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::*;
use tokio::time::Instant;
use tower::{Layer, Service, ServiceExt};
use tower_snapshotter::SnapshotLayer;

/// Requests one worker sends, one after another.
const N: usize = 20;

/// The server's clock, in epoch seconds.
fn epoch() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Sends [`N`] requests one after another through the default layer to a
/// server that answers each with 200 and `headers()`; the paused time
/// they took.
async fn crawl(headers: fn() -> Vec<(&'static str, String)>, max_retry_after: Duration) -> Duration {
    let heartbeat = tokio::spawn(async {
        loop {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    });
    let server = TestServer::start(move |_| {
        let pairs = headers();
        let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
        reply_with(200, &pairs)
    })
    .await;
    let (snapshotter, _cpu) = started(config().build().unwrap(), IDLE);
    let layer = SnapshotLayer::builder(snapshotter.clone())
        .max_retry_after(max_retry_after)
        .build()
        .unwrap();
    let svc = layer.layer(client());
    let start = Instant::now();
    bounded(async {
        for i in 0..N {
            let mut s = svc.clone();
            let r = s.ready().await.unwrap().call(get(&server.url(&format!("/{i}"))));
            assert_eq!(r.await.unwrap().status(), 200);
        }
    })
    .await;
    heartbeat.abort();
    let _ = snapshotter.stop();
    start.elapsed()
}

#[tokio::test(start_paused = true)]
async fn a_reset_named_as_an_epoch_paces_at_the_quotas_rate() {
    // Twitch: 799 of 800 left until an epoch a minute away, on every
    // answer. Read as seconds from now, that minute was 48 years, and the
    // twenty requests took 1 899 s, 100 s each (the slowest pace).
    let took = crawl(
        || {
            vec![
                ("ratelimit-limit", "800".into()),
                ("ratelimit-remaining", "799".into()),
                ("ratelimit-reset", (epoch() + 60).to_string()),
            ]
        },
        Duration::from_secs(60),
    )
    .await;
    // The quota allows 13 a second; twenty go in under two seconds.
    assert!(took < Duration::from_secs(3), "{took:?}");
}

#[tokio::test(start_paused = true)]
async fn a_spent_quota_holds_the_host_at_most_max_retry_after() {
    // Spent for an hour, on every answer: each request waits for the
    // reset, capped as a `Retry-After` is (2 s here), then one request
    // finds out whether it is spent still. Uncapped, the second request
    // waited the hour.
    let took = crawl(
        || {
            vec![
                ("ratelimit-remaining", "0".into()),
                ("ratelimit-reset", "3600".into()),
            ]
        },
        Duration::from_secs(2),
    )
    .await;
    let most = Duration::from_secs(2 * N as u64 + 2);
    assert!(took <= most, "{took:?}, at most {most:?}");
    assert!(
        took >= Duration::from_secs(2 * (N as u64 - 1)),
        "the cap is a hold: {took:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn resets_longer_than_any_window_are_ignored() {
    // Five left for three thousand years: garbage, as an absurd
    // `Retry-After` is. Read as a quota, the pace fell to 100 s a request.
    let took = crawl(
        || vec![("ratelimit", "\"d\";r=5;t=99999999999".into())],
        Duration::from_secs(60),
    )
    .await;
    assert!(took < Duration::from_secs(1), "{took:?}");
}
