//! Crawls a rate-limited server with a hyper-util client behind
//! `SnapshotLayer`, retrying throttled URLs with `RetryThrottled`.
//!
//! ```text
//! cargo run --release --example crawl                  # layer on, own server
//! cargo run --release --example crawl -- --no-layer    # the baseline
//! cargo run --release --example crawl -- --limiter sliding --rate 100
//! cargo run --release --example crawl -- --help
//! ```
//!
//! Without `--url` it starts its own server on 127.0.0.1 from `testkit`
//! (`testkit::Spec` served by `testkit::Server`), one of the limiter models
//! servers really run, chosen with `--limiter`:
//!
//! - `gcra` (the default): nginx `limit_req … nodelay`, `--rate` requests a
//!   second with a `--burst` of excess, 429 with `--retry-after`;
//! - `gcra-delay`: nginx `limit_req` without `nodelay` (its default with
//!   `burst=`): up to `--burst` requests queued and served at `--rate`, 429
//!   with `--retry-after` past that;
//! - `sliding`: a sliding one-second window that counts refused requests
//!   too, 429 without `Retry-After`;
//! - `haproxy`: HAProxy's `http_req_rate` counter (`--window`, 1 s), the
//!   previous period weighed by the time left in this one, counting refused
//!   requests too, 429 without `Retry-After`;
//! - `moving`: a moving window (`--window`, 1 s) of the requests it served
//!   (Flask-Limiter's and slowapi's moving window, Caddy's `rate_limit`),
//!   429 with `--retry-after` (`exact`: until the oldest served one leaves,
//!   rounded up); `moving-flask`: the same with Flask-Limiter's
//!   `X-RateLimit-*` headers and `Retry-After` on every answer;
//! - `window` / `window-github`: a fixed window of `5 × --rate` requests per
//!   5 s with IETF `RateLimit` or GitHub `X-RateLimit-*` headers, 429 with
//!   `Retry-After` to the reset;
//! - `bucket`: a token bucket of `--rate` a second holding one second's
//!   worth, 429 with `--retry-after`;
//! - `concurrency`: nginx `limit_conn`, 503 past `--burst` requests in
//!   flight.
//!
//! So the default server is GCRA at 500/s with a burst of 50 that answers
//! `Retry-After: 1`. Each served request takes `--latency-ms` (0; 20 for
//! `concurrency`). Without `--policy` the layer is built with the library's
//! default policy (`GatePolicy::default()`).
//!
//! The stack is
//! `ServiceBuilder::new().retry(RetryThrottled::new(max_attempts)).layer(snapshot_layer)`
//! over the client: a 429 or 503 is retried at once by the policy, and the
//! layer holds the retry until the host may be asked again. A URL still
//! answered 429 or 503 after `--max-attempts` (10 000) attempts counts as
//! failed. With `--no-layer` nothing holds the retries: they go straight
//! back to the server, which is the baseline's waste (and there, 50
//! attempts are often not enough).
//!
//! It ends with a short table on stderr (ok, failed, other answers, 429s,
//! 503s, wasted, ok/s, local refusals, transport errors) and one JSON line
//! on stdout:
//! `{"ok":…,"throttled":…,"other":…,"wall_s":…,"ok_per_s":…,"wasted_ratio":…}`,
//! where `ok` counts the URLs answered with a success, `other` those
//! answered anything else that is not retried (a bare 403, a 404),
//! `throttled` every 429 and 503 the client got (every attempt) and
//! `wasted_ratio = throttled / (ok + throttled)`.

