//! `SnapshotLayer` in one `tower::ServiceBuilder` stack with `Retry` and
//! `Timeout`, over a hyper-util client.
//!
//! ```text
//! cargo run --example service_builder
//! cargo run --example service_builder -- --requests 20 --rate 4
//! ```
//!
//! The example starts its own server on 127.0.0.1 with a token bucket of
//! `--rate` requests a second (and as many in a burst) that answers 429 with
//! `Retry-After: 1` when empty, and a `/slow` page that takes 3 s. It sends
//! `--requests` requests at once plus one to `/slow`, through
//!
//! ```text
//! Retry (429s, up to --max-retries times) → SnapshotLayer → Timeout (per attempt) → client
//! ```
//!
//! The server prints every attempt as it arrives; at the end each request's
//! attempts and final status are listed. The retry policy itself never
//! sleeps: the retried attempt passes through the layer again, and the layer
//! holds it until the host's `Retry-After` is over.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::HeaderValue;
use http_body_util::{BodyExt, Empty, Full};
use hyper::{Request, Response, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::time::Instant;
use tower::retry::Policy;
use tower::{BoxError, Service, ServiceBuilder, ServiceExt};
use tower_snapshotter::{Config, GatePolicy, SnapshotLayer, Snapshotter};

const USAGE: &str = "usage: service_builder [--requests N] [--rate R] [--max-retries N] [--timeout-ms T]
  --requests N      requests sent at once, besides the one to /slow (10)
  --rate R          the server's token bucket, requests per second (2)
  --max-retries N   retries of a 429 answer (3)
  --timeout-ms T    timeout of each attempt, in milliseconds (1000)";

#[derive(Debug, Clone, Copy)]
struct Args {
    requests: u32,
    rate: u32,
    max_retries: u32,
    timeout: Duration,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        requests: 10,
        rate: 2,
        max_retries: 3,
        timeout: Duration::from_millis(1000),
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| -> Result<u32, String> {
            let v = it.next().ok_or(format!("{name} needs a value"))?;
            v.parse()
                .map_err(|_| format!("{name}: not a whole number: {v:?}"))
        };
        match arg.as_str() {
            "--requests" => a.requests = value("--requests")?,
            "--rate" => a.rate = value("--rate")?,
            "--max-retries" => a.max_retries = value("--max-retries")?,
            "--timeout-ms" => a.timeout = Duration::from_millis(value("--timeout-ms")?.into()),
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    if a.requests == 0 || a.rate == 0 || a.timeout.is_zero() {
        return Err("--requests, --rate and --timeout-ms must be at least 1".into());
    }
    Ok(a)
}

/// The header in which the retry policy numbers the attempts, so the server
/// can print them.
const ATTEMPT: &str = "x-attempt";

/// How many attempts a request took; the policy puts it in the final
/// response's extensions.
#[derive(Debug, Clone, Copy)]
struct Attempts(u32);

/// The error of a request that failed, with the attempts it took.
#[derive(Debug)]
struct Failed {
    attempts: u32,
    source: BoxError,
}

impl std::fmt::Display for Failed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} after {} attempt(s)", self.source, self.attempts)
    }
}

impl std::error::Error for Failed {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.source)
    }
}

/// Retries answers of 429 up to `max_retries` times, at once: the layer
/// below does the waiting. `Retry` clones the policy for every request, so
/// `retries` counts one request's retries.
#[derive(Debug, Clone)]
struct RetryOn429 {
    max_retries: u32,
    retries: u32,
}

impl<B: Clone, ResBody> Policy<Request<B>, Response<ResBody>, BoxError> for RetryOn429 {
    type Future = std::future::Ready<()>;

    fn retry(
        &mut self,
        req: &mut Request<B>,
        result: &mut Result<Response<ResBody>, BoxError>,
    ) -> Option<Self::Future> {
        let throttled = matches!(result, Ok(r) if r.status() == StatusCode::TOO_MANY_REQUESTS);
        if throttled && self.retries < self.max_retries {
            self.retries += 1;
            req.headers_mut()
                .insert(ATTEMPT, HeaderValue::from(self.retries + 1));
            // No sleep here: the retry goes through `SnapshotLayer` again,
            // which saw this 429 and its `Retry-After` and holds the attempt
            // until the host's pause is over.
            return Some(std::future::ready(()));
        }
        let attempts = self.retries + 1;
        match result {
            Ok(response) => {
                response.extensions_mut().insert(Attempts(attempts));
            }
            Err(e) => {
                let source = std::mem::replace(e, BoxError::from(""));
                *e = Box::new(Failed { attempts, source });
            }
        }
        None
    }

