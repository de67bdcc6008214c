//! The sensing side: how readings of the machine and of the remote side
//! become a verdict.
//!
//! The data flows one way, and the files follow it:
//!
//! ```text
//! probes ──▶ snapshots ──▶ windows ──▶ status ──▶ verdict
//! probe/     snapshot.rs   history.rs  status.rs  snapshotter.rs
//!    ▲                                            (system_status.rs on demand)
//!    └── read by the one sampler task (sampler.rs), which also ticks clock.rs
//! ```
//!
//! | file | holds |
//! | --- | --- |
//! | `probe/` | where readings come from: `cgroup/` (cgroup v1/v2 discovery, reading and parsing), `cpu.rs` (sysinfo against the cgroup quota), `memory.rs` (PSS or RSS against the cgroup or host limit), `event_loop.rs` (the tokio timer's drift), `client.rs` (the [`ClientRecorder`](probe::ClientRecorder) callers and the layer report answers to) |
//! | `sampler.rs` | the one background task of a started snapshotter (a child module of `snapshotter`): it wakes when a reading is due, reads the probes, turns each reading into a snapshot and hands it to the snapshotter |
//! | `snapshot.rs` | the snapshot value types, each carrying the limit it is judged against, and their `is_overloaded` rules |
//! | `history.rs` | one time-ordered window per resource: insert, prune, sample; `Windows` holds the four |
//! | `status.rs` | pure arithmetic over windows: the time-weighted [`overloaded_ratio`](status::overloaded_ratio), load ratios, [`SystemInfo`](status::SystemInfo), [`Resources`](status::Resources), and `judge` |
//! | `snapshotter.rs` | the [`Snapshotter`](snapshotter::Snapshotter): lifecycle, the windows, samples, and the verdict re-judged on every snapshot (an atomic for the hot path, a watch channel for subscribers, a `Notify` for waiting requests) |
//! | `system_status.rs` | [`SystemStatus`](crate::SystemStatus): asks a snapshotter for its windows and judges them on demand, over the current window or the whole history |
//! | `clock.rs` | the coarse clock the hot path reads instead of `Instant::now()`, ticked by the sampler |
//! | `snapshotter_tests.rs` | unit tests of the snapshotter's private parts |
//!
//! Imports follow the flow and never come back: `snapshot` imports none of
//! the others; `history` imports `snapshot`; `probe` imports `snapshot` (the
//! event-loop clock makes its own snapshots); `status` imports `history`,
//! `snapshot` and the crate's `config`, and nothing of the snapshotter;
//! `snapshotter` imports all of those and `clock`; `system_status` imports
//! `snapshotter` and `status`. `sampler` is a child module of `snapshotter`
//! (declared there, sharing its private state), not a sibling. The public
//! `status` module (in `lib.rs`) joins `status`'s arithmetic and
//! `system_status`'s `SystemStatus`, so `status` imports nothing of the
//! snapshotter's side, not even for a re-export.

pub(crate) mod clock;
pub mod history;
pub mod probe;
pub mod snapshot;
pub(crate) mod snapshotter;
pub(crate) mod status;
pub(crate) mod system_status;
