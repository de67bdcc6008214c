use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;
use tower_layer::Layer;

use super::policy::{GatePolicy, Limiter, OnBlocked};
use super::service::SnapshotService;
use super::settings::LayerSettings;
use super::shard::Shards;
use super::shared::Shared;
use super::stats::LayerStats;
use crate::config::ConfigError;
use crate::Snapshotter;

/// Applies [`SnapshotService`] to a service: backpressure from a
/// [`Snapshotter`].
///
/// Every service this layer makes shares one state, and any number of
/// layers may share one snapshotter. Start the snapshotter (or let the layer
/// do it, see [`SnapshotLayerBuilder::start_snapshotter`]) for the machine's
/// verdicts to apply; per-host pauses work either way.
///
/// ```
/// use std::time::Duration;
/// use tower::{ServiceBuilder, ServiceExt};
/// use tower_snapshotter::{Config, GatePolicy, SnapshotLayer, Snapshotter};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_snapshotter::BoxError> {
/// let snapshotter = Snapshotter::new(Config::default());
/// snapshotter.start()?;
/// let layer = SnapshotLayer::builder(snapshotter)
///     .policy(GatePolicy::Wait)
///     .max_retry_after(Duration::from_secs(30))
///     .build()?;
/// let client = ServiceBuilder::new()
///     .layer(layer)
///     .timeout(Duration::from_secs(10))
///     .service_fn(|_req: http::Request<()>| async {
///         Ok::<_, std::convert::Infallible>(http::Response::new(()))
///     });
/// let response = client.oneshot(http::Request::get("http://example.com/").body(())?).await?;
/// assert_eq!(response.status(), 200);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct SnapshotLayer {
    shared: Arc<Shared>,
    shards: Arc<Shards>,
}

impl SnapshotLayer {
    /// A layer with the default settings: `Adaptive`, 429 counted, per-host
    /// partitions on.
    pub fn new(snapshotter: Snapshotter) -> Self {
        Self::of(Shared::new(
            snapshotter,
            LayerSettings::default(),
            #[cfg(feature = "redis")]
            None,
        ))
    }

    fn of(shared: Arc<Shared>) -> Self {
        let shards = Shards::new(&shared);
        Self { shared, shards }
    }

    /// A builder for the other settings.
    pub fn builder(snapshotter: Snapshotter) -> SnapshotLayerBuilder {
        SnapshotLayerBuilder {
            snapshotter,
            settings: LayerSettings::default(),
            start: false,
            #[cfg(feature = "redis")]
            fleet: None,
        }
    }

    /// What the layer is doing now, for dashboards.
    pub fn stats(&self) -> LayerStats {
        LayerStats::of(&self.shared)
    }

    /// The snapshotter behind this layer.
    pub fn snapshotter(&self) -> &Snapshotter {
        &self.shared.snapshotter
    }
}

impl<S> Layer<S> for SnapshotLayer {
    type Service = SnapshotService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SnapshotService::new(inner, Arc::clone(&self.shared), Arc::clone(&self.shards))
    }
}

impl fmt::Debug for SnapshotLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SnapshotLayer")
            .field("settings", &self.shared.settings)
            .finish()
    }
}

/// Settings of a [`SnapshotLayer`]; [`build`](Self::build) validates them.
#[derive(Debug, Clone)]
pub struct SnapshotLayerBuilder {
    snapshotter: Snapshotter,
    settings: LayerSettings,
    start: bool,
    #[cfg(feature = "redis")]
    fleet: Option<crate::fleet::Fleet>,
}

impl SnapshotLayerBuilder {
    /// Sets [`on_blocked`](Self::on_blocked) and [`limiter`](Self::limiter)
    /// to a usual pair, the limiter with its default settings
    /// ([`GatePolicy::Adaptive`]).
    pub fn policy(mut self, policy: GatePolicy) -> Self {
        self.settings.on_blocked = policy.on_blocked();
        self.settings.limiter = policy.limiter();
        self
    }

