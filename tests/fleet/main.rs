//! The fleet against a real `redis-server` on loopback: a shared budget,
//! pauses, learned rates and loss epochs seen across processes, Redis
//! killed, restarted and flushed, wrong-typed keys, and key expiry.
//!
//! Each test starts its own `redis-server` (the Debian package) on an
//! ephemeral port with a temporary directory and stops it at the end. When
//! `redis-server` is missing the tests print a note and pass, except under
//! `CI=true`, where they fail.

#![cfg(feature = "redis")]

#[path = "../common/redis.rs"]
mod redis_server;

mod budget;
mod faults;
mod keys;
mod shared_state;

use std::sync::{Arc, Barrier};
use std::time::Duration;

use tokio::time::{sleep, sleep_until, Instant};
use tower_snapshotter::fleet::{Fleet, FleetConfig, Slot};

use redis_server::{eventually, RedisServer};

fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

/// Short periods, and a command timeout that a loaded CI machine keeps.
fn config(server: &RedisServer, namespace: &str) -> FleetConfig {
    FleetConfig::builder(server.url(), namespace)
        .refresh(Duration::from_millis(20))
        .lease(Duration::from_millis(100))
        .command_timeout(Duration::from_millis(250))
        .build()
        .expect("valid config")
}

async fn connected(fleet: &Fleet) {
    eventually("the fleet to connect", Duration::from_secs(10), || {
        fleet.is_connected()
    })
    .await;
}

/// Takes slots for `host` at `rate` until `end`: (granted, local answers).
async fn spend(fleet: &Fleet, host: &str, rate: f64, end: Instant) -> (u64, u64) {
    let (mut granted, mut local) = (0, 0);
    loop {
        let now = Instant::now();
        if now >= end {
            return (granted, local);
        }
        match fleet.try_send(host, rate, now) {
            Slot::Granted => granted += 1,
            Slot::WaitUntil(at) => sleep_until(at.min(end)).await,
            Slot::Local { .. } => {
                local += 1;
                sleep(Duration::from_millis(1)).await;
            }
        }
    }
}

async fn first_grant(fleet: &Fleet, host: &str, rate: f64, within: Duration) {
    let end = Instant::now() + within;
    loop {
        let now = Instant::now();
        assert!(
            now < end,
            "no slot granted for {host} within {within:?}: {:?}",
            fleet.stats()
        );
        match fleet.try_send(host, rate, now) {
            Slot::Granted => return,
            Slot::WaitUntil(at) => sleep_until(at.min(end)).await,
            Slot::Local { .. } => sleep(Duration::from_millis(5)).await,
        }
    }
}

/// Runs `body` in `n` processes, each a thread with a runtime and a fleet
/// of its own, connected, all starting together; returns what each body
/// returned, in order.
fn in_processes<T, F, Fut>(server: &RedisServer, namespace: &str, n: usize, body: F) -> Vec<T>
where
    T: Send + 'static,
    F: Fn(usize, Fleet) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = T>,
{
    let barrier = Arc::new(Barrier::new(n));
    let body = Arc::new(body);
    let workers: Vec<_> = (0..n)
        .map(|i| {
            let config = config(server, namespace);
            let (barrier, body) = (Arc::clone(&barrier), Arc::clone(&body));
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async {
                    let fleet = Fleet::start(config).unwrap();
                    connected(&fleet).await;
                    barrier.wait();
                    body(i, fleet).await
                })
            })
        })
        .collect();
    workers.into_iter().map(|w| w.join().unwrap()).collect()
}
