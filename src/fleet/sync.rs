//! The background task: the one owner of the Redis connection. It leases,
//! publishes, reads and listens for the hosts this process uses, and
//! switches between connected and local.
//!
//! The loop (connect, fall back, rejoin, listen) is here; a round's script
//! calls are in `sync/jobs.rs`, and what their answers do in
//! `sync/apply.rs`, as `impl Task` blocks that share its state.
//!
//! Each round (every refresh period, or at once when the hot path asks) it
//! sends, concurrently on one multiplexed connection, the script calls the
//! cache needs: pauses, learned values and loss epochs to publish; leases
//! for hosts running low; reads of hosts used for the first time (or, while
//! events are not pushed, of every recently used host). Every command is
//! bounded by the command timeout; a timeout or a connection error makes
//! the process local at once, a wrong answer about one host counts as
//! "nothing known" for that host only.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{IntoConnectionInfo, ProtocolVersion, PushInfo, PushKind, Value};
use tokio::sync::mpsc::{self, UnboundedReceiver};
use tokio::sync::Notify;
use tokio::time::{timeout, Instant};

use super::config::FleetConfig;
use super::cycle::CycleRecord;
use super::host::Hosts;
use super::keys::{channel, Event};
use super::learned::{unix_ms, Learned};
use super::script::Scripts;
use super::stats::Counters;
use crate::tally::Tally;

/// Script calls sent in one round at most; the rest wait for the next.
const MAX_JOBS: usize = 1024;
/// Longest wait between attempts to reach Redis while local.
const MAX_BACKOFF: Duration = Duration::from_secs(1);
/// Reads of the fleet's cycles, a refresh period apart, before what there
/// is gets merged without the records of every live process.
pub(crate) const CYCLE_READS: u8 = 3;
/// After a merge, the cycles are read once more this much later: a
/// process sending a few a second hears of a pause at its next send, up
/// to a second late, and publishes its record only then.
pub(crate) const CYCLE_LATE_READ: Duration = Duration::from_secs(1);
/// A process that heard of a pause late (its requests waited on its pace)
/// ended its cycle up to this long after the refusal that began it.
const CYCLE_LATE_US: u64 = 1_000_000;
/// A pause further ahead than this is garbage.
pub(crate) const MAX_PAUSE_MS: u64 = 24 * 3600 * 1000;

/// The state the handles and the task share.
#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) config: FleetConfig,
    pub(crate) hosts: Hosts,
    /// Wakes the task before its next tick.
    pub(crate) wake: Notify,
    pub(crate) counters: Counters,
    /// This process's member in the hosts' live sets.
    pub(crate) process: String,
}

impl Inner {
    pub(crate) fn new(config: FleetConfig) -> Self {
        Self {
            hosts: Hosts::new(config.namespace(), config.max_hosts()),
            wake: Notify::new(),
            counters: Counters::new(Instant::now()),
            process: format!("{:016x}", fastrand::u64(..)),
            config,
        }
    }

    /// Whether the fleet's budget can be used at `now`: connected, and the
    /// task has heard from Redis lately (it pings after a quiet second), so
    /// a task that stopped (its runtime shut down) cannot leave callers
    /// waiting for leases that never come.
    pub(crate) fn is_live(&self, now: Instant) -> bool {
        let stale = self.config.refresh().max(Duration::from_secs(1)) * 3 + self.config.command_timeout();
        self.counters.is_connected() && self.counters.since_ok(now).is_some_and(|age| age <= stale)
    }

    /// A host unused this long is no longer kept in sync.
    pub(crate) fn idle(&self) -> Duration {
        (self.config.refresh() * 10).max(Duration::from_secs(5))
    }

    /// How far apart the processes' ends of one cycle may lie: a pause
    /// reaches the others within a refresh period at worst.
    pub(crate) fn cycle_window(&self) -> Duration {
        self.config.refresh() * 2 + Duration::from_millis(50)
    }

    /// How long after its own cycle ends a process reads the fleet's: the
    /// window, and one more refresh period for the others to publish.
    pub(crate) fn cycle_settle(&self) -> Duration {
        self.cycle_window() + self.config.refresh()
    }

    /// A process that has not leased a host for this long no longer counts
    /// among its live processes.
    fn liveness(&self) -> Duration {
        self.config.lease() * 4 + self.config.refresh() * 2
    }
}

