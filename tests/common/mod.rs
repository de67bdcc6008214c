//! Helpers shared by the layer's integration tests: a hyper 1 server on
//! loopback that records every request it receives, a hyper-util client,
//! fake probes and a test configuration.

#![allow(dead_code)] // each test binary uses a different part of this module

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{Empty, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tower_snapshotter::config::MIN_SYSTEM_INFO_INTERVAL;
use tower_snapshotter::probe::{CpuProbe, MemoryProbe, MemoryReading, ProbeError};
use tower_snapshotter::{Config, ConfigBuilder, Snapshotter};

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Hit {
    /// The `Host` header (`127.0.0.1:port` from hyper-util's client).
    pub host: String,
    /// The request path.
    pub path: String,
    /// When it arrived, on tokio's (possibly paused) clock.
    pub at: Instant,
    /// How many requests to this path arrived before this one.
    pub nth: usize,
}

/// What the server answers.
pub type Reply = Response<Full<Bytes>>;
type BoxReply = Pin<Box<dyn Future<Output = Reply> + Send>>;
type Handler = Arc<dyn Fn(Hit) -> BoxReply + Send + Sync>;

/// A hyper 1 HTTP/1.1 server on `127.0.0.1:0`, answering through a handler
/// and recording every request it receives. Stops accepting when dropped.
pub struct TestServer {
    addr: SocketAddr,
    hits: Arc<Mutex<Vec<Hit>>>,
    accept: JoinHandle<()>,
}

impl TestServer {
    /// A server answering each request with `handler(&hit)`.
    pub async fn start(handler: impl Fn(&Hit) -> Reply + Send + Sync + 'static) -> Self {
        Self::start_async(move |hit| std::future::ready(handler(&hit))).await
    }

    /// A server whose handler may take its time (or never answer).
    pub async fn start_async<F, Fut>(handler: F) -> Self
    where
        F: Fn(Hit) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Reply> + Send + 'static,
    {
        let handler: Handler = Arc::new(move |hit| Box::pin(handler(hit)));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local address");
        let hits: Arc<Mutex<Vec<Hit>>> = Arc::default();
        let log = Arc::clone(&hits);
        let accept = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let handler = Arc::clone(&handler);
                let log = Arc::clone(&log);
                let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                    let hit = record(&log, &req);
                    let reply = handler(hit);
                    async move { Ok::<_, Infallible>(reply.await) }
                });
                tokio::spawn(async move {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self { addr, hits, accept }
    }

    /// `127.0.0.1:port`, the authority the layer keys this host by.
    pub fn authority(&self) -> String {
        self.addr.to_string()
    }

    /// `http://127.0.0.1:port{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Every request received so far, in arrival order.
    pub fn hits(&self) -> Vec<Hit> {
        lock(&self.hits).clone()
    }

    /// Requests received so far for `path`.
    pub fn count(&self, path: &str) -> usize {
        lock(&self.hits).iter().filter(|h| h.path == path).count()
    }

    /// Requests received so far.
    pub fn total(&self) -> usize {
        lock(&self.hits).len()
    }

    /// Arrival times of the requests for `path`.
    pub fn times(&self, path: &str) -> Vec<Instant> {
        lock(&self.hits)
            .iter()
            .filter(|h| h.path == path)
            .map(|h| h.at)
            .collect()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn record(log: &Mutex<Vec<Hit>>, req: &Request<Incoming>) -> Hit {
    let mut log = lock(log);
    let path = req.uri().path().to_owned();
    let host = req
        .headers()
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let nth = log.iter().filter(|h| h.path == path).count();
    let hit = Hit {
        host,
        path,
        at: Instant::now(),
        nth,
    };
    log.push(hit.clone());
    hit
}

/// An answer with `status` and no header.
pub fn reply(status: u16) -> Reply {
    reply_with(status, &[])
}

/// An answer with `status` and `headers`.
pub fn reply_with(status: u16, headers: &[(&str, &str)]) -> Reply {
    let mut r = Response::builder().status(status);
    for (name, value) in headers {
        r = r.header(*name, *value);
    }
    r.body(Full::new(Bytes::from_static(b"ok"))).expect("valid reply")
}

/// The client under test: hyper-util's legacy client over plain HTTP/1.
pub type HttpClient = Client<HttpConnector, Empty<Bytes>>;

/// A fresh hyper-util client.
pub fn client() -> HttpClient {
    Client::builder(TokioExecutor::new()).build_http()
}

/// A `GET` of `url` with an empty body.
pub fn get(url: &str) -> Request<Empty<Bytes>> {
    Request::get(url).body(Empty::new()).expect("valid request")
}

/// A loopback address nothing listens on (bound, then released).
pub fn closed_addr() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("local address")
}

/// A CPU probe reporting whatever the test sets, shared with the test.
#[derive(Debug, Clone)]
pub struct FakeCpu(Arc<AtomicU64>);

impl FakeCpu {
    /// A probe reporting `ratio`.
    pub fn new(ratio: f64) -> Self {
        Self(Arc::new(AtomicU64::new(ratio.to_bits())))
    }

    /// Reports `ratio` from the next sample on.
    pub fn set(&self, ratio: f64) {
        self.0.store(ratio.to_bits(), Ordering::SeqCst);
    }
}

impl CpuProbe for FakeCpu {
    fn used_ratio(&mut self) -> Result<f64, ProbeError> {
        Ok(f64::from_bits(self.0.load(Ordering::SeqCst)))
    }
}

/// A memory probe that always reports 1 MiB used of 16 GiB.
#[derive(Debug, Clone, Copy)]
pub struct LowMemory;

impl MemoryProbe for LowMemory {
    fn read(&mut self) -> Result<MemoryReading, ProbeError> {
        Ok(MemoryReading {
            current_size: 1 << 20,
            limit: 16 << 30,
            system_wide_used_size: None,
            system_wide_memory_size: None,
        })
    }
}

/// CPU ratios the fake probe reports: above and below `max_used_cpu_ratio`.
pub const BUSY: f64 = 0.9;
/// See [`BUSY`].
pub const IDLE: f64 = 0.1;

/// The tests' configuration: CPU sampled every 200 ms and overloaded above
/// 0.5, windows of 1 s, client snapshots every 100 ms. The event loop never
/// counts as overloaded (threshold 1.0: the ratio must be strictly above
/// it), because `tokio::time::advance` jumps look like stalls to it.
pub fn config() -> ConfigBuilder {
    Config::builder()
        .system_info_interval(MIN_SYSTEM_INFO_INTERVAL)
        .max_used_cpu_ratio(0.5)
        .max_snapshot_age(Duration::from_secs(1))
        .snapshot_history(Duration::from_secs(1))
        .client_snapshot_interval(Duration::from_millis(100))
        .event_loop_overload_threshold(1.0)
}

/// A started snapshotter over `config` with a fake CPU at `cpu` and low
/// memory; returns the probe's handle too.
pub fn started(config: Config, cpu: f64) -> (Snapshotter, FakeCpu) {
    let probe = FakeCpu::new(cpu);
    let snapshotter = Snapshotter::with_probes(config, probe.clone(), LowMemory);
    snapshotter.start().expect("start the snapshotter");
    (snapshotter, probe)
}

/// Lets tokio's (paused) clock run in 10 ms steps until `cond` holds; panics
/// after 100 s of tokio time.
pub async fn until(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..10_000 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("never happened: {what}");
}

/// Runs a test body, failing it (instead of spinning tokio's paused clock
/// forever) when it is stuck for 600 s of tokio time.
pub async fn bounded<F: Future>(body: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(600), body)
        .await
        .expect("the test was stuck for 600 s of tokio time")
}

/// A closed loop: `workers` tasks, each sending a GET of `url` through a
/// clone of `svc` as soon as its last request is answered, until `end`.
pub fn closed_loop<S>(svc: S, workers: usize, url: &'static str, end: Instant) -> Vec<JoinHandle<()>>
where
    S: tower::Service<http::Request<()>> + Clone + Send + 'static,
    S::Future: Send,
    S::Response: Send,
    S::Error: Send,
{
    use tower::ServiceExt;
    (0..workers)
        .map(|_| {
            let svc = svc.clone();
            tokio::spawn(async move {
                while Instant::now() < end {
                    let req = http::Request::get(url).body(()).unwrap();
                    let _ = svc.clone().oneshot(req).await;
                }
            })
        })
        .collect()
}

/// Workers of [`adaptive_second_half`]'s closed loop.
pub const LOOP_WORKERS: usize = 32;
/// The round trip of [`adaptive_second_half`]'s server.
pub const LOOP_LATENCY: Duration = Duration::from_millis(10);

/// What the second half of a closed-loop run saw.
pub struct Half {
    /// Requests accepted a second.
    pub rate: f64,
    /// The share of its requests refused.
    pub refused: f64,
}

impl Half {
    /// Prints what the second half saw under `what` (against `rate`, the
    /// limiter's), then checks that it accepted `least` of that rate or
    /// more and had at most `most_refused` of its requests refused.
    pub fn assert_held(&self, what: &str, rate: f64, least: f64, most_refused: f64) {
        eprintln!(
            "{what}: {:.1}/s of {rate}/s, {:.2} % refused",
            self.rate,
            100.0 * self.refused
        );
        assert!(self.rate >= least * rate, "{what}: {:.1}/s", self.rate);
        assert!(
            self.refused <= most_refused,
            "{what}: {:.2} % refused",
            100.0 * self.refused
        );
    }
}

/// Runs [`LOOP_WORKERS`] workers in a closed loop for `secs` through an
/// adaptive layer (idle fake probes) into a `service_fn` [`LOOP_LATENCY`]
/// away, each request answered with the status `decide` gives at its
/// arrival; what the second half saw. With `trace`, prints what each
/// 30 s took and refused, and the host's pace and estimate.
pub async fn adaptive_second_half<D>(decide: D, secs: u64, url: &'static str, trace: bool) -> Half
where
    D: FnMut(Instant) -> http::StatusCode + Send + 'static,
{
    use tower::Layer;
    use tower_snapshotter::{GatePolicy, SnapshotLayer};

    let (sent, accepted) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let decide = Arc::new(Mutex::new(decide));
    let inner = {
        let (sent, accepted) = (Arc::clone(&sent), Arc::clone(&accepted));
        tower::service_fn(move |_req: http::Request<()>| {
            let (sent, accepted, decide) = (Arc::clone(&sent), Arc::clone(&accepted), Arc::clone(&decide));
            async move {
                tokio::time::sleep(LOOP_LATENCY / 2).await;
                sent.fetch_add(1, Ordering::Relaxed);
                let status = (decide.lock().unwrap())(Instant::now());
                if status.is_success() {
                    accepted.fetch_add(1, Ordering::Relaxed);
                }
                tokio::time::sleep(LOOP_LATENCY / 2).await;
                Ok::<_, Infallible>(http::Response::builder().status(status).body(()).unwrap())
            }
        })
    };
    let snapshotter = Snapshotter::with_probes(config().build().unwrap(), FakeCpu::new(IDLE), LowMemory);
    let layer = SnapshotLayer::builder(snapshotter)
        .policy(GatePolicy::Adaptive)
        .build()
        .unwrap();
    let end = Instant::now() + Duration::from_secs(secs);
    let workers = closed_loop(layer.clone().layer(inner), LOOP_WORKERS, url, end);
    if trace {
        let (sent, accepted) = (Arc::clone(&sent), Arc::clone(&accepted));
        tokio::spawn(async move {
            let (mut s0, mut a0) = (0, 0);
            for t in (30..=secs).step_by(30) {
                tokio::time::sleep(Duration::from_secs(30)).await;
                let (s1, a1) = (sent.load(Ordering::Relaxed), accepted.load(Ordering::Relaxed));
                let host = layer.stats().adaptive_hosts.first().map(|h| (h.rate, h.estimate));
                eprintln!(
                    "{t:4} s: {} taken, {} refused, pace and estimate {host:?}",
                    a1 - a0,
                    (s1 - s0) - (a1 - a0)
                );
                (s0, a0) = (s1, a1);
            }
        });
    }
    tokio::time::sleep(Duration::from_secs(secs / 2)).await;
    let (sent_before, before) = (sent.load(Ordering::Relaxed), accepted.load(Ordering::Relaxed));
    bounded(async {
        for w in workers {
            w.await.unwrap();
        }
    })
    .await;
    let ok = accepted.load(Ordering::Relaxed) - before;
    let all = sent.load(Ordering::Relaxed) - sent_before;
    Half {
        rate: ok as f64 / (secs - secs / 2) as f64,
        refused: (all - ok) as f64 / all.max(1) as f64,
    }
}
