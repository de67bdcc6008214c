//! Each limiter model pinned on tokio's paused clock: when it serves, when it
//! refuses, and which headers it sends. A model that refuses at the wrong
//! time is a wrong model, so the figures here are exact.

mod buckets;
mod concurrency;
mod fixed_window;
mod gcra;
mod sliding;
mod spec;
mod wrappers;

use std::time::Duration;

use testkit::{Decision, Limiter};
use tokio::time::{advance, Instant};

/// `n` arrivals at the current instant; how many were served.
fn burst(limiter: &mut dyn Limiter, n: usize) -> usize {
    let now = Instant::now();
    (0..n).filter(|_| limiter.arrive(now).served()).count()
}

/// One arrival now.
fn arrive(limiter: &mut dyn Limiter) -> Decision {
    limiter.arrive(Instant::now())
}

/// Sends one request every `every` for `total` (the first at once, none at
/// `total` itself); how many were served and how many sent.
async fn steady(limiter: &mut dyn Limiter, every: Duration, total: Duration) -> (usize, usize) {
    let end = Instant::now() + total;
    let (mut served, mut sent) = (0, 0);
    while Instant::now() < end {
        sent += 1;
        if arrive(limiter).served() {
            served += 1;
        }
        advance(every).await;
    }
    (served, sent)
}

fn header_secs(d: &Decision, name: &str) -> u64 {
    d.get(name)
        .unwrap_or_else(|| panic!("no {name} in {d:?}"))
        .parse()
        .unwrap_or_else(|_| panic!("{name} not whole seconds in {d:?}"))
}
