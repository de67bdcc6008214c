//! Crawls a rate-limited server with a hyper-util client behind
//! `SnapshotLayer`, retrying throttled URLs until they succeed.
//!
//! ```text
//! cargo run --release --example crawl                  # layer on, own server
//! cargo run --release --example crawl -- --no-layer    # the baseline
//! cargo run --release --example crawl -- --help
//! ```
//!
//! Without `--url` it starts its own server on 127.0.0.1: a token bucket of
//! `--capacity` requests a second (and as many in a burst) that answers 429
//! with `Retry-After: 1` (`--retry-after`) when empty. It ends with one JSON line:
//! `{"ok":…,"throttled":…,"wall_s":…,"ok_per_s":…,"wasted_ratio":…}`, where
//! `wasted_ratio = throttled / (ok + throttled)`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use hyper::{Request, Response, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use indicatif::{ProgressBar, ProgressStyle};
use tokio::time::Instant;
use tower::util::BoxCloneService;
use tower::{BoxError, Service, ServiceBuilder, ServiceExt};
use tower_snapshotter::layer::error::Overloaded;
use tower_snapshotter::{Config, GatePolicy, SnapshotLayer, Snapshotter};

const USAGE: &str = "usage: crawl [--requests N] [--concurrency C] [--capacity R] [--retry-after S]
             [--policy wait|reject|autoscale|adaptive]
             [--url BASE] [--no-layer] [--quiet]
  --requests N      URLs to crawl (3000)
  --concurrency C   requests offered at once (64)
  --capacity R      own server's token bucket, requests per second (500)
  --retry-after S   own server's Retry-After on a 429, seconds (1; 0 sends none)
  --policy P        the layer's gate policy (wait)
  --url BASE        crawl BASE0 .. BASE{N-1} on another server instead of starting one
  --no-layer        the same crawl without the layer (the baseline)
  --quiet           no progress bar";

#[derive(Debug, Clone)]
struct Args {
    requests: usize,
    concurrency: usize,
    capacity: f64,
    retry_after: u32,
    policy: GatePolicy,
    url: Option<String>,
    layer: bool,
    quiet: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        requests: 3000,
        concurrency: 64,
        capacity: 500.0,
        retry_after: 1,
        policy: GatePolicy::Wait,
        url: None,
        layer: true,
        quiet: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--requests" => a.requests = number(&value("--requests")?, "--requests")?,
            "--concurrency" => a.concurrency = number(&value("--concurrency")?, "--concurrency")?,
            "--capacity" => a.capacity = number::<u32>(&value("--capacity")?, "--capacity")?.into(),
            "--retry-after" => a.retry_after = number(&value("--retry-after")?, "--retry-after")?,
            "--policy" => {
                a.policy = match value("--policy")?.as_str() {
                    "wait" => GatePolicy::Wait,
                    "reject" => GatePolicy::Reject,
                    "autoscale" => GatePolicy::Autoscale,
                    "adaptive" => GatePolicy::Adaptive,
                    other => {
                        return Err(format!(
                            "--policy: expected wait, reject, autoscale or adaptive, got {other:?}"
                        ))
                    }
                }
            }
            "--url" => a.url = Some(value("--url")?),
            "--no-layer" => a.layer = false,
            "--quiet" => a.quiet = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    if a.concurrency == 0 || a.capacity <= 0.0 {
        return Err("--concurrency and --capacity must be at least 1".into());
    }
    Ok(a)
}

fn number<T: std::str::FromStr>(v: &str, name: &str) -> Result<T, String> {
    v.parse()
        .map_err(|_| format!("{name}: not a whole number: {v:?}"))
}

/// The demo server's token bucket: `rate` tokens a second, as many at most.
struct Bucket {
    rate: f64,
    tokens: f64,
    last: Instant,
}

impl Bucket {
    fn take(&mut self) -> bool {
        let now = Instant::now();
        self.tokens = (self.tokens + now.duration_since(self.last).as_secs_f64() * self.rate).min(self.rate);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

async fn start_server(capacity: f64, retry_after: u32) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let bucket = Arc::new(Mutex::new(Bucket {
        rate: capacity,
        tokens: capacity,
        last: Instant::now(),
    }));
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let bucket = Arc::clone(&bucket);
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |_req: Request<hyper::body::Incoming>| {
                    let allowed = bucket.lock().map(|mut b| b.take()).unwrap_or(false);
                    async move {
                        let response = if allowed {
                            Response::new(Full::new(Bytes::from_static(b"ok")))
                        } else {
                            let mut r = Response::new(Full::new(Bytes::from_static(b"slow down")));
                            *r.status_mut() = StatusCode::TOO_MANY_REQUESTS;
                            if retry_after > 0 {
                                r.headers_mut()
                                    .insert("retry-after", http::HeaderValue::from(retry_after));
                            }
                            r
                        };
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
    let base = match &args.url {
        Some(u) => u.clone(),
        None => format!(
            "http://{}/page/",
            start_server(args.capacity, args.retry_after).await?
        ),
    };

    let mut connector = hyper_util::client::legacy::connect::HttpConnector::new();
    connector.set_nodelay(true);
    let client = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(args.concurrency)
        .build::<_, Empty<Bytes>>(connector);
    let snapshotter = Snapshotter::new(Config::from_env()?);
    let layer = if args.layer {
        Some(
            SnapshotLayer::builder(snapshotter.clone())
                .policy(args.policy)
                .start_snapshotter(true)
                .build()?,
        )
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
                        format!("429s {throttled} · gate: {}{paused}", s.gate)
                    }
                    None => format!("429s {throttled} · no layer"),
                };
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
        Some(_) => format!("layer, policy {:?}", args.policy),
        None => "no layer".into(),
    };
    eprintln!(
        "crawled {ok} URLs in {wall:.2} s ({:.0}/s) with {mode}: {throttled} answers were 429 ({:.1} % wasted), {} refused locally, {} transport errors",
        ok as f64 / wall,
        wasted * 100.0,
        counts.rejected.load(Ordering::Relaxed),
        counts.errors.load(Ordering::Relaxed),
    );
    println!(
        "{{\"ok\":{ok},\"throttled\":{throttled},\"wall_s\":{wall:.3},\"ok_per_s\":{:.1},\"wasted_ratio\":{wasted:.4}}}",
        ok as f64 / wall
    );
    Ok(())
}

/// Fetches `url` until it succeeds: a 429 is retried at once (the layer
/// decides how long to wait), a local refusal after its `Retry-After`.
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
            Ok(response) if response.status() == StatusCode::TOO_MANY_REQUESTS => {
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
