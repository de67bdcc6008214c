//! The state every clone of one layer's services shares: admission, per-host
//! pauses, and what an answer changes.
//!
//! Just over 400 lines, a sixth of it comments: admission, pauses and
//! back-off read and write the same per-host state under one set of rules.

use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use http::{HeaderMap, StatusCode};

use super::fleet_link::FleetLink;
use super::forbidden::{self, ForbiddenRuns};
use super::hosts::{HostMap, HostName, HostState};
use super::limit::DynamicLimit;
use super::precise_wait::EXACT_BELOW;
use super::settings::LayerSettings;
use super::signal::Signal;
use crate::clock::CoarseClock;
use crate::integrations::metrics::{LayerMetrics, Setup};
use crate::probe::ClientRecorder;
use crate::retry_after::retry_after;
use crate::status::Resources;
use crate::Snapshotter;

/// Why a request cannot be admitted yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Blocked {
    /// These resources are overloaded and the `min_concurrency` floor is in use.
    Gate(Resources),
    /// The concurrency limit is in use.
    Limit,
}

/// What a request admitted under overload, or holding a permit of the
/// concurrency limit, gives back when it finishes. A request admitted
/// through an open gate holds none (`Option<Ticket>` is `None`).
///
/// A permit holds the limit in an `Arc` of its own, not the whole layer
/// state: cloning that `Arc` on every request would make each core rewrite
/// the cache line the hot path reads the layer's settings from.
#[derive(Debug)]
pub(crate) enum Ticket {
    /// Admitted under overload, within `min_concurrency`.
    Exempt(Arc<Shared>),
    /// A permit of the concurrency limit.
    Permit(Arc<DynamicLimit>),
}

impl Drop for Ticket {
    fn drop(&mut self) {
        match self {
            Ticket::Permit(limit) => limit.release(),
            Ticket::Exempt(shared) => {
                shared.exempt.fetch_sub(1, Ordering::SeqCst);
                shared.release.notify_one();
            }
        }
    }
}

/// How long after the last pause ends successes are still reported to the
/// host map, so a success can end a host's back-off.
pub(crate) const WATCH_MS: u64 = 5_000;

/// A host's back-off doubles at most this many times (to 8× the base).
const MAX_BACKOFF_DOUBLINGS: u32 = 3;

pub(crate) struct Shared {
    pub(crate) snapshotter: Snapshotter,
    pub(crate) clock: Arc<CoarseClock>,
    recorder: ClientRecorder,
    pub(crate) settings: LayerSettings,
    /// The resources whose overload gates every request: the machine's, plus
    /// the client window when per-host partitions are off.
    pub(crate) gate_mask: Resources,
    pub(crate) hosts: HostMap,
    /// Coarse ms until which some host may be paused; before it, calls look
    /// their host up, and for [`WATCH_MS`] after it their successes are
    /// reported (to end back-offs).
    pause_horizon_ms: AtomicU64,
    /// Runs of bare 403s: a block's refusals.
    forbidden: ForbiddenRuns,
    exempt: AtomicUsize,
    /// Woken (one at a time) when an exempt request or a permit is given back.
    pub(crate) release: Signal,
    pub(crate) limit: Option<Arc<DynamicLimit>>,
    next_autoscale_ms: AtomicU64,
    gate_closed: AtomicBool,
    pub(crate) rejected: AtomicU64,
    pub(crate) host_waits: AtomicU64,
    /// Milliseconds hosts were paused in all, summed over hosts.
    pub(crate) time_paused_ms: AtomicU64,
    /// The processes this layer shares its hosts with.
    pub(crate) fleet: FleetLink,
    /// Metric handles, registered when the layer is built (no-ops without
    /// the `metrics` feature or a recorder).
    pub(crate) metrics: LayerMetrics,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("on_blocked", &self.settings.on_blocked)
            .field("limiter", &self.settings.limiter)
            .field("gate_mask", &self.gate_mask)
            .finish_non_exhaustive()
    }
}

