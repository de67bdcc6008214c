//! The wall clock's phase for epoch headers: the lock the tests that pin
//! it take turns on, runs at every phase, and their mean goodput.

use crate::harness::Run;

/// The wall clock's phase that fixed and moving windows with epoch
/// headers start at is one setting for the whole process: tests that pin
/// it take turns.
pub(crate) static WALL_PHASE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Runs `run` with the epoch headers' wall clock starting at every `step`
/// ms of its second (the tests that pin the phase take turns), and the
/// runs, in order.
pub(crate) async fn at_wall_phases<F, Fut>(step: usize, mut run: F) -> Vec<Run>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Run>,
{
    let _wall = WALL_PHASE.lock().await;
    let mut runs = Vec::new();
    for phase in (0..1000).step_by(step) {
        testkit::model::set_wall_phase_ms(Some(phase));
        runs.push(run().await);
    }
    testkit::model::set_wall_phase_ms(None);
    runs
}

/// The mean share of the allowed rate over `runs`.
pub(crate) fn mean_goodput(runs: &[Run]) -> f64 {
    runs.iter().map(|r| r.goodput).sum::<f64>() / runs.len().max(1) as f64
}
