//! Unit tests of the snapshotter (paused tokio time, fake probes).
