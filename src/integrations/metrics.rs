//! Counters and gauges through the [`metrics`](https://docs.rs/metrics)
//! facade, with the `metrics` feature.
//!
//! Over 400 lines: the feature's two builds of one interface (`on` and
//! `off`, the second all no-ops) and the metric table in these docs; split,
//! the two would drift apart.
//!
//! The crate installs no recorder: the application installs one (an
//! exporter such as `metrics-exporter-prometheus`) **before it builds the
//! layer**. A [`SnapshotLayer`](crate::SnapshotLayer) registers its metric
//! handles (and describes its metrics) once, when it is built, and keeps
//! them in its shared state, so a request only increments a handle; a layer
//! built before the recorder was installed holds no-op handles and reports
//! nothing. Without a recorder every handle is a no-op; without the feature
//! none of this is compiled in.
//!
//! # Metrics
//!
//! | name | kind | labels | meaning |
//! | --- | --- | --- | --- |
//! | `tower_snapshotter_requests_admitted_total` | counter | | requests the layer sent to the inner service at once: the gate let them through and their host was neither paused nor paced |
//! | `tower_snapshotter_requests_waited_total` | counter | | requests held in their response future because their host was paused (`Retry-After`, back-off) or paced (the adaptive limiter); sent when it may go, unless dropped first |
//! | `tower_snapshotter_requests_rejected_total` | counter | | requests refused with [`Overloaded`](crate::layer::error::Overloaded) ([`OnBlocked::Reject`](crate::OnBlocked::Reject)) without reaching the inner service |
//! | `tower_snapshotter_answers_total` | counter | `class`; `host` (opt-in) | what came back, by `class`: `2xx`; `429`; `503`; `error` (any other 4xx or 5xx); `inner_error` (the inner service failed: timeout, refused connection, …); `other` (1xx, 3xx) |
//! | `tower_snapshotter_host_pauses_total` | counter | `host` (opt-in) | pauses of a host that begin: on `Retry-After` (429, 503), or the back-off after a counted answer without one; an answer that only extends a pause under way is not counted |
//! | `tower_snapshotter_overloaded` | gauge | `resource`: `cpu`, `memory`, `event_loop`, `client` | 1 while the snapshotter's verdict on the current window finds the resource overloaded, else 0 |
//! | `tower_snapshotter_concurrency_limit` | gauge | none under [`Limiter::Autoscale`](crate::Limiter::Autoscale); `host` under [`Limiter::Adaptive`](crate::Limiter::Adaptive), opt-in only | the concurrency limit the limiter moves |
//! | `tower_snapshotter_in_flight` | gauge | as `concurrency_limit` | requests holding a permit of that limit |
//! | `tower_snapshotter_paused_hosts` | gauge | | hosts whose pause is under way |
//!
//! Each call of the service counts once in `admitted`, `waited` or
//! `rejected`. A request held in `poll_ready` by the machine's gate is not
//! a call yet: it counts when the gate lets it through and it is called.
//! Every call that reached the inner service counts once in
//! `answers_total` (a waiting request dropped before it was sent, or whose
//! inner service failed to become ready, has no answer).
//!
//! The `overloaded` gauges are set each time the snapshotter takes a
//! snapshot (and cleared when it stops); `concurrency_limit`, `in_flight`
//! and `paused_hosts` are read from the layer each time the snapshotter
//! takes its client snapshot (every `client_snapshot_interval`, 1 s by
//! default) and once when the layer is built. So the gauges move while the
//! snapshotter is active (start it, or build the layer with
//! [`start_snapshotter`](crate::layer::SnapshotLayerBuilder::start_snapshotter)),
//! and never on the request path. `concurrency_limit` and `in_flight` are
//! reported only under `Autoscale`, or under `Adaptive` with per-host labels.
//!
//! # Per-host labels
//!
//! Off by default: `SnapshotLayerBuilder::metrics_per_host(true)` (a
//! setter of the `metrics` feature) adds a `host` label (the authority,
//! ASCII lowercase, e.g.
//! `example.com:8080`) to `answers_total`, `host_pauses_total`, and (under
//! `Adaptive`) `concurrency_limit` and `in_flight`; those series then carry
//! no unlabelled twin. To keep the number of series bounded, at most
//! [`max_hosts`](crate::layer::SnapshotLayerBuilder::max_hosts) distinct
//! hosts get a label of their own over the layer's life; later ones share
//! `host="<other>"` ([`OTHER_HOSTS`]; `<` cannot appear in an authority).
//! A host's series are registered when it is first seen, with the
//! recorder installed then, and it costs a lock and a hash lookup per
//! answer. Ignored when the layer's per-host partitions are off
//! ([`per_host(false)`](crate::layer::SnapshotLayerBuilder::per_host)).
//!
//! The labels name no layer: the layers of one process share series
//! (counters add up; a gauge holds whichever layer set it last).
//!
//! # Example
//!
//! ```
//! # #[cfg(feature = "metrics")] {
//! use metrics_exporter_prometheus::PrometheusBuilder;
//! use tower_snapshotter::{Config, SnapshotLayer, Snapshotter};
//!
//! // An application installs its recorder globally, first thing
//! // (`PrometheusBuilder::new().install()` also serves it over HTTP).
//! // Here it is installed for this thread only.
//! let recorder = PrometheusBuilder::new().build_recorder();
//! let handle = recorder.handle();
//! let layer = metrics::with_local_recorder(&recorder, || {
//!     SnapshotLayer::builder(Snapshotter::new(Config::default()))
//!         .metrics_per_host(true)
//!         .build()
//! })
//! .unwrap();
//! assert!(handle.render().contains("tower_snapshotter_paused_hosts 0"));
//! # drop(layer);
//! # }
//! ```

