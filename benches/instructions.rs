//! One variant of the overhead bench, driven a given number of times, for
//! `benches/instructions.sh` to count its instructions under valgrind's
//! callgrind: a figure that this shared, noisy machine does not move.
//!
//! ```text
//! bash benches/instructions.sh            # every variant
//! cargo bench --bench instructions -- adaptive_headers 40000
//! ```
//!
//! The variants are those of `benches/overhead.rs` on one thread (the
//! inner service answers 200 at once, the gate is open, the host is never
//! paced), plus the bare service and the default layer on an answer with
//! eight ordinary headers. Run without a variant, it lists them.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderMap, Request, Response};
use tower::limit::ConcurrencyLimit;
use tower::load_shed::LoadShed;
use tower::{Layer, Service, ServiceExt};
use tower_snapshotter::GatePolicy;

#[path = "common/open_gate.rs"]
mod open_gate;
use open_gate::{bench_layer, open_gate_snapshotter, ordinary_headers, request};

const VARIANTS: &[&str] = &[
    "bare",
    "load_shed",
    "concurrency_limit",
    "snapshot_wait",
    "snapshot_reject",
    "snapshot_autoscale",
    "snapshot_adaptive",
    "bare_headers",
    "snapshot_adaptive_headers",
];

/// The inner service: 200 at once, with `headers`.
fn answer(
    headers: Arc<HeaderMap>,
) -> impl Service<Request<()>, Response = Response<()>, Error = Infallible> + Clone {
    tower::service_fn(move |_req: Request<()>| {
        let headers = Arc::clone(&headers);
        async move {
            let mut r = Response::new(());
            if !headers.is_empty() {
                *r.headers_mut() = (*headers).clone();
            }
            Ok::<_, Infallible>(r)
        }
    })
}

#[inline(never)]
async fn drive<S>(svc: &mut S, iters: u64)
where
    S: Service<Request<()>, Response = Response<()>>,
    S::Error: std::fmt::Debug,
{
    for _ in 0..iters {
        let s = svc.ready().await.expect("ready");
        let r = s.call(request()).await.expect("answer");
        std::hint::black_box(r);
    }
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let Some(variant) = args.first().filter(|v| VARIANTS.contains(&v.as_str())) else {
        println!(
            "usage: instructions VARIANT [ITERATIONS]; variants: {}",
            VARIANTS.join(" ")
        );
        return;
    };
    let iters: u64 = args.get(1).and_then(|n| n.parse().ok()).unwrap_or(10_000);

    // The snapshotter samples on a runtime of its own; no verdict may close
    // the gate (as in the overhead bench).
    let (_background, snapshotter) = open_gate_snapshotter();
    // Its sampling task starts ticking the coarse clock that the layer
    // reads: let it, so every run measures the same path.
    std::thread::sleep(Duration::from_millis(300));
    let layer = |policy| bench_layer(&snapshotter, policy, true);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let plain = answer(Arc::new(HeaderMap::new()));
    let with_headers = answer(ordinary_headers());
    macro_rules! run {
        ($svc:expr) => {{
            let mut svc = $svc;
            rt.block_on(drive(&mut svc, iters))
        }};
    }
    match variant.as_str() {
        "bare" => run!(plain),
        "load_shed" => run!(LoadShed::new(plain)),
        "concurrency_limit" => run!(ConcurrencyLimit::new(plain, 64)),
        "snapshot_wait" => run!(layer(GatePolicy::Wait).layer(plain)),
        "snapshot_reject" => run!(layer(GatePolicy::Reject).layer(plain)),
        "snapshot_autoscale" => run!(layer(GatePolicy::Autoscale).layer(plain)),
        "snapshot_adaptive" => run!(layer(GatePolicy::Adaptive).layer(plain)),
        "bare_headers" => run!(with_headers),
        "snapshot_adaptive_headers" => run!(layer(GatePolicy::Adaptive).layer(with_headers)),
        _ => unreachable!("checked against VARIANTS"),
    }
}