impl Shared {
    pub(crate) fn new(
        snapshotter: Snapshotter,
        settings: LayerSettings,
        #[cfg(feature = "redis")] fleet: Option<crate::fleet::Fleet>,
    ) -> Arc<Shared> {
        {
            let clock = Arc::clone(snapshotter.clock());
            let release = Signal::default();
            let limit = settings
                .autoscale()
                .map(|a| Arc::new(DynamicLimit::with_notify(a.desired_concurrency, release.clone())));
            let gate_mask = if settings.per_host {
                Resources::MACHINE
            } else {
                Resources::MACHINE | Resources::CLIENT
            };
            let interval = settings
                .autoscale()
                .map_or(0, |a| a.autoscale_interval.as_millis() as u64);
            let next_autoscale_ms = clock.now_ms() + interval;
            let metrics = LayerMetrics::new(Setup {
                per_host: settings.metrics_per_host && settings.per_host,
                max_hosts: settings.max_hosts,
                autoscale: settings.autoscale().is_some(),
                adaptive: settings.adaptive().is_some(),
            });
            let shared = Arc::new(Shared {
                recorder: snapshotter.client_recorder(),
                hosts: HostMap::new(NonZeroUsize::new(settings.max_hosts).unwrap_or(NonZeroUsize::MIN)),
                snapshotter,
                clock,
                gate_mask,
                pause_horizon_ms: AtomicU64::new(0),
                forbidden: ForbiddenRuns::default(),
                exempt: AtomicUsize::new(0),
                release,
                limit,
                next_autoscale_ms: AtomicU64::new(next_autoscale_ms),
                gate_closed: AtomicBool::new(false),
                rejected: AtomicU64::new(0),
                host_waits: AtomicU64::new(0),
                time_paused_ms: AtomicU64::new(0),
                #[cfg(feature = "redis")]
                fleet: FleetLink::new(fleet),
                #[cfg(not(feature = "redis"))]
                fleet: FleetLink,
                metrics,
                settings,
            });
            shared.snapshotter.metrics().attach(&shared);
            shared
        }
    }

    /// Coarse ms until which some host may be paused.
    #[inline]
    pub(crate) fn pause_horizon_ms(&self) -> u64 {
        self.pause_horizon_ms.load(Ordering::Relaxed)
    }

    /// Coarse ms for [`WATCH_MS`] after which successes are reported to
    /// the host map: the pause horizon, or the latest bare 403 if later
    /// (a success ends its host's run of them).
    #[inline]
    pub(crate) fn watch_horizon_ms(&self) -> u64 {
        self.pause_horizon_ms().max(self.forbidden.latest_ms())
    }

    /// A bare 403 from `name`: whether it is a block's refusal, the host
    /// having answered nothing else for a run long for its share of them
    /// (`forbidden.rs`).
    pub(crate) fn forbidden(&self, name: &HostName) -> bool {
        let host = self.hosts.get_or_insert(name);
        let unwatched = self.settings.adaptive().is_none();
        self.forbidden.forbidden(&host, self.clock.now_ms(), unwatched)
    }

    /// The overloaded resources that gate every request now.
    #[inline]
    pub(crate) fn gate(&self) -> Resources {
        self.snapshotter.overloaded().intersection(self.gate_mask)
    }