use crate::status::Resources;

/// `tower_snapshotter_requests_admitted_total`: requests sent at once.
pub const REQUESTS_ADMITTED: &str = "tower_snapshotter_requests_admitted_total";
/// `tower_snapshotter_requests_waited_total`: requests held for their host.
pub const REQUESTS_WAITED: &str = "tower_snapshotter_requests_waited_total";
/// `tower_snapshotter_requests_rejected_total`: requests refused.
pub const REQUESTS_REJECTED: &str = "tower_snapshotter_requests_rejected_total";
/// `tower_snapshotter_answers_total`: answers and inner errors by `class`.
pub const ANSWERS: &str = "tower_snapshotter_answers_total";
/// `tower_snapshotter_host_pauses_total`: pauses of a host that begin.
pub const HOST_PAUSES: &str = "tower_snapshotter_host_pauses_total";
/// `tower_snapshotter_overloaded`: the verdict per `resource`, 1 or 0.
pub const OVERLOADED: &str = "tower_snapshotter_overloaded";
/// `tower_snapshotter_concurrency_limit`: the limiter's concurrency limit.
pub const CONCURRENCY_LIMIT: &str = "tower_snapshotter_concurrency_limit";
/// `tower_snapshotter_in_flight`: requests holding a permit of the limit.
pub const IN_FLIGHT: &str = "tower_snapshotter_in_flight";
/// `tower_snapshotter_paused_hosts`: hosts paused now.
pub const PAUSED_HOSTS: &str = "tower_snapshotter_paused_hosts";
/// The `host` label shared by the hosts seen after the first `max_hosts`.
pub const OTHER_HOSTS: &str = "<other>";

/// The `class` of an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AnswerClass {
    Success = 0,
    TooManyRequests = 1,
    Unavailable = 2,
    Error = 3,
    InnerError = 4,
    Other = 5,
}

impl AnswerClass {
    /// The class of an answer with `status`.
    #[inline]
    pub(crate) fn of(status: http::StatusCode) -> Self {
        match status.as_u16() {
            200..=299 => Self::Success,
            429 => Self::TooManyRequests,
            503 => Self::Unavailable,
            400..=599 => Self::Error,
            _ => Self::Other,
        }
    }
}

/// What a layer's metrics depend on, from its settings.
#[derive(Debug, Clone, Copy)]
#[cfg_attr(not(feature = "metrics"), allow(dead_code))]
pub(crate) struct Setup {
    /// Per-host labels: opted in, and the layer keeps per-host partitions.
    pub(crate) per_host: bool,
    /// Hosts that get a label of their own.
    pub(crate) max_hosts: usize,
    /// Under `Limiter::Autoscale`: one limit for the layer.
    pub(crate) autoscale: bool,
    /// Under `Limiter::Adaptive`: a limit per host.
    pub(crate) adaptive: bool,
}

