//! Error types.

use std::fmt;
use std::time::Duration;

use crate::status::Resources;

/// A request was refused at once because the system or its host is
/// overloaded ([`OnBlocked::Reject`](crate::layer::OnBlocked::Reject)).
///
/// The service's errors are [`tower::BoxError`]s; find this one with
/// `err.downcast_ref::<Overloaded>()` or `err.is::<Overloaded>()`.
///
/// [`tower::BoxError`]: https://docs.rs/tower/latest/tower/type.BoxError.html
///
/// ```
/// use tower_snapshotter::layer::error::Overloaded;
/// use tower_snapshotter::Resources;
///
/// let e = Overloaded::new(Resources::CPU);
/// assert_eq!(e.to_string(), "service overloaded: cpu");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Overloaded {
    resources: Resources,
    host: Option<Box<str>>,
    retry_after: Option<Duration>,
}

impl Overloaded {
    /// Refused because `resources` are overloaded.
    pub const fn new(resources: Resources) -> Self {
        Self {
            resources,
            host: None,
            retry_after: None,
        }
    }

    /// Refused because `host` is paused for `retry_after` more.
    pub(crate) fn host_paused(host: Option<&str>, retry_after: Duration) -> Self {
        Self {
            resources: Resources::CLIENT,
            host: host.map(Into::into),
            retry_after: Some(retry_after),
        }
    }

    /// Refused because `host` is at its adaptive limit: its pace has no
    /// slot now, or its permits are in use.
    pub(crate) fn host_busy(host: &str) -> Self {
        Self {
            resources: Resources::CLIENT,
            host: Some(host.into()),
            retry_after: None,
        }
    }

    /// Which resources were overloaded (`CLIENT` for a paused host).
    pub fn resources(&self) -> Resources {
        self.resources
    }

    /// The paused or busy host the request was for, if that was the reason.
    pub fn host(&self) -> Option<&str> {
        self.host.as_deref()
    }

    /// How long the host stays paused, if that was the reason.
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }
}

impl fmt::Debug for Overloaded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Overloaded");
        d.field("resources", &self.resources);
        if let Some(h) = &self.host {
            d.field("host", h);
        }
        if let Some(r) = &self.retry_after {
            d.field("retry_after", r);
        }
        d.finish()
    }
}

impl fmt::Display for Overloaded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "service overloaded: {}", self.resources)?;
        match (self.retry_after, self.host.as_deref()) {
            (Some(r), host) => write!(f, " (host {} paused for {r:?})", host.unwrap_or("?"))?,
            (None, Some(host)) => write!(f, " (host {host} at its adaptive limit)")?,
            (None, None) => {}
        }
        Ok(())
    }
}

impl std::error::Error for Overloaded {}
