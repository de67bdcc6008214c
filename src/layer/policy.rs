//! What a blocked request does, which limiter the layer moves, and the
//! presets that name the usual pairs.

use std::time::Duration;

use super::adaptive::AdaptiveConfig;
use crate::config::ConfigError;

/// What a request does while it may not go: the machine is overloaded, its
/// host is paused, or the layer's limiter holds it back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub enum OnBlocked {
    /// `poll_ready` stays `Pending` while the machine is overloaded and is
    /// woken when the verdict changes; a request to a paused or paced host
    /// waits in its response future, holding nothing of the inner service,
    /// until it may go. For clients.
    #[default]
    Wait,
    /// Like `tower::load_shed`: `poll_ready` passes on the inner service's
    /// readiness, and a call that would have to wait fails at once with
    /// [`Overloaded`](crate::layer::error::Overloaded), without reaching
    /// the inner service. For servers, and callers with their own fallback.
    Reject,
}

/// Which limit of its own the layer moves, beside the machine's gate and
/// the per-host pauses every layer keeps. Each variant carries its own
/// settings, so the settings of a limiter not in use cannot be given.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub enum Limiter {
    /// None: the gate and `Retry-After` pauses (with a doubling back-off
    /// on counted answers without one), as Crawlee's `Snapshotter` with
    /// `SystemStatus`. Wastes a real rate limiter's capacity (see
    /// `BENCHMARKS.md`).
    None,
    /// A concurrency limit that moves like Crawlee's `AutoscaledPool`:
    /// every `autoscale_interval` the historical status decides whether it
    /// goes up or down by 5 %.
    Autoscale(AutoscaleConfig),
    /// Per host, a concurrency limit and a send rate that every answer
    /// moves (see [`AdaptiveConfig`](crate::layer::AdaptiveConfig) and the
    /// `adaptive` module docs): holds real rate limiters (nginx's GCRA,
    /// windows that count refusals, quota headers) near their rate with
    /// almost no refusal. `Retry-After` still pauses a host; a 429 without
    /// it cuts the host's rate instead of pausing it. The default.
    Adaptive(AdaptiveConfig),
}

impl Default for Limiter {
    fn default() -> Self {
        Limiter::Adaptive(AdaptiveConfig::default())
    }
}

/// The usual pairs of [`OnBlocked`] and [`Limiter`], by one name, each
/// limiter with its default settings. For other pairs (`Reject` with the
/// adaptive limiter, say) or other settings, use
/// [`SnapshotLayerBuilder::on_blocked`](crate::layer::SnapshotLayerBuilder::on_blocked)
/// and [`limiter`](crate::layer::SnapshotLayerBuilder::limiter).
///
/// In every pair up to `min_concurrency` requests admitted during an
/// overload may be in flight at once, so a client never freezes at zero
/// (the bug crawlee-python fixed in PR 2235).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub enum GatePolicy {
    /// [`OnBlocked::Reject`] with [`Limiter::None`].
    Reject,
    /// [`OnBlocked::Wait`] with [`Limiter::None`]: Crawlee's behaviour.
    Wait,
    /// [`OnBlocked::Wait`] with [`Limiter::Autoscale`].
    Autoscale,
    /// [`OnBlocked::Wait`] with [`Limiter::Adaptive`]: the default.
    #[default]
    Adaptive,
}

impl GatePolicy {
    /// What a request does while it may not go under this policy.
    pub fn on_blocked(self) -> OnBlocked {
        match self {
            GatePolicy::Reject => OnBlocked::Reject,
            GatePolicy::Wait | GatePolicy::Autoscale | GatePolicy::Adaptive => OnBlocked::Wait,
        }
    }

    /// The limiter of this policy, with its default settings.
    pub fn limiter(self) -> Limiter {
        match self {
            GatePolicy::Reject | GatePolicy::Wait => Limiter::None,
            GatePolicy::Autoscale => Limiter::Autoscale(AutoscaleConfig::default()),
            GatePolicy::Adaptive => Limiter::Adaptive(AdaptiveConfig::default()),
        }
    }
}

