//! Scenarios 1, 3 and 4: a token-bucket server at a steady 3× demand, a
//! demand step, and a capacity drop and recovery.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::clients::{client, remote_only, trace, variants};
use crate::load::{drive, figures, first_time, rec_secs, trace_answers};
use crate::plots::{self, Plot, Series};
use crate::report::{answers, flat, print_row, series, shown, Row, CLIENT_SIDE};
use crate::server::{server, Behaviour};

/// 1. Token bucket of N = 500/s, demand 3·N.
pub(crate) async fn rate_limited(retry_after: bool) {
    let n = 500.0;
    let secs = 5.0;
    let name = if retry_after {
        "1 rate-limited, Retry-After"
    } else {
        "1 rate-limited, no Retry-After"
    };
    let mut runs: Vec<(String, Series)> = Vec::new();
    for v in variants(8) {
        let rate = Arc::new(AtomicU64::new(n as u64));
        let srv = server(Behaviour::Bucket { rate, retry_after }).await;
        let s = remote_only();
        let (svc, layer) = client(v, &s);
        let tracer = trace(layer.as_ref());
        let rec = drive(
            svc,
            vec![(0, format!("http://{}/", srv.addr))],
            |_| 3.0 * n,
            Duration::from_secs_f64(secs),
        )
        .await;
        let a = answers(&rec);
        if let Some(t) = tracer {
            t.abort();
        }
        trace_answers(&a, rec_secs(&a));
        runs.push((v.name(), series(&a, |_| true)));
        // Skip the first second: the bucket starts full.
        let f = figures(&a, None, 1.0, secs);
        print_row(&Row {
            scenario: name,
            variant: v.name(),
            goodput: format!("{:.0}/s = {:.1} % of N", f.goodput, f.goodput / n * 100.0),
            share_429: format!("{:.1} %", f.share_429 * 100.0),
            react: "-".into(),
            recover: "-".into(),
            note: format!(
                "{secs} s, seconds 1–{secs} counted; {} dropped at source",
                rec.dropped.load(Ordering::Relaxed)
            ),
        });
    }
    plots::write(
        &plots::slug(name),
        &Plot {
            title: format!("{name}: token bucket of {n:.0}/s, demand 3×"),
            counted_at: CLIENT_SIDE,
            goodput: "2xx answers/s",
            refused: "429s/s",
            reference: flat(format!("allowed {n:.0}/s"), n, secs + 2.0),
            counted: Some((1.0, secs)),
            runs: &runs,
        },
    );
}

/// 3. Demand steps from 0.5× to 3× of a 500/s bucket.
pub(crate) async fn step() {
    let n = 500.0;
    let (calm, secs) = (2.0, 8.0);
    let mut runs: Vec<(String, Series)> = Vec::new();
    for v in variants(8) {
        let rate = Arc::new(AtomicU64::new(n as u64));
        let srv = server(Behaviour::Bucket {
            rate,
            retry_after: false,
        })
        .await;
        let s = remote_only();
        let (svc, layer) = client(v, &s);
        let tracer = trace(layer.as_ref());
        let demand = move |t: f64| if t < calm { 0.5 * n } else { 3.0 * n };
        let rec = drive(
            svc,
            vec![(0, format!("http://{}/", srv.addr))],
            demand,
            Duration::from_secs_f64(secs),
        )
        .await;
        let a = answers(&rec);
        if let Some(t) = tracer {
            t.abort();
        }
        trace_answers(&a, rec_secs(&a));
        runs.push((v.name(), series(&a, |_| true)));
        let settled = first_time(&a, calm, secs, |f| {
            (f.goodput - n).abs() <= 0.1 * n && f.share_429 < 0.05
        });
        let f = figures(&a, None, calm + 2.0, secs);
        print_row(&Row {
            scenario: "3 step 0.5× → 3× of 500/s",
            variant: v.name(),
            goodput: format!("{:.0}/s after the step", f.goodput),
            share_429: format!("{:.1} %", f.share_429 * 100.0),
            react: shown(settled),
            recover: "-".into(),
            note: "react: step to the first 1 s window within 10 % of 500/s with < 5 % 429s".into(),
        });
    }
    plots::write(
        "3-step",
        &Plot {
            title: format!(
                "3 step: demand {:.0}/s, then {:.0}/s from {calm} s; token bucket of {n:.0}/s",
                0.5 * n,
                3.0 * n
            ),
            counted_at: CLIENT_SIDE,
            goodput: "2xx answers/s",
            refused: "429s/s",
            reference: flat(format!("allowed {n:.0}/s"), n, secs + 2.0),
            counted: Some((calm + 2.0, secs)),
            runs: &runs,
        },
    );
}

/// 4. Capacity drops to a fifth, then comes back.
pub(crate) async fn recovery() {
    let n = 500u64;
    let (warm, low, high) = (2.0, 4.0, 7.0);
    let mut runs: Vec<(String, Series)> = Vec::new();
    for v in variants(8) {
        let rate = Arc::new(AtomicU64::new(n));
        let srv = server(Behaviour::Bucket {
            rate: Arc::clone(&rate),
            retry_after: false,
        })
        .await;
        let s = remote_only();
        let (svc, layer) = client(v, &s);
        let tracer = trace(layer.as_ref());
        let r2 = Arc::clone(&rate);
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs_f64(warm)).await;
            r2.store(n / 5, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_secs_f64(low)).await;
            r2.store(n, Ordering::Relaxed);
        });
        let total = warm + low + high;
        let rec = drive(
            svc,
            vec![(0, format!("http://{}/", srv.addr))],
            |_| 3.0 * n as f64,
            Duration::from_secs_f64(total),
        )
        .await;
        let a = answers(&rec);
        if let Some(t) = tracer {
            t.abort();
        }
        trace_answers(&a, rec_secs(&a));
        runs.push((v.name(), series(&a, |_| true)));
        let back = warm + low;
        let recovered = first_time(&a, back, total, |f| f.goodput >= 0.9 * n as f64);
        let f = figures(&a, None, back, total);
        print_row(&Row {
            scenario: "4 recovery (500 → 100 → 500/s)",
            variant: v.name(),
            goodput: format!("{:.0}/s in the {high} s after", f.goodput),
            share_429: format!("{:.1} %", f.share_429 * 100.0),
            react: "-".into(),
            recover: shown(recovered),
            note: format!("capacity a fifth for {low} s (the issue's 20 s shortened); recover: to a 1 s window ≥ 90 % of 500/s"),
        });
    }
    let (full, fifth, back) = (n as f64, n as f64 / 5.0, warm + low);
    plots::write(
        "4-recovery",
        &Plot {
            title: format!(
                "4 recovery: token bucket {n}/s, {}/s from {warm} s to {back} s; demand {}/s",
                n / 5,
                3 * n
            ),
            counted_at: CLIENT_SIDE,
            goodput: "2xx answers/s",
            refused: "429s/s",
            reference: Some((
                format!("allowed {n} → {} → {n}/s", n / 5),
                vec![
                    (0.0, full),
                    (warm, full),
                    (warm, fifth),
                    (back, fifth),
                    (back, full),
                    (back + high + 2.0, full),
                ],
            )),
            counted: Some((back, back + high)),
            runs: &runs,
        },
    );
}
