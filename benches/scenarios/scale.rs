//! Scenario 8: 20 000 requests in flight, with the admission rate and the
//! memory per request.

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response};
use tokio::time::Instant;
use tower::util::BoxCloneService;
use tower::{BoxError, Service, ServiceBuilder, ServiceExt};
use tower_snapshotter::{Config, SnapshotLayer};

use crate::clients::snapshotter;
use crate::report::{print_row, Row};

/// Resident set size in bytes (Linux).
fn rss() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |p| p * 4096)
}

/// 8. 20 000 requests in flight against a service answering after 1 s.
pub(crate) async fn scale() {
    const IN_FLIGHT: usize = 20_000;
    let inner = tower::service_fn(|_r: Request<()>| async {
        tokio::time::sleep(Duration::from_secs(1)).await;
        Ok::<_, Infallible>(Response::new(()))
    });
    let s = snapshotter(Config::default());
    for with_layer in [false, true] {
        let svc: BoxCloneService<Request<()>, Response<()>, BoxError> = if with_layer {
            let layer = SnapshotLayer::builder(s.clone())
                .min_concurrency(IN_FLIGHT)
                .build()
                .expect("layer");
            ServiceBuilder::new().layer(layer).service(inner).boxed_clone()
        } else {
            ServiceBuilder::new()
                .map_err(BoxError::from)
                .service(inner)
                .boxed_clone()
        };
        let before = rss();
        let t0 = Instant::now();
        let admitted = Arc::new(AtomicUsize::new(0));
        let mut futs = Vec::with_capacity(IN_FLIGHT);
        for i in 0..IN_FLIGHT {
            let mut svc = svc.clone();
            let mut req = Request::new(());
            *req.uri_mut() = format!("http://h{}.example/", i % 100).parse().expect("uri");
            let ready = svc.ready().await.expect("ready");
            futs.push(tokio::spawn(ready.call(req)));
            admitted.fetch_add(1, Ordering::Relaxed);
        }
        let admit_secs = t0.elapsed().as_secs_f64();
        let during = rss();
        for f in futs {
            let _ = f.await;
        }
        print_row(&Row {
            scenario: "8 scale (20 000 in flight, 1 s answers)",
            variant: if with_layer { "wait".into() } else { "none".into() },
            goodput: format!("admitted {:.0}/s", IN_FLIGHT as f64 / admit_secs),
            share_429: "-".into(),
            react: "-".into(),
            recover: "-".into(),
            note: format!(
                "RSS growth with all in flight: {:.0} bytes per request (in-process service_fn: no sockets)",
                during.saturating_sub(before) as f64 / IN_FLIGHT as f64
            ),
        });
    }
}
