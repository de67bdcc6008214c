//! A round's script calls: what the cache needs (`plan`), sent together
//! on the one connection (`round`, `call`); each answer goes to `apply.rs`.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures_util::future::join_all;
use redis::aio::ConnectionManager;
use redis::{ErrorKind, RedisError, ServerErrorKind, Value};
use tokio::time::{timeout, Instant};

use super::apply::undo;
use super::{Failure, Job, Task, MAX_JOBS};
use crate::fleet::answers::KEPT;
use crate::fleet::host::{HostEntry, MAX_RATE};
use crate::fleet::learned::unix_ms;
use crate::tally::SPAN_MS;

impl Task {
    /// The script calls the cache needs now.
    pub(super) fn plan(&self, now: Instant) -> Vec<(Arc<HostEntry>, Job)> {
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
    pub(super) async fn round(&mut self, conn: &ConnectionManager) {
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

    pub(super) async fn call(
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
}

/// A server's refusal of a command (a script error, a wrong type) is about
/// the data; anything else is about the connection.
pub(super) fn classify(e: &RedisError) -> Failure {
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
