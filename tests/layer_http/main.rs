//! The layer in front of hyper-util's client, against real hyper servers on
//! loopback: 429 storms, `Retry-After`, runs of bare 403s, per-host pauses,
//! errors, stats, and `ServiceBuilder` composition. Time is tokio's paused
//! clock; what the server received, and when, is read from its own log.

#[path = "../common/mod.rs"]
mod common;

mod errors;
mod forbidden;
mod gate;
mod hosts;
mod retry_after;
mod service_builder;
mod stats;

use std::time::Duration;

use common::*;
use tower_snapshotter::Snapshotter;

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