    fn clone_request(&mut self, req: &Request<B>) -> Option<Request<B>> {
        // hyper's `Incoming` body cannot be cloned, but this client sends
        // `Empty<Bytes>` bodies, which can: the whole request is cloned.
        Some(req.clone())
    }
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

async fn start_server(rate: u32, started: Instant) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let bucket = Arc::new(Mutex::new(Bucket {
        rate: rate.into(),
        tokens: rate.into(),
        last: Instant::now(),
    }));
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let bucket = Arc::clone(&bucket);
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                    let bucket = Arc::clone(&bucket);
                    async move {
                        let path = req.uri().path().to_owned();
                        let attempt = req
                            .headers()
                            .get(ATTEMPT)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("1")
                            .to_owned();
                        let at = started.elapsed().as_secs_f64();
                        if path == "/slow" {
                            println!("  server {at:>5.2} s  {path:<9} attempt {attempt}  (answers in 3 s)");
                            tokio::time::sleep(Duration::from_secs(3)).await;
                            return Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(
                                b"finally",
                            ))));
                        }
                        let allowed = bucket.lock().map(|mut b| b.take()).unwrap_or(false);
                        let response = if allowed {
                            println!("  server {at:>5.2} s  {path:<9} attempt {attempt}  → 200");
                            Response::new(Full::new(Bytes::from_static(b"ok")))
                        } else {
                            println!(
                                "  server {at:>5.2} s  {path:<9} attempt {attempt}  → 429, Retry-After: 1"
                            );
                            let mut r = Response::new(Full::new(Bytes::new()));
                            *r.status_mut() = StatusCode::TOO_MANY_REQUESTS;
                            r.headers_mut()
                                .insert("retry-after", HeaderValue::from_static("1"));
                            r
                        };
                        Ok(response)
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
    let args = parse_args().unwrap_or_else(|e| {
        eprintln!("service_builder: {e}");
        std::process::exit(2)
    });
    let started = Instant::now();
    let addr = start_server(args.rate, started).await?;
    println!(
        "server on http://{addr}/: {} requests a second, then 429 with Retry-After: 1; /slow takes 3 s",
        args.rate
    );
    println!(
        "stack: Retry (429, up to {} retries) → SnapshotLayer → Timeout ({} ms per attempt) → hyper-util client\n",
        args.max_retries,
        args.timeout.as_millis()
    );

    let snapshotter = Snapshotter::new(Config::default());
    let layer = SnapshotLayer::builder(snapshotter.clone())
        .policy(GatePolicy::Wait)
        .start_snapshotter(true)
        .build()?;
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();

    // The order, outermost first:
    //
    // * `Retry` on the outside, so that every attempt, the first and each
    //   retry, goes down through `SnapshotLayer`. The layer then sees every
    //   429 with its `Retry-After` and pauses the host, and it holds the next
    //   attempt until the pause is over, so the policy needs no back-off of
    //   its own. With `Retry` below the layer, the layer would see only the
    //   final answer of each request, and the retries would hammer the
    //   server with no pause at all.
    // * `Timeout` on the inside, so that it bounds each network attempt and
    //   not the time the layer deliberately holds a request for a paused
    //   host: a one-second timeout above the layer would expire during a
    //   one-second `Retry-After` pause. A timed-out attempt is an error, not
    //   a 429, so this policy does not retry it.
    let service = ServiceBuilder::new()
        .retry(RetryOn429 {
            max_retries: args.max_retries,
            retries: 0,
        })
        .layer(layer.clone())
        .timeout(args.timeout)
        .service(client);

    let mut tasks = Vec::new();
    let paths = (1..=args.requests)
        .map(|i| format!("/item/{i}"))
        .chain(std::iter::once("/slow".to_owned()));
    for path in paths {
        let mut service = service.clone();
        let request = Request::get(format!("http://{addr}{path}")).body(Empty::<Bytes>::new())?;
        tasks.push(tokio::spawn(async move {
            let sent = Instant::now();
            let result = match service.ready().await {
                Ok(s) => s.call(request).await,
                Err(e) => Err(e),
            };
            let outcome = match result {
                Ok(response) => {
                    let attempts = response.extensions().get::<Attempts>().map_or(1, |a| a.0);
                    let status = response.status();
                    // Read the body so the connection goes back to the pool.
                    let body = response.into_body().collect().await;
                    let note = if body.is_err() { " (body failed)" } else { "" };
                    format!("{status}{note} after {attempts} attempt(s)")
                }
                Err(e) => format!("error: {e}"),
            };
            (path, outcome, sent.elapsed())
        }));
    }
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await?);
    }

    println!("\nrequest     took    outcome");
    for (path, outcome, took) in &results {
        println!("{path:<10} {:>5.2} s  {outcome}", took.as_secs_f64());
    }
    let stats = layer.stats();
    println!(
        "\nall done in {:.2} s; attempts held by the layer for a paused host: {}",
        started.elapsed().as_secs_f64(),
        stats.host_waits
    );
    snapshotter.stop()?;
    Ok(())
}
