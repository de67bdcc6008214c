//! One run of scenario 9 (`models`): a cell under a variant in a runtime of
//! its own, its plot and its table row.

use std::io::Write as _;
use std::sync::atomic::Ordering;
use std::time::Duration;

use testkit::Spec;
use tokio::time::Instant;
use tower_snapshotter::GatePolicy;

use crate::clients::{client, remote_only, trace, Variant};
use crate::load::drive;
use crate::model_matrix::{Cell, ModelRun, MODEL_FROM, MODEL_SECS};
use crate::plots::{self, Plot, Series};
use crate::report::{answers, flat};

/// One cell under `variant`: its own server and client, demand 3× the
/// allowed rate, counted at the server.
async fn model_run(cell: Cell, variant: Variant) -> ModelRun {
    let srv = testkit::Server::start(cell.spec.build(Instant::now()), cell.latency)
        .await
        .expect("start the model server");
    let s = remote_only();
    let (svc, layer) = client(variant, &s);
    let tracer = trace(layer.as_ref());
    let demand = 3.0 * cell.allowed;
    let rec = drive(
        svc,
        vec![(0, format!("{}/", srv.base_url()))],
        move |_| demand,
        Duration::from_secs_f64(MODEL_SECS),
    )
    .await;
    if let Some(t) = tracer {
        t.abort();
    }
    let _ = s.stop();
    let span = Duration::from_secs_f64(MODEL_FROM)..Duration::from_secs_f64(MODEL_SECS);
    let full = srv.log();
    let mut series = Series::default();
    for a in &full {
        series.add(a.at.as_secs_f64(), a.status.as_u16());
    }
    let log: Vec<testkit::Arrival> = full.into_iter().filter(|a| span.contains(&a.at)).collect();
    let served = log.iter().filter(|a| a.status.is_success()).count();
    let refused = log
        .iter()
        .filter(|a| matches!(a.status.as_u16(), 429 | 503))
        .count();
    let errors = answers(&rec).iter().filter(|a| a.status == 0).count();
    ModelRun {
        cell,
        variant,
        served_per_s: served as f64 / (MODEL_SECS - MODEL_FROM),
        refused: if log.is_empty() {
            0.0
        } else {
            refused as f64 / log.len() as f64
        },
        arrivals: log.len(),
        dropped: rec.dropped.load(Ordering::Relaxed),
        errors,
        series,
        told: None,
    }
}

/// The stem of a model cell's plot, under `benches/plots/`.
fn model_plot_file(cell: &Cell) -> String {
    format!("models/{}", plots::slug(&cell.spec.to_string()))
}

/// One cell's plot: a line per variant that ran.
pub(crate) fn plot_model(cell: &Cell, runs: &[(String, Series)]) {
    let refused = match cell.spec {
        Spec::Concurrency { .. } => "503s/s",
        _ => "429s/s",
    };
    plots::write(
        &model_plot_file(cell),
        &Plot {
            title: format!(
                "models: {}, allowed {}, demand 3× for {MODEL_SECS:.0} s",
                cell.spec,
                cell.rate_label()
            ),
            counted_at: "counted at the server, from its log, by arrival time",
            goodput: "served (2xx)/s",
            refused,
            reference: flat(
                format!("allowed {}", cell.rate_label()),
                cell.allowed,
                MODEL_SECS + 3.0,
            ),
            counted: Some((MODEL_FROM, MODEL_SECS)),
            runs,
        },
    );
}

/// Runs one batch in a runtime of its own, dropped afterwards with every
/// request still queued in the client or the server, so no run's leftovers
/// load the next.
pub(crate) fn model_batch(cells: &[Cell], variant: Variant) -> Vec<ModelRun> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let runs = rt.block_on(async {
        let handles: Vec<_> = cells
            .iter()
            .map(|&c| tokio::spawn(model_run(c, variant)))
            .collect();
        let mut runs = Vec::with_capacity(handles.len());
        for h in handles {
            runs.push(h.await.expect("model run"));
        }
        runs
    });
    rt.shutdown_timeout(Duration::from_secs(1));
    runs
}

pub(crate) fn print_model_row(r: &ModelRun) {
    let verdict = if r.met() { "met" } else { "missed" };
    let target = match (r.variant, r.told) {
        (Variant::Policy(GatePolicy::Adaptive) | Variant::Default, None) => verdict.to_owned(),
        (Variant::Policy(GatePolicy::Adaptive) | Variant::Default, Some(_)) => {
            format!("{verdict} ({:.1} % of told C)", r.judged_share() * 100.0)
        }
        _ => "-".to_owned(),
    };
    let dropped = if r.errors > 0 {
        format!("{} (+{} errors)", r.dropped, r.errors)
    } else {
        r.dropped.to_string()
    };
    println!(
        "| {} | {} | {} | {:.1} % ({:.0}/s) | {:.2} % | {dropped} | {target} |",
        r.cell.spec,
        r.cell.rate_label(),
        r.variant.name(),
        r.goodput() * 100.0,
        r.served_per_s,
        r.refused * 100.0,
    );
    let _ = std::io::stdout().flush();
    let json = serde_json::json!({
        "scenario": "models",
        "model": r.cell.spec.to_string(),
        "allowed_per_s": r.allowed(),
        "latency_ms": r.cell.latency.as_secs_f64() * 1e3,
        "variant": r.variant.name(),
        "goodput_pct": r.goodput() * 100.0,
        "served_per_s": r.served_per_s,
        "refused_pct": r.refused * 100.0,
        "arrivals": r.arrivals,
        "dropped": r.dropped,
        "errors": r.errors,
        "met": r.met(),
        "told_c_per_s": r.told,
        "secs": MODEL_SECS,
        "counted_from": MODEL_FROM,
    });
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open("target/scenarios.jsonl")
    {
        let _ = writeln!(f, "{json}");
    }
}