/// One script call.
#[derive(Debug)]
enum Job {
    /// Lease `want` slots (0: only read the host's state), for a caller
    /// who sees the host's rate as `rate`, paces `pace` of it, and allows
    /// the schedule `room` over both.
    Lease {
        want: u32,
        rate: f64,
        pace: f64,
        room: f64,
        /// This process's answers since its last report.
        report: Tally,
    },
    Pause {
        until_ms: u64,
    },
    Learn(Learned),
    Epoch,
    /// Publish this process's latest cycle.
    CyclePut(CycleRecord),
    /// Read the fleet's cycles and merge those that ended near this end
    /// (Unix µs); `reads` left (0: the late read after a merge, which
    /// merges that cycle again only if records came since).
    CycleGet {
        own_end_us: u64,
        reads: u8,
    },
}

/// Why a command failed.
enum Failure {
    /// The connection: the process goes local.
    Connection(String),
    /// The answer about this host: it counts as absent.
    Data(String),
}

/// Runs the task until the last handle goes (it aborts the task).
pub(crate) async fn run(inner: Arc<Inner>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let conn = match manager(&inner.config, tx) {
        Ok(conn) => Some(conn),
        Err(e) => {
            tracing::error!(namespace = inner.config.namespace(), error = %e, "fleet: cannot use Redis; working locally");
            None
        }
    };
    let refresh = inner.config.refresh();
    let mut task = Task {
        channel: channel(inner.config.namespace()),
        scripts: Scripts::new(),
        pushes: rx,
        pushes_open: true,
        backoff: refresh,
        next_retry: Instant::now(),
        logged: None,
        meter: (Instant::now(), 0),
        inner,
    };
    let Some(conn) = conn else {
        return;
    };
    let mut next_tick = Instant::now();
    loop {
        let round = tokio::select! {
            () = tokio::time::sleep_until(next_tick) => {
                next_tick = Instant::now() + refresh;
                true
            }
            () = task.inner.wake.notified() => true,
            push = task.pushes.recv(), if task.pushes_open => {
                match push {
                    Some(push) => task.on_push(push),
                    None => task.pushes_open = false,
                }
                false
            }
        };
        while let Ok(push) = task.pushes.try_recv() {
            task.on_push(push);
        }
        if !round {
            continue;
        }
        let now = Instant::now();
        task.meter(now);
        if !task.inner.counters.is_connected() {
            if now < task.next_retry {
                continue;
            }
            task.connect(conn.clone()).await;
            if !task.inner.counters.is_connected() {
                continue;
            }
        }
        task.round(&conn).await;
    }
}

/// A connection manager speaking RESP3 (for pushed events) that never
/// waits longer than the command timeout for an answer and reconnects on
/// its own with back-off.
fn manager(
    config: &FleetConfig,
    pushes: mpsc::UnboundedSender<PushInfo>,
) -> redis::RedisResult<ConnectionManager> {
    let info = config.redis_url().into_connection_info()?;
    let settings = info.redis_settings().clone().set_protocol(ProtocolVersion::RESP3);
    let client = redis::Client::open(info.set_redis_settings(settings))?;
    let cfg = ConnectionManagerConfig::new()
        .set_push_sender(pushes)
        .set_response_timeout(Some(config.command_timeout()))
        .set_connection_timeout(Some(connect_timeout(config)))
        .set_min_delay(config.refresh().min(MAX_BACKOFF))
        .set_max_delay(MAX_BACKOFF)
        .set_number_of_retries(2);
    ConnectionManager::new_lazy_with_config(client, cfg)
}

/// How long an attempt to (re)connect may take: longer than a command, as
/// it runs while the process is local anyway.
fn connect_timeout(config: &FleetConfig) -> Duration {
    config.command_timeout().max(Duration::from_millis(500))
}

struct Task {
    inner: Arc<Inner>,
    channel: String,
    scripts: Scripts,
    pushes: UnboundedReceiver<PushInfo>,
    pushes_open: bool,
    backoff: Duration,
    next_retry: Instant,
    /// The state last logged: once per change, not per attempt.
    logged: Option<bool>,
    /// Start and leased count of the lease-rate window.
    meter: (Instant, u64),
}

impl Task {
    fn count(&self, n: u64) {
        self.inner.counters.commands.fetch_add(n, Ordering::Relaxed);
    }

