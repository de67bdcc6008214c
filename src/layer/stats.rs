//! A read-only view of a layer's state, for dashboards.

use std::sync::atomic::Ordering;
use std::time::Duration;

use super::policy::{Limiter, OnBlocked};
use super::shared::Shared;
use crate::status::{Resources, SystemInfo};

/// What a layer is doing now. Reading it takes the host map's lock once;
/// call it from a dashboard, not per request.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct LayerStats {
    /// What a request does while it may not go.
    pub on_blocked: OnBlocked,
    /// The limiter the layer moves, with its settings.
    pub limiter: Limiter,
    /// Resources overloaded in the current window that gate every request.
    pub gate: Resources,
    /// The snapshotter's latest judgement of the current window.
    pub status: Option<SystemInfo>,
    /// The concurrency limit, under `Autoscale`.
    pub desired_concurrency: Option<usize>,
    /// Requests holding a permit of the limit, under `Autoscale`.
    pub in_flight: Option<usize>,
    /// Requests refused by `Reject` since the layer was built.
    pub rejected: u64,
    /// Requests that had to wait for a paused host since the layer was built.
    pub host_waits: u64,
    /// Hosts tracked in the per-host map.
    pub tracked_hosts: usize,
    /// Hosts paused now, with the time left.
    pub paused_hosts: Vec<PausedHost>,
    /// Time hosts were paused since the layer was built, summed over hosts
    /// (a pause under way counts to its end).
    pub time_paused: Duration,
    /// The same per host, for the 20 most recently used hosts that were
    /// ever paused.
    pub time_paused_by_host: Vec<PausedTime>,
    /// Under `Adaptive`, the limits of the most recently used hosts (20 at
    /// most).
    pub adaptive_hosts: Vec<AdaptiveHost>,
    /// The fleet this layer shares its hosts with, if any (feature `redis`):
    /// connected or local, the lease rate, the last sync's age.
    #[cfg(feature = "redis")]
    pub fleet: Option<crate::fleet::FleetStats>,
}

/// One host's adaptive limits.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct AdaptiveHost {
    /// `host[:port]`, ASCII lowercase.
    pub host: String,
    /// Its concurrency limit.
    pub concurrency: usize,
    /// Its requests in flight.
    pub in_flight: usize,
    /// Its paced rate in requests per second, once a loss started pacing.
    pub rate: Option<f64>,
    /// The rate it is estimated to allow, once a loss gave an estimate.
    pub estimate: Option<f64>,
    /// Whether that estimate was measured (at the limit, or from the cycles
    /// between pauses) rather than a lower bound still being searched.
    pub estimate_measured: bool,
}

/// A host whose new requests wait (or are refused) for a while.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct PausedHost {
    /// `host[:port]`, or ASCII lowercase.
    pub host: String,
    /// Time left in the pause.
    pub remaining: Duration,
}

/// How long a host was paused in all.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct PausedTime {
    /// `host[:port]`, ASCII lowercase.
    pub host: String,
    /// Time paused since the layer was built.
    pub total: Duration,
}

impl LayerStats {
    pub(crate) fn of(shared: &Shared) -> Self {
        let now = shared.clock.precise_ms();
        let mut paused_hosts: Vec<PausedHost> = shared
            .hosts
            .paused(now)
            .into_iter()
            .map(|(host, ms)| PausedHost {
                host,
                remaining: Duration::from_millis(ms),
            })
            .collect();
        paused_hosts.sort_by_key(|p| std::cmp::Reverse(p.remaining));
        let at = tokio::time::Instant::now();
        let adaptive_hosts = shared
            .hosts
            .top(20)
            .into_iter()
            .filter_map(|(host, h)| {
                let s = h.existing_controller()?.snapshot(at);
                Some(AdaptiveHost {
                    host,
                    concurrency: s.concurrency,
                    in_flight: s.in_flight,
                    rate: s.rate,
                    estimate: s.estimate,
                    estimate_measured: s.measured,
                })
            })
            .collect();
        Self {
            on_blocked: shared.settings.on_blocked,
            limiter: shared.settings.limiter,
            gate: shared.gate(),
            status: shared.snapshotter.verdict().info,
            desired_concurrency: shared.limit.as_ref().map(|l| l.limit()),
            in_flight: shared.limit.as_ref().map(|l| l.in_flight()),
            rejected: shared.rejected.load(Ordering::Relaxed),
            host_waits: shared.host_waits.load(Ordering::Relaxed),
            tracked_hosts: shared.hosts.len(),
            paused_hosts,
            time_paused: Duration::from_millis(shared.time_paused_ms.load(Ordering::Relaxed)),
            time_paused_by_host: shared
                .hosts
                .paused_totals(20)
                .into_iter()
                .map(|(host, ms)| PausedTime {
                    host,
                    total: Duration::from_millis(ms),
                })
                .collect(),
            adaptive_hosts,
            #[cfg(feature = "redis")]
            fleet: shared.fleet.stats(),
        }
    }
}

/// The layer's gauges, read when the snapshotter takes a snapshot.
#[cfg(feature = "metrics")]
impl crate::integrations::metrics::Publish for Shared {
    fn verdict(&self, over: Resources) {
        self.metrics.verdict(over);
    }

    fn tick(&self) {
        let m = &self.metrics;
        m.verdict(self.snapshotter.overloaded());
        let now = self.clock.precise_ms();
        let paused = if now >= self.pause_horizon_ms() {
            0
        } else {
            self.hosts.paused(now).len()
        };
        m.paused_hosts(paused);
        if let Some(limit) = &self.limit {
            m.limit(limit.limit(), limit.in_flight());
        }
        if m.wants_host_limits() {
            let at = tokio::time::Instant::now();
            let limits: Vec<(String, usize, usize)> = self
                .hosts
                .top(usize::MAX)
                .into_iter()
                .filter_map(|(host, h)| {
                    let s = h.existing_controller()?.snapshot(at);
                    Some((host, s.concurrency, s.in_flight))
                })
                .collect();
            m.host_limits(limits.iter().map(|(h, l, f)| (h.as_str(), *l, *f)));
        }
    }
}
