//! [`SystemStatus`]: a snapshotter's windows judged on demand.
//!
//! It sits on the snapshotter's side of `status`: it asks a [`Snapshotter`]
//! for its windows and hands them to [`status`](super::status)'s arithmetic,
//! which knows nothing of the snapshotter. Its public path is
//! `tower_snapshotter::status::SystemStatus` (joined there in `lib.rs`), and
//! the crate root.

use super::snapshotter::{NotActive, Snapshotter};
use super::status::{judge, SystemInfo};
use crate::config::StatusConfig;

/// Judges a [`Snapshotter`]'s windows: the current status over the last
/// `max_snapshot_age` and the historical status over the whole history.
///
/// ```
/// use tower_snapshotter::{Config, Snapshotter, SystemStatus};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let snapshotter = Snapshotter::new(Config::default());
/// snapshotter.start()?;
/// let status = SystemStatus::new(snapshotter.clone(), snapshotter.config().status());
/// println!("{}", status.current()?);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct SystemStatus {
    snapshotter: Snapshotter,
    thresholds: StatusConfig,
}

impl SystemStatus {
    /// A status over `snapshotter`'s windows, judged with `thresholds`.
    pub fn new(snapshotter: Snapshotter, thresholds: StatusConfig) -> Self {
        Self {
            snapshotter,
            thresholds,
        }
    }

    /// The thresholds in use.
    pub fn thresholds(&self) -> &StatusConfig {
        &self.thresholds
    }

    /// Load ratios over the last `max_snapshot_age` of each window.
    ///
    /// # Errors
    /// [`NotActive`] while the snapshotter is not sampling.
    pub fn current(&self) -> Result<SystemInfo, NotActive> {
        self.snapshotter
            .with_windows(|w| judge(w, Some(self.thresholds.max_snapshot_age()), &self.thresholds))
    }

    /// Load ratios over each whole window (`snapshot_history`).
    ///
    /// # Errors
    /// [`NotActive`] while the snapshotter is not sampling.
    pub fn historical(&self) -> Result<SystemInfo, NotActive> {
        self.snapshotter
            .with_windows(|w| judge(w, None, &self.thresholds))
    }
}

impl Snapshotter {
    /// A [`SystemStatus`] over this snapshotter with the configured thresholds.
    pub fn system_status(&self) -> SystemStatus {
        SystemStatus::new(self.clone(), self.config().status())
    }
}
