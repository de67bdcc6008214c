//! Load shedding on a server: `SnapshotLayer` with `GatePolicy::Reject` in
//! front of an axum `Router`, answering 503 with `Retry-After` while the
//! machine is overloaded.
//!
//! ```text
//! cargo run --example server_shedding
//! cargo run --example server_shedding -- --seconds 20
//! ```
//!
//! The example serves a one-route axum app on 127.0.0.1 behind the layer and
//! hits it every 200 ms from a hyper-util client. A third of the way in it
//! starts a CPU hog (one busy-spinning thread per core); the snapshotter's
//! CPU probe sees the machine overloaded, the gate closes and the server
//! answers `503 Service Unavailable` with `Retry-After` without running the
//! handler. Two thirds of the way in the hog stops, the window clears, and
//! the 200s come back. Each time the status code changes the example prints
//! the snapshotter's `SystemInfo` line, and it ends with a tally per phase.
//!
//! The snapshotter uses a 2 s window (`max_snapshot_age`) and samples CPU
//! every 250 ms, so it reacts within a couple of seconds. Where the CPU
//! cannot be read the example says so and still runs to the end; the gate
//! may then close for the event loop's delay instead, or not at all.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::error_handling::HandleErrorLayer;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use http::{header, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::time::Instant;
use tower::{BoxError, ServiceBuilder};
use tower_snapshotter::layer::error::Overloaded;
use tower_snapshotter::{Config, GatePolicy, Resources, SnapshotLayer, Snapshotter};

const USAGE: &str = "usage: server_shedding [--seconds N]
  --seconds N   how long to run (12, at least 3); the CPU hog runs
                from a third to two thirds of it";

fn parse_args() -> Result<u64, String> {
    let mut seconds = 12;
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--seconds" => {
                let v = it.next().ok_or("--seconds needs a value")?;
                seconds = v
                    .parse()
                    .map_err(|_| format!("--seconds: not a whole number: {v:?}"))?;
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    if seconds < 3 {
        return Err("--seconds must be at least 3".into());
    }
    Ok(seconds)
}

/// What the client saw in one phase of the run.
#[derive(Default)]
struct Tally(BTreeMap<String, u32>);

impl Tally {
    fn add(&mut self, what: &str) {
        *self.0.entry(what.to_owned()).or_default() += 1;
    }
}

impl std::fmt::Display for Tally {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0.is_empty() {
            return f.write_str("nothing");
        }
        let parts: Vec<String> = self.0.iter().map(|(k, n)| format!("{n} × {k}")).collect();
        f.write_str(&parts.join(", "))
    }
}

/// One busy-spinning thread per core until `stop` is set.
fn start_hog(stop: Arc<AtomicBool>) -> Vec<std::thread::JoinHandle<()>> {
    let n = std::thread::available_parallelism().map_or(1, |n| n.get());
    (0..n)
        .map(|_| {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let mut x: u64 = 0;
                while !stop.load(Ordering::Relaxed) {
                    x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
                }
            })
        })
        .collect()
}

async fn start_server(layer: SnapshotLayer, retry_after_s: u64) -> std::io::Result<SocketAddr> {
    // The layer's error for a refused request is `Overloaded`; turn it into
    // `503` with `Retry-After`. Any other error (none here) becomes 500.
    let shed = move |err: BoxError| async move {
        match err.downcast_ref::<Overloaded>() {
            Some(o) => {
                // A paused host says how long; for machine overload, the
                // window needs about `max_snapshot_age` to clear.
                let secs = o
                    .retry_after()
                    .map_or(retry_after_s, |d| d.as_secs_f64().ceil() as u64)
                    .max(1);
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    [(header::RETRY_AFTER, secs.to_string())],
                    o.to_string(),
                )
                    .into_response()
            }
            None => (StatusCode::INTERNAL_SERVER_ERROR, err.to_string()).into_response(),
        }
    };
    let app = Router::new().route("/", get(|| async { "hello" })).layer(
        ServiceBuilder::new()
            .layer(HandleErrorLayer::new(shed))
            .layer(layer),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            eprintln!("server_shedding: server stopped: {e}");
        }
    });
    Ok(addr)
}