    /// Tries to reach Redis; on success subscribes to the events and asks
    /// for every host's state again.
    async fn connect(&mut self, mut conn: ConnectionManager) {
        let config = &self.inner.config;
        self.count(1);
        let sent = Instant::now();
        let ping = timeout(
            connect_timeout(config),
            redis::cmd("PING").query_async::<Value>(&mut conn),
        )
        .await;
        let now = Instant::now();
        match ping {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return self.retry_later(now, &e.to_string()),
            Err(_) => return self.retry_later(now, "timed out"),
        }
        let counters = &self.inner.counters;
        counters.ok(now, now - sent);
        self.count(1);
        let subscribed = matches!(
            timeout(config.command_timeout(), conn.subscribe(&self.channel)).await,
            Ok(Ok(()))
        );
        counters.subscribed.store(subscribed, Ordering::Relaxed);
        let forming_until = now + self.inner.liveness();
        for entry in self.inner.hosts.all() {
            let mut st = entry.lock();
            st.needs_sync = true;
            st.next_lease = None;
            st.forming_until = Some(forming_until);
        }
        counters.set_connected(now);
        self.backoff = config.refresh();
        if self.logged != Some(true) {
            self.logged = Some(true);
            tracing::info!(
                namespace = config.namespace(),
                subscribed,
                "fleet: connected to Redis; sharing host state"
            );
        }
    }

    fn retry_later(&mut self, now: Instant, reason: &str) {
        self.next_retry = now + self.backoff;
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF.max(self.inner.config.refresh()));
        self.log_local(reason);
    }

    fn log_local(&mut self, reason: &str) {
        if self.logged != Some(false) {
            self.logged = Some(false);
            tracing::warn!(
                namespace = self.inner.config.namespace(),
                error = reason,
                "fleet: Redis unavailable; working locally until it answers"
            );
        }
    }

    /// Leaves the fleet: the hot path answers `Local` from now on, and the
    /// slots held are dropped (the schedule they came from may be gone).
    fn go_local(&mut self, reason: &str) {
        let now = Instant::now();
        self.inner.counters.set_local(now);
        for entry in self.inner.hosts.all() {
            let mut st = entry.lock();
            st.slots.clear();
            st.in_flight = false;
            st.hungry = false;
        }
        self.backoff = self.inner.config.refresh();
        self.next_retry = now;
        self.log_local(reason);
    }

    fn on_push(&mut self, push: PushInfo) {
        match push.kind {
            PushKind::Disconnection if self.inner.counters.is_connected() => {
                self.go_local("connection closed");
            }
            PushKind::Message => {
                let [.., Value::BulkString(channel), Value::BulkString(payload)] = push.data.as_slice()
                else {
                    return;
                };
                if channel.as_slice() != self.channel.as_bytes() {
                    return;
                }
                if let Some(event) = Event::parse(payload) {
                    self.on_event(event);
                }
            }
            _ => {}
        }
    }

    fn on_event(&self, event: Event<'_>) {
        let host = match event {
            Event::Pause { host, .. } | Event::Learned { host, .. } | Event::Epoch { host, .. } => host,
        };
        let Some(entry) = self.inner.hosts.peek(host) else {
            return;
        };
        let wall = unix_ms(SystemTime::now());
        let mut st = entry.lock();
        match event {
            Event::Pause { until_ms, .. } if until_ms <= wall + MAX_PAUSE_MS => st.merge_pause(until_ms),
            Event::Learned {
                rate,
                measured,
                last_loss_ms,
                ..
            } => st.merge_learned(rate, measured, last_loss_ms),
            Event::Epoch { at_ms, .. } if at_ms <= wall + MAX_PAUSE_MS => {
                st.epoch_ms = st.epoch_ms.max(at_ms);
                st.last_loss_ms = st.last_loss_ms.max(at_ms);
            }
            _ => {}
        }
    }

    /// Updates the lease rate about once a second.
    fn meter(&mut self, now: Instant) {
        let (since, count) = self.meter;
        let elapsed = now.saturating_duration_since(since);
        if elapsed >= Duration::from_secs(1) {
            let leased = self.inner.counters.leased.load(Ordering::Relaxed);
            self.inner
                .counters
                .set_lease_rate((leased - count) as f64 / elapsed.as_secs_f64());
            self.meter = (now, leased);
        }
    }
}

mod apply;
mod jobs;
