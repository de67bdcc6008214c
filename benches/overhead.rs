//! Per-request cost of `SnapshotService` against tower's own middleware.
//!
//! ```text
//! cargo bench --bench overhead
//! cargo bench --bench overhead --features metrics
//! ```
//!
//! Every variant wraps the same trivial inner service (`service_fn`
//! answering at once) and is driven by `ready().await` + `call().await` in a
//! loop on a current-thread runtime, timed with `iter_custom`, so the
//! figures are nanoseconds per request including the inner service. The
//! layer's overhead is its figure minus `bare`'s, from the same run.
//!
//! With the `metrics` feature every `snapshot_*` variant carries the metric
//! calls, on no-op handles (no recorder is installed), so comparing
//! `snapshot_adaptive − bare` with and without the feature gives their
//! cost; two more variants build the default layer under a real recorder
//! (`metrics-exporter-prometheus`'s, not installed globally): without and
//! with per-host labels.
//!
//! With the `redis` feature (`cargo bench --bench overhead --features
//! redis`, which starts a `redis-server` of its own on 127.0.0.1) one more
//! variant runs the default layer sharing its hosts through a
//! `fleet::Fleet`: the hot path then reads the fleet's local cache for a
//! pause another process recorded and for the host's share and learned
//! rate (the host is never paced, so no slot is leased); and `fleet/try_send`
//! measures the fleet's check a paced host's request adds: spending a
//! leased slot, or learning when the next falls due.

use std::convert::Infallible;
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, BenchmarkGroup, BenchmarkId, Criterion, Throughput};
use http::{Request, Response, StatusCode};
use tower::limit::ConcurrencyLimit;
use tower::load_shed::LoadShed;
use tower::{Layer, Service, ServiceExt};
use tower_snapshotter::{GatePolicy, SnapshotLayer, Snapshotter};

/// The inner service: `tower::service_fn` answering `status` at once.
/// Its future is an `async` block, which builds the response when polled,
/// as a real client's future does.
#[allow(non_snake_case)]
fn Answer(
    status: StatusCode,
) -> impl Service<Request<()>, Response = Response<()>, Error = Infallible, Future: Send> + Copy + Send {
    tower::service_fn(move |_req: Request<()>| async move {
        let mut r = Response::new(());
        *r.status_mut() = status;
        Ok::<_, Infallible>(r)
    })
}

/// The inner service answering 200 with the headers a real server sends
/// (none of them a quota), cloned per answer.
fn answer_with_headers(
) -> impl Service<Request<()>, Response = Response<()>, Error = Infallible, Future: Send> + Clone + Send {
    let headers = ordinary_headers();
    tower::service_fn(move |_req: Request<()>| {
        let headers = std::sync::Arc::clone(&headers);
        async move {
            let mut r = Response::new(());
            *r.headers_mut() = (*headers).clone();
            Ok::<_, Infallible>(r)
        }
    })
}

fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

#[cfg(feature = "redis")]
#[path = "../tests/common/redis.rs"]
mod redis_server;

#[path = "common/open_gate.rs"]
mod open_gate;
use open_gate::{bench_layer, open_gate_snapshotter, ordinary_headers, request};

/// The snapshotter samples on a runtime of its own, so its tasks run
/// between measurements and the verdict stays "idle".
struct Background {
    _rt: tokio::runtime::Runtime,
    snapshotter: Snapshotter,
    /// What `layer_recorded` registers its handles with.
    #[cfg(feature = "metrics")]
    recorder: metrics_exporter_prometheus::PrometheusRecorder,
    /// The fleet's Redis, started for the bench.
    #[cfg(feature = "redis")]
    redis: redis_server::RedisServer,
}

impl Background {
    fn new() -> Self {
        let (rt, snapshotter) = open_gate_snapshotter();
        Self {
            _rt: rt,
            snapshotter,
            #[cfg(feature = "metrics")]
            recorder: metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder(),
            #[cfg(feature = "redis")]
            redis: redis_server::RedisServer::start()
                .expect("redis-server is not installed: apt-get install -y redis-server"),
        }
    }

    /// A fleet of `namespace` on the bench's Redis (its task on the
    /// snapshotter's runtime), connected: the path measured is the
    /// connected one.
    #[cfg(feature = "redis")]
    fn fleet(&self, namespace: &str) -> tower_snapshotter::fleet::Fleet {
        use tower_snapshotter::fleet::{Fleet, FleetConfig};
        let config = FleetConfig::builder(self.redis.url(), namespace)
            .build()
            .expect("fleet config");
        let fleet = {
            let _entered = self._rt.enter();
            Fleet::start(config).expect("fleet")
        };
        let deadline = Instant::now() + Duration::from_secs(5);
        while !fleet.is_connected() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(
            fleet.is_connected(),
            "the fleet did not connect to the bench's Redis"
        );
        fleet
    }

