//! A `reqwest::Client` behind `SnapshotLayer`: a 429 with `Retry-After`
//! pauses the host, and the next request waits in the layer until the pause
//! is over.
//!
//! ```text
//! cargo run --example reqwest --features reqwest
//! cargo run --example reqwest --features reqwest -- --requests 15
//! ```
//!
//! The example starts its own server on 127.0.0.1 that answers every third
//! request with `429 Too Many Requests` and `Retry-After: 1`, then sends
//! `--requests` requests one after the other through
//! `ServiceBuilder::new().layer(snapshot_layer).service(client)`. For each it
//! prints when it was handed to the layer, when it reached the server (both
//! relative to the start) and the status; after a 429 it also prints the
//! paused host from `SnapshotLayer::stats()`. The request that follows a 429
//! reaches the server about one second after it was handed over.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::time::Instant;
use tower::{BoxError, Service, ServiceBuilder, ServiceExt};
use tower_snapshotter::{Config, GatePolicy, SnapshotLayer, Snapshotter};

const USAGE: &str = "usage: reqwest [--requests N]
  --requests N   requests to send, one after the other (10)";

fn parse_args() -> Result<u64, String> {
    let mut requests = 10;
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--requests" => {
                let v = it.next().ok_or("--requests needs a value")?;
                requests = v
                    .parse()
                    .map_err(|_| format!("--requests: not a whole number: {v:?}"))?;
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    if requests == 0 {
        return Err("--requests must be at least 1".into());
    }
    Ok(requests)
}

/// Header in which the demo server says when the request reached it, in
/// milliseconds since the example started.
const ARRIVED: &str = "x-arrived-ms";

/// Answers every third request with 429 and `Retry-After: 1`.
async fn start_server(started: Instant) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let count = Arc::new(AtomicU64::new(0));
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let count = Arc::clone(&count);
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |_req: Request<hyper::body::Incoming>| {
                    let n = count.fetch_add(1, Ordering::Relaxed) + 1;
                    let arrived = started.elapsed().as_millis().to_string();
                    async move {
                        let mut response = if n.is_multiple_of(3) {
                            let mut r = Response::new(Full::new(Bytes::from_static(b"slow down")));
                            *r.status_mut() = StatusCode::TOO_MANY_REQUESTS;
                            r.headers_mut()
                                .insert("retry-after", http::HeaderValue::from_static("1"));
                            r
                        } else {
                            Response::new(Full::new(Bytes::from_static(b"ok")))
                        };
                        if let Ok(v) = http::HeaderValue::from_str(&arrived) {
                            response.headers_mut().insert(ARRIVED, v);
                        }
                        Ok::<_, Infallible>(response)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok(addr)
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let requests = parse_args().unwrap_or_else(|e| {
        eprintln!("reqwest: {e}");
        std::process::exit(2)
    });
    let started = Instant::now();
    let addr = start_server(started).await?;
    println!("server on http://{addr}/ answers every 3rd request with 429, Retry-After: 1\n");

    // `no_proxy`: the demo server is on loopback, whatever HTTP_PROXY says.
    let client = reqwest::Client::builder().no_proxy().build()?;
    let snapshotter = Snapshotter::new(Config::default());
    let layer = SnapshotLayer::builder(snapshotter.clone())
        .policy(GatePolicy::Wait)
        .start_snapshotter(true)
        .build()?;
    // `reqwest::Client` is a `Service<reqwest::Request>`; the layer reads
    // the host from the request's URL and the status and `Retry-After` from
    // the `reqwest::Response`.
    let mut service = ServiceBuilder::new().layer(layer.clone()).service(client.clone());

    println!("  #  handed over  reached server  status");
    let mut after_429 = Vec::new();
    let mut previous_was_429 = false;
    for i in 1..=requests {
        let request = client.get(format!("http://{addr}/item/{i}")).build()?;
        let handed = started.elapsed();
        let response = service.ready().await?.call(request).await?;
        let status = response.status();
        let arrived = response
            .headers()
            .get(ARRIVED)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .map(Duration::from_millis);
        let _ = response.bytes().await?;

        let arrived_text = arrived.map_or("?".into(), |a| format!("{:>6.2} s", a.as_secs_f64()));
        let mut line = format!(
            "{i:>3}  {:>9.2} s  {arrived_text:>14}  {status}",
            handed.as_secs_f64()
        );
        if let (true, Some(a)) = (previous_was_429, arrived) {
            let waited = a.saturating_sub(handed);
            after_429.push(waited);
            line.push_str(&format!("   (held {:.2} s by the layer)", waited.as_secs_f64()));
        }
        println!("{line}");
        previous_was_429 = status == StatusCode::TOO_MANY_REQUESTS;
        if previous_was_429 {
            for p in layer.stats().paused_hosts {
                // A host shows as `#` and its key until a request has waited
                // for it: the layer keeps host names off its hot path.
                let note = if p.host.starts_with('#') {
                    " (named once a request waits for it)"
                } else {
                    ""
                };
                println!(
                    "     stats(): host {} paused for {:.2} s more{note}",
                    p.host,
                    p.remaining.as_secs_f64()
                );
            }
        }
    }

    let stats = layer.stats();
    println!(
        "\n{} requests in {:.2} s; {} of them waited for a paused host; hosts tracked: {}, paused now: {}",
        requests,
        started.elapsed().as_secs_f64(),
        stats.host_waits,
        stats.tracked_hosts,
        stats.paused_hosts.len(),
    );
    if !after_429.is_empty() {
        let mean = after_429.iter().sum::<Duration>() / after_429.len() as u32;
        println!(
            "requests sent right after a 429 reached the server {:.2} s after they were handed over, on average (Retry-After: 1)",
            mean.as_secs_f64()
        );
    }
    snapshotter.stop()?;
    Ok(())
}
