//! The client variants compared in every scenario (none, fixed-N, wait,
//! autoscale, adaptive, default), the snapshotters behind them, and their tracing.

use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Empty;
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::time::Instant;
use tower::util::BoxCloneService;
use tower::{BoxError, ServiceBuilder, ServiceExt};
use tower_snapshotter::{Config, GatePolicy, SnapshotLayer, Snapshotter};

use crate::load::MAX_OUTSTANDING;

// ---------------------------------------------------------------- clients

pub(crate) type Svc = BoxCloneService<Request<Empty<Bytes>>, Response<Incoming>, BoxError>;

/// The client variants compared in every scenario.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Variant {
    None,
    Fixed(usize),
    Policy(GatePolicy),
    /// The layer as `SnapshotLayer::builder(snapshotter).build()` makes it,
    /// without `.policy(..)`.
    Default,
}

impl Variant {
    pub(crate) fn name(&self) -> String {
        match self {
            Variant::None => "none".into(),
            Variant::Fixed(n) => format!("fixed-{n}"),
            Variant::Policy(p) => format!("{p:?}").to_lowercase(),
            Variant::Default => "default".into(),
        }
    }
}

pub(crate) fn variants(fixed: usize) -> Vec<Variant> {
    chosen(vec![
        Variant::None,
        Variant::Fixed(fixed),
        Variant::Policy(GatePolicy::Wait),
        Variant::Policy(GatePolicy::Autoscale),
        Variant::Policy(GatePolicy::Adaptive),
    ])
}

/// Keeps the variants named in `SCENARIO_VARIANTS` (comma-separated, e.g.
/// `fixed,adaptive`), or all of them.
pub(crate) fn chosen(all: Vec<Variant>) -> Vec<Variant> {
    match std::env::var("SCENARIO_VARIANTS") {
        Ok(list) if !list.is_empty() => all
            .into_iter()
            .filter(|v| list.split(',').any(|w| v.name().starts_with(w.trim())))
            .collect(),
        _ => all,
    }
}

/// With `SCENARIO_TRACE` set, prints the adaptive host's limits and the
/// goodput every 250 ms of a run to stderr: for tuning, not for the table.
pub(crate) fn trace(layer: Option<&SnapshotLayer>) -> Option<tokio::task::JoinHandle<()>> {
    let layer = layer?.clone();
    std::env::var_os("SCENARIO_TRACE")?;
    let start = Instant::now();
    Some(tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(250)).await;
            let stats = layer.stats();
            let hosts: Vec<String> = stats
                .adaptive_hosts
                .iter()
                .map(|h| {
                    format!(
                        "c={} f={} r={:?}",
                        h.concurrency,
                        h.in_flight,
                        h.rate.map(|r| (r * 10.0).round() / 10.0)
                    )
                })
                .collect();
            let paused: Vec<String> = stats
                .paused_hosts
                .iter()
                .map(|p| format!("{}ms", p.remaining.as_millis()))
                .collect();
            eprintln!(
                "{:6.2}s {} paused {}",
                start.elapsed().as_secs_f64(),
                hosts.join(" | "),
                paused.join(",")
            );
        }
    }))
}

/// A snapshotter whose machine verdicts never gate: for the scenarios about
/// the remote side. The server and the load generator run in this process
/// and by themselves saturate both cores, so the CPU and event-loop gates
/// would close in every row and measure the harness instead of the
/// controllers (scenarios 5 and 6 measure those gates).
pub(crate) fn remote_only() -> Snapshotter {
    snapshotter(
        Config::builder()
            .cpu_overload_threshold(1.0)
            .event_loop_overload_threshold(1.0)
            .memory_overload_threshold(1.0)
            .build()
            .expect("config"),
    )
}

pub(crate) fn snapshotter(config: Config) -> Snapshotter {
    let s = Snapshotter::new(config);
    s.start().expect("start the snapshotter");
    s
}

pub(crate) fn client(variant: Variant, snapshotter: &Snapshotter) -> (Svc, Option<SnapshotLayer>) {
    let mut connector = hyper_util::client::legacy::connect::HttpConnector::new();
    connector.set_nodelay(true);
    let http = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(MAX_OUTSTANDING)
        .build::<_, Empty<Bytes>>(connector);
    match variant {
        Variant::None => (
            ServiceBuilder::new()
                .map_err(BoxError::from)
                .service(http)
                .boxed_clone(),
            None,
        ),
        Variant::Fixed(n) => (
            ServiceBuilder::new()
                .map_err(BoxError::from)
                .concurrency_limit(n)
                .service(http)
                .boxed_clone(),
            None,
        ),
        Variant::Policy(_) | Variant::Default => {
            let builder = SnapshotLayer::builder(snapshotter.clone());
            let builder = match variant {
                Variant::Policy(policy) => builder.policy(policy),
                _ => builder,
            };
            let layer = builder.build().expect("layer");
            let svc = ServiceBuilder::new()
                .layer(layer.clone())
                .service(http)
                .boxed_clone();
            (svc, Some(layer))
        }
    }
}
