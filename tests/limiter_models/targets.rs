//! The targets and the checks against them: the default run
//! length and latency, `check`, `check_at_least`, `holds`, `holds_at_least`.

use std::time::Duration;

use testkit::Spec;
use tower_snapshotter::GatePolicy;

use crate::harness::{run, Run};

pub(crate) const SECS: f64 = 20.0;
pub(crate) const LATENCY: Duration = Duration::from_millis(1);

pub(crate) fn check(spec: Spec, r: Run) {
    check_at_least(spec, r, 0.95, 0.01);
}

/// At least `share` of the allowed rate, at most `refused` refused.
pub(crate) fn check_at_least(spec: Spec, r: Run, share: f64, refused: f64) {
    assert!(
        r.goodput >= share && r.refused <= refused,
        "{spec}: {:.1} % of the allowed rate ({:.1}/s), {:.2} % refused",
        100.0 * r.goodput,
        r.served_per_s,
        100.0 * r.refused
    );
}

/// One model under the adaptive policy: at least `share` of its rate, at
/// most 1 % refused.
pub(crate) async fn holds_at_least(spec: Spec, share: f64) {
    let r = run(spec, Some(GatePolicy::Adaptive), SECS, LATENCY).await;
    check_at_least(spec, r, share, 0.01);
}

/// One model under the adaptive policy: the targets.
pub(crate) async fn holds(spec: Spec) {
    let r = run(spec, Some(GatePolicy::Adaptive), SECS, LATENCY).await;
    check(spec, r);
}
