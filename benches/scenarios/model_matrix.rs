//! The matrix of scenario 9 (`models`): its constants, the testkit limiter
//! models and their cells, the groups and batches they run in, and one run's result.

use std::time::Duration;

use testkit::{QuotaHeaders, RetryAfter, Spec};
use tower_snapshotter::GatePolicy;

use crate::clients::{chosen, Variant};
use crate::plots::Series;

// ---------------------------------------------------------------- models

/// Seconds of load in each run of the `models` scenario.
pub(crate) const MODEL_SECS: f64 = 15.0;
/// Figures are counted at the server from this second to the end.
pub(crate) const MODEL_FROM: f64 = 5.0;
/// Wall time of one batch: the run, up to 2 s for stragglers, set-up.
pub(crate) const MODEL_BATCH_SECS: f64 = MODEL_SECS + 2.5;
/// The allowed rates of the rate models.
pub(crate) const MODEL_RATES: [f64; 4] = [20.0, 100.0, 500.0, 2000.0];
/// Rates up to this run three at once (one batch); faster ones alone.
pub(crate) const MODEL_SHARED_UP_TO: f64 = 500.0;
/// Server latency of a served request under the rate models.
pub(crate) const MODEL_RATE_LATENCY: Duration = Duration::from_millis(1);
/// The concurrency limits, and their server latency.
pub(crate) const MODEL_LIMITS: [usize; 3] = [4, 16, 64];
pub(crate) const MODEL_CONC_LATENCY: Duration = Duration::from_millis(20);

/// The rate models of `tests/limiter_models/` at `rate`.
fn model_kinds(rate: f64) -> Vec<Spec> {
    let gcra = |burst, retry_after| Spec::Gcra {
        rate,
        burst,
        retry_after,
    };
    let window = |headers| Spec::Window {
        rate,
        window: Duration::from_secs(5),
        headers,
    };
    vec![
        gcra(1, RetryAfter::Static(1)),
        gcra(10, RetryAfter::Static(1)),
        gcra(50, RetryAfter::Static(1)),
        gcra(50, RetryAfter::Exact),
        gcra(50, RetryAfter::Absent),
        gcra(1, RetryAfter::Absent),
        Spec::Sliding {
            rate,
            window: Duration::from_secs(1),
        },
        window(QuotaHeaders::Ietf),
        window(QuotaHeaders::GitHub),
        Spec::Bucket {
            rate,
            retry_after: RetryAfter::Static(1),
        },
    ]
}

/// One (model, rate) of the matrix: what the server runs and what it allows.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Cell {
    pub(crate) spec: Spec,
    pub(crate) latency: Duration,
    /// Requests per second the model allows (C / latency for a
    /// concurrency limit).
    pub(crate) allowed: f64,
}

impl Cell {
    pub(crate) fn of(spec: Spec) -> Cell {
        match spec {
            Spec::Concurrency { limit } => Cell {
                spec,
                latency: MODEL_CONC_LATENCY,
                allowed: limit as f64 / MODEL_CONC_LATENCY.as_secs_f64(),
            },
            _ => Cell {
                spec,
                latency: MODEL_RATE_LATENCY,
                allowed: spec.rate().unwrap_or(1.0),
            },
        }
    }

    pub(crate) fn rate_label(&self) -> String {
        match self.spec {
            Spec::Concurrency { limit } => format!(
                "{:.0}/s ({limit} / {} ms)",
                self.allowed,
                self.latency.as_millis()
            ),
            _ => format!("{:.0}/s", self.allowed),
        }
    }

    /// Whether it may share a batch with others (slow rate models only).
    pub(crate) fn shares(&self) -> bool {
        !matches!(self.spec, Spec::Concurrency { .. }) && self.allowed <= MODEL_SHARED_UP_TO
    }
}

/// The reference client of a cell: `fixed-C` under a concurrency limit C,
/// none under a rate model.
pub(crate) fn told_variant(spec: Spec) -> Option<Variant> {
    match spec {
        Spec::Concurrency { limit } => Some(Variant::Fixed(limit)),
        _ => None,
    }
}

