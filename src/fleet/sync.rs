//! The background task: the one owner of the Redis connection. It leases,
//! publishes, reads and listens for the hosts this process uses, and
//! switches between connected and local.
//!
//! Over 400 lines: one task's loop (connect, lease, publish, listen, fall
//! back, rejoin) over one connection state; split by step, every file would
//! need all of it.
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

use futures_util::future::join_all;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{
    ErrorKind, IntoConnectionInfo, ProtocolVersion, PushInfo, PushKind, RedisError, ServerErrorKind, Value,
};
use tokio::sync::mpsc::{self, UnboundedReceiver};
use tokio::sync::Notify;
use tokio::time::{timeout, Instant};

use super::answers::{FleetLoad, KEPT};
use super::config::FleetConfig;
use super::cycle::{merge, CycleRecord};
use super::host::{HostEntry, Hosts, MAX_RATE};
use super::keys::{channel, Event};
use super::learned::{unix_ms, Learned};
use super::script::{int, LeaseReply, Scripts};
use super::stats::Counters;
use crate::tally::{Tally, SPAN_MS};

/// Script calls sent in one round at most; the rest wait for the next.
const MAX_JOBS: usize = 1024;
/// Longest wait between attempts to reach Redis while local.
const MAX_BACKOFF: Duration = Duration::from_secs(1);
/// Reads of the fleet's cycles, a refresh period apart, before what there
/// is gets merged without the records of every live process.
pub(crate) const CYCLE_READS: u8 = 3;
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
    /// (Unix µs); `reads` left.
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

    /// The script calls the cache needs now.
    fn plan(&self, now: Instant) -> Vec<(Arc<HostEntry>, Job)> {
        let config = &self.inner.config;
        let wall = unix_ms(SystemTime::now());
        let window = config.lookahead().as_millis() as u64;
        let poll = !self.inner.counters.subscribed.load(Ordering::Relaxed);
        let idle = self.inner.idle();
        let mut jobs = Vec::new();
        for entry in self.inner.hosts.active(now, idle) {
            if jobs.len() >= MAX_JOBS {
                break;
            }
            let mut st = entry.lock();
            let until_ms = std::mem::take(&mut st.pause_pending);
            if until_ms > wall {
                jobs.push((Arc::clone(&entry), Job::Pause { until_ms }));
            }
            if let Some(learned) = st.learned_pending.take() {
                jobs.push((Arc::clone(&entry), Job::Learn(learned)));
            }
            // A claim older than its window would start an epoch nobody
            // shares any more.
            if std::mem::take(&mut st.epoch_pending) && st.epoch_ms + window > wall {
                jobs.push((Arc::clone(&entry), Job::Epoch));
            }
            if let Some(record) = st.cycle_pending.take() {
                jobs.push((Arc::clone(&entry), Job::CyclePut(record)));
            }
            if let Some((_, own_end_us, reads)) = st.cycle_read.filter(|&(at, ..)| at <= now) {
                st.cycle_read = None;
                jobs.push((Arc::clone(&entry), Job::CycleGet { own_end_us, reads }));
            }
            if st.in_flight {
                continue;
            }
            let used = st
                .touched
                .is_some_and(|t| now.saturating_duration_since(t) <= idle);
            let rate = st.rate;
            let (pace, room) = (rate * st.share(), st.room);
            if let Some(want) = st.lease_wanted(now, config.lease(), config.refresh()) {
                let wasted = st.leasing();
                self.inner
                    .counters
                    .wasted
                    .fetch_add(u64::from(wasted), Ordering::Relaxed);
                jobs.push((
                    Arc::clone(&entry),
                    Job::Lease {
                        want,
                        rate,
                        pace,
                        room,
                        report: std::mem::take(&mut st.tally),
                    },
                ));
            } else if used
                && (st.needs_sync
                    || (poll
                        && st
                            .synced
                            .is_none_or(|t| now.saturating_duration_since(t) >= config.refresh())))
            {
                st.in_flight = true;
                jobs.push((
                    Arc::clone(&entry),
                    Job::Lease {
                        want: 0,
                        rate,
                        pace,
                        room,
                        report: std::mem::take(&mut st.tally),
                    },
                ));
            }
        }
        jobs
    }

    /// One round: plan, send everything at once, apply the answers.
    async fn round(&mut self, conn: &ConnectionManager) {
        let now = Instant::now();
        let jobs = self.plan(now);
        if jobs.is_empty() {
            // Nothing to say: make sure Redis still answers, now and then.
            let quiet = self.inner.config.refresh().max(Duration::from_secs(1));
            if self.inner.counters.since_ok(now).is_none_or(|age| age >= quiet) {
                self.count(1);
                let mut conn = conn.clone();
                let sent = Instant::now();
                let ping = timeout(
                    self.inner.config.command_timeout(),
                    redis::cmd("PING").query_async::<Value>(&mut conn),
                )
                .await;
                match ping {
                    Ok(Ok(_)) => self.inner.counters.ok(Instant::now(), sent.elapsed()),
                    Ok(Err(e)) => self.go_local(&e.to_string()),
                    Err(_) => self.go_local("timed out"),
                }
            }
            return;
        }
        let this = &*self;
        let calls = jobs.iter().map(|(entry, job)| {
            let mut conn = conn.clone();
            async move {
                let sent = Instant::now();
                let reply = timeout(
                    this.inner.config.command_timeout(),
                    this.call(&mut conn, entry, job),
                )
                .await;
                let reply = match reply {
                    Ok(Ok(v)) => Ok(v),
                    Ok(Err(e)) => Err(classify(&e)),
                    Err(_) => Err(Failure::Connection("timed out".to_owned())),
                };
                (sent, Instant::now(), reply)
            }
        });
        let replies = join_all(calls).await;
        let mut failed = None;
        for ((entry, job), (sent, got, reply)) in jobs.into_iter().zip(replies) {
            match reply {
                Ok(value) => {
                    self.inner.counters.ok(got, got - sent);
                    self.apply(&entry, job, &value, sent, got);
                }
                Err(Failure::Data(e)) => {
                    // Redis answered, if not what was hoped for.
                    self.inner.counters.ok(got, got - sent);
                    tracing::debug!(host = %entry.name, error = e, "fleet: unreadable state; treated as absent");
                    let mut st = entry.lock();
                    st.in_flight = false;
                    st.needs_sync = false;
                    st.synced = Some(got);
                }
                Err(Failure::Connection(e)) => {
                    undo(&entry, job);
                    failed = Some(e);
                }
            }
        }
        if let Some(reason) = failed {
            self.go_local(&reason);
        }
    }

    async fn call(
        &self,
        conn: &mut ConnectionManager,
        entry: &HostEntry,
        job: &Job,
    ) -> redis::RedisResult<Value> {
        let config = &self.inner.config;
        let commands = &self.inner.counters.commands;
        let k = &entry.keys;
        let ttl = config.key_ttl().as_millis().to_string();
        let host = entry.name.to_string();
        match *job {
            Job::Lease {
                want,
                rate,
                pace,
                room,
                ref report,
            } => {
                let rate = (rate * room).min(MAX_RATE);
                let burst = (config.lookahead().as_secs_f64() * rate).ceil().max(1.0);
                let args = [
                    self.inner.process.clone(),
                    rate.to_string(),
                    burst.to_string(),
                    want.to_string(),
                    ttl,
                    self.inner.liveness().as_millis().to_string(),
                    pace.to_string(),
                    room.to_string(),
                    report.encode(),
                    SPAN_MS.to_string(),
                    KEPT.to_string(),
                ];
                let keys = [
                    &*k.tat,
                    &*k.procs,
                    &*k.pause,
                    &*k.learned,
                    &*k.epoch,
                    &*k.paces,
                    &*k.answers,
                ];
                self.scripts.lease.run(conn, &keys, &args, commands).await
            }
            Job::Pause { until_ms } => {
                let args = [until_ms.to_string(), self.channel.clone(), host];
                self.scripts
                    .pause
                    .run(conn, &[k.pause.as_str()], &args, commands)
                    .await
            }
            Job::Learn(l) => {
                let args = [
                    l.rate.to_string(),
                    u8::from(l.measured).to_string(),
                    l.last_loss.map_or(0, unix_ms).to_string(),
                    ttl,
                    self.channel.clone(),
                    host,
                ];
                self.scripts
                    .learn
                    .run(conn, &[k.learned.as_str()], &args, commands)
                    .await
            }
            Job::Epoch => {
                let args = [
                    config.lookahead().as_millis().to_string(),
                    ttl,
                    self.channel.clone(),
                    host,
                ];
                self.scripts
                    .epoch
                    .run(conn, &[k.epoch.as_str(), k.learned.as_str()], &args, commands)
                    .await
            }
            Job::CyclePut(ref record) => {
                let args = [self.inner.process.clone(), record.encode(), ttl];
                self.scripts
                    .cycle_put
                    .run(conn, &[k.cycles.as_str()], &args, commands)
                    .await
            }
            Job::CycleGet { .. } => {
                self.scripts
                    .cycle_get
                    .run(conn, &[k.cycles.as_str()], &[ttl], commands)
                    .await
            }
        }
    }

    fn apply(&self, entry: &HostEntry, job: Job, value: &Value, sent: Instant, got: Instant) {
        let mut st = entry.lock();
        match job {
            Job::Lease { want, rate, .. } => {
                st.in_flight = false;
                st.hungry = false;
                st.needs_sync = false;
                st.synced = Some(got);
                let Some(r) = LeaseReply::parse(value) else {
                    return;
                };
                // Only a lease sums the paces: a read leaves the load as it was.
                if r.paces > 0.0 {
                    st.load = FleetLoad::from_buckets(&r.spans, r.through, r.paces);
                }
                if r.granted > 0 {
                    // The server's now lies between sending and receiving.
                    let mid = sent + (got - sent) / 2;
                    // The fleet's schedule grants a run of slots at its
                    // own interval (the whole host's, with room); this
                    // process spends them at its caller's pace (the host's
                    // rate over its share). At the host's interval
                    // a batch would be due within a fraction of the lease,
                    // faster than the pace can spend, and most of it would
                    // expire unspent. With the room, a tenth of every batch
                    // would, and the processes together would lease the
                    // whole schedule: it would run ahead of the server's
                    // clock by its lookahead, and each new batch would
                    // start that far in the future, after the one before
                    // ran out.
                    let procs = f64::from(r.procs.max(1));
                    let interval = Duration::from_secs_f64(procs / rate.min(MAX_RATE));
                    if st
                        .slots
                        .add(mid + Duration::from_micros(r.start_us), r.granted, interval)
                    {
                        self.inner
                            .counters
                            .leased
                            .fetch_add(u64::from(r.granted), Ordering::Relaxed);
                    }
                }
                if want > 0 {
                    st.next_lease = (r.wait_us > 0).then(|| got + Duration::from_micros(r.wait_us));
                }
                // While the fleet re-forms after a rejoin, the processes
                // come back one lease at a time: the count does not fall
                // below the one before (the gone expire once it has formed).
                st.procs = if st.forming(got) {
                    st.procs.max(r.procs)
                } else {
                    r.procs
                };
                let wall = unix_ms(SystemTime::now());
                if r.pause_ms <= wall + MAX_PAUSE_MS {
                    st.merge_pause(r.pause_ms);
                }
                st.epoch_ms = st.epoch_ms.max(r.epoch_ms);
                if let Some((rate, measured)) = r.learned {
                    st.merge_learned(rate, measured, r.last_loss_ms);
                } else {
                    st.last_loss_ms = st.last_loss_ms.max(r.last_loss_ms);
                }
            }
            Job::Pause { .. } => {
                if let Some(until) = int(value) {
                    st.merge_pause(until.max(0) as u64);
                }
            }
            Job::Learn(_) => {
                if let Some(loss) = int(value) {
                    st.last_loss_ms = st.last_loss_ms.max(loss.max(0) as u64);
                }
            }
            Job::Epoch => {
                if let Value::Array(items) = value {
                    if let Some(at) = items.get(1).and_then(int) {
                        let at = at.max(0) as u64;
                        st.epoch_ms = st.epoch_ms.max(at);
                        st.last_loss_ms = st.last_loss_ms.max(at);
                    }
                }
            }
            Job::CyclePut(_) => {}
            Job::CycleGet { own_end_us, reads } => {
                // Fields that are not records are bad data: left out.
                let records: Vec<CycleRecord> = match value {
                    Value::Array(items) => items
                        .iter()
                        .filter_map(|v| match v {
                            Value::BulkString(b) => CycleRecord::decode(b),
                            _ => None,
                        })
                        .collect(),
                    _ => Vec::new(),
                };
                let window = self.inner.cycle_window().as_micros() as u64;
                let seq = st.cycles_merged + 1;
                let merged = merge(seq, own_end_us, window, CYCLE_LATE_US, &records);
                if merged.as_ref().is_some_and(|c| c.processes < st.procs as usize) && reads > 1 {
                    // A live process has not published its cycle yet: it
                    // heard of the pause late, or its task is slow.
                    st.cycle_read = Some((got + self.inner.config.refresh(), own_end_us, reads - 1));
                } else if let Some(mut cycle) = merged {
                    cycle.complete = st.procs > 0 && cycle.processes >= st.procs as usize;
                    st.cycles_merged = seq;
                    st.cycle = Some(Arc::new(cycle));
                    self.inner.counters.cycles_merged.fetch_add(1, Ordering::Relaxed);
                }
            }
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

/// Puts back what a failed call was to send, so it goes after the rejoin.
/// Epoch claims are dropped: by then the burst they were about is over.
fn undo(entry: &HostEntry, job: Job) {
    let mut st = entry.lock();
    match job {
        Job::Lease { report, .. } => {
            st.in_flight = false;
            st.tally.restore(report);
        }
        Job::Pause { until_ms } => st.pause_pending = st.pause_pending.max(until_ms),
        Job::Learn(l) => {
            if st.learned_pending.is_none() {
                st.learned_pending = Some(l);
            }
        }
        Job::Epoch => {}
        Job::CyclePut(record) => {
            if st.cycle_pending.is_none() {
                st.cycle_pending = Some(record);
            }
        }
        // Too late to be of use after a rejoin: the next cycle's read is.
        Job::CycleGet { .. } => {}
    }
}

/// A server's refusal of a command (a script error, a wrong type) is about
/// the data; anything else is about the connection.
fn classify(e: &RedisError) -> Failure {
    let data = !(e.is_io_error() || e.is_timeout() || e.is_connection_dropped() || e.is_connection_refusal())
        && matches!(
            e.kind(),
            ErrorKind::Server(ServerErrorKind::ResponseError | ServerErrorKind::ExecAbort)
                | ErrorKind::Extension
                | ErrorKind::Parse
                | ErrorKind::UnexpectedReturnType
        );
    if data {
        Failure::Data(e.to_string())
    } else {
        Failure::Connection(e.to_string())
    }
}
