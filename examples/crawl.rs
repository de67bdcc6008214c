//! Crawls a rate-limited server with a hyper-util client behind
//! `SnapshotLayer`, retrying throttled URLs until they succeed.
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
//! - `sliding`: a sliding one-second window that counts refused requests
//!   too, 429 without `Retry-After`;
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
//! It ends with one JSON line:
//! `{"ok":…,"throttled":…,"wall_s":…,"ok_per_s":…,"wasted_ratio":…}`, where
//! `throttled` counts every 429 and 503 the client got and
//! `wasted_ratio = throttled / (ok + throttled)`.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::{Request, Response, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use indicatif::{ProgressBar, ProgressStyle};
use testkit::{Server, Spec};
use tokio::time::Instant;
use tower::util::BoxCloneService;
use tower::{BoxError, Service, ServiceBuilder, ServiceExt};
use tower_snapshotter::layer::error::Overloaded;
use tower_snapshotter::{Config, GatePolicy, SnapshotLayer, Snapshotter};

fn usage() -> String {
    let default_policy = format!("{:?}", GatePolicy::default()).to_lowercase();
    format!(
        "usage: crawl [--requests N] [--concurrency C] [--policy wait|reject|autoscale|adaptive]
             [--no-layer] [--quiet] [--url BASE]
             [--limiter gcra|sliding|window|window-github|bucket|concurrency]
             [--rate R] [--burst B] [--retry-after none|exact|SECONDS] [--latency-ms N]
client:
  --requests N       URLs to crawl (3000)
  --concurrency C    requests the client offers at once (64)
  --policy P         the layer's gate policy: wait, reject, autoscale or adaptive
                     (default: the library's, GatePolicy::default(), now {default_policy})
  --no-layer         the same crawl without the layer (the baseline)
  --quiet            no progress bar
  --url BASE         crawl BASE0 .. BASE{{N-1}} on another server instead of
                     starting one (the server flags below are then ignored)
own server on 127.0.0.1 (testkit):
  --limiter L        the limiter model (gcra):
                       gcra           nginx limit_req nodelay: B+1 at once, then R/s; 429
                       sliding        sliding 1 s window of R counting refusals; 429, no Retry-After
                       window         fixed window of 5R per 5 s, IETF RateLimit headers; 429
                       window-github  the same with GitHub's X-RateLimit-* headers; 429
                       bucket         token bucket of R/s holding R; 429
                       concurrency    nginx limit_conn: 503 past B in flight, no Retry-After
  --rate R           requests per second the limiter allows (500; --capacity R is the same)
  --burst B          gcra: requests of excess allowed; concurrency: requests in flight (50)
  --retry-after RA   Retry-After on a gcra or bucket refusal: none, exact (seconds to
                     the next one served, rounded) or whole SECONDS, 0 meaning none (1);
                     window always sends the seconds to its reset, sliding none
  --latency-ms N     how long the server takes over each served request
                     (0; 20 for concurrency)
  -h, --help         this text"
    )
}

#[derive(Debug, Clone)]
struct Args {
    requests: usize,
    concurrency: usize,
    /// `None`: the library default, without calling `.policy(..)`.
    policy: Option<GatePolicy>,
    url: Option<String>,
    layer: bool,
    quiet: bool,
    limiter: String,
    rate: f64,
    burst: u32,
    retry_after: String,
    latency_ms: Option<u64>,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        requests: 3000,
        concurrency: 64,
        policy: None,
        url: None,
        layer: true,
        quiet: false,
        limiter: "gcra".into(),
        rate: 500.0,
        burst: 50,
        retry_after: "1".into(),
        latency_ms: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--requests" => a.requests = number(&value("--requests")?, "--requests")?,
            "--concurrency" => a.concurrency = number(&value("--concurrency")?, "--concurrency")?,
            "--rate" | "--capacity" => {
                let v = value(&arg)?;
                a.rate = v
                    .parse()
                    .map_err(|_| format!("{arg}: not a number of requests per second: {v:?}"))?;
            }
            "--burst" => a.burst = number(&value("--burst")?, "--burst")?,
            "--retry-after" => a.retry_after = value("--retry-after")?,
            "--latency-ms" => a.latency_ms = Some(number(&value("--latency-ms")?, "--latency-ms")?),
            "--limiter" => a.limiter = value("--limiter")?,
            "--policy" => {
                a.policy = Some(match value("--policy")?.as_str() {
                    "wait" => GatePolicy::Wait,
                    "reject" => GatePolicy::Reject,
                    "autoscale" => GatePolicy::Autoscale,
                    "adaptive" => GatePolicy::Adaptive,
                    other => {
                        return Err(format!(
                            "--policy: expected wait, reject, autoscale or adaptive, got {other:?}"
                        ))
                    }
                })
            }
            "--url" => a.url = Some(value("--url")?),
            "--no-layer" => a.layer = false,
            "--quiet" => a.quiet = true,
            "-h" | "--help" => {
                println!("{}", usage());
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?}\n{}", usage())),
        }
    }
    if a.concurrency == 0 {
        return Err("--concurrency must be at least 1".into());
    }
    Ok(a)
}

