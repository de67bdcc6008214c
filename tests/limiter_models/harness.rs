//! The harness: runs a limiter model behind the real layer under an open or
//! closed loop and counts what the model served and refused (`Run`).

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use testkit::{Limiter, Spec};
use tokio::time::Instant;
use tower::{Service, ServiceBuilder, ServiceExt};
use tower_snapshotter::{GatePolicy, SnapshotLayer};

use crate::common;

/// What the model saw from second `FROM` on.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Run {
    /// Served requests per second, as a share of the allowed rate.
    pub(crate) goodput: f64,
    /// Refused share of all requests that reached the model.
    pub(crate) refused: f64,
    /// Served per second.
    pub(crate) served_per_s: f64,
}

pub(crate) const FROM: f64 = 5.0;
const MAX_OUTSTANDING: usize = 4000;

/// Runs `secs` of open-loop demand at `demand` per second against `spec`
/// through the layer with `policy` (`None`: the layer's default).
pub(crate) async fn run(spec: Spec, policy: Option<GatePolicy>, secs: f64, latency: Duration) -> Run {
    run_from(spec, policy, secs, latency, FROM).await
}

/// [`run`], counted from second `from`.
pub(crate) async fn run_from(
    spec: Spec,
    policy: Option<GatePolicy>,
    secs: f64,
    latency: Duration,
    from: f64,
) -> Run {
    run_refusing(spec, policy, secs, latency, from, None).await
}

/// The adaptive policy against `spec` with refusals answered 503 (nginx's
/// `limit_req_status` default), counted from [`FROM`].
pub(crate) async fn run_503(spec: Spec, secs: f64, latency: Duration) -> Run {
    let status = Some(http::StatusCode::SERVICE_UNAVAILABLE);
    run_refusing(spec, Some(GatePolicy::Adaptive), secs, latency, FROM, status).await
}

/// [`run_from`], with refusals answered `refuse_with` (429 if `None`).
async fn run_refusing(
    spec: Spec,
    policy: Option<GatePolicy>,
    secs: f64,
    latency: Duration,
    from: f64,
    refuse_with: Option<http::StatusCode>,
) -> Run {
    let (allowed, demand) = match spec {
        Spec::Concurrency { limit } => {
            let allowed = limit as f64 / latency.as_secs_f64();
            (allowed, 3.0 * allowed)
        }
        _ => (spec.rate().unwrap(), 3.0 * spec.rate().unwrap()),
    };
    let model = Load {
        allowed,
        demand,
        secs,
        from,
        until: None,
        refuse_with,
        workers: None,
    };
    run_model(|now| spec.build(now), model, policy, latency).await
}

/// How a run is driven and counted: `demand` per second for `secs`, the
/// model's answers counted from second `from` (until second `until`, or the
/// end) against `allowed` per second.
pub(crate) struct Load {
    pub(crate) allowed: f64,
    pub(crate) demand: f64,
    pub(crate) secs: f64,
    pub(crate) from: f64,
    pub(crate) until: Option<f64>,
    /// The status refusals are answered with (429 if `None`, or
    /// `REFUSE_WITH`).
    pub(crate) refuse_with: Option<http::StatusCode>,
    /// A closed loop of this many workers instead of `demand` (or
    /// `CLOSED`), each sending again as soon as it has an answer.
    pub(crate) workers: Option<usize>,
}

