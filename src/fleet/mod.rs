//! Per-host state shared by many processes through Redis (feature `redis`):
//! one polite budget per host for a whole fleet of crawlers.
//!
//! Over 400 lines: most of it is these docs (the key schema, the script's
//! algorithm, the faults) and the handle's documented examples.
//!
//! A [`Fleet`] keeps a local cache of what the fleet knows about each host
//! this process uses, and one background task keeps that cache in sync
//! with Redis. The hot path ([`Fleet::try_send`], [`Fleet::paused_until`],
//! …) only reads and writes the cache: it never waits for Redis.
//!
//! * **Pauses.** [`Fleet::pause`] records a pause (a `Retry-After`) at once
//!   and publishes it; the latest end wins. Other processes learn it from a
//!   pushed event within a round trip (or within one refresh period when
//!   events are not pushed).
//! * **The send budget.** The processes together stay within a host's
//!   rate: each leases batches of send slots from a GCRA kept in Redis and
//!   spends them locally, spread over its share of the schedule, so the
//!   fleet together sends no faster than the rate.
//! * **What was learned.** [`Fleet::publish_learned`] shares a host's
//!   estimated rate, so a new process starts at the fleet's rate
//!   ([`Fleet::learned`]). [`Fleet::loss_epoch`] makes a burst of refusals
//!   seen by many processes at once count as one loss, for a caller that
//!   paces the whole host from one shared rate. The layer needs no epoch:
//!   each of its processes paces its own share and cuts it at most once per
//!   round trip, so such a burst cuts the fleet's rate once.
//! * **Sending cycles.** When a `Retry-After` pause ends a layer's cycle of
//!   sending, the layer publishes that cycle's send times; a little later
//!   every process reads all of them and merges those of the same pause
//!   into the fleet's cycle, which each process's controller fits as one
//!   GCRA's (see below).
//! * **The fleet's answers.** Each lease reports this process's answers
//!   from the host, per 100 ms, and reads everybody's: when the paces
//!   together run over what the fleet was ever accepted in a second while
//!   it is refused, every process cuts its share; where refusals pause
//!   nobody, a share far under what the fleet was accepted at the limit
//!   is raised to it (see below).
//!
//! # Use
//!
//! ```no_run
//! use std::time::{Duration, SystemTime};
//! use tower_snapshotter::fleet::{Fleet, FleetConfig, Slot};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let config = FleetConfig::builder("redis://127.0.0.1:6379/", "crawl-42").build()?;
//! let fleet = Fleet::start(config)?;
//!
//! // Before each request to a host:
//! let host = "example.com";
//! if let Some(until) = fleet.paused_until(host) {
//!     tokio::time::sleep(until.duration_since(SystemTime::now()).unwrap_or_default()).await;
//! }
//! let rate = fleet.learned(host).map_or(10.0, |l| l.rate);
//! loop {
//!     match fleet.try_send(host, rate, tokio::time::Instant::now()) {
//!         Slot::Granted => break,
//!         Slot::WaitUntil(at) => tokio::time::sleep_until(at).await,
//!         // Redis is away: pace with the local controller at `rate * share`.
//!         Slot::Local { share } => break,
//!     }
//! }
//! // ... send; on a 429 with Retry-After: 5
//! fleet.pause(host, SystemTime::now() + Duration::from_secs(5));
//! # Ok(()) }
//! ```
//!
//! # Key schema
//!
//! Every key of a host is `<namespace>:{<host>}:<field>`: the host is the
//! Redis Cluster hash tag, so all of a host's keys are in one slot and one
//! script may use them all. The namespace may not contain braces. Every key
//! has a TTL, so the state of dead processes and forgotten hosts goes away.
//!
//! | key | type | holds | TTL |
//! | --- | --- | --- | --- |
//! | `ns:{host}:tat` | string | GCRA theoretical arrival time, server µs | until `tat`, plus `key_ttl` |
//! | `ns:{host}:procs` | sorted set | process id → last lease (server ms) | `key_ttl` |
//! | `ns:{host}:pause` | string | pause end, Unix ms | until the pause ends |
//! | `ns:{host}:learned` | hash | `rate`, `measured` (0/1), `last_loss` (Unix ms), `at` | `key_ttl` |
//! | `ns:{host}:epoch` | string | start of the current loss epoch, Unix ms | the epoch's window (two lease lengths) |
//! | `ns:{host}:paces` | hash | process id → its pace (requests/s) at its last lease | `key_ttl` |
//! | `ns:{host}:cycles` | hash | process id → its latest sending cycle: `<end µs> <told> <fits> <µs before end>…` | `key_ttl` |
//! | `ns:{host}:answers` | hash | `a<span>`/`r<span>` → answers accepted/refused in that 100 ms of Unix time (the last 6 s); `p<process id>` → the first span it has not reported | `key_ttl` |
//!
//! Scripts publish on the channel `ns:events`: `p <end ms> <host>` for a
//! pause, `l <rate> <measured> <last loss ms> <host>` for learned values,
//! `e <start ms> <host>` for a loss epoch.
//!
//! # The lease script
//!
//! GCRA with a batch (go-redis/redis_rate's "allow at most", written anew):
//! with lookahead `τ = 2 × lease` and `T = 1 s / rate`, where `rate` is the
//! faster of the caller's view of the host's rate and the paces of the
//! live processes summed (each times the caller's room, 1 for
//! [`Fleet::try_send`]),
//!
//! 1. `now` is the server's `TIME` in µs; `tat = max(stored tat, now)`
//!    (absent, wrong type, garbage or absurdly far ahead: `now`); the
//!    caller's pace is recorded in `paces`, and the paces of processes not
//!    live (or garbage) are dropped from it;
//! 2. `granted = min(wanted, ⌊(now + τ − tat) / T⌋)`, at least 0;
//! 3. slot `i` of the batch is due at `tat + i·T`; the reply gives
//!    `tat − now` and the script stores `tat + granted·T` (`PX` until then
//!    plus `key_ttl`);
//! 4. it returns the wait until one more slot would fit,
//!    `tat' + T − τ − now`, with the live process count (after recording
//!    this process and dropping those silent for four lease lengths and
//!    two refresh periods), the pause, the epoch and the learned values,
//!    so one call is one sync;
//! 5. the process maps `tat − now` onto its own clock (the midpoint of the
//!    call) and spends the batch at its own pace (the caller's view over
//!    the live process count), from then or from the end of the slots it
//!    still holds, whichever is later: the batch is spread over its share
//!    of the schedule, at the pace the process sends at, rather than due
//!    within a fraction of the lease, faster than its pace could spend it.
//!    A slot may be spent one of its intervals early; one more than two of
//!    its intervals (at most 50 ms) late is dropped rather than sent in a
//!    burst.
//!
//! Why the paces: a process's view of the rate is its own pace over its
//! share, and the processes' paces need not be equal. Priced at its own
//! view, a slot of a process pacing 2/s of a four-process fleet cost the
//! schedule half a second, and three such processes leased all of it: the
//! schedule ran its lookahead ahead of the clock, every batch of the one
//! process that sent most started that far in the future, and it sent at
//! half its pace. Priced at the paces together, every process takes its
//! pace's part of the schedule, and the schedule binds only when the
//! processes send more than their paces together (with the room).
//!
//! A rate cut by the caller (below 90 % of the rate the slots held were
//! leased at) drops those slots and leases anew at the new rate.
//!
//! # The fleet's cycles
//!
//! A GCRA counts every process's requests, so a process's own cycles
//! between pauses hold its share of the sends, and a small share sees a
//! small part of the burst: fitted alone, four processes' shares summed
//! to anywhere from 89 % to 101 % of the limiter's rate, run to run. So
//! when a pause ends a cycle, each process stores its cycle under its id
//! in `cycles` (the end in Unix µs, whether its own refusal ended it,
//! whether a GCRA could have, and up to 4 096 send times), and reads the
//! hash two refresh periods and 50 ms later, plus one more period (again,
//! up to three times, while fewer records than live processes are there).
//! The merged cycle ends at the earliest refusal among the records that
//! ended from 1 s before this process's end (a process whose requests
//! waited on its pace hears of a pause late) to two refresh periods and
//! 50 ms after it, and holds every send of those records, and of the
//! records the pause ended up to 1 s after that refusal, up to the
//! refusal (a flood's record, which no GCRA could have ended, keeps its
//! later sends too, at the end: the server may have taken them first, and
//! the flood's count bounds the burst). Every process merges the same records, so every controller
//! fits the same rate and paces its share of it (see the layer's
//! `adaptive/fleet_fit.rs`). A second after each merge the hash is read
//! once more: a process sending a few a second hears of a pause at its
//! next send, up to a second late, and publishes its record only then.
//! If more records of the same cycle are there, it is merged again and
//! its fit replaces the first (`FleetStats::cycles_remerged` counts them).
//! The read deletes fields that ended longer
//! than `key_ttl` ago or hold no end time (the cycles of processes gone).
//! The first cycle, sent before any pace, fits nothing: each process's
//! part of a flood is whatever its requests raced to.
//!
//! # The fleet's answers
//!
//! A process's own reading of a limiter is its share of a race: four
//! processes reading "what the host accepted in a second" over four
//! different seconds summed to 692 a second under a window of 500. So each
//! process counts its answers from a host, accepted and refused for rate,
//! per 100 ms of Unix time, and the lease script adds them to the host's
//! `answers` hash and marks how far this process has reported. Its reply
//! holds the spans of the last six seconds and the first span some live
//! process has not reported yet: counts every process reads alike, over
//! one span of time. No window of a second accepts more than its count in
//! any second, and no GCRA more than its rate and burst; so when the fleet
//! was refused in the last two seconds while the live processes' paces
//! summed to more than the most the fleet saw accepted in a second, every
//! process whose estimate is measured, and that saw no `Retry-After` pause
//! over that span (a second cut short by a pause holds less than the
//! rate), cuts its pace by one factor (at most halved, at most once per
//! two seconds), bringing the sum to 97 % of that peak (see `answers.rs`
//! and the layer's `adaptive/rate.rs`).
//!
//! The same counts read the host's limit where no fleet cycle does: a
//! refusal with `Retry-After: 0`, or none (nginx's default), pauses no
//! process, so no cycle ends in all of them at once, and each process
//! read only its own part of the host when refused. The most the fleet
//! was accepted in a second that held refusals, after the first refusal
//! kept (whose second may hold a burst spent at once), is a reading at the
//! limit; a process whose measured estimate is under 80 % of its share
//! of 97 % of it starts from that share and probes soon, under the same
//! conditions as a cut and at most as often. Four processes against a
//! GCRA whose refusals paused nobody held 36-85 % of its rate before, in
//! half the runs (BENCHMARKS.md, section 5). A report whose call fails
//! (Redis away) goes back, and is sent with the first lease after the
//! rejoin.
//!
//! A lease asks for `lease × rate / live processes` slots (scaled down by
//! how many of the previous lease's slots went unused), once fewer than
//! half a batch, plus what the pace spends before the task's next look (a
//! refresh period away), are held, or at once when a caller finds none.
//! At 500 requests per second from four processes with the default 250 ms
//! lease, that is one script call per 31 requests.
//!
//! # Faults
//!
//! * **Redis down, killed, restarted, slow.** A command that fails or takes
//!   longer than `command_timeout`, or the connection closing, makes the
//!   process local at once: [`Fleet::try_send`] answers [`Slot::Local`] with
//!   the last known share, and the caller paces with its own controller. A
//!   hung server is noticed at the next command: a lease, or a `PING` after
//!   a quiet second. While local the task retries with back-off (from the
//!   refresh period up to 1 s) and logs once per change of state, not per
//!   attempt; on rejoin it resubscribes and reads every host again.
//!   Pauses and learned values recorded meanwhile are published then.
//!   A process whose task has not heard from Redis for three quiet periods
//!   (its runtime shut down, say) is local too, and [`Slot::WaitUntil`] is
//!   never more than one refresh period ahead, so no caller waits for a
//!   lease that cannot come.
//! * **Flushed.** A `NOSCRIPT` answer is followed by `EVAL` of the source,
//!   which caches the script again; a flushed schedule starts afresh.
//! * **Bad data.** A key of the wrong type or a value that is not a finite
//!   number counts as absent, and the next write replaces it with the right
//!   type. A script error about one host counts as "nothing known" for that
//!   host; it never fails a request nor panics.
//! * **Memory.** The local cache holds at most `max_hosts` hosts (least
//!   recently used first out); each round sends at most 1024 calls.
//!
//! Redis 6 or later is needed (RESP3, for pushed events). Pauses and loss
//! epochs compare Unix times across machines, so clocks should be kept in
//! step (NTP); leases use only the server's clock.