/// What the server saw of one cell under one variant.
#[derive(Debug, Clone)]
pub(crate) struct ModelRun {
    pub(crate) cell: Cell,
    pub(crate) variant: Variant,
    /// Served per second from `MODEL_FROM` on.
    pub(crate) served_per_s: f64,
    /// 429s and 503s over all arrivals from `MODEL_FROM` on.
    pub(crate) refused: f64,
    pub(crate) arrivals: usize,
    /// Arrivals dropped at the source (outstanding cap).
    pub(crate) dropped: u64,
    /// Client-side errors (no answer).
    pub(crate) errors: usize,
    /// Every arrival of the run at the server, per 250 ms, for the plot.
    pub(crate) series: Series,
    /// Under a concurrency limit C: what a client told C (`fixed-C`)
    /// served per second in the same run. The nominal C / latency leaves
    /// out the client's and the server's own time per request, which no
    /// client recovers; the target is a share of what C in flight gives.
    pub(crate) told: Option<f64>,
}

impl ModelRun {
    pub(crate) fn goodput(&self) -> f64 {
        self.served_per_s / self.allowed()
    }

    pub(crate) fn allowed(&self) -> f64 {
        self.cell.allowed
    }

    /// Whether this is the reference run of a concurrency limit: the
    /// client told C.
    pub(crate) fn is_told(&self) -> bool {
        told_variant(self.cell.spec) == Some(self.variant)
    }

    /// The share the target is judged on: of the allowed rate, or under
    /// a concurrency limit of what `fixed-C` served in the same run.
    pub(crate) fn judged_share(&self) -> f64 {
        match self.told {
            Some(told) if told > 0.0 => self.served_per_s / told,
            _ => self.goodput(),
        }
    }

    /// The target: ≥ 95 % of the allowed rate (of the throughput
    /// at C in flight under a concurrency limit), ≤ 1 % refused.
    pub(crate) fn met(&self) -> bool {
        self.judged_share() >= 0.95 && self.refused <= 0.01
    }
}

/// The groups of the matrix: one model at every rate, or one concurrency
/// limit; kept when `SCENARIO_MODELS` (comma-separated substrings of the
/// model's name, e.g. `gcra 100/s b50 RA 1,sliding`) names them.
pub(crate) fn model_groups() -> Vec<Vec<Cell>> {
    let only: Vec<String> = std::env::var("SCENARIO_MODELS")
        .unwrap_or_default()
        .split(',')
        .map(|w| w.trim().to_owned())
        .filter(|w| !w.is_empty())
        .collect();
    let keep = |c: &Cell| {
        let name = c.spec.to_string();
        only.is_empty() || only.iter().any(|w| name.contains(w.as_str()))
    };
    let kinds = model_kinds(1.0).len();
    let rate_groups = (0..kinds).map(|k| {
        MODEL_RATES
            .iter()
            .map(|&r| Cell::of(model_kinds(r)[k]))
            .collect::<Vec<_>>()
    });
    let limit_groups = MODEL_LIMITS
        .iter()
        .map(|&limit| vec![Cell::of(Spec::Concurrency { limit })]);
    rate_groups
        .chain(limit_groups)
        .map(|g| g.into_iter().filter(keep).collect::<Vec<_>>())
        .filter(|g| !g.is_empty())
        .collect()
}

/// A group's runs for one variant: the slow rates together, each other
/// cell alone.
pub(crate) fn batches(group: &[Cell]) -> Vec<Vec<Cell>> {
    let (shared, alone): (Vec<Cell>, Vec<Cell>) = group.iter().partition(|c| c.shares());
    let mut out: Vec<Vec<Cell>> = alone.into_iter().map(|c| vec![c]).collect();
    if !shared.is_empty() {
        out.insert(0, shared);
    }
    out
}

pub(crate) fn model_variants() -> Vec<Variant> {
    chosen(vec![
        Variant::None,
        Variant::Fixed(16),
        Variant::Policy(GatePolicy::Wait),
        Variant::Policy(GatePolicy::Autoscale),
        Variant::Policy(GatePolicy::Adaptive),
        Variant::Default,
    ])
}
