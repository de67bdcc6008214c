//! The adaptive limiter ([`Limiter::Adaptive`](crate::layer::Limiter::Adaptive)):
//! per host, a concurrency limit and a send rate, moved by every answer.
//!
//! # Why this design
//!
//! Crawlee's `AutoscaledPool` moves 5 % every 10 s, so it needs minutes to
//! find a server's capacity or to back off (crawlee-python #1224, apify/crawlee
//! #660 and #1306). The published alternatives each cover half the problem:
//!
//! * **AIMD** (Netflix `AIMDLimit`, Vector's ARC) reacts to loss but only on a
//!   concurrency limit. Against a fast server that limits *requests per
//!   second* (a loopback round trip takes 0.1 ms here), one request in flight
//!   already sends thousands a second, so no concurrency limit can hold it to
//!   its rate.
//! * **Vegas / Gradient2** read queueing from round-trip times; Gradient2
//!   ignores drops, and neither paces.
//! * **CUBIC as the AWS SDKs' adaptive retry mode uses it** paces a token
//!   bucket whose rate is cut by a factor on throttling and then grows along
//!   a cubic curve: fast back toward the rate where the loss happened, flat
//!   near it, then probing beyond.
//!
//! So the controller keeps both limits and whichever binds wins:
//!
//! * **Rate** (`rate.rs`) — off until a refusal gives evidence of one.
//!   Built for the limiters servers run (nginx's GCRA with a small burst,
//!   windows that count refusals, quota headers, token buckets): at the
//!   limit a GCRA accepts exactly its rate, so the accepted rate of slots in
//!   which the host both accepted and refused is its estimate; between
//!   `Retry-After` pauses, where nothing can be measured at the limit, two
//!   cycles of sending are fitted as a GCRA (the rate at which both end at
//!   the same excess, whatever the burst), and time paused never counts.
//!   A search refused while its sends come in waves (a slow backend,
//!   the concurrency limit releasing a round trip's answers at once)
//!   restarts from what was accepted: its refusals are the waves'. A
//!   limiter without a burst is measured by its gaps, which bound its rate
//!   from both sides; probes go halfway to the top until the two meet.
//!   A guess (a lower bound) is searched upward 1.25× per 100 ms; a
//!   measured rate is held at 98 % and probed rarely, but a probe that
//!   holds is followed at once by one twice as far, and a rate that fell
//!   from one held for a while is probed back up within seconds
//!   (`recovery.rs`). Refusals that keep
//!   coming below the accepted rate drain the pace (a window that counts
//!   refusals; once it reopens, its count is read over the round length,
//!   1 s, 10 s, 60 s…, that the time it took lies just over); refusals
//!   whose share does not follow the pace are ignored
//!   for a while (a hostile or broken server). Quota headers set the pace
//!   directly. Rates per minute are held too (`min_rate` is 0.01/s): a
//!   search starts at a request a second at the least, and `Retry-After`
//!   cycles of a request or two are counted over their streak
//!   (`rate/slow.rs`). A 429, or a 503 with `Retry-After` or at a depth that
//!   also succeeds (nginx `limit_req`), moves only the rate; a 503 from
//!   deeper than successes are sent (nginx `limit_conn`) moves only the
//!   concurrency limit; an inner error cuts both.
//! * **Pacing is a queue with one leader**: the request at its head holds
//!   the next slot and sleeps until it; the others wait their turn. A rate
//!   change therefore reaches the very next send (reserving a slot per
//!   waiting request kept thousands of sends at an old rate for seconds).
//! * **Concurrency** — Vegas-style, on a delay signal (`delay.rs`): an answer
//!   is late when its round trip exceeds `rtt_tolerance ×` the windowed
//!   minimum, and once per round trip the cohort of requests sent in it is
//!   judged queueing when more than one in eight was late. Slow start
//!   (+1 per answer on time, but at most a quarter past the largest depth
//!   answered on time: 1.25× per round trip rather than doubling, so few
//!   requests go past a knee while the first late answer is on its way)
//!   ends at the first late answer, or as soon as the first request sent
//!   deeper than any answered on time has been out longer than the
//!   tolerance, back at the largest number in flight that was still
//!   answered on time: at the knee, not at the overshoot. Afterwards the limit
//!   grows by one per clear round in which it bound, after a jittered quiet
//!   time of 0.5–1.5 s following any decrease (many clients do not probe in
//!   lockstep). A probe that queues goes back one step at its first late
//!   answer; failing at the same limit again doubles the quiet time (up to
//!   8×), so a host held at its knee sees a probe every few seconds. An
//!   inner error multiplies the limit by `decrease_ratio`. Delay while the
//!   limit does not bind (the rate does) is not this limit's doing and cuts
//!   nothing.
//! * **At most one decrease per round trip**: an answer counts as loss only
//!   when its request was sent after the previous decrease, so the answers
//!   of requests already in flight do not cut twice.
//! * **Server hints feed it directly**: `Retry-After` pauses the host (as in
//!   `Wait`), and the IETF `RateLimit` field (`r` remaining, `t` seconds to
//!   reset) caps the rate at `r / t` so the quota lasts its window. Without
//!   `Retry-After` there is no pause on top of the controller's own cut
//!   (`Wait`'s back-off would idle a host the rate already slowed). An
//!   exact wait under a second (Traefik's `X-Retry-In`, `retry-after-ms`)
//!   pauses nothing: it is the limiter's next slot, no send goes before
//!   it, and two such slots measure the rate (`named_slots.rs`). A rate
//!   named outright (Spring Cloud Gateway's `X-RateLimit-Replenish-Rate`)
//!   is held below from the first answer, and no probe passes it
//!   (`rate/announced.rs`).
//!
//! State is under 1 KiB per host (a test bounds it), plus bounded logs on
//! the heap (a cycle's send times, at most 4 096; the last 64 sends'
//! gaps; in a fleet, its last three merged cycles, at most 4 096 each),
//! updated under that host's own mutex for a constant-time section,
//! twice per request (admission; the answer and the permit's return).
//!
//! # Files
//!
//! | file | holds |
//! | --- | --- |
//! | `config.rs` | [`AdaptiveConfig`]: the settings, defaults and ranges |
//! | `controller.rs` | a host's `Controller`: admission and answers, joining the parts below |
//! | `concurrency.rs` | the concurrency limit: slow start, probes, cuts |
//! | `delay.rs` | the delay signal: is the host queueing? |
//! | `depths.rs` | the depths successes and losses were sent at: a limit on requests in flight or a rate limiter |
//! | `rate.rs` | the send rate of one host: its rules, its state, sends and answers |
//! | `rate/loss.rs` | a refusal without `Retry-After`: measured at the limit, a frozen search, a step back |
//! | `rate/counts.rs` | what the host accepted since the cut, the episode, the reference; a second read again |
//! | `rate/noise.rs` | refusals that do not follow the pace: a decline judged whole, the noise's earned share |
//! | `rate/suspicion.rs` | a large share refused after a deep cut: suspected, judged at a second cut held |
//! | `rate/announced.rs` | a rate the server names outright: the pace from the first answer, no probe past it |
//! | `rate/ban.rs` | bans: the estimate held before a stretch of refusals returned to, a ban each refusal renews ended |
//! | `rate/trial.rs` | a trial of the pace for a host whose bare 403s may be a rate limiter's |
//! | `rate/window_test.rs` | a window read at a trickle's end, tested at twice its pace: a ban's reading is probed past |
//! | `rate/window.rs` | a window that counts refusals: the trickle until it drains, its length |
//! | `rate/cycles.rs` | a `Retry-After` pause ends a cycle: fitted (`fit.rs`) or held where refused |
//! | `rate/slow.rs` | a host slower than a request a pause: its rate counted over a streak of pauses |
//! | `rate/probe.rs` | search steps, probes past the estimate, how long they hold |
//! | `rate/named.rs` | what named slots teach the pace: a search started from the wait, the rate two measure |
//! | `rate/fleet.rs` | in a fleet: its pauses, share, answers and merged cycles |
//! | `fit.rs` | the GCRA fit of the cycles between `Retry-After` pauses: the rates they allow, their middle and top |
//! | `fleet_fit.rs` | in a fleet (feature `redis`), the fleet's merged cycles fitted as one limiter's: each process paces its share |
//! | `meter.rs` | accepted and refused answers per slot |
//! | `named_slots.rs` | the exact next slots refusals name (`X-Retry-In`, `retry-after-ms`): no send before them, and the rate between two |
//! | `pacer.rs` | the pacing queue and its send slots |
//! | `recovery.rs` | capacity that fell: probed back to the rate held before |
//! | `quota.rs` | a quota from the headers: what is left, when it resets |
//! | `spacing.rs` | the gaps of recent sends: a limiter without a burst |
//! | `*_tests.rs`, `rate/tests/` | the tests of the file they name, beside it |

