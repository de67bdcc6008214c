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
//! It ends with a short table on stderr (ok, failed, 429s, 503s, wasted,
//! ok/s, local refusals, transport errors) and one JSON line on stdout:
//! `{"ok":…,"throttled":…,"wall_s":…,"ok_per_s":…,"wasted_ratio":…}`, where
//! `throttled` counts every 429 and 503 the client got (every attempt) and
//! `wasted_ratio = throttled / (ok + throttled)`.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use clap::builder::{PossibleValue, PossibleValuesParser, RangedU64ValueParser};
use clap::{CommandFactory, FromArgMatches, Parser, ValueEnum};
use http_body_util::{BodyExt, Empty};
use hyper::{Request, Response, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use indicatif::{ProgressBar, ProgressState, ProgressStyle};
use testkit::{Server, Spec};
use tokio::time::Instant;
use tower::util::BoxCloneService;
use tower::{BoxError, Service, ServiceBuilder, ServiceExt};
use tower_snapshotter::layer::error::Overloaded;
use tower_snapshotter::{Config, GatePolicy, RetryThrottled, SnapshotLayer, Snapshotter};

/// Crawls a rate-limited server through `SnapshotLayer`, retrying throttled
/// URLs with `RetryThrottled`, and prints one JSON line of figures.
#[derive(Debug, Clone, Parser)]
#[command(name = "crawl")]
struct Args {
    /// URLs to crawl
    #[arg(long, value_name = "N", default_value_t = 3000, help_heading = "Client")]
    requests: usize,
    /// Requests the client offers at once
    #[arg(
        long,
        value_name = "C",
        default_value_t = 64,
        value_parser = RangedU64ValueParser::<usize>::new().range(1..),
        help_heading = "Client"
    )]
    concurrency: usize,
    /// The layer's gate policy [default: the library's, GatePolicy::default()]
    // `parse_args` names the current default in the help.
    #[arg(long, value_name = "P", value_enum, help_heading = "Client")]
    policy: Option<Policy>,
    /// The same crawl without the layer (the baseline): throttled URLs are
    /// retried at once, until they succeed or --max-attempts run out
    #[arg(long, help_heading = "Client")]
    no_layer: bool,
    /// No progress bar
    #[arg(long, help_heading = "Client")]
    quiet: bool,
    /// Crawl BASE0 .. BASE{N-1} on another server instead of starting one
    /// (the server options are then ignored) [default: none, own server]
    #[arg(long, value_name = "BASE", help_heading = "Client")]
    url: Option<String>,
    /// Serve the layer's metrics in the Prometheus format on ADDR (e.g.
    /// 127.0.0.1:9000) while crawling; needs `--features metrics`
    #[arg(long, value_name = "ADDR", help_heading = "Client")]
    metrics: Option<std::net::SocketAddr>,
    /// Attempts per URL, the first included: a URL still answered 429 or
    /// 503 after them counts as failed
    #[arg(long, value_name = "N", default_value_t = 10_000, help_heading = "Client")]
    max_attempts: u32,
    /// The limiter model
    #[arg(
        long,
        value_name = "L",
        default_value = "gcra",
        value_parser = limiters(),
        help_heading = "Own server on 127.0.0.1 (testkit)"
    )]
    limiter: String,
    /// Requests per second the limiter allows
    #[arg(
        long,
        value_name = "R",
        visible_alias = "capacity",
        default_value_t = 500.0,
        help_heading = "Own server on 127.0.0.1 (testkit)"
    )]
    rate: f64,
    /// gcra: requests of excess allowed (gcra-delay: queued); concurrency:
    /// requests in flight
    #[arg(
        long,
        value_name = "B",
        default_value_t = 50,
        help_heading = "Own server on 127.0.0.1 (testkit)"
    )]
    burst: u32,
    /// Retry-After on a gcra, gcra-delay or bucket refusal: none, exact (seconds to the
    /// next one served, rounded) or whole SECONDS, 0 meaning none; window
    /// always sends the seconds to its reset, sliding and haproxy none
    #[arg(
        long,
        value_name = "RA",
        default_value = "1",
        help_heading = "Own server on 127.0.0.1 (testkit)"
    )]
    retry_after: String,
    /// How long the server takes over each served request, in milliseconds
    /// [default: 0; 20 for concurrency]
    #[arg(long, value_name = "N", help_heading = "Own server on 127.0.0.1 (testkit)")]
    latency_ms: Option<u64>,
    /// The window of sliding, haproxy and moving (default 1, HAProxy's examples use 10) or of
    /// window and window-github (default 5), in seconds; R a second over it
    #[arg(long, value_name = "SECS", help_heading = "Own server on 127.0.0.1 (testkit)")]
    window: Option<u64>,
}

/// `--policy`.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum Policy {
    Wait,
    Reject,
    Autoscale,
    Adaptive,
}

impl From<Policy> for GatePolicy {
    fn from(p: Policy) -> Self {
        match p {
            Policy::Wait => GatePolicy::Wait,
            Policy::Reject => GatePolicy::Reject,
            Policy::Autoscale => GatePolicy::Autoscale,
            Policy::Adaptive => GatePolicy::Adaptive,
        }
    }
}