/// Runs the model `build` makes under `load`.
pub(crate) async fn run_model(
    build: impl FnOnce(Instant) -> Box<dyn Limiter>,
    load: Load,
    policy: Option<GatePolicy>,
    latency: Duration,
) -> Run {
    let Load {
        allowed,
        demand,
        secs,
        from,
        until,
        refuse_with,
        workers,
    } = load;
    let workers = workers.or_else(|| std::env::var("CLOSED").ok().and_then(|v| v.parse::<usize>().ok()));
    // The layer draws jitter from fastrand's thread-local generator (a
    // pause's end, the concurrency limit's quiet time), seeded anew in
    // each process: seeded here, a run is the same run each time (a cell
    // at 3/s read 84.0 and 100.0 % in two runs of one binary).
    fastrand::seed(1);
    let start = Instant::now();
    // `NOISE_EVERY=50` refuses one served request in fifty besides,
    // whatever the rate (see `testkit::model::Noisy`); goodput is still
    // counted against the limiter's rate.
    let noise_every = std::env::var("NOISE_EVERY")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut limiter: Box<dyn Limiter> = Box::new(testkit::model::Noisy::new(build(start), noise_every));
    // `BAN_S=10` bans every request for ten seconds after each refusal
    // (see `testkit::model::PenaltyBox`), `BAN_STICKY=1` renews the ban
    // with each request refused during it.
    if let Some(ban) = std::env::var("BAN_S").ok().and_then(|v| v.parse::<f64>().ok()) {
        // `BAN_RA=1`: each refusal tells the seconds left, as Cloudflare's.
        let sticky = std::env::var_os("BAN_STICKY").is_some();
        let ban = testkit::model::PenaltyBox::new(limiter, Duration::from_secs_f64(ban), sticky);
        limiter = Box::new(if std::env::var_os("BAN_RA").is_some() {
            ban.telling()
        } else {
            ban
        });
    }
    let model: Arc<Mutex<Box<dyn Limiter>>> = Arc::new(Mutex::new(limiter));
    let log: Arc<Mutex<Vec<(f64, bool)>>> = Arc::default();
    let (m, l) = (Arc::clone(&model), Arc::clone(&log));
    // `REFUSE_WITH=503` answers refusals as nginx's `limit_req` does by
    // default (`limit_req_status 503`).
    let refuse_with = refuse_with.or_else(|| {
        std::env::var("REFUSE_WITH")
            .ok()
            .and_then(|v| v.parse::<u16>().ok())
            .and_then(|v| http::StatusCode::from_u16(v).ok())
    });
    // `JITTER_MS=5` delays each request on its way in by up to that much,
    // drawn anew for each: the network's jitter, which reorders sends.
    let jitter_us = std::env::var("JITTER_MS")
        .ok()
        .and_then(|v| v.parse::<f64>().ok())
        .map_or(0, |ms| (ms * 1000.0) as u64);
    let rng = Arc::new(Mutex::new(fastrand::Rng::with_seed(1)));
    let server = tower::service_fn(move |_req: http::Request<()>| {
        let (model, log) = (Arc::clone(&m), Arc::clone(&l));
        let on_the_way = Duration::from_micros(rng.lock().unwrap().u64(0..=jitter_us));
        async move {
            if !on_the_way.is_zero() {
                tokio::time::sleep(on_the_way).await;
            }
            let now = Instant::now();
            let d = model.lock().unwrap().arrive(now);
            log.lock()
                .unwrap()
                .push((now.duration_since(start).as_secs_f64(), d.served()));
            if d.served() {
                tokio::time::sleep(d.delay + latency).await;
                model.lock().unwrap().depart(Instant::now());
            }
            let mut resp = http::Response::new(());
            *resp.status_mut() = match refuse_with {
                Some(status) if d.status == http::StatusCode::TOO_MANY_REQUESTS => status,
                _ => d.status,
            };
            for (k, v) in d.headers {
                resp.headers_mut().append(k, v);
            }
            Ok::<_, Infallible>(resp)
        }
    });
    let (snapshotter, _cpu) = common::started(common::config().build().unwrap(), common::IDLE);
    let mut builder = SnapshotLayer::builder(snapshotter.clone());
    if let Some(p) = policy {
        builder = builder.policy(p);
    }
    let layer = builder.build().unwrap();
    if std::env::var_os("TRACE").is_some() {
        // `TRACE_MS=50` prints more often.
        let trace_every = std::env::var("TRACE_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .map_or(Duration::from_millis(250), Duration::from_millis);
        let (layer, log) = (layer.clone(), Arc::clone(&log));
        tokio::spawn(async move {
            let mut seen = 0;
            loop {
                tokio::time::sleep(trace_every).await;
                let t = start.elapsed().as_secs_f64();
                let log = log.lock().unwrap();
                let new = &log[seen..];
                seen = log.len();
                let ok = new.iter().filter(|(_, s)| *s).count();
                if std::env::var_os("ARRIVALS").is_some() {
                    // `ARRIVALS=1`: each arrival at the server, in ms, `x`
                    // where refused.
                    let at: Vec<String> = new
                        .iter()
                        .map(|(t, s)| format!("{:.0}{}", t * 1000.0, if *s { "" } else { "x" }))
                        .collect();
                    println!("  arrivals {}", at.join(" "));
                }
                let st = layer.stats();
                let h = st.adaptive_hosts.first();
                println!(
                    "  {t:5.2}s ok {ok:4} refused {:4} pace {:?} est {:?} {} conc {:?} paused {:?}",
                    new.len() - ok,
                    h.and_then(|h| h.rate).map(|r| (r * 10.0).round() / 10.0),
                    h.and_then(|h| h.estimate).map(|r| (r * 10.0).round() / 10.0),
                    if h.is_some_and(|h| h.estimate_measured) {
                        "m"
                    } else {
                        "g"
                    },
                    h.map(|h| (h.concurrency, h.in_flight)),
                    st.paused_hosts.first().map(|p| p.remaining),
                );
                // `TRACE_UNTIL=400` traces longer than the first two minutes.
                let until = std::env::var("TRACE_UNTIL")
                    .ok()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(120.0);
                if t > until {
                    break;
                }
            }
        });
    }
    let svc = ServiceBuilder::new().layer(layer).service(server);
    if let Some(workers) = workers {
        // Closed loop, as the crawl example: each worker sends again as soon
        // as it has an answer.
        let end = start + Duration::from_secs_f64(secs);
        let mut tasks = Vec::new();
        for _ in 0..workers {
            let mut svc = svc.clone();
            tasks.push(tokio::spawn(async move {
                while Instant::now() < end {
                    let req = http::Request::get("http://limited.test/").body(()).unwrap();
                    if let Ok(s) = svc.ready().await {
                        let _ = s.call(req).await;
                    }
                }
            }));
        }
        for t in tasks {
            let _ = t.await;
        }
    }
    let outstanding = Arc::new(AtomicUsize::new(0));
    let interval = Duration::from_secs_f64(1.0 / demand);
    let end = if workers.is_some() {
        start
    } else {
        start + Duration::from_secs_f64(secs)
    };
    let mut next = start;
    while next < end {
        tokio::time::sleep_until(next).await;
        let now = Instant::now();
        while next <= now {
            next += interval;
            if outstanding.load(Ordering::Relaxed) >= MAX_OUTSTANDING {
                continue;
            }
            outstanding.fetch_add(1, Ordering::Relaxed);
            let (mut svc, outstanding) = (svc.clone(), Arc::clone(&outstanding));
            tokio::spawn(async move {
                let req = http::Request::get("http://limited.test/").body(()).unwrap();
                if let Ok(svc) = svc.ready().await {
                    let _ = svc.call(req).await;
                }
                outstanding.fetch_sub(1, Ordering::Relaxed);
            });
        }
    }
    let _ = snapshotter.stop();
    let log = log.lock().unwrap();
    let until = until.unwrap_or(secs);
    let window: Vec<_> = log.iter().filter(|(t, _)| *t >= from && *t < until).collect();
    let served = window.iter().filter(|(_, ok)| *ok).count() as f64;
    let all = window.len() as f64;
    let per_s = served / (until - from);
    Run {
        goodput: per_s / allowed,
        refused: if all > 0.0 { (all - served) / all } else { 0.0 },
        served_per_s: per_s,
    }
}

/// The first 30 s of a closed loop of 64 against `spec`, `latency` away,
/// under the adaptive policy, counted from the first second.
pub(crate) async fn closed_loop_opening(spec: Spec, latency: Duration) -> Run {
    closed_loop(spec, latency, 30.0, 0.0).await
}

/// A closed loop of 64 against `spec`, `latency` away, under the adaptive
/// policy, for `secs`, counted from second `from`.
pub(crate) async fn closed_loop(spec: Spec, latency: Duration, secs: f64, from: f64) -> Run {
    let allowed = spec.rate().unwrap_or(1.0);
    let load = Load {
        allowed,
        demand: 3.0 * allowed,
        secs,
        from,
        until: None,
        refuse_with: None,
        workers: Some(64),
    };
    run_model(|now| spec.build(now), load, Some(GatePolicy::Adaptive), latency).await
}