use tokio::time::Instant;

mod concurrency;
mod config;
mod controller;
mod delay;
mod depths;
mod fit;
mod fleet_fit;
mod meter;
mod named_slots;
mod pacer;
mod quota;
mod rate;
mod recovery;
mod spacing;

pub use config::AdaptiveConfig;
pub(crate) use controller::Controller;
#[cfg_attr(not(feature = "redis"), allow(unused_imports))]
pub(crate) use fleet_fit::FleetCycle;

/// How an answer went, for the controller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// 2xx or 3xx.
    Success,
    /// 429: the host's rate is spent. Moves the send rate only: a rate
    /// limiter refuses whatever the concurrency, and cutting it on every
    /// 429 serialised a crawl into one pause per request.
    Throttled,
    /// 503: a refusal. From deeper than successes are sent, a limit on
    /// requests in flight (nginx `limit_conn`), which moves the
    /// concurrency limit; otherwise, as a 429, the rate only (nginx
    /// `limit_req` answers 503 by default).
    Loss,
    /// An inner error (timeout, refused, reset): overload, which cuts the
    /// concurrency limit by `decrease_ratio` as well as the rate.
    Failed,
    /// A page the server served and refused on its own merits (404, 410,
    /// 400, ...): it passed the host's limiter, so it spends the rate as an
    /// acceptance does, but a missing page comes back sooner than a page,
    /// and its round trip says nothing of queueing. Counted as nothing, a
    /// GCRA of 10/s whose every other page was missing was paced at two
    /// thirds of its rate.
    Served,
    /// Any other answer (5xx but 503, and 401, 403, 407 and 408, which a
    /// server may answer before its limiter does): says nothing about load.
    Neutral,
}

impl Outcome {
    /// What a fleet counts of it (`fleet::answers`): accepted, refused
    /// for rate or overload, or neither.
    pub(crate) fn accepted(self) -> Option<bool> {
        match self {
            Outcome::Success | Outcome::Served => Some(true),
            Outcome::Throttled | Outcome::Loss | Outcome::Failed => Some(false),
            Outcome::Neutral => None,
        }
    }
}

/// A host's limits as `Controller::snapshot` reads them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) concurrency: usize,
    pub(crate) in_flight: usize,
    pub(crate) rate: Option<f64>,
    pub(crate) estimate: Option<f64>,
    pub(crate) measured: bool,
}

/// When a request may be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admit {
    /// Now: a permit is taken.
    Now,
    /// The caller leads the pacing queue: the next slot is at this instant;
    /// come back then with this lead. One request at a time holds the lead,
    /// so a rate change reaches the next send, not one queued long ago.
    At(Instant, u64),
    /// Another request leads: wait until the lead is passed on.
    Queued,
    /// When a permit is given back (concurrency).
    Full,
}
