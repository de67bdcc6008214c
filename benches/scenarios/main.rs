//! Overload scenarios: a real hyper server on 127.0.0.1 in this process,
//! driven by a hyper-util client with and without the layer, one table row
//! per (scenario, variant).
//!
//! ```text
//! cargo bench --bench scenarios              # every scenario, about 45 minutes
//! cargo bench --bench scenarios -- rate knee # only the named ones (about 4 minutes
//!                                            # for all but `models`)
//! cargo bench --bench scenarios -- models    # the limiter-model matrix, about 40 minutes
//! SCENARIO_MODELS="gcra 100/s b50 RA 1,sliding 100/s" SCENARIO_VARIANTS=adaptive,wait,none \
//!     cargo bench --bench scenarios -- models   # a subset
//! ```
//!
//! `SCENARIO_VARIANTS` (comma-separated prefixes of `none`, `fixed-N`,
//! `wait`, `autoscale`, `adaptive`, `default`) keeps only those variants in
//! every scenario; `SCENARIO_TRACE` prints per-250 ms traces to stderr.
//!
//! Load is open-loop: requests arrive at the scenario's rate whatever the
//! answers, each in its own task, and arrivals beyond 2 000 outstanding are
//! dropped at the source (counted). Durations are shorter than the issue's
//! (which would take about 15 minutes on this 2-core machine); each row says
//! its own. In scenarios 1–4 and 7 the machine gates are off (see
//! `remote_only`); 5 and 6 measure them. Rows are also appended as JSON
//! lines to `target/scenarios.jsonl`.
//!
//! Scenario 9, `models`, has a table of its own: the layer against every
//! limiter model of `testkit` (the matrix of `tests/limiter_models/`, but
//! in real time through a real hyper server and client on 127.0.0.1). Each
//! rate model (GCRA burst 1/10/50 with `Retry-After: 1`, burst 50 with an
//! exact or no `Retry-After`, burst 1 without; a sliding window counting
//! refusals; 5 s fixed windows with IETF or GitHub quota headers; a
//! one-second token bucket with `Retry-After: 1`) runs at 20, 100, 500 and
//! 2 000/s with 1 ms of server latency, and a concurrency limit of 4, 16
//! and 64 with 20 ms (allowing C / 20 ms): 43 cells, each under `none`,
//! `fixed-16`, `wait`, `autoscale`, `adaptive` and `default` (the layer
//! without `.policy(..)`). Demand is open-loop at 3× the allowed rate for
//! 15 s; goodput (as a share of the allowed rate) and the refused share
//! (429 and 503 over all arrivals) are counted at the server from its log,
//! seconds 5 to 15; `dropped` counts arrivals dropped at the source by the
//! outstanding cap. The `target` column says whether an `adaptive` or
//! `default` row meets ≥ 95 % and ≤ 1 %; under a concurrency limit C the
//! 95 % is of what `fixed-C` (the client told C, run first whatever
//! `SCENARIO_VARIANTS` chose, a row of its own) served in the same
//! invocation. A summary per variant follows.
//! Runs of 20, 100 and 500/s of one (model, variant) share a batch (three
//! servers, three clients, concurrently); 2 000/s and the concurrency
//! limits run alone, since the CPU of this 2-core machine is the limit
//! there. That is 23 batches per variant, 138 in all at ~17.5 s: about
//! 40 minutes; the start of the scenario prints its own estimate for the
//! chosen subset. Each batch runs in a tokio runtime of its own, dropped
//! after it so requests still queued at the end load no later batch.
//! `SCENARIO_MODELS` (comma-separated substrings of the model's name as
//! the table prints it, e.g. `gcra 100/s b50 RA 1,sliding`) keeps a subset.
//!
//! Plots: the same runs that print the tables write one SVG per scenario
//! (1, 2, 3, 4 and 7; 5, 6 and 8 measure a gate's reaction or memory, not
//! goodput) to `benches/plots/`, and one per model cell to
//! `benches/plots/models/` (e.g. `gcra-500s-b50-ra-1.svg`): goodput (2xx)
//! and refusals (429 and 503) per 250 ms for each variant that ran, the
//! allowed rate dashed, the seconds the table counts shaded (`plots.rs`).
//! Scenarios 1–4 and 7 count at the client by when each answer came, as
//! their tables do; `models` counts at the server from its log by arrival
//! time, as its table does. A filtered run overwrites only its own plots,
//! with only the variants that ran.

mod clients;
mod load;
#[path = "../plots.rs"]
mod plots;
mod report;
mod server;

// ---------------------------------------------------------------- scenarios

mod bucket;
mod hosts;
mod knee;
mod machine;
mod scale;

mod model_matrix;
mod model_run;
mod models;

use std::time::Duration;

use crate::bucket::{rate_limited, recovery, step};
use crate::hosts::two_hosts;
use crate::knee::knee;
use crate::machine::{cpu_hog, starvation};
use crate::models::models;
use crate::scale::scale;

fn main() {
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let wanted = |name: &str| filters.is_empty() || filters.iter().any(|f| name.contains(f.as_str()));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let _ = std::fs::create_dir_all("target");
    let started = std::time::Instant::now();
    let classic = [
        "rate",
        "knee",
        "step",
        "recovery",
        "cpu",
        "starvation",
        "hosts",
        "scale",
    ];
    if classic.iter().any(|name| wanted(name)) {
        println!("| scenario | variant | goodput | 429s | time to react | time to recover | notes |");
        println!("| --- | --- | --- | --- | --- | --- | --- |");
    }
    rt.block_on(async {
        if wanted("rate") {
            rate_limited(false).await;
            rate_limited(true).await;
        }
        if wanted("knee") {
            knee().await;
        }
        if wanted("step") {
            step().await;
        }
        if wanted("recovery") {
            recovery().await;
        }
        if wanted("cpu") {
            cpu_hog().await;
        }
        if wanted("starvation") {
            starvation().await;
        }
        if wanted("hosts") {
            two_hosts().await;
        }
        if wanted("scale") {
            scale().await;
        }
    });
    // Whatever the scenarios above left running (snapshotters, queued
    // requests) stops here, before the models run in runtimes of their own.
    rt.shutdown_timeout(Duration::from_secs(1));
    if wanted("models") {
        models();
    }
    println!("\n(total {:.0} s)", started.elapsed().as_secs_f64());
}