    /// The default layer sharing its hosts through a fleet on the bench's
    /// Redis.
    #[cfg(feature = "redis")]
    fn layer_fleet(&self) -> SnapshotLayer {
        SnapshotLayer::builder(self.snapshotter.clone())
            .host_backoff(Duration::ZERO)
            .fleet(self.fleet("overhead"))
            .build()
            .expect("valid settings")
    }

    /// A layer with `policy` whose metric handles are registered with a
    /// real recorder (per-host labels when `per_host`).
    #[cfg(feature = "metrics")]
    fn layer_recorded(&self, policy: GatePolicy, per_host: bool) -> SnapshotLayer {
        metrics::with_local_recorder(&self.recorder, || {
            SnapshotLayer::builder(self.snapshotter.clone())
                .policy(policy)
                .host_backoff(Duration::ZERO)
                .metrics_per_host(per_host)
                .build()
                .expect("valid settings")
        })
    }

    fn layer(&self, policy: GatePolicy) -> SnapshotLayer {
        self.layer_with(policy, true)
    }

    fn layer_with(&self, policy: GatePolicy, per_host: bool) -> SnapshotLayer {
        let layer = bench_layer(&self.snapshotter, policy, per_host);
        assert!(
            layer.stats().gate.is_empty(),
            "the bench must run without overload: {:?}",
            layer.stats().status
        );
        layer
    }
}

async fn drive<S>(svc: &mut S, iters: u64) -> Duration
where
    S: Service<Request<()>, Response = Response<()>>,
    S::Error: std::fmt::Debug,
{
    let start = Instant::now();
    for _ in 0..iters {
        let s = svc.ready().await.expect("ready");
        let r = s.call(request()).await.expect("answer");
        std::hint::black_box(r);
    }
    start.elapsed()
}