#[cfg(feature = "metrics")]
pub(crate) use on::{LayerMetrics, Publish, Publishers};

#[cfg(not(feature = "metrics"))]
pub(crate) use off::{LayerMetrics, Publishers};

#[cfg(feature = "metrics")]
mod on {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};

    use metrics::{Counter, Gauge, SharedString, Unit};

    use super::*;

    /// The values of the `class` label of [`ANSWERS`], in [`AnswerClass`] order.
    const CLASSES: [&str; 6] = ["2xx", "429", "503", "error", "inner_error", "other"];

    /// The values of the `resource` label of [`OVERLOADED`], with their bits.
    const RESOURCES: [(Resources, &str); 4] = [
        (Resources::CPU, "cpu"),
        (Resources::MEMORY, "memory"),
        (Resources::EVENT_LOOP, "event_loop"),
        (Resources::CLIENT, "client"),
    ];

    fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
        m.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Describes every metric to the recorder installed now.
    fn describe() {
        metrics::describe_counter!(
            REQUESTS_ADMITTED,
            Unit::Count,
            "Requests sent to the inner service at once"
        );
        metrics::describe_counter!(
            REQUESTS_WAITED,
            Unit::Count,
            "Requests held in their response future for a paused or paced host"
        );
        metrics::describe_counter!(
            REQUESTS_REJECTED,
            Unit::Count,
            "Requests refused with Overloaded without reaching the inner service"
        );
        metrics::describe_counter!(
            ANSWERS,
            Unit::Count,
            "Answers by class (2xx, 429, 503, error, inner_error, other)"
        );
        metrics::describe_counter!(HOST_PAUSES, Unit::Count, "Pauses of a host that began");
        metrics::describe_gauge!(
            OVERLOADED,
            "1 while the snapshotter finds the resource overloaded, else 0"
        );
        metrics::describe_gauge!(CONCURRENCY_LIMIT, Unit::Count, "The limiter's concurrency limit");
        metrics::describe_gauge!(IN_FLIGHT, Unit::Count, "Requests holding a permit of the limit");
        metrics::describe_gauge!(PAUSED_HOSTS, Unit::Count, "Hosts whose pause is under way");
    }

    /// A layer's metric handles, registered when it is built.
    pub(crate) struct LayerMetrics {
        admitted: Counter,
        waited: Counter,
        rejected: Counter,
        /// By class, without a host label.
        answers: [Counter; 6],
        pauses: Counter,
        overloaded: [Gauge; 4],
        paused_hosts: Gauge,
        /// The limit and the requests in flight under `Autoscale`.
        limit: Option<[Gauge; 2]>,
        /// Per-host handles, when opted in.
        hosts: Option<HostLabels>,
    }

    impl std::fmt::Debug for LayerMetrics {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("LayerMetrics")
                .field("per_host", &self.hosts.is_some())
                .finish_non_exhaustive()
        }
    }

    impl LayerMetrics {
        /// Describes the metrics and registers the handles, with the
        /// recorder installed now.
        pub(crate) fn new(setup: Setup) -> Self {
            describe();
            Self {
                admitted: metrics::counter!(REQUESTS_ADMITTED),
                waited: metrics::counter!(REQUESTS_WAITED),
                rejected: metrics::counter!(REQUESTS_REJECTED),
                // With per-host labels, registered per host instead.
                answers: if setup.per_host {
                    CLASSES.map(|_| Counter::noop())
                } else {
                    CLASSES.map(|class| metrics::counter!(ANSWERS, "class" => class))
                },
                pauses: if setup.per_host {
                    Counter::noop()
                } else {
                    metrics::counter!(HOST_PAUSES)
                },
                overloaded: RESOURCES.map(|(_, name)| metrics::gauge!(OVERLOADED, "resource" => name)),
                paused_hosts: metrics::gauge!(PAUSED_HOSTS),
                limit: setup
                    .autoscale
                    .then(|| [metrics::gauge!(CONCURRENCY_LIMIT), metrics::gauge!(IN_FLIGHT)]),
                hosts: setup.per_host.then(|| HostLabels {
                    cap: setup.max_hosts,
                    adaptive: setup.adaptive,
                    map: Mutex::new(HashMap::new()),
                    other: Arc::new(HostHandles::new(OTHER_HOSTS)),
                }),
            }
        }

        /// A call went to the inner service at once.
        #[inline]
        pub(crate) fn admitted(&self) {
            self.admitted.increment(1);
        }

        /// A call waits for its host.
        #[inline]
        pub(crate) fn waited(&self) {
            self.waited.increment(1);
        }

        /// A call was refused.
        #[inline]
        pub(crate) fn rejected(&self) {
            self.rejected.increment(1);
        }

        /// An answer (or an inner error) of `class` from `host`.
        #[inline]
        pub(crate) fn answered(&self, class: AnswerClass, host: &str) {
            match &self.hosts {
                None => self.answers[class as usize].increment(1),
                Some(hosts) => hosts.of(host).answer(class).increment(1),
            }
        }

        /// A pause of `host` began.
        pub(crate) fn pause_started(&self, host: &str) {
            match &self.hosts {
                None => self.pauses.increment(1),
                Some(hosts) => hosts.of(host).pauses().increment(1),
            }
        }

        /// The snapshotter's verdict: which resources are overloaded.
        pub(crate) fn verdict(&self, over: Resources) {
            for (gauge, (resource, _)) in self.overloaded.iter().zip(RESOURCES) {
                gauge.set(if over.contains(resource) { 1.0 } else { 0.0 });
            }
        }

        /// Hosts paused now.
        pub(crate) fn paused_hosts(&self, n: usize) {
            self.paused_hosts.set(n as f64);
        }

        /// The `Autoscale` limit and the requests holding its permits.
        pub(crate) fn limit(&self, limit: usize, in_flight: usize) {
            if let Some([l, f]) = &self.limit {
                l.set(limit as f64);
                f.set(in_flight as f64);
            }
        }

        /// Whether [`host_limits`](Self::host_limits) reports anything.
        pub(crate) fn wants_host_limits(&self) -> bool {
            self.hosts.as_ref().is_some_and(|h| h.adaptive)
        }

        /// The adaptive limit and in-flight count of every host tracked
        /// now; a labelled host not among them (forgotten by the host map)
        /// goes to 0, and the hosts sharing `<other>` add up.
        pub(crate) fn host_limits<'a>(&self, tracked: impl IntoIterator<Item = (&'a str, usize, usize)>) {
            let Some(hosts) = self.hosts.as_ref().filter(|h| h.adaptive) else {
                return;
            };
            let mut sums: HashMap<*const HostHandles, (Arc<HostHandles>, usize, usize)> = HashMap::new();
            for (name, limit, in_flight) in tracked {
                let h = hosts.of(name);
                let e = sums.entry(Arc::as_ptr(&h)).or_insert((h, 0, 0));
                e.1 += limit;
                e.2 += in_flight;
            }
            let labelled: Vec<Arc<HostHandles>> = lock(&hosts.map).values().cloned().collect();
            for h in labelled.iter().chain(std::iter::once(&hosts.other)) {
                match sums.get(&Arc::as_ptr(h)) {
                    Some((_, limit, in_flight)) => h.set_limits(*limit, *in_flight),
                    None => {
                        // Never reported: leave it unregistered.
                        if h.limits.get().is_some() {
                            h.set_limits(0, 0);
                        }
                    }
                }
            }
        }
    }

    /// The hosts with labels of their own, at most `cap`, and `<other>`.
    struct HostLabels {
        cap: usize,
        adaptive: bool,
        map: Mutex<HashMap<Box<str>, Arc<HostHandles>>>,
        other: Arc<HostHandles>,
    }

    impl HostLabels {
        /// The handles `host` reports through: its own, or `<other>` once
        /// `cap` hosts have labels.
        fn of(&self, host: &str) -> Arc<HostHandles> {
            let mut map = lock(&self.map);
            if let Some(h) = map.get(host) {
                return Arc::clone(h);
            }
            if map.len() >= self.cap {
                return Arc::clone(&self.other);
            }
            let h = Arc::new(HostHandles::new(host));
            map.insert(host.into(), Arc::clone(&h));
            h
        }
    }

    /// One `host` label's handles, each registered on first use.
    struct HostHandles {
        host: SharedString,
        answers: [OnceLock<Counter>; 6],
        pauses: OnceLock<Counter>,
        limits: OnceLock<[Gauge; 2]>,
    }

    impl HostHandles {
        fn new(host: &str) -> Self {
            Self {
                host: SharedString::from(host.to_owned()),
                answers: Default::default(),
                pauses: OnceLock::new(),
                limits: OnceLock::new(),
            }
        }

        fn answer(&self, class: AnswerClass) -> &Counter {
            self.answers[class as usize].get_or_init(|| {
                metrics::counter!(ANSWERS, "class" => CLASSES[class as usize], "host" => self.host.clone())
            })
        }

        fn pauses(&self) -> &Counter {
            self.pauses
                .get_or_init(|| metrics::counter!(HOST_PAUSES, "host" => self.host.clone()))
        }

        fn set_limits(&self, limit: usize, in_flight: usize) {
            let [l, f] = self.limits.get_or_init(|| {
                [
                    metrics::gauge!(CONCURRENCY_LIMIT, "host" => self.host.clone()),
                    metrics::gauge!(IN_FLIGHT, "host" => self.host.clone()),
                ]
            });
            l.set(limit as f64);
            f.set(in_flight as f64);
        }
    }

    /// What the snapshotter tells each layer built on it.
    pub(crate) trait Publish: Send + Sync {
        /// A snapshot was taken: `over` is the verdict now.
        fn verdict(&self, over: Resources);
        /// The client snapshot was taken: time to read the layer's gauges.
        fn tick(&self);
    }

    /// The layers built on a snapshotter, held weakly: a dropped layer is
    /// forgotten at the next snapshot.
    pub(crate) struct Publishers {
        layers: Mutex<Vec<Weak<dyn Publish>>>,
    }

    impl std::fmt::Debug for Publishers {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("Publishers")
                .field("layers", &lock(&self.layers).len())
                .finish()
        }
    }

    impl Publishers {
        pub(crate) fn new() -> Self {
            Self {
                layers: Mutex::new(Vec::new()),
            }
        }

        /// Adds a layer and sets its gauges once.
        pub(crate) fn attach<P: Publish + 'static>(&self, layer: &Arc<P>) {
            let weak: Weak<dyn Publish> = Arc::downgrade(layer) as Weak<dyn Publish>;
            {
                let mut layers = lock(&self.layers);
                layers.retain(|w| w.strong_count() > 0);
                layers.push(weak);
            }
            layer.tick();
        }

        /// Tells every layer the verdict.
        pub(crate) fn verdict(&self, over: Resources) {
            self.each(|p| p.verdict(over));
        }

        /// Lets every layer read its gauges.
        pub(crate) fn tick(&self) {
            self.each(|p| p.tick());
        }

        fn each(&self, f: impl Fn(&dyn Publish)) {
            lock(&self.layers).retain(|w| match w.upgrade() {
                Some(p) => {
                    f(&*p);
                    true
                }
                None => false,
            });
        }
    }
}

/// Without the feature: the same calls, doing nothing.
#[cfg(not(feature = "metrics"))]
mod off {
    use std::sync::Arc;

    use super::{AnswerClass, Resources, Setup};

    #[derive(Debug)]
    pub(crate) struct LayerMetrics;

    impl LayerMetrics {
        #[inline]
        pub(crate) fn new(_: Setup) -> Self {
            Self
        }
        #[inline]
        pub(crate) fn admitted(&self) {}
        #[inline]
        pub(crate) fn waited(&self) {}
        #[inline]
        pub(crate) fn rejected(&self) {}
        #[inline]
        pub(crate) fn answered(&self, _: AnswerClass, _: &str) {}
        #[inline]
        pub(crate) fn pause_started(&self, _: &str) {}
    }

    #[derive(Debug)]
    pub(crate) struct Publishers;

    impl Publishers {
        #[inline]
        pub(crate) fn new() -> Self {
            Self
        }
        #[inline]
        pub(crate) fn attach<P>(&self, _: &Arc<P>) {}
        #[inline]
        pub(crate) fn verdict(&self, _: Resources) {}
        #[inline]
        pub(crate) fn tick(&self) {}
    }
}