    crate::setters::setters! {
        /// What a request does while it may not go ([`OnBlocked::Wait`]).
        ///
        /// ```
        /// use tower_snapshotter::layer::{AdaptiveConfig, Limiter, OnBlocked};
        /// use tower_snapshotter::{Config, SnapshotLayer, Snapshotter};
        ///
        /// // A server's outbound calls: adaptive per-host limits, and a call
        /// // that would have to wait fails at once for the caller's fallback.
        /// let layer = SnapshotLayer::builder(Snapshotter::new(Config::default()))
        ///     .on_blocked(OnBlocked::Reject)
        ///     .limiter(Limiter::Adaptive(AdaptiveConfig::default()))
        ///     .build()?;
        /// # Ok::<(), tower_snapshotter::ConfigError>(())
        /// ```
        pub on_blocked: OnBlocked => settings.on_blocked;
        /// The limiter the layer moves, with its settings
        /// ([`Limiter::Adaptive`] with the default settings).
        pub limiter: Limiter => settings.limiter;
        /// Requests admitted under overload that may be in flight at once, so
        /// a client never freezes (1; 0 allows a full stop).
        pub min_concurrency: usize => settings.min_concurrency;
        /// Longest pause a `Retry-After` can impose (60 s); 0 ignores the
        /// header. A spent quota (`X-RateLimit-Remaining: 0`, `RateLimit`
        /// with `r=0`) holds its host until its reset, but no longer than
        /// this either: then one request finds out whether it is spent
        /// still. Raise it to wait out hourly quotas in one hold.
        pub max_retry_after: Duration => settings.max_retry_after;
        /// Whether 429s and `Retry-After` slow only their own host (true).
        /// When off, the client window gates every request and a
        /// `Retry-After` pauses all of them.
        pub per_host: bool => settings.per_host;
        /// Hosts tracked at most; the least recently used are forgotten
        /// (10 000).
        pub max_hosts: usize => settings.max_hosts;
        /// Start the snapshotter on `build` if it is not active (needs a
        /// tokio runtime then).
        pub start_snapshotter: bool => start;
        /// Whether the per-host metrics carry a `host` label (false): at
        /// most `max_hosts` distinct hosts get one, later ones share
        /// `host="<other>"`. See [`integrations::metrics`](crate::integrations::metrics).
        #[cfg(feature = "metrics")]
        #[cfg_attr(docsrs, doc(cfg(feature = "metrics")))]
        pub metrics_per_host: bool => settings.metrics_per_host;
    }

    /// First pause of a host after a counted answer without
    /// `Retry-After`, doubling while they continue, up to 8× (500 ms; 0
    /// turns this off). For [`Limiter::Autoscale`] and [`Limiter::None`]:
    /// the adaptive limiter is its own back-off (it cuts the host's rate
    /// on each refusal), so with it only 0 is accepted.
    #[must_use]
    pub fn host_backoff(mut self, first_pause: Duration) -> Self {
        self.settings.host_backoff = Some(first_pause);
        self
    }

    /// Shares this layer's hosts with other processes through `fleet`
    /// (feature `redis`): a `Retry-After` any of them gets pauses the host
    /// in all, the processes together keep one send budget per paced host,
    /// and a new process starts at the rate the others learned. See
    /// [`fleet`](crate::fleet).
    ///
    /// ```no_run
    /// use tower_snapshotter::fleet::{Fleet, FleetConfig};
    /// use tower_snapshotter::{Config, SnapshotLayer, Snapshotter};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let fleet = Fleet::start(FleetConfig::builder("redis://127.0.0.1:6379/", "crawl-42").build()?)?;
    /// let layer = SnapshotLayer::builder(Snapshotter::new(Config::default()))
    ///     .fleet(fleet)
    ///     .build()?;
    /// # let _ = layer; Ok(()) }
    /// ```
    #[cfg(feature = "redis")]
    pub fn fleet(mut self, fleet: crate::fleet::Fleet) -> Self {
        self.fleet = Some(fleet);
        self
    }

    /// The statuses counted as client errors (`[429]`). Add 503 for
    /// servers that use it to shed load. Each must be 400..=599.
    pub fn counted_statuses(mut self, statuses: impl IntoIterator<Item = StatusCode>) -> Self {
        self.settings.counted = statuses.into_iter().collect();
        self
    }

    /// Checks the settings and builds the layer.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the first invalid setting.
    pub fn build(self) -> Result<SnapshotLayer, ConfigError> {
        self.settings.validate()?;
        if self.start && !self.snapshotter.is_active() {
            self.snapshotter.start().map_err(|e| ConfigError::Invalid {
                field: "start_snapshotter",
                value: "true".into(),
                allowed: format!("false, or build inside a tokio runtime ({e})"),
            })?;
        }
        Ok(SnapshotLayer::of(Shared::new(
            self.snapshotter,
            self.settings,
            #[cfg(feature = "redis")]
            self.fleet,
        )))
    }
}