mod answers;
#[cfg(test)]
mod answers_tests;
mod config;
mod cycle;
#[cfg(test)]
mod cycle_tests;
mod host;
mod keys;
mod learned;
mod lease;
/// The test helper that starts a `redis-server`, for the tests here.
#[cfg(test)]
#[path = "../../tests/common/redis.rs"]
#[allow(unreachable_pub)]
mod redis_server;
mod script;
mod stats;
mod sync;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::task::AbortHandle;
use tokio::time::Instant;

pub(crate) use answers::FleetLoad;
pub use config::{FleetConfig, FleetConfigBuilder};
pub(crate) use cycle::{CycleRecord, FleetCycle};
pub(crate) use learned::unix_us;
pub use learned::Learned;
pub use stats::FleetStats;

use learned::{from_unix_ms, unix_ms};
use sync::{Inner, CYCLE_READS, MAX_PAUSE_MS};

use crate::tally::Tally;
use crate::StartError;

/// What the layer reads before a send (see [`Fleet::view`]).
#[derive(Debug, Clone)]
pub(crate) struct FleetView {
    /// This process's share of the host.
    pub(crate) share: f64,
    /// What the fleet learned about it.
    pub(crate) learned: Option<Learned>,
    /// The fleet's latest merged cycle, if new.
    pub(crate) cycle: Option<Arc<FleetCycle>>,
    /// What the fleet's answers said at the latest lease.
    pub(crate) load: Option<FleetLoad>,
}

