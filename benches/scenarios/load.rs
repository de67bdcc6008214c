//! The open-loop load generator (arrivals at the scenario's rate, capped at
//! `MAX_OUTSTANDING`), the answers it records and the figures drawn from them.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::Request;
use http_body_util::{BodyExt, Empty};
use tokio::time::Instant;
use tower::ServiceExt;

use crate::clients::Svc;

pub(crate) const MAX_OUTSTANDING: usize = 2000;

// ---------------------------------------------------------------- load

/// One answer: when it came (since the start), its status (0 for an
/// error), and its latency.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Answer {
    pub(crate) at: f64,
    pub(crate) status: u16,
    pub(crate) latency: f64,
    pub(crate) host: u8,
}

#[derive(Default)]
pub(crate) struct Record {
    pub(crate) answers: Mutex<Vec<Answer>>,
    pub(crate) dropped: AtomicU64,
}

/// Sends requests to `urls` (round robin by host weight) at `rate(t)` per
/// second for `duration`, then waits up to 2 s for the stragglers.
pub(crate) async fn drive(
    svc: Svc,
    urls: Vec<(u8, String)>,
    rate: impl Fn(f64) -> f64,
    duration: Duration,
) -> Arc<Record> {
    let record = Arc::new(Record::default());
    let outstanding = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut next = start;
    let mut i = 0usize;
    while next < start + duration {
        tokio::time::sleep_until(next).await;
        let t = next.duration_since(start).as_secs_f64();
        let r = rate(t).max(1.0);
        next += Duration::from_secs_f64(1.0 / r);
        // Catch up in bursts when the timer is late, as an open loop must.
        let now = Instant::now();
        let mut burst = 1;
        while next < now && burst < 64 {
            next += Duration::from_secs_f64(1.0 / r);
            burst += 1;
        }
        for _ in 0..burst {
            if outstanding.load(Ordering::Relaxed) >= MAX_OUTSTANDING {
                record.dropped.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            let (host, url) = urls[i % urls.len()].clone();
            i += 1;
            let (svc, record, outstanding) = (svc.clone(), Arc::clone(&record), Arc::clone(&outstanding));
            outstanding.fetch_add(1, Ordering::Relaxed);
            tokio::spawn(async move {
                let sent = Instant::now();
                let status = match Request::get(url.as_str()).body(Empty::new()) {
                    Ok(req) => match svc.oneshot(req).await {
                        Ok(resp) => {
                            let s = resp.status().as_u16();
                            let _ = resp.into_body().collect().await;
                            s
                        }
                        Err(_) => 0,
                    },
                    Err(_) => 0,
                };
                let done = Instant::now();
                record
                    .answers
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(Answer {
                        at: done.duration_since(start).as_secs_f64(),
                        status,
                        latency: done.duration_since(sent).as_secs_f64(),
                        host,
                    });
                outstanding.fetch_sub(1, Ordering::Relaxed);
            });
        }
    }
    let deadline = Instant::now() + Duration::from_secs(2);
    while outstanding.load(Ordering::Relaxed) > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    record
}

/// Figures over `[from, to)` seconds of a run.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Figures {
    pub(crate) goodput: f64,
    pub(crate) share_429: f64,
    pub(crate) p50: f64,
    pub(crate) p99: f64,
}

pub(crate) fn figures(answers: &[Answer], host: Option<u8>, from: f64, to: f64) -> Figures {
    let mut lat: Vec<f64> = Vec::new();
    let (mut ok, mut throttled, mut all) = (0u64, 0u64, 0u64);
    for a in answers
        .iter()
        .filter(|a| a.at >= from && a.at < to && host.is_none_or(|h| h == a.host))
    {
        all += 1;
        match a.status {
            200..=299 => {
                ok += 1;
                lat.push(a.latency);
            }
            429 | 503 => throttled += 1,
            _ => {}
        }
    }
    lat.sort_by(f64::total_cmp);
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 - 1.0) * p).round() as usize)
            .copied()
            .unwrap_or(0.0)
    };
    Figures {
        goodput: ok as f64 / (to - from).max(1e-9),
        share_429: if all == 0 {
            0.0
        } else {
            throttled as f64 / all as f64
        },
        p50: pct(0.5),
        p99: pct(0.99),
    }
}

/// First time ≥ `from` at which the 1 s window ending there satisfies `ok`,
/// measured from `from`; `None` if never before `to`.
pub(crate) fn first_time(
    answers: &[Answer],
    from: f64,
    to: f64,
    ok: impl Fn(&Figures) -> bool,
) -> Option<f64> {
    let mut t = from + 1.0;
    while t <= to {
        if ok(&figures(answers, None, t - 1.0, t)) {
            return Some(t - from);
        }
        t += 0.1;
    }
    None
}

/// When the last answer came.
pub(crate) fn rec_secs(answers: &[Answer]) -> f64 {
    answers.iter().map(|a| a.at).fold(0.0, f64::max)
}

/// With `SCENARIO_TRACE` set, prints goodput and 429s per 250 ms.
pub(crate) fn trace_answers(answers: &[Answer], secs: f64) {
    if std::env::var_os("SCENARIO_TRACE").is_none() {
        return;
    }
    let mut t = 0.0;
    while t < secs {
        let f = figures(answers, None, t, t + 0.25);
        eprintln!(
            "{t:6.2}s goodput {:5.0}/s 429 {:4.1} % p50 {:.1} ms p99 {:.1} ms",
            f.goodput,
            f.share_429 * 100.0,
            f.p50 * 1e3,
            f.p99 * 1e3
        );
        t += 0.25;
    }
}