    /// Admits a request now, or says what it waits for.
    #[inline]
    pub(crate) fn try_admit(self: &Arc<Self>) -> Result<Option<Ticket>, Blocked> {
        let over = self.gate();
        if let Some(limit) = &self.limit {
            self.maybe_autoscale(limit);
            if over.is_empty() {
                self.note_open();
                return if limit.try_acquire() {
                    Ok(Some(Ticket::Permit(Arc::clone(limit))))
                } else {
                    Err(Blocked::Limit)
                };
            }
            self.note_closed(over);
            return if limit.try_acquire_below(self.settings.min_concurrency) {
                Ok(Some(Ticket::Permit(Arc::clone(limit))))
            } else {
                Err(Blocked::Gate(over))
            };
        }
        if over.is_empty() {
            self.note_open();
            return Ok(None);
        }
        self.note_closed(over);
        let min = self.settings.min_concurrency;
        if self
            .exempt
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| (n < min).then_some(n + 1))
            .is_ok()
        {
            Ok(Some(Ticket::Exempt(Arc::clone(self))))
        } else {
            Err(Blocked::Gate(over))
        }
    }

    #[inline(always)]
    fn note_open(&self) {
        if self.gate_closed.load(Ordering::Relaxed) {
            self.note_reopened();
        }
    }

    #[cold]
    fn note_reopened(&self) {
        if self.gate_closed.swap(false, Ordering::Relaxed) {
            tracing::info!(status = ?self.snapshotter.verdict().info.map(|i| i.to_string()), "gate opened");
        }
    }

    #[cold]
    fn note_closed(&self, over: Resources) {
        if !self.gate_closed.swap(true, Ordering::Relaxed) {
            let info = self.snapshotter.verdict().info;
            tracing::warn!(
                overloaded = %over,
                status = ?info.map(|i| i.to_string()),
                limiter = ?self.settings.limiter,
                "gate closed"
            );
        }
    }

    fn maybe_autoscale(&self, limit: &DynamicLimit) {
        let Some(autoscale) = self.settings.autoscale() else {
            return;
        };
        let now = self.clock.now_ms();
        let next = self.next_autoscale_ms.load(Ordering::Relaxed);
        if now < next {
            return;
        }
        let interval = autoscale.autoscale_interval.as_millis() as u64;
        if self
            .next_autoscale_ms
            .compare_exchange(next, now + interval, Ordering::AcqRel, Ordering::Relaxed)
            .is_err()
        {
            return;
        }
        self.autoscale_step(limit);
    }

    /// One tick of Crawlee's autoscaling, judged on the historical status.
    pub(crate) fn autoscale_step(&self, limit: &DynamicLimit) {
        let Some(autoscale) = self.settings.autoscale() else {
            return;
        };
        let Ok(info) = self.snapshotter.system_status().historical() else {
            return;
        };
        let idle = info.overloaded().intersection(self.gate_mask).is_empty();
        let desired = limit.limit();
        let next = autoscale.step(desired, limit.in_flight(), idle, self.settings.min_concurrency);
        if next != desired {
            tracing::debug!(from = desired, to = next, idle, status = %info, "desired concurrency changed");
            limit.set_limit(next);
        }
    }

    /// The host a call goes to, if it is paused now.
    #[inline]
    pub(crate) fn paused_host(&self, now_ms: u64, name: &HostName) -> Option<(Arc<HostState>, u64)> {
        if now_ms >= self.pause_horizon_ms.load(Ordering::Relaxed) {
            // No pause of this process's own: one another process recorded?
            let left = self
                .fleet
                .paused_ms(name, now_ms, |until_ms| self.pause_host(name, now_ms, until_ms))?;
            return Some((self.hosts.get_or_insert(name), left));
        }
        self.paused_host_slow(name)
    }

    /// Pauses `name` from `now_ms` until `until_ms` (a pause only grows).
    /// Returns the host if its pause grew.
    pub(crate) fn pause_host(&self, name: &HostName, now_ms: u64, until_ms: u64) -> Option<Arc<HostState>> {
        let host = self.hosts.get_or_insert(name);
        self.extend_pause(&host, now_ms, until_ms).then_some(host)
    }

    /// Extends `host`'s pause to `until_ms` and, if it grew, counts the
    /// time added and moves the layer's pause horizon. Returns whether it
    /// grew.
    fn extend_pause(&self, host: &HostState, now_ms: u64, until_ms: u64) -> bool {
        let Some(added) = host.pause_until(now_ms, until_ms) else {
            return false;
        };
        self.time_paused_ms.fetch_add(added, Ordering::Relaxed);
        self.pause_horizon_ms.fetch_max(until_ms, Ordering::AcqRel);
        true
    }

    #[cold]
    fn paused_host_slow(&self, name: &HostName) -> Option<(Arc<HostState>, u64)> {
        let host = self.hosts.get(name)?;
        let left = host.remaining_ms(self.clock.precise_ms());
        (left > 0).then_some((host, left))
    }

    /// What an answer changes: counts it, and pauses its host on a 429 or 503
    /// with `Retry-After`, or backs the host off on a counted status without
    /// one.
    /// Returns the pause `Retry-After` asked for (capped), if any.
    pub(crate) fn on_answer(
        &self,
        name: &HostName,
        sent_ms: u64,
        status: StatusCode,
        headers: &HeaderMap,
    ) -> Option<Duration> {
        if status.is_success() {
            // A success from a host that was backing off ends the back-off.
            if let Some(host) = self.hosts.get(name) {
                host.backoff_level.store(0, Ordering::Relaxed);
                forbidden::accepted(&host);
            }
            return None;
        }
        let counted = self.settings.counted.contains(&status);
        if counted {
            self.recorder.record_error();
        }
        let hinted = status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::SERVICE_UNAVAILABLE;
        if !counted && !hinted {
            return None;
        }
        let hint = if hinted && !self.settings.max_retry_after.is_zero() {
            let asked = retry_after(headers, SystemTime::now()).map(|d| d.min(self.settings.max_retry_after));
            self.fleet.pause_asked(asked)
        } else {
            None
        };
        if hint.is_none() && !counted {
            return None;
        }
        let host = self.hosts.get_or_insert(name);
        if counted {
            host.errors.fetch_add(1, Ordering::Relaxed);
        }
        if hint.is_some_and(|d| d < EXACT_BELOW) && self.settings.adaptive().is_some() {
            // An exact wait under a second is the host's next slot, which
            // its adaptive controller holds the next send to. Paused here
            // too, the host's sends were spaced by the pause and not the
            // pace, whose search read itself as not binding and climbed
            // (Traefik's 3/s with a burst of 50: paced at 300/s, every
            // other request refused).
            return hint;
        }
        let now = self.clock.precise_ms();
        let wait = match hint {
            Some(d) => d,
            None => self.backoff(&host, sent_ms)?,
        };
        let until = now.saturating_add(wait.as_millis() as u64);
        let was_paused = host.remaining_ms(now) > 0;
        if self.extend_pause(&host, now, until) {
            if !was_paused {
                self.metrics.pause_started(name.as_str());
            }
            if hint.is_some() {
                self.fleet.publish_pause(name, wait);
            }
            tracing::info!(
                host = name.as_str(),
                wait_ms = wait.as_millis() as u64,
                retry_after = hint.is_some(),
                status = status.as_u16(),
                "host paused"
            );
        }
        hint
    }

    /// The back-off after a counted answer without `Retry-After`: doubling
    /// from `host_backoff` on fresh evidence (a request sent after the
    /// current pause began) until a success, at most 8× the base and
    /// `max_retry_after`.
    /// `None` when the answer belongs to a pause already under way, or
    /// back-off is off.
    fn backoff(&self, host: &HostState, sent_ms: u64) -> Option<Duration> {
        // Zero under `Adaptive`: the controller is the back-off, it cuts
        // the host's rate on each loss, and a pause on top would idle the
        // host (only `Retry-After` still pauses it).
        let base = self.settings.host_backoff();
        if base.is_zero() {
            return None;
        }
        let until = host.paused_until_ms.load(Ordering::Acquire);
        let started = host.pause_started_ms.load(Ordering::Acquire);
        // Sent before the latest pause began, or in the millisecond it began
        // (a send that had seen the pause would have waited for it): that
        // pause already answers for it, even when the answer arrives after
        // the pause ended. One back-off step per round of concurrent
        // requests, not one per request.
        if until > 0 && sent_ms <= started {
            return None;
        }
        // Doubles per consecutive counted answer; a success in between
        // (see `on_answer`) starts again from the base.
        let level = host
            .backoff_level
            .fetch_add(1, Ordering::Relaxed)
            .saturating_add(1);
        let cap = if self.settings.max_retry_after.is_zero() {
            Duration::from_secs(60)
        } else {
            self.settings.max_retry_after
        };
        // At most 8× the base: a back-off that misjudged its evidence (an
        // open-loop burst after a pause, a slow answer) must not stall the
        // host for the full `max_retry_after`.
        let factor = 1u32 << level.saturating_sub(1).min(MAX_BACKOFF_DOUBLINGS);
        Some(base.saturating_mul(factor).min(cap))
    }
}