/// `--limiter`: the names `testkit::Spec::parse` takes.
fn limiters() -> PossibleValuesParser {
    PossibleValuesParser::new([
        PossibleValue::new("gcra").help("nginx limit_req nodelay: B+1 at once, then R/s; 429"),
        PossibleValue::new("gcra-delay")
            .help("nginx limit_req without nodelay: B queued and served at R/s, past B 429"),
        PossibleValue::new("sliding")
            .help("sliding window (--window, 1 s) of R a second counting refusals; 429, no Retry-After"),
        PossibleValue::new("haproxy")
            .help("HAProxy's http_req_rate (--window, 1 s) of R a second, previous period weighed; 429, no Retry-After"),
        PossibleValue::new("moving")
            .help("moving window (--window, 1 s) of R a second counting served requests; 429"),
        PossibleValue::new("moving-flask")
            .help("the same with Flask-Limiter's X-RateLimit-* headers and Retry-After on every answer"),
        PossibleValue::new("window")
            .help("fixed window (--window, 5 s) of R a second, IETF RateLimit headers; 429"),
        PossibleValue::new("window-github").help("the same with GitHub's X-RateLimit-* headers; 429"),
        PossibleValue::new("bucket").help("token bucket of R/s holding R; 429"),
        PossibleValue::new("concurrency").help("nginx limit_conn: 503 past B in flight, no Retry-After"),
    ])
}

/// Parses the command line, exiting with clap's message (and status 2) on
/// a bad one; `--policy`'s help names the library's current default.
fn parse_args() -> Args {
    let default_policy = format!("{:?}", GatePolicy::default()).to_lowercase();
    let matches = Args::command()
        .mut_arg("policy", |a| {
            a.help(format!(
                "The layer's gate policy [default: the library's, GatePolicy::default(), now {default_policy}]"
            ))
        })
        .get_matches();
    Args::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}

type HttpClient = BoxCloneService<Request<Empty<Bytes>>, Response<hyper::body::Incoming>, BoxError>;

#[derive(Default)]
struct Counts {
    /// URLs fetched.
    ok: AtomicU64,
    /// URLs still answered 429 or 503 after `--max-attempts`.
    failed: AtomicU64,
    /// Answers of 429, every attempt counted.
    too_many: AtomicU64,
    /// Answers of 503, every attempt counted.
    unavailable: AtomicU64,
    /// Calls the layer refused locally (`--policy reject`).
    rejected: AtomicU64,
    /// Transport errors.
    errors: AtomicU64,
}

impl Counts {
    /// Every 429 and 503 the client got.
    fn throttled(&self) -> u64 {
        self.too_many.load(Ordering::Relaxed) + self.unavailable.load(Ordering::Relaxed)
    }
}

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
        "{{\"ok\":{ok},\"throttled\":{throttled},\"wall_s\":{wall:.3},\"ok_per_s\":{:.1},\"wasted_ratio\":{wasted:.4}}}",
        ok as f64 / wall
    );
    Ok(())
}

/// Two lines, headers over values, each column as wide as its widest cell.
fn table(columns: &[(&str, String)]) -> String {
    let (mut head, mut values) = (String::new(), String::new());
    for (name, value) in columns {
        let width = name.len().max(value.len());
        let _ = write!(head, "  {name:>width$}");
        let _ = write!(values, "  {value:>width$}");
    }
    format!("{head}\n{values}")
}

/// Fetches `url`: `RetryThrottled` in the stack retries its 429s and 503s
/// (the layer decides how long each retry waits), and a URL still answered
/// 429 or 503 once the attempts are spent counts as failed. A local refusal
/// (`--policy reject`) is retried after its `Retry-After`, a transport
/// error after 50 ms.
async fn crawl_one(service: &mut HttpClient, url: &str, counts: &Counts) {
    loop {
        let request = match Request::get(url).body(Empty::new()) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("crawl: bad URL {url:?}: {e}");
                return;
            }
        };
        let result = match service.ready().await {
            Ok(s) => s.call(request).await,
            Err(e) => Err(e),
        };
        match result {
            Ok(response) => {
                let counter = if RetryThrottled::retries_status(response.status()) {
                    &counts.failed
                } else {
                    &counts.ok
                };
                let _ = response.into_body().collect().await;
                counter.fetch_add(1, Ordering::Relaxed);
                return;
            }
            Err(e) => {
                let wait = match e.downcast_ref::<Overloaded>() {
                    Some(o) => {
                        counts.rejected.fetch_add(1, Ordering::Relaxed);
                        o.retry_after().unwrap_or(Duration::from_millis(50))
                    }
                    None => {
                        counts.errors.fetch_add(1, Ordering::Relaxed);
                        Duration::from_millis(50)
                    }
                };
                tokio::time::sleep(wait).await;
            }
        }
    }
}

/// Installs a Prometheus recorder serving on `addr`.
#[cfg(feature = "metrics")]
fn serve_metrics(addr: std::net::SocketAddr) -> Result<(), BoxError> {
    metrics_exporter_prometheus::PrometheusBuilder::new()
        .with_http_listener(addr)
        .install()
        .map_err(|e| format!("metrics on {addr}: {e}"))?;
    eprintln!("metrics: http://{addr}/metrics");
    Ok(())
}

/// Without the feature there is nothing to serve.
#[cfg(not(feature = "metrics"))]
fn serve_metrics(addr: std::net::SocketAddr) -> Result<(), BoxError> {
    Err(format!("--metrics {addr} needs the metrics feature: cargo run --release --example crawl --features metrics -- --metrics {addr}").into())
}
