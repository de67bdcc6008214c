//! The test server: a real hyper HTTP/1 server on 127.0.0.1 and how it
//! answers (a token bucket, a latency knee, or at once).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::time::Instant;

// ---------------------------------------------------------------- server

/// How the test server answers.
#[derive(Clone)]
pub(crate) enum Behaviour {
    /// A token bucket of `rate` per second (as many in a burst); 429 above
    /// it, with `Retry-After: 1` when `retry_after`.
    Bucket { rate: Arc<AtomicU64>, retry_after: bool },
    /// Latency `base` up to `knee` requests in flight, plus `step` per
    /// request beyond.
    Knee {
        knee: usize,
        base: Duration,
        step: Duration,
        /// Each request's arrival and time in the server.
        seen: Arc<Mutex<Vec<(Instant, f64)>>>,
    },
    /// Answers at once.
    Fast,
}

pub(crate) struct Server {
    pub(crate) addr: SocketAddr,
}

struct BucketState {
    tokens: f64,
    last: Instant,
}

pub(crate) async fn server(behaviour: Behaviour) -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let bucket = Arc::new(Mutex::new(BucketState {
        tokens: match &behaviour {
            Behaviour::Bucket { rate, .. } => rate.load(Ordering::Relaxed) as f64,
            _ => 0.0,
        },
        last: Instant::now(),
    }));
    let in_flight = Arc::new(AtomicUsize::new(0));
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            let (behaviour, bucket, in_flight) =
                (behaviour.clone(), Arc::clone(&bucket), Arc::clone(&in_flight));
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |_req: Request<Incoming>| {
                    let (behaviour, bucket, in_flight) =
                        (behaviour.clone(), Arc::clone(&bucket), Arc::clone(&in_flight));
                    async move { Ok::<_, Infallible>(answer(&behaviour, &bucket, &in_flight).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    Server { addr }
}

async fn answer(
    b: &Behaviour,
    bucket: &Mutex<BucketState>,
    in_flight: &AtomicUsize,
) -> Response<Full<Bytes>> {
    let ok = || Response::new(Full::new(Bytes::from_static(b"ok")));
    match b {
        Behaviour::Bucket { rate, retry_after } => {
            let rate = rate.load(Ordering::Relaxed) as f64;
            let allowed = {
                let mut s = bucket.lock().unwrap_or_else(|e| e.into_inner());
                let now = Instant::now();
                s.tokens = (s.tokens + now.duration_since(s.last).as_secs_f64() * rate).min(rate);
                s.last = now;
                if s.tokens >= 1.0 {
                    s.tokens -= 1.0;
                    true
                } else {
                    false
                }
            };
            if allowed {
                return ok();
            }
            let mut r = Response::new(Full::new(Bytes::from_static(b"slow down")));
            *r.status_mut() = StatusCode::TOO_MANY_REQUESTS;
            if *retry_after {
                r.headers_mut()
                    .insert("retry-after", http::HeaderValue::from_static("1"));
            }
            r
        }
        Behaviour::Knee {
            knee,
            base,
            step,
            seen,
        } => {
            let t0 = Instant::now();
            let n = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            let extra = n.saturating_sub(*knee) as u32;
            tokio::time::sleep(*base + *step * extra).await;
            in_flight.fetch_sub(1, Ordering::SeqCst);
            seen.lock()
                .unwrap_or_else(|e| e.into_inner())
                .push((t0, t0.elapsed().as_secs_f64()));
            ok()
        }
        Behaviour::Fast => ok(),
    }
}