/// One GET: the status and, for a 503, its `Retry-After` and body.
async fn hit(
    client: &Client<hyper_util::client::legacy::connect::HttpConnector, Empty<Bytes>>,
    url: &str,
) -> Result<(StatusCode, String), BoxError> {
    let request = http::Request::get(url).body(Empty::new())?;
    let response = tokio::time::timeout(Duration::from_secs(2), client.request(request)).await??;
    let status = response.status();
    let retry_after = response
        .headers()
        .get(header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = response.into_body().collect().await?.to_bytes();
    let detail = match retry_after {
        Some(r) => format!(", Retry-After: {r} ({})", String::from_utf8_lossy(&body)),
        None => String::new(),
    };
    Ok((status, detail))
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let seconds = parse_args().unwrap_or_else(|e| {
        eprintln!("server_shedding: {e}");
        std::process::exit(2)
    });
    let window = Duration::from_secs(2);
    let config = Config::builder()
        .max_snapshot_age(window)
        .snapshot_history(window * 2)
        .system_info_interval(Duration::from_millis(250))
        .build()?;
    let snapshotter = Snapshotter::new(config);
    // `Reject`: refuse at once instead of queueing, as a server shedding load
    // should. `min_concurrency(0)`: no request is let through while the gate
    // is closed (the default of 1 keeps clients from freezing, but here it
    // would let this one-at-a-time client through every time).
    let layer = SnapshotLayer::builder(snapshotter.clone())
        .policy(GatePolicy::Reject)
        .min_concurrency(0)
        .start_snapshotter(true)
        .build()?;
    let addr = start_server(layer.clone(), window.as_secs()).await?;
    let url = format!("http://{addr}/");
    println!("axum server on {url} behind SnapshotLayer (Reject → 503 + Retry-After)");
    println!(
        "window {} s, CPU sampled every 250 ms; hitting it every 200 ms for {seconds} s\n",
        window.as_secs()
    );

    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let started = Instant::now();
    let hog_from = Duration::from_secs(seconds) / 3;
    let hog_until = Duration::from_secs(seconds) * 2 / 3;
    let end = Duration::from_secs(seconds);
    let stop = Arc::new(AtomicBool::new(false));
    let mut hog = Vec::new();
    let mut phase = 0; // 0 before the hog, 1 during, 2 after
    let mut tallies = [Tally::default(), Tally::default(), Tally::default()];
    let mut last_status = None;
    let mut cpu_checked = false;

    let mut tick = tokio::time::interval(Duration::from_millis(200));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let t = started.elapsed();
        if t >= end {
            break;
        }
        if !cpu_checked && t >= Duration::from_millis(600) {
            cpu_checked = true;
            if snapshotter.unavailable().contains(Resources::CPU) {
                println!("note: the CPU probe cannot read this machine: CPU is unavailable, so the gate");
                println!("      cannot close for CPU (it may still close for the event loop's delay)\n");
            }
        }
        if phase == 0 && t >= hog_from {
            phase = 1;
            hog = start_hog(Arc::clone(&stop));
            println!(
                "t {:>5.2} s  -- CPU hog started: {} threads spinning",
                t.as_secs_f64(),
                hog.len()
            );
        } else if phase == 1 && t >= hog_until {
            phase = 2;
            stop.store(true, Ordering::Relaxed);
            for h in hog.drain(..) {
                let _ = h.join();
            }
            println!("t {:>5.2} s  -- CPU hog stopped", t.as_secs_f64());
        }

        let (status, detail) = match hit(&client, &url).await {
            Ok((status, detail)) => (status.to_string(), detail),
            Err(e) => ("error".to_owned(), format!(": {e}")),
        };
        tallies[phase].add(&status);
        if last_status.as_ref() != Some(&status) {
            let info = snapshotter
                .verdict()
                .info
                .map_or("no judgement yet".to_owned(), |i| i.to_string());
            println!("t {:>5.2} s  {status}{detail}", t.as_secs_f64());
            println!("           {info}");
            last_status = Some(status);
        }
    }
    stop.store(true, Ordering::Relaxed);
    for h in hog {
        let _ = h.join();
    }

    let stats = layer.stats();
    println!("\nbefore the hog: {}", tallies[0]);
    println!("during the hog: {}", tallies[1]);
    println!("after the hog:  {}", tallies[2]);
    println!("refused by the layer: {}", stats.rejected);
    if tallies[0].0.keys().any(|k| k.starts_with("503")) {
        println!("(503s before the hog: something else was loading this machine then)");
    }
    if snapshotter.unavailable().contains(Resources::CPU) {
        println!("(CPU was unavailable on this machine, so the hog could not be seen as CPU overload)");
    }
    snapshotter.stop()?;
    Ok(())
}
