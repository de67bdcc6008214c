//! Gating by the machine's verdict and by paused hosts, through
//! `tower::service_fn` inner services whose calls are counted: `Reject`,
//! `Wait`, the `min_concurrency` floor and `Autoscale`. Overload is forced
//! with a fake CPU probe; time is tokio's paused clock.

#[path = "../common/mod.rs"]
mod common;

mod autoscale;
mod back_off;
mod host_pause;
mod min_concurrency;
mod verdict;

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use common::*;
use tokio::sync::Semaphore;
use tower::Service;
use tower_snapshotter::{Resources, Snapshotter};

type Req = http::Request<()>;
type Resp = http::Response<()>;

/// An inner service that counts its calls and answers 200, or 429 with
/// `Retry-After: 5` for `throttled.example`.
fn counting() -> (
    impl Service<Req, Response = Resp, Error = Infallible, Future = impl Send> + Clone,
    Arc<AtomicUsize>,
) {
    let calls = Arc::new(AtomicUsize::new(0));
    let c = Arc::clone(&calls);
    let svc = tower::service_fn(move |req: Req| {
        c.fetch_add(1, Ordering::SeqCst);
        let throttled = req.uri().host() == Some("throttled.example");
        async move {
            let mut r = http::Response::builder();
            if throttled {
                r = r.status(429).header("retry-after", "5");
            }
            Ok::<_, Infallible>(r.body(()).unwrap())
        }
    });
    (svc, calls)
}

/// An inner service whose answers wait for a permit of `gate` each; counts
/// its calls.
fn held(
    gate: Arc<Semaphore>,
) -> (
    impl Service<Req, Response = Resp, Error = Infallible, Future = impl Send + 'static> + Clone,
    Arc<AtomicUsize>,
) {
    let calls = Arc::new(AtomicUsize::new(0));
    let c = Arc::clone(&calls);
    let svc = tower::service_fn(move |_req: Req| {
        c.fetch_add(1, Ordering::SeqCst);
        let gate = Arc::clone(&gate);
        async move {
            gate.acquire().await.unwrap().forget();
            Ok::<_, Infallible>(http::Response::new(()))
        }
    });
    (svc, calls)
}

fn req(url: &str) -> Req {
    http::Request::get(url).body(()).unwrap()
}

/// A started snapshotter whose CPU is already judged overloaded.
async fn overloaded() -> (Snapshotter, FakeCpu) {
    let (snapshotter, cpu) = started(config().build().unwrap(), BUSY);
    until("the CPU is overloaded", || {
        snapshotter.overloaded().contains(Resources::CPU)
    })
    .await;
    (snapshotter, cpu)
}
