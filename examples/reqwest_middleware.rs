//! A `reqwest_middleware` client with `SnapshotMiddleware` inside
//! `reqwest-retry`, crawling a rate-limited server.
//!
//! ```text
//! cargo run --release --example reqwest_middleware --features reqwest-middleware
//! ```
//!
//! It starts `testkit`'s nginx-like limiter on 127.0.0.1 (GCRA at 200/s,
//! burst 20, `Retry-After: 1`), then fetches 1 000 URLs with 32 workers,
//! through `ClientBuilder::new(reqwest::Client::new())
//! .with(RetryTransientMiddleware).with(layer.middleware())`: the retry
//! middleware retries a 429 after its own short back-off, and the layer,
//! nearer the network, holds each attempt until the host may be asked
//! again and paces it. It ends with what the server counted.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use reqwest_middleware::ClientBuilder;
use reqwest_retry::policies::ExponentialBackoff;
use reqwest_retry::RetryTransientMiddleware;
use testkit::{Server, Spec};
use tokio::time::Instant;
use tower_snapshotter::{Config, SnapshotLayer, Snapshotter};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let spec = Spec::parse("gcra", 200.0, 20, "1")?;
    let server = Server::start(spec.build(Instant::now()), Duration::ZERO).await?;
    let layer = SnapshotLayer::new(Snapshotter::new(Config::default()));
    let retries = ExponentialBackoff::builder()
        .retry_bounds(Duration::from_millis(10), Duration::from_millis(100))
        .build_with_max_retries(20);
    let client = ClientBuilder::new(reqwest::Client::new())
        .with(RetryTransientMiddleware::new_with_policy(retries))
        .with(layer.middleware())
        .build();

    let start = Instant::now();
    let base = server.base_url();
    let next = Arc::new(AtomicU32::new(0));
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..32 {
        let (client, base, next) = (client.clone(), base.clone(), Arc::clone(&next));
        workers.spawn(async move {
            let mut ok = 0u32;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= 1000 {
                    return ok;
                }
                let answer = client.get(format!("{base}/{i}")).send().await;
                ok += u32::from(answer.is_ok_and(|r| r.status().is_success()));
            }
        });
    }
    let ok: u32 = workers.join_all().await.into_iter().sum();
    let wall = start.elapsed().as_secs_f64();
    let (accepted, refused) = server.counts();
    println!(
        "{spec}: {ok} of 1000 ok in {wall:.1} s ({:.0}/s); the server accepted {accepted} and refused {refused}",
        f64::from(ok) / wall
    );
    Ok(())
}
