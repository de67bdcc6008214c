//! The `metrics` feature with a Prometheus exporter: a short crawl of a
//! rate-limited server through `SnapshotLayer`, its metrics served for
//! scraping while it runs and printed at the end.
//!
//! ```text
//! cargo run --example metrics --features metrics
//! cargo run --example metrics --features metrics -- --metrics 127.0.0.1:9100 --seconds 30
//! curl -s http://127.0.0.1:9000/metrics | grep tower_snapshotter   # while it runs
//! ```
//!
//! It starts its own server on 127.0.0.1 from `testkit`: nginx-style GCRA
//! at `--rate` requests a second with a burst of 20, answering 429 with
//! `Retry-After: 1` past it. `--concurrency` workers fetch new URLs for
//! `--seconds`, each 429 retried by `RetryThrottled` (the layer holds the
//! retry while the host is paused or paced). The layer is the default
//! (`GatePolicy::Adaptive`) with per-host labels on.
//!
//! The order matters: the recorder is installed before the layer is built,
//! because the layer registers its metric handles when it is built.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use clap::Parser;
use http_body_util::Empty;
use hyper::Request;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use metrics_exporter_prometheus::PrometheusBuilder;
use testkit::{Server, Spec};
use tokio::time::Instant;
use tower::{BoxError, Service, ServiceBuilder, ServiceExt};
use tower_snapshotter::{Config, RetryThrottled, SnapshotLayer, Snapshotter};

/// A short crawl whose metrics a Prometheus exporter serves, then prints.
#[derive(Debug, Parser)]
#[command(name = "metrics")]
struct Args {
    /// Where the exporter serves `/metrics`
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9000")]
    metrics: SocketAddr,
    /// How long to crawl, in seconds
    #[arg(long, value_name = "N", default_value_t = 4)]
    seconds: u64,
    /// Requests per second the server allows
    #[arg(long, value_name = "R", default_value_t = 200.0)]
    rate: f64,
    /// Requests the client offers at once
    #[arg(long, value_name = "C", default_value_t = 16)]
    concurrency: usize,
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let args = Args::parse();

    // First the recorder, serving on `--metrics`.
    let (recorder, exporter) = PrometheusBuilder::new()
        .with_http_listener(args.metrics)
        .build()
        .map_err(|e| format!("metrics exporter on {}: {e}", args.metrics))?;
    let prometheus = recorder.handle();
    metrics::set_global_recorder(recorder)?;
    tokio::spawn(exporter);
    eprintln!("serving metrics on http://{}/metrics", args.metrics);

    // Then the layer: its handles are registered with that recorder.
    let spec = Spec::parse("gcra", args.rate, 20, "1")?;
    let server = Server::start(spec.build(Instant::now()), Duration::ZERO).await?;
    let layer = SnapshotLayer::builder(Snapshotter::new(Config::default()))
        .metrics_per_host(true)
        .start_snapshotter(true)
        .build()?;
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let service = ServiceBuilder::new()
        .retry(RetryThrottled::new(1_000))
        .layer(layer.clone())
        .service(client);

    let base = format!("{}/page/", server.base_url());
    let next = Arc::new(AtomicU64::new(0));
    let ok = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let workers: Vec<_> = (0..args.concurrency.max(1))
        .map(|_| {
            let (mut service, base, next, ok) =
                (service.clone(), base.clone(), Arc::clone(&next), Arc::clone(&ok));
            tokio::spawn(async move {
                while Instant::now() < deadline {
                    let url = format!("{base}{}", next.fetch_add(1, Ordering::Relaxed));
                    let request = Request::get(url).body(Empty::new()).expect("a valid request");
                    let answer = match service.ready().await {
                        Ok(s) => s.call(request).await,
                        Err(e) => Err(e),
                    };
                    if answer.is_ok_and(|r| r.status().is_success()) {
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    for w in workers {
        w.await?;
    }

    // Let the snapshotter take one more client snapshot, so the gauges
    // show the end of the crawl.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (served, refused) = server.counts();
    eprintln!(
        "crawled {} URLs in {} s: the server served {served} and refused {refused}",
        ok.load(Ordering::Relaxed),
        args.seconds
    );
    print!("{}", prometheus.render());
    Ok(())
}
