//! Hostile and broken servers, for real, on loopback: absurd and garbled
//! `Retry-After` values, several of them, non-UTF-8 bytes, a wait in
//! milliseconds beside it, endless 429s, servers that never answer or
//! reset the connection. The client must not panic, must not wait longer
//! than `max_retry_after`, must not grow its state, and errors must reach
//! the caller.

#[path = "../common/mod.rs"]
mod common;

mod announced_rate;
mod exact_waits;
mod floods;
mod retry_after;
mod transport;

use std::time::Duration;

use bytes::Bytes;
use common::*;
use http::HeaderValue;
use http_body_util::Full;
use tower::{Layer, ServiceExt};
use tower_snapshotter::layer::error::Overloaded;
use tower_snapshotter::{GatePolicy, SnapshotLayer, Snapshotter};

fn snapshotter() -> Snapshotter {
    Snapshotter::with_probes(config().build().unwrap(), FakeCpu::new(IDLE), LowMemory)
}

/// A server answering 429 with the raw header values given for each
/// request's path (by index), 200 once the list is used up.
async fn hinting(values: Vec<Vec<(&'static str, Vec<u8>)>>) -> TestServer {
    TestServer::start(move |hit| {
        let i: usize = hit.path.trim_start_matches('/').parse().unwrap_or(usize::MAX);
        match values.get(i) {
            Some(list) if hit.nth == 0 => {
                let mut r = Reply::new(Full::new(Bytes::from_static(b"no")));
                *r.status_mut() = http::StatusCode::TOO_MANY_REQUESTS;
                for (name, v) in list {
                    if let Ok(v) = HeaderValue::from_bytes(v) {
                        r.headers_mut().append(*name, v);
                    }
                }
                r
            }
            _ => reply(200),
        }
    })
    .await
}

/// `Retry-After` fields with these raw values.
fn retry_afters(values: Vec<&[u8]>) -> Vec<(&'static str, Vec<u8>)> {
    values.into_iter().map(|v| ("retry-after", v.to_vec())).collect()
}

/// The pause a hostile value imposes, as `Reject` reports it (`None`: no
/// pause, the next request is sent).
async fn pause_after(values: Vec<&[u8]>) -> Option<Duration> {
    pause_after_headers(retry_afters(values)).await
}

/// The pause a refusal with these headers imposes (see [`pause_after`]).
async fn pause_after_headers(headers: Vec<(&'static str, Vec<u8>)>) -> Option<Duration> {
    let server = hinting(vec![headers]).await;
    let layer = SnapshotLayer::builder(snapshotter())
        .policy(GatePolicy::Reject)
        .max_retry_after(Duration::from_secs(2))
        .host_backoff(Duration::ZERO)
        .build()
        .unwrap();
    let svc = layer.layer(client());
    let r = svc.clone().oneshot(get(&server.url("/0"))).await.unwrap();
    assert_eq!(r.status(), 429);
    match svc.clone().oneshot(get(&server.url("/0"))).await {
        Ok(r) => {
            assert_eq!(r.status(), 200);
            None
        }
        Err(e) => {
            let o = e.downcast_ref::<Overloaded>().expect("an Overloaded refusal");
            Some(o.retry_after().expect("a host pause"))
        }
    }
}

/// Sends to `/0` twice through `layer` over a real client: refused (the
/// server's first answer there), then served. How long the second request
/// took, its wait included, and the service.
async fn waited_after_refusal(
    layer: SnapshotLayer,
    server: &TestServer,
) -> (Duration, tower_snapshotter::SnapshotService<HttpClient>) {
    let svc = layer.layer(client());
    let r = svc.clone().oneshot(get(&server.url("/0"))).await.unwrap();
    assert_eq!(r.status(), 429);
    let started = tokio::time::Instant::now();
    let r = svc.clone().oneshot(get(&server.url("/0"))).await.unwrap();
    assert_eq!(r.status(), 200);
    (started.elapsed(), svc)
}
