//! The sensing side: probes, snapshots, windows, status and the snapshotter.

pub(crate) mod clock;
pub mod history;
pub mod probe;
pub mod snapshot;
pub(crate) mod snapshotter;
pub mod status;