/// What [`Fleet::try_send`] allows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Slot {
    /// A leased slot was due and is spent: send now. Also the answer when
    /// there is no rate to share (`rate` not a positive number).
    Granted,
    /// No slot is due yet; ask again at this instant: the next held slot's
    /// due time, or when the next lease is expected, but at most one
    /// refresh period ahead (so a caller learns of a change of state).
    WaitUntil(Instant),
    /// Redis is unavailable, or the fleet re-forms after this process
    /// (re)joined it (for four lease lengths and two refresh periods, while
    /// the others come back): pace with the local controller at `rate ×
    /// share`, the share this process last had of the host.
    Local {
        /// One over the number of processes last seen using the host (1
        /// when unknown).
        share: f64,
    },
}

/// The handle to the shared state: cheap to clone, one background task
/// behind all clones, stopped when the last clone is dropped.
///
/// Every method is synchronous and constant-time: it reads or writes the
/// local cache (a lookup in a bounded map under a short lock, allocating
/// only when a host is first seen) and never waits for Redis.
#[derive(Debug, Clone)]
pub struct Fleet {
    handle: Arc<Handle>,
}

#[derive(Debug)]
struct Handle {
    inner: Arc<Inner>,
    task: AbortHandle,
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Fleet {
    /// Starts the background task on the current tokio runtime. It does
    /// not wait for Redis: until Redis answers, the fleet is local.
    ///
    /// # Errors
    /// [`StartError::NoRuntime`] outside a tokio runtime.
    ///
    /// ```no_run
    /// use tower_snapshotter::fleet::{Fleet, FleetConfig};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let fleet = Fleet::start(FleetConfig::builder("redis://127.0.0.1/", "crawl").build()?)?;
    /// assert!(fleet.stats().commands < 10);
    /// # Ok(()) }
    /// ```
    pub fn start(config: FleetConfig) -> Result<Self, StartError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| StartError::NoRuntime)?;
        let inner = Arc::new(Inner::new(config));
        let task = runtime.spawn(sync::run(Arc::clone(&inner))).abort_handle();
        Ok(Self {
            handle: Arc::new(Handle { inner, task }),
        })
    }

    fn inner(&self) -> &Inner {
        &self.handle.inner
    }

    /// Runs `f` on the host's cached state; wakes the background task when
    /// the host needs reading.
    fn with<R>(&self, host: &str, now: Instant, f: impl FnOnce(&mut host::HostState) -> R) -> R {
        let inner = self.inner();
        let (r, stale) = inner.hosts.with(host, now, inner.idle(), f);
        if stale {
            inner.wake.notify_one();
        }
        r
    }

    /// The settings it was started with.
    pub fn config(&self) -> &FleetConfig {
        &self.inner().config
    }

    /// Whether Redis answers now (see [`FleetStats::connected`]).
    pub fn is_connected(&self) -> bool {
        self.inner().is_live(Instant::now())
    }

    /// The end of the fleet's pause of `host`, if it is paused now: the
    /// latest of this process's own [`pause`](Self::pause)s and those of the
    /// others. The first call for a host starts following it; the others'
    /// pauses arrive a round trip later.
    ///
    /// ```no_run
    /// # fn f(fleet: tower_snapshotter::fleet::Fleet) {
    /// if let Some(until) = fleet.paused_until("example.com") {
    ///     println!("example.com is paused until {until:?}");
    /// }
    /// # }
    /// ```
    pub fn paused_until(&self, host: &str) -> Option<SystemTime> {
        let until = self.with(host, Instant::now(), |st| st.pause_ms);
        (until > unix_ms(SystemTime::now())).then(|| from_unix_ms(until))
    }

    /// Pauses `host` until `until` in this process at once and, through the
    /// background task, in every process (the latest end wins). An end in
    /// the past does nothing; one more than a day ahead is cut to a day.
    ///
    /// ```no_run
    /// # fn f(fleet: tower_snapshotter::fleet::Fleet) {
    /// use std::time::{Duration, SystemTime};
    /// fleet.pause("example.com", SystemTime::now() + Duration::from_secs(30));
    /// assert!(fleet.paused_until("example.com").is_some());
    /// # }
    /// ```
    pub fn pause(&self, host: &str, until: SystemTime) {
        let now = unix_ms(SystemTime::now());
        // Rounded up: a pause is never shortened.
        let until = unix_ms(until + Duration::from_micros(999)).min(now + MAX_PAUSE_MS);
        if until <= now {
            return;
        }
        self.with(host, Instant::now(), |st| {
            st.merge_pause(until);
            st.pause_pending = st.pause_pending.max(until);
        });
        self.inner().wake.notify_one();
    }

    /// Asks for a send slot for `host`, whose rate (requests per second) the
    /// caller believes is `rate`, at `now`.
    ///
    /// The process spends slots it leased from the fleet's schedule of the
    /// host; the background task leases the next batch before these run
    /// out, sized to [`FleetConfig::lease`] of this process's share of
    /// `rate`. Until the first lease of a host arrives (a round trip), the
    /// answer is [`Slot::WaitUntil`] shortly after `now`; so it is after a
    /// cut of `rate` by a tenth or more, which drops the slots held (spent,
    /// they would keep the old rate for a lease's length). The call itself
    /// never waits: the caller does, that round trip at most, and only then.
    ///
    /// ```no_run
    /// # async fn f(fleet: tower_snapshotter::fleet::Fleet) {
    /// use tower_snapshotter::fleet::Slot;
    /// loop {
    ///     match fleet.try_send("example.com", 50.0, tokio::time::Instant::now()) {
    ///         Slot::Granted => break,
    ///         Slot::WaitUntil(at) => tokio::time::sleep_until(at).await,
    ///         Slot::Local { share } => { /* pace locally at 50.0 * share */ break }
    ///     }
    /// }
    /// # }
    /// ```
    pub fn try_send(&self, host: &str, rate: f64, now: Instant) -> Slot {
        self.try_send_with_room(host, rate, 1.0, now)
    }

    /// [`Fleet::try_send`], with the fleet's schedule allowing `room` times
    /// `rate` (and the paces of the processes together, times `room`)
    /// while the slots come at `rate` over the share: the layer's
    /// controllers each see the host's rate a little differently, and
    /// their views must not let the schedule bind below their paces.
    pub(crate) fn try_send_with_room(&self, host: &str, rate: f64, room: f64, now: Instant) -> Slot {
        let inner = self.inner();
        let connected = inner.is_live(now);
        let rtt = inner.counters.rtt();
        let max_wait = inner.config.refresh();
        let (slot, wake) = self.with(host, now, |st| {
            if !connected {
                (Slot::Local { share: st.share() }, false)
            } else if !(rate.is_finite() && rate > 0.0) {
                (Slot::Granted, false)
            } else {
                st.room = room;
                match st.try_send(rate, now, rtt, max_wait) {
                    // Re-forming after a rejoin: the slot is asked for (the
                    // lease registers this process again), but the
                    // schedule, still pricing the few that are back, does
                    // not hold the caller's pace.
                    (Slot::WaitUntil(_), wake) if st.forming(now) => {
                        (Slot::Local { share: st.share() }, wake)
                    }
                    answer => answer,
                }
            }
        });
        if wake {
            inner.wake.notify_one();
        }
        slot
    }

    /// What the layer reads before a send to `host`, under one lock: this
    /// process's share, what the fleet learned, its latest merged cycle
    /// when that is newer than the `seen`-th, and what the fleet's answers
    /// said at the latest lease. `answers` (this process's answers from the
    /// host since the last call) are taken for the next lease's report.
    pub(crate) fn view(&self, host: &str, seen: u64, answers: &mut Tally) -> FleetView {
        self.with(host, Instant::now(), |st| {
            st.tally.append(answers);
            FleetView {
                share: st.share(),
                learned: st.learned(),
                cycle: st.cycle.as_ref().filter(|c| c.seq > seen).map(Arc::clone),
                load: st.load,
            }
        })
    }

    /// Publishes this process's latest sending cycle of `host` (see
    /// [`cycle`]), and reads the fleet's a little later: once every
    /// process has heard of the pause that ended it (pushed events, or a
    /// refresh period without them) and published its own.
    pub(crate) fn publish_cycle(&self, host: &str, record: CycleRecord) {
        let now = Instant::now();
        let read_at = now + self.inner().cycle_settle();
        self.with(host, now, |st| {
            st.cycle_read = Some((read_at, record.end_us, CYCLE_READS));
            st.cycle_pending = Some(record);
        });
        self.inner().wake.notify_one();
    }

    /// This process's share of `host`: one over the number of processes
    /// that leased it lately (1 when unknown).
    pub fn share(&self, host: &str) -> f64 {
        self.with(host, Instant::now(), |st| st.share())
    }

    /// What the fleet learned about `host`, as last read, pushed or
    /// published by this process. The first call for a host starts
    /// following it; the fleet's values arrive a round trip later.
    ///
    /// ```no_run
    /// # fn f(fleet: tower_snapshotter::fleet::Fleet) {
    /// let start_rate = fleet.learned("example.com").map_or(10.0, |l| l.rate);
    /// # }
    /// ```
    pub fn learned(&self, host: &str) -> Option<Learned> {
        self.with(host, Instant::now(), |st| st.learned())
    }

    /// Shares what this process learned about `host` (published at the next
    /// refresh; the last writer's rate wins, the latest loss is kept). A
    /// rate that is not a positive finite number is ignored.
    ///
    /// ```no_run
    /// # fn f(fleet: tower_snapshotter::fleet::Fleet) {
    /// use tower_snapshotter::fleet::Learned;
    /// fleet.publish_learned("example.com", Learned { rate: 480.0, measured: true, last_loss: None });
    /// # }
    /// ```
    pub fn publish_learned(&self, host: &str, learned: Learned) {
        if !(learned.rate.is_finite() && learned.rate > 0.0) {
            return;
        }
        self.with(host, Instant::now(), |st| {
            st.learned = Some(learned);
            st.learned_pending = Some(learned);
            if let Some(loss) = learned.last_loss {
                st.last_loss_ms = st.last_loss_ms.max(unix_ms(loss));
            }
        });
    }

    /// Whether a refusal of a request to `host` sent at `sent_at` is a new
    /// loss event the caller should cut its rate for (`true`), or part of
    /// one the fleet already has (`false`): sent before the latest loss
    /// epoch's start plus its window (two lease lengths, the longest that
    /// slots leased before a cut are still being spent). A `true` starts a
    /// new epoch here and claims it in Redis (`SET NX PX`); of processes
    /// that see refusals within a round trip of each other, only those that
    /// have not yet heard of another's epoch answer `true`.
    ///
    /// ```no_run
    /// # fn f(fleet: tower_snapshotter::fleet::Fleet, sent_at: std::time::SystemTime) {
    /// if fleet.loss_epoch("example.com", sent_at) {
    ///     // cut the rate, then publish_learned the new one
    /// } else if let Some(learned) = fleet.learned("example.com") {
    ///     // adopt the fleet's cut instead of cutting again
    /// }
    /// # }
    /// ```
    pub fn loss_epoch(&self, host: &str, sent_at: SystemTime) -> bool {
        let sent = unix_ms(sent_at);
        let now = unix_ms(SystemTime::now());
        let window = self.config().lookahead().as_millis() as u64;
        let new = self.with(host, Instant::now(), |st| {
            if st.epoch_ms > 0 && sent < st.epoch_ms + window {
                return false;
            }
            st.epoch_ms = now;
            st.epoch_pending = true;
            st.last_loss_ms = st.last_loss_ms.max(now);
            true
        });
        if new {
            self.inner().wake.notify_one();
        }
        new
    }

    /// What the fleet is doing: connected or local, lease rate, commands
    /// sent. Takes the cache's lock once; for dashboards, not per request.
    ///
    /// ```no_run
    /// # fn f(fleet: tower_snapshotter::fleet::Fleet) {
    /// let stats = fleet.stats();
    /// if !stats.connected {
    ///     println!("local for {:?}", stats.local_since);
    /// }
    /// # }
    /// ```
    pub fn stats(&self) -> FleetStats {
        let inner = self.inner();
        let now = Instant::now();
        let mut stats = inner.counters.snapshot(now, inner.hosts.len());
        stats.connected = inner.is_live(now);
        stats
    }
}
