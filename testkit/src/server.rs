//! A hyper server on 127.0.0.1 that serves one limiter model and logs
//! every arrival, so figures are counted where the limiter counts them.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::model::Limiter;

/// One request as the server saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arrival {
    /// When it arrived, from the server's start.
    pub at: Duration,
    /// What it was answered.
    pub status: StatusCode,
}

struct State {
    limiter: Box<dyn Limiter>,
    log: Vec<Arrival>,
}

/// A running limited server; it stops when dropped.
pub struct Server {
    addr: SocketAddr,
    started: Instant,
    state: Arc<Mutex<State>>,
    task: JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Server {
    /// Serves `limiter` on an ephemeral port of 127.0.0.1; a served request
    /// takes `latency` before its answer.
    pub async fn start(limiter: Box<dyn Limiter>, latency: Duration) -> std::io::Result<Server> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let started = Instant::now();
        let state = Arc::new(Mutex::new(State {
            limiter,
            log: Vec::new(),
        }));
        let shared = Arc::clone(&state);
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let state = Arc::clone(&shared);
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |_req: Request<Incoming>| {
                        let state = Arc::clone(&state);
                        async move { Ok::<_, Infallible>(answer(&state, started, latency).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        Ok(Server {
            addr,
            started,
            state,
            task,
        })
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// When it started (its clock's zero).
    pub fn started(&self) -> Instant {
        self.started
    }

    /// Every arrival so far, in order.
    pub fn log(&self) -> Vec<Arrival> {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .log
            .clone()
    }

    /// Served and refused requests so far.
    pub fn counts(&self) -> (u64, u64) {
        let s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let served = s.log.iter().filter(|a| a.status.is_success()).count() as u64;
        (served, s.log.len() as u64 - served)
    }
}

async fn answer(state: &Mutex<State>, started: Instant, latency: Duration) -> Response<Full<Bytes>> {
    let now = Instant::now();
    let decision = {
        let mut s = state.lock().unwrap_or_else(PoisonError::into_inner);
        let d = s.limiter.arrive(now);
        s.log.push(Arrival {
            at: now.saturating_duration_since(started),
            status: d.status,
        });
        d
    };
    // A served request leaves when answered, or when hyper drops this future
    // because the client hung up during the latency: either way it departs.
    let departure = decision.served().then(|| Departure(state));
    let held = decision.delay + latency;
    if departure.is_some() && !held.is_zero() {
        tokio::time::sleep(held).await;
    }
    drop(departure);
    let mut response = Response::new(Full::new(Bytes::from_static(if decision.served() {
        b"ok"
    } else {
        b"slow down"
    })));
    *response.status_mut() = decision.status;
    for (name, value) in decision.headers {
        response.headers_mut().append(name, value);
    }
    response
}

/// Tells the limiter a served request has left, when dropped.
struct Departure<'a>(&'a Mutex<State>);

impl Drop for Departure<'_> {
    fn drop(&mut self) {
        let mut s = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        s.limiter.depart(Instant::now());
    }
}