fn single<S>(g: &mut BenchmarkGroup<'_, WallTime>, id: BenchmarkId, rt: &tokio::runtime::Runtime, svc: S)
where
    S: Service<Request<()>, Response = Response<()>> + Clone,
    S::Error: std::fmt::Debug,
{
    g.bench_function(id, |b| {
        b.iter_custom(|iters| {
            let mut svc = svc.clone();
            rt.block_on(drive(&mut svc, iters))
        })
    });
}

/// Two OS threads, each on its own runtime with its own clone of one
/// service, share the iterations: the time per iteration halves when the
/// hot path scales.
fn dual<S>(g: &mut BenchmarkGroup<'_, WallTime>, id: BenchmarkId, svc: S)
where
    S: Service<Request<()>, Response = Response<()>> + Clone + Send,
    S::Error: std::fmt::Debug,
{
    g.bench_function(id, |b| {
        b.iter_custom(|iters| {
            let half = iters / 2;
            let start = Instant::now();
            std::thread::scope(|scope| {
                for n in [half, iters - half] {
                    let mut svc = svc.clone();
                    scope.spawn(move || current_thread().block_on(drive(&mut svc, n)));
                }
            });
            start.elapsed()
        })
    });
}

macro_rules! each_variant {
    ($bg:expr, $status:expr, |$name:ident, $svc:ident| $body:expr) => {{
        let inner = Answer($status);
        {
            let $name = "bare";
            let $svc = inner;
            $body
        }
        {
            let $name = "load_shed";
            let $svc = LoadShed::new(inner);
            $body
        }
        {
            let $name = "concurrency_limit";
            let $svc = ConcurrencyLimit::new(inner, 64);
            $body
        }
        {
            let $name = "snapshot_wait";
            let $svc = $bg.layer(GatePolicy::Wait).layer(inner);
            $body
        }
        {
            let $name = "snapshot_wait_global";
            let $svc = $bg.layer_with(GatePolicy::Wait, false).layer(inner);
            $body
        }
        {
            let $name = "snapshot_reject";
            let $svc = $bg.layer(GatePolicy::Reject).layer(inner);
            $body
        }
        {
            let $name = "snapshot_autoscale";
            let $svc = $bg.layer(GatePolicy::Autoscale).layer(inner);
            $body
        }
        {
            // Every answer is a 200, so the host is never paced: this is the
            // cost of the per-host controller's lock (admit, then the
            // answer and the permit's return).
            let $name = "snapshot_adaptive";
            let $svc = $bg.layer(GatePolicy::Adaptive).layer(inner);
            $body
        }
        // The default layer again, its metrics recorded: the counters are
        // atomics the exporter reads.
        #[cfg(feature = "metrics")]
        {
            let $name = "snapshot_adaptive_recorded";
            let $svc = $bg.layer_recorded(GatePolicy::Adaptive, false).layer(inner);
            $body
        }
        // With per-host labels: a lock and a lookup per answer.
        #[cfg(feature = "metrics")]
        {
            let $name = "snapshot_adaptive_recorded_per_host";
            let $svc = $bg.layer_recorded(GatePolicy::Adaptive, true).layer(inner);
            $body
        }
        // The default layer in a fleet (Redis connected, host not paced).
        #[cfg(feature = "redis")]
        {
            let $name = "snapshot_adaptive_fleet";
            let $svc = $bg.layer_fleet().layer(inner);
            $body
        }
    }};
}

fn one_thread(c: &mut Criterion) {
    let bg = Background::new();
    let rt = current_thread();
    let mut g = c.benchmark_group("one_thread");
    g.throughput(Throughput::Elements(1));
    each_variant!(bg, StatusCode::OK, |name, svc| single(
        &mut g,
        BenchmarkId::from_parameter(name),
        &rt,
        svc
    ));
    g.finish();
}

fn two_threads(c: &mut Criterion) {
    let bg = Background::new();
    let mut g = c.benchmark_group("two_threads");
    g.throughput(Throughput::Elements(1));
    each_variant!(bg, StatusCode::OK, |name, svc| dual(
        &mut g,
        BenchmarkId::from_parameter(name),
        svc
    ));
    g.finish();
}

/// The answer path for a 429 (counted, host looked up) against a 200, and
/// the default layer on an answer with ordinary headers.
fn answer_429(c: &mut Criterion) {
    let bg = Background::new();
    let rt = current_thread();
    let mut g = c.benchmark_group("answer");
    g.throughput(Throughput::Elements(1));
    for status in [StatusCode::OK, StatusCode::TOO_MANY_REQUESTS] {
        let code = status.as_u16();
        single(&mut g, BenchmarkId::new("bare", code), &rt, Answer(status));
        let svc = bg.layer(GatePolicy::Wait).layer(Answer(status));
        single(&mut g, BenchmarkId::new("snapshot_wait", code), &rt, svc);
    }
    // A 200 with eight ordinary headers: what the default layer reads of
    // a real answer (it looks for quota headers in every one).
    single(
        &mut g,
        BenchmarkId::new("bare", "200_headers"),
        &rt,
        answer_with_headers(),
    );
    let svc = bg.layer(GatePolicy::Adaptive).layer(answer_with_headers());
    single(
        &mut g,
        BenchmarkId::new("snapshot_adaptive", "200_headers"),
        &rt,
        svc,
    );
    g.finish();
}

/// The fleet's check on a paced request's path, alone: one
/// `Fleet::try_send` for a host paced at 50 000/s, whose slots the
/// background task leases from Redis and this call spends locally. Called
/// faster than slots fall due, most calls answer at once with when to ask
/// again; both answers are what the layer pays on top of its own path for a
/// paced host in a fleet (`snapshot_adaptive_fleet` above never paces).
#[cfg(feature = "redis")]
fn fleet_try_send(c: &mut Criterion) {
    use tower_snapshotter::fleet::Slot;
    let bg = Background::new();
    let fleet = bg.fleet("overhead-lease");
    // The first lease arrived: a slot was granted once.
    let deadline = Instant::now() + Duration::from_secs(5);
    let host = "lease.example";
    while fleet.try_send(host, 50_000.0, tokio::time::Instant::now()) != Slot::Granted {
        assert!(
            Instant::now() < deadline,
            "no slot was leased from the bench's Redis"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    let mut g = c.benchmark_group("fleet");
    g.throughput(Throughput::Elements(1));
    g.bench_function("try_send", |b| {
        b.iter(|| std::hint::black_box(fleet.try_send(host, 50_000.0, tokio::time::Instant::now())))
    });
    g.finish();
}

/// Without the `redis` feature there is no fleet to measure.
#[cfg(not(feature = "redis"))]
fn fleet_try_send(_: &mut Criterion) {}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30);
    targets = one_thread, two_threads, answer_429, fleet_try_send
}
criterion_main!(benches);
