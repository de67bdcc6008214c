//! The layer against every limiter model of `testkit`, under tokio's paused
//! clock: open-loop demand at 3× the allowed rate through the real layer
//! into a service that asks the model, counted where the model counts.
//!
//! Each test pins what the issue asks of the controller on one behaviour
//! class: ≥ 95 % of the allowed rate and ≤ 1 % refusals from second 5 on.
//! `cargo test --test limiter_models -- --ignored --nocapture table` prints
//! the whole matrix.

#[path = "../common/mod.rs"]
mod common;

mod changing_capacity;
mod counting_windows;
mod far_hosts;
mod gcra;
mod harness;
mod models;
mod served_windows;
mod status_503;
mod targets;
mod traefik_spring;
mod wall_phase;

use std::time::Duration;

use testkit::{QuotaHeaders, Spec};
use tower_snapshotter::GatePolicy;

use harness::{run, run_from, FROM};
use models::models;
use targets::{LATENCY, SECS};
use wall_phase::WALL_PHASE;

#[tokio::test(start_paused = true)]
#[ignore = "prints the whole matrix; run with --ignored --nocapture"]
async fn table() {
    // `WALL_PHASE_MS=250` starts the epoch headers' wall clocks at that
    // phase of a second, the same in every run (by default, the real
    // clock's: Flask-Limiter's and GitHub's cells move with it). The
    // tests that pin the phase wait for the table.
    let _wall = WALL_PHASE.lock().await;
    let phase = std::env::var("WALL_PHASE_MS").ok().and_then(|v| v.parse().ok());
    testkit::model::set_wall_phase_ms(phase);
    let only = std::env::var("MODELS").unwrap_or_default();
    let policy = match std::env::var("POLICY").as_deref() {
        Ok("adaptive") => Some(GatePolicy::Adaptive),
        Ok("wait") => Some(GatePolicy::Wait),
        Ok("autoscale") => Some(GatePolicy::Autoscale),
        _ => None,
    };
    // `RATES=5,50,1000` tries rates the issue does not list.
    let rates: Vec<f64> = std::env::var("RATES")
        .ok()
        .map(|v| {
            v.split(',')
                .filter_map(|r| r.trim().parse().ok())
                .collect::<Vec<f64>>()
        })
        .filter(|r| !r.is_empty())
        .unwrap_or_else(|| vec![20.0, 100.0, 500.0, 2000.0]);
    // `LATENCY_MS=100` puts the server farther away.
    let latency = std::env::var("LATENCY_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map_or(LATENCY, Duration::from_millis);
    // `FROM_S=2` counts from second 2: how soon each model is found.
    let from = std::env::var("FROM_S")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(FROM);
    // `SECS=60` runs longer: a window of ten seconds needs more than one.
    let secs = std::env::var("SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(SECS);
    for rate in rates {
        for spec in models(rate) {
            let name = spec.to_string();
            if !only.is_empty() && !only.split(',').any(|w| name.contains(w)) {
                continue;
            }
            let r = run_from(spec, policy, secs, latency, from).await;
            let ok = r.goodput >= 0.95 && r.refused <= 0.01;
            println!(
                "{name:32} {:6.1} %  {:7.1}/s  {:6.2} % refused  {}",
                100.0 * r.goodput,
                r.served_per_s,
                100.0 * r.refused,
                if ok { "" } else { "MISS" }
            );
        }
    }
    for limit in [4, 16, 64] {
        let spec = Spec::Concurrency { limit };
        let r = run(spec, policy, SECS, Duration::from_millis(20)).await;
        println!(
            "{:32} {:6.1} %  {:7.1}/s  {:6.2} % refused",
            spec.to_string(),
            100.0 * r.goodput,
            r.served_per_s,
            100.0 * r.refused
        );
    }
}

/// GitHub's epoch `Reset` against every phase of the second at which the
/// server's windows start (they round differently at each): the misses
/// and the lowest goodput. `PHASE_STEP_MS` sets the step (default 3 ms),
/// `RATES` the rates (default 100/s). Alone: it sets the phase of every
/// fixed window this process makes.
#[tokio::test(start_paused = true)]
#[ignore = "a sweep; run alone with --ignored --nocapture"]
async fn quota_phases() {
    let _wall = WALL_PHASE.lock().await;
    let step: u64 = std::env::var("PHASE_STEP_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3)
        .max(1);
    let rates: Vec<f64> = std::env::var("RATES")
        .ok()
        .map(|v| v.split(',').filter_map(|r| r.trim().parse().ok()).collect())
        .filter(|r: &Vec<f64>| !r.is_empty())
        .unwrap_or_else(|| vec![100.0]);
    for (rate, window) in rates.iter().flat_map(|&r| [(r, 1), (r, 5)]) {
        let (mut lowest, mut misses) = (f64::MAX, Vec::new());
        for phase in (0..1000).step_by(step as usize) {
            testkit::model::set_wall_phase_ms(Some(phase));
            let spec = Spec::Window {
                rate,
                window: Duration::from_secs(window),
                headers: QuotaHeaders::GitHub,
            };
            let r = run(spec, Some(GatePolicy::Adaptive), SECS, LATENCY).await;
            lowest = lowest.min(r.goodput);
            if r.goodput < 0.95 || r.refused > 0.01 {
                misses.push(format!("{phase} ms: {:.1} %", 100.0 * r.goodput));
            }
        }
        println!(
            "{rate}/s, window {window} s, phases every {step} ms: lowest {:.1} %, {} misses {misses:?}",
            100.0 * lowest,
            misses.len()
        );
    }
    testkit::model::set_wall_phase_ms(None);
}
