//! Scenario 2: a server whose latency is flat up to 16 in flight and grows
//! 5 ms per request beyond.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;
use tower_snapshotter::GatePolicy;

use crate::clients::{client, remote_only, trace, variants, Variant};
use crate::load::{drive, figures, rec_secs, trace_answers};
use crate::plots::{self, Plot, Series};
use crate::report::{answers, flat, print_row, series, Row, CLIENT_SIDE};
use crate::server::{server, Behaviour};

/// 2. Latency flat to 16 in flight, +5 ms per request beyond.
///
/// "The knee's throughput" is what `fixed-16`, a limit set exactly at the
/// knee, achieves in the same run: the nominal 16 / 5 ms = 3 200/s is out
/// of reach on this machine because tokio's timer rounds each 5 ms sleep up
/// to the next millisecond tick and the harness shares the two cores.
pub(crate) async fn knee() {
    let (knee, base, step) = (16usize, Duration::from_millis(5), Duration::from_millis(5));
    let ideal = knee as f64 / base.as_secs_f64();
    let secs = 4.0;
    let mut at_knee: Option<f64> = None;
    // The unlimited variants leave ~2 000 requests of ~10 s each behind in
    // their server when their run ends; run them last so that leftover load
    // does not fall on the runs that are compared (in an earlier order the
    // adaptive row read 87–92 % of the knee in full runs and 97–105 % alone).
    let mut order = variants(16);
    order.sort_by_key(|v| matches!(v, Variant::None | Variant::Policy(GatePolicy::Wait)));
    let mut runs: Vec<(String, Series)> = Vec::new();
    for v in order {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let srv = server(Behaviour::Knee {
            knee,
            base,
            step,
            seen: Arc::clone(&seen),
        })
        .await;
        let s = remote_only();
        let (svc, layer) = client(v, &s);
        let tracer = trace(layer.as_ref());
        let started = Instant::now();
        let rec = drive(
            svc,
            vec![(0, format!("http://{}/", srv.addr))],
            |_| ideal * 1.5,
            Duration::from_secs_f64(secs),
        )
        .await;
        let a = answers(&rec);
        if let Some(t) = tracer {
            t.abort();
        }
        trace_answers(&a, rec_secs(&a));
        runs.push((v.name(), series(&a, |_| true)));
        let f = figures(&a, None, 1.0, secs);
        if v == Variant::Fixed(knee) {
            at_knee = Some(f.goodput);
        }
        let server_side: Vec<(f64, f64)> = seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(at, lat)| (at.duration_since(started).as_secs_f64(), *lat))
            .collect();
        // `None` when no request that arrived in the span was answered
        // within the run (an unlimited client buries the server).
        let p99_of = |from: f64| {
            let mut l: Vec<f64> = server_side
                .iter()
                .filter(|(at, _)| *at >= from && *at < secs)
                .map(|(_, l)| *l)
                .collect();
            l.sort_by(f64::total_cmp);
            l.get(((l.len() as f64 - 1.0) * 0.99).max(0.0) as usize).copied()
        };
        let times = |p: Option<f64>| p.map_or("-".to_owned(), |p| format!("{:.2}×", p / base.as_secs_f64()));
        let (p99_all, p99_steady) = (p99_of(0.0), p99_of(1.0));
        if std::env::var_os("SCENARIO_TRACE").is_some() {
            let mut buckets = vec![(0u32, 0u32); (secs * 20.0) as usize + 40];
            for (at, l) in &server_side {
                let b = &mut buckets[((at * 20.0) as usize).min((secs * 20.0) as usize + 39)];
                b.0 += 1;
                b.1 += u32::from(*l > base.as_secs_f64() * 1.5);
            }
            let slow: Vec<String> = buckets
                .iter()
                .enumerate()
                .filter(|(_, b)| b.1 > 0)
                .map(|(i, b)| format!("{:.2}s:{}/{}", i as f64 / 20.0, b.1, b.0))
                .collect();
            eprintln!("server-side slow per 50 ms: {}", slow.join(" "));
        }
        let late = server_side
            .iter()
            .filter(|(_, l)| *l > base.as_secs_f64() * 1.5)
            .count();
        let knee_share = at_knee.map_or("-".into(), |k| format!("{:.1} %", f.goodput / k * 100.0));
        print_row(&Row {
            scenario: "2 capacity knee (16 in flight, 5 ms)",
            variant: v.name(),
            goodput: format!(
                "{:.0}/s = {knee_share} of fixed-16's, {:.1} % of the nominal {ideal:.0}/s",
                f.goodput,
                f.goodput / ideal * 100.0
            ),
            share_429: "-".into(),
            react: "-".into(),
            recover: "-".into(),
            note: format!(
                "server-side p99 {} the unloaded 5 ms over seconds 1–{secs} ({} from the start); {:.2} % of all answers above 1.5×; end-to-end p50 {:.0} ms, p99 {:.0} ms (includes waiting in the client under 1.5× demand)",
                times(p99_steady),
                times(p99_all),
                late as f64 / server_side.len().max(1) as f64 * 100.0,
                f.p50 * 1e3,
                f.p99 * 1e3
            ),
        });
    }
    plots::write(
        "2-capacity-knee",
        &Plot {
            title: format!(
                "2 capacity knee: 16 in flight at 5 ms, demand {:.0}/s",
                ideal * 1.5
            ),
            counted_at: CLIENT_SIDE,
            goodput: "2xx answers/s",
            refused: "429s/s (this server sends none)",
            reference: flat(format!("nominal 16 / 5 ms = {ideal:.0}/s"), ideal, secs + 2.0),
            counted: Some((1.0, secs)),
            runs: &runs,
        },
    );
}