mod args;
mod fetch;
mod prometheus;
mod report;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Empty;
use hyper::{Response, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use indicatif::{ProgressBar, ProgressState, ProgressStyle};
use testkit::{Server, Spec};
use tokio::time::Instant;
use tower::{BoxError, ServiceBuilder, ServiceExt};
use tower_snapshotter::{Config, GatePolicy, RetryThrottled, SnapshotLayer, Snapshotter};

use args::parse_args;
use fetch::{crawl_one, Counts, HttpClient};
use prometheus::serve_metrics;
use report::table;

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let args = parse_args();
    // `RUST_LOG=tower_snapshotter=info` shows each pause as it starts.
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    // Installed before the layer is built: the layer registers its metrics
    // with the recorder present then.
    if let Some(addr) = args.metrics {
        serve_metrics(addr)?;
    }
    let (server, base) = match &args.url {
        Some(u) => (None, u.clone()),
        None => {
            let mut spec = Spec::parse(&args.limiter, args.rate, args.burst, &args.retry_after)
                .unwrap_or_else(|e| {
                    eprintln!("crawl: {e}");
                    std::process::exit(2)
                });
            if let Some(secs) = args.window {
                if !(1..=3600).contains(&secs) {
                    eprintln!("crawl: --window: expected 1 ..= 3600 seconds, got {secs}");
                    std::process::exit(2)
                }
                spec = spec.with_window(Duration::from_secs(secs));
            }
            let default_latency = match spec {
                Spec::Concurrency { .. } => 20,
                _ => 0,
            };
            let latency = Duration::from_millis(args.latency_ms.unwrap_or(default_latency));
            let server = Server::start(spec.build(Instant::now()), latency).await?;
            let base = format!("{}/page/", server.base_url());
            (Some((server, spec, latency)), base)
        }
    };

    let mut connector = hyper_util::client::legacy::connect::HttpConnector::new();
    connector.set_nodelay(true);
    let client = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(args.concurrency)
        .build::<_, Empty<Bytes>>(connector);
    let snapshotter = Snapshotter::new(Config::from_env()?);
    let layer = if args.no_layer {
        None
    } else {
        let builder = SnapshotLayer::builder(snapshotter.clone());
        // Without `--policy`, whatever `GatePolicy::default()` is.
        let builder = match args.policy {
            Some(policy) => builder.policy(policy.into()),
            None => builder,
        };
        Some(builder.start_snapshotter(true).build()?)
    };
    let counts = Arc::new(Counts::default());
    // Counts every attempt's 429 or 503, between the retry and the layer:
    // the caller sees only each URL's last answer.
    let count_answers = {
        let counts = Arc::clone(&counts);
        move |response: Response<hyper::body::Incoming>| {
            match response.status() {
                StatusCode::TOO_MANY_REQUESTS => counts.too_many.fetch_add(1, Ordering::Relaxed),
                StatusCode::SERVICE_UNAVAILABLE => counts.unavailable.fetch_add(1, Ordering::Relaxed),
                _ => 0,
            };
            response
        }
    };
    // `RetryThrottled` retries a 429 or 503 at once; the layer below holds
    // the retry until the host may be asked again. With `--no-layer` nothing
    // holds it: the retries go straight out, which is the baseline's waste.
    let service: HttpClient = ServiceBuilder::new()
        .retry(RetryThrottled::new(args.max_attempts))
        .map_response(count_answers)
        .option_layer(layer.clone())
        .map_err(Into::<BoxError>::into)
        .service(client)
        .boxed_clone();

    let bar = if args.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(args.requests as u64)
    };
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} {rate:>7} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            // indicatif's `{per_sec}` prints every decimal: whole URLs a second.
            .with_key("rate", |state: &ProgressState, w: &mut dyn std::fmt::Write| {
                let rate = state.per_sec();
                let _ = if rate.is_finite() {
                    write!(w, "{rate:.0}/s")
                } else {
                    write!(w, "-/s")
                };
            }),
    );
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();

    let status_task = {
        let (bar, counts, layer) = (bar.clone(), Arc::clone(&counts), layer.clone());
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(200)).await;
                let throttled = counts.throttled();
                let msg = match &layer {
                    Some(l) => {
                        let s = l.stats();
                        let paused = s.paused_hosts.first().map_or(String::new(), |p| {
                            format!(" · paused {} {:.1}s", p.host, p.remaining.as_secs_f64())
                        });
                        format!("429/503s {throttled} · gate: {}{paused}", s.gate)
                    }
                    None => format!("429/503s {throttled} · no layer"),
                };
                if std::env::var_os("CRAWL_TRACE").is_some() {
                    if let Some(l) = &layer {
                        let s = l.stats();
                        eprintln!(
                            "{msg} {:?}",
                            s.adaptive_hosts.first().map(|h| (
                                h.concurrency,
                                h.in_flight,
                                h.rate,
                                h.estimate
                            ))
                        );
                    }
                }
                bar.set_message(msg);
            }
        })
    };

    let mut workers = Vec::new();
    for _ in 0..args.concurrency {
        let (mut service, counts, next, bar, base) = (
            service.clone(),
            Arc::clone(&counts),
            Arc::clone(&next),
            bar.clone(),
            base.clone(),
        );
        let total = args.requests;
        workers.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    return;
                }
                let url = format!("{base}{i}");
                crawl_one(&mut service, &url, &counts).await;
                bar.inc(1);
            }
        }));
    }
    for w in workers {
        w.await?;
    }
    status_task.abort();
    bar.finish_and_clear();

    let wall = started.elapsed().as_secs_f64();
    let ok = counts.ok.load(Ordering::Relaxed);
    let throttled = counts.throttled();
    let wasted = if ok + throttled == 0 {
        0.0
    } else {
        throttled as f64 / (ok + throttled) as f64
    };
    let mode = match &layer {
        Some(_) => match args.policy {
            Some(p) => format!("layer, policy {:?}", GatePolicy::from(p)),
            None => format!("layer, policy {:?} (the default)", GatePolicy::default()),
        },
        None => "no layer".into(),
    };
    eprintln!(
        "crawled {} URLs in {wall:.2} s with {mode}, up to {} attempts each:",
        args.requests,
        args.max_attempts.max(1)
    );
    // Time the layer held the host paused (summed over hosts; the crawl
    // has one base URL, so one host).
    let paused = layer.as_ref().map_or("-".to_owned(), |l| {
        format!("{:.1} s", l.stats().time_paused.as_secs_f64())
    });
    eprintln!(
        "{}",
        table(&[
            ("ok", ok.to_string()),
            ("failed", counts.failed.load(Ordering::Relaxed).to_string()),
            ("other answers", counts.other.load(Ordering::Relaxed).to_string()),
            ("429s", counts.too_many.load(Ordering::Relaxed).to_string()),
            ("503s", counts.unavailable.load(Ordering::Relaxed).to_string()),
            ("wasted", format!("{:.1} %", wasted * 100.0)),
            ("ok/s", format!("{:.0}", ok as f64 / wall)),
            ("paused", paused),
            (
                "refused locally",
                counts.rejected.load(Ordering::Relaxed).to_string()
            ),
            ("errors", counts.errors.load(Ordering::Relaxed).to_string()),
        ])
    );
    if let Some((server, spec, latency)) = &server {
        let (served, refused) = server.counts();
        eprintln!(
            "server ({spec}, latency {} ms): served {served}, refused {refused}",
            latency.as_millis()
        );
    }
    println!(
        "{{\"ok\":{ok},\"throttled\":{throttled},\"other\":{},\"wall_s\":{wall:.3},\"ok_per_s\":{:.1},\"wasted_ratio\":{wasted:.4}}}",
        counts.other.load(Ordering::Relaxed),
        ok as f64 / wall
    );
    Ok(())
}