fn number<T: std::str::FromStr>(v: &str, name: &str) -> Result<T, String> {
    v.parse()
        .map_err(|_| format!("{name}: not a whole number: {v:?}"))
}

type HttpClient = BoxCloneService<Request<Empty<Bytes>>, Response<hyper::body::Incoming>, BoxError>;

#[derive(Default)]
struct Counts {
    ok: AtomicU64,
    throttled: AtomicU64,
    rejected: AtomicU64,
    errors: AtomicU64,
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let args = parse_args().unwrap_or_else(|e| {
        eprintln!("crawl: {e}");
        std::process::exit(2)
    });
    let (server, base) = match &args.url {
        Some(u) => (None, u.clone()),
        None => {
            let spec =
                Spec::parse(&args.limiter, args.rate, args.burst, &args.retry_after).unwrap_or_else(|e| {
                    eprintln!("crawl: {e}");
                    std::process::exit(2)
                });
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
    let layer = if args.layer {
        let builder = SnapshotLayer::builder(snapshotter.clone());
        // Without `--policy`, whatever `GatePolicy::default()` is.
        let builder = match args.policy {
            Some(policy) => builder.policy(policy),
            None => builder,
        };
        Some(builder.start_snapshotter(true).build()?)
    } else {
        None
    };
    let service: HttpClient = ServiceBuilder::new()
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
        ProgressStyle::with_template("{bar:30} {pos}/{len} {per_sec:>10} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let counts = Arc::new(Counts::default());
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();

    let status_task = {
        let (bar, counts, layer) = (bar.clone(), Arc::clone(&counts), layer.clone());
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(200)).await;
                let throttled = counts.throttled.load(Ordering::Relaxed);
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
        let (service, counts, next, bar, base) = (
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
                crawl_one(service.clone(), &url, &counts).await;
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
    let throttled = counts.throttled.load(Ordering::Relaxed);
    let wasted = if ok + throttled == 0 {
        0.0
    } else {
        throttled as f64 / (ok + throttled) as f64
    };
    let mode = match &layer {
        Some(_) => match args.policy {
            Some(p) => format!("layer, policy {p:?}"),
            None => format!("layer, policy {:?} (the default)", GatePolicy::default()),
        },
        None => "no layer".into(),
    };
    eprintln!(
        "crawled {ok} URLs in {wall:.2} s ({:.0}/s) with {mode}: {throttled} answers were 429 or 503 ({:.1} % wasted), {} refused locally, {} transport errors",
        ok as f64 / wall,
        wasted * 100.0,
        counts.rejected.load(Ordering::Relaxed),
        counts.errors.load(Ordering::Relaxed),
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

/// Fetches `url` until it succeeds: a 429 or 503 is retried at once (the
/// layer decides how long to wait), a local refusal after its `Retry-After`.
async fn crawl_one(mut service: HttpClient, url: &str, counts: &Counts) {
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
            Ok(response)
                if matches!(
                    response.status(),
                    StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
                ) =>
            {
                counts.throttled.fetch_add(1, Ordering::Relaxed);
                let _ = response.into_body().collect().await;
            }
            Ok(response) => {
                let _ = response.into_body().collect().await;
                counts.ok.fetch_add(1, Ordering::Relaxed);
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
