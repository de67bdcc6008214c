//! The client probe: a counter of rate-limit answers that callers bump.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use http::StatusCode;

/// Where callers (and [`SnapshotLayer`](crate::SnapshotLayer)) report the
/// remote side's rate-limit answers. Cheap to clone; every clone counts into
/// the same [`Snapshotter`](crate::Snapshotter), whose client snapshots
/// record the total and how much it grew since the previous snapshot.
///
/// Reporting is one relaxed atomic add, so it is fine on a hot path.
///
/// ```
/// use http::StatusCode;
/// use tower_snapshotter::{Config, Snapshotter};
///
/// let snapshotter = Snapshotter::new(Config::default());
/// let recorder = snapshotter.client_recorder();
/// recorder.record_status(StatusCode::TOO_MANY_REQUESTS);
/// recorder.record_status(StatusCode::OK); // not an error
/// assert_eq!(recorder.error_count(), 1);
/// ```
#[derive(Debug, Clone)]
pub struct ClientRecorder {
    errors: Arc<AtomicU64>,
    retry_count: u32,
}

impl ClientRecorder {
    pub(crate) fn new(retry_count: u32) -> Self {
        Self {
            errors: Arc::new(AtomicU64::new(0)),
            retry_count,
        }
    }

    /// Counts one rate-limit error, whatever caused it.
    pub fn record_error(&self) {
        self.errors.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts `status` when it is 429 Too Many Requests. Returns whether it
    /// counted.
    pub fn record_status(&self, status: StatusCode) -> bool {
        let counts = status == StatusCode::TOO_MANY_REQUESTS;
        if counts {
            self.record_error();
        }
        counts
    }

    /// Counts `status` when it is 429 and the request had already been
    /// retried at least `client_rate_limit_error_retry_count` times before
    /// this attempt (`retries` is 0 for a first attempt), as Crawlee counts
    /// only the answers its client gets after retrying. Returns whether it
    /// counted.
    ///
    /// ```
    /// use http::StatusCode;
    /// use tower_snapshotter::{Config, Snapshotter};
    ///
    /// let recorder = Snapshotter::new(Config::default()).client_recorder();
    /// let tmr = StatusCode::TOO_MANY_REQUESTS;
    /// assert!(!recorder.record_attempt(tmr, 0));
    /// assert!(!recorder.record_attempt(tmr, 1));
    /// assert!(recorder.record_attempt(tmr, 2)); // the third attempt
    /// assert_eq!(recorder.error_count(), 1);
    /// ```
    pub fn record_attempt(&self, status: StatusCode, retries: u32) -> bool {
        retries >= self.retry_count && self.record_status(status)
    }

    /// Errors counted since the snapshotter was created.
    pub fn error_count(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }
}