crate::config::limiter_table::limiter_settings! {
    /// The settings of [`Limiter::Autoscale`], with Crawlee's defaults.
    #[derive(Debug, Clone, Copy, PartialEq)]
    #[cfg_attr(feature = "serde", derive(serde::Serialize))]
    pub struct AutoscaleConfig {
        /// How often the limit moves.
        autoscale_interval: Duration = (10 s) in (1 ms ..= 1 h);
        /// Share of the limit that must be in use for it to grow.
        desired_concurrency_ratio: f64 = (0.9) in (0 < x <= 1);
        /// Growth step as a share of the limit, rounded up.
        scale_up_step_ratio: f64 = (0.05) in (0 < x <= 1);
        /// Shrink step as a share of the limit, rounded up.
        scale_down_step_ratio: f64 = (0.05) in (0 < x <= 1);
        /// Upper bound of the limit; at least 1 even when the layer's
        /// `min_concurrency` is 0.
        max_concurrency: usize = (200) in (min_concurrency ..= 1_000_000) by hand;
        /// Starting limit.
        desired_concurrency: usize = (10) in (min_concurrency ..= max_concurrency) by hand;
    }

    /// Checks every setting against its range, in table order, then
    /// `max_concurrency` and `desired_concurrency` against
    /// `min_concurrency`, the layer's floor.
    pub fn validate(&self, min_concurrency: usize) -> Result<(), ConfigError> {
        let invalid = |field, value: String, allowed: String| ConfigError::Invalid {
            field,
            value,
            allowed,
        };
        if self.max_concurrency < min_concurrency.max(1) || self.max_concurrency > 1_000_000 {
            return Err(invalid(
                "max_concurrency",
                self.max_concurrency.to_string(),
                format!("min_concurrency ({min_concurrency}) ..= 1000000"),
            ));
        }
        if self.desired_concurrency < min_concurrency || self.desired_concurrency > self.max_concurrency {
            return Err(invalid(
                "desired_concurrency",
                self.desired_concurrency.to_string(),
                format!(
                    "min_concurrency ({min_concurrency}) ..= max_concurrency ({})",
                    self.max_concurrency
                ),
            ));
        }
        Ok(())
    }
}

impl AutoscaleConfig {
    /// One autoscale step, Crawlee's arithmetic: up by
    /// `ceil(scale_up_step_ratio · desired)` when the system is idle and at
    /// least `floor(desired_concurrency_ratio · desired)` requests are in
    /// flight; down by `ceil(scale_down_step_ratio · desired)` when it is
    /// not idle; clamped to `min ..= max_concurrency`.
    pub(crate) fn step(&self, desired: usize, in_flight: usize, idle: bool, min_concurrency: usize) -> usize {
        let min = min_concurrency.max(1);
        let min_current = (self.desired_concurrency_ratio * desired as f64).floor() as usize;
        if idle && desired < self.max_concurrency && in_flight >= min_current {
            let step = (self.scale_up_step_ratio * desired as f64).ceil() as usize;
            (desired + step.max(1)).min(self.max_concurrency)
        } else if !idle && desired > min {
            let step = (self.scale_down_step_ratio * desired as f64).ceil() as usize;
            desired.saturating_sub(step.max(1)).max(min)
        } else {
            desired
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn autoscale_steps_as_crawlee() {
        let c = AutoscaleConfig::default();
        assert_eq!(c.step(10, 9, true, 1), 11, "10 → 11 needs 9 in flight");
        assert_eq!(c.step(10, 8, true, 1), 10);
        assert_eq!(c.step(21, 21, true, 1), 23, "the step is 2 from 21");
        assert_eq!(c.step(10, 10, false, 1), 9);
        assert_eq!(c.step(1, 1, false, 1), 1);
    }

    #[test]
    fn presets_name_their_pairs() {
        assert_eq!(GatePolicy::default(), GatePolicy::Adaptive);
        assert_eq!(GatePolicy::Reject.on_blocked(), OnBlocked::Reject);
        assert_eq!(GatePolicy::Reject.limiter(), Limiter::None);
        assert_eq!(
            GatePolicy::Autoscale.limiter(),
            Limiter::Autoscale(AutoscaleConfig::default())
        );
        assert_eq!(GatePolicy::Adaptive.on_blocked(), OnBlocked::Wait);
        assert_eq!(Limiter::default(), GatePolicy::Adaptive.limiter());
    }
}
