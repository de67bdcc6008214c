//! Redis killed, restarted, flushed, hung or down from the start, and a
//! fleet whose runtime is gone: the process goes local and rejoins.

use std::time::{Duration, SystemTime};

use tokio::time::{sleep, Instant};
use tower_snapshotter::fleet::{Fleet, FleetConfig, Slot};

use crate::redis_server::{eventually, RedisServer};
use crate::{config, connected, first_grant, init_tracing, spend};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_mid_run_goes_local_without_blocking_then_rejoins_after_restart_and_flush() {
    init_tracing();
    let Some(mut server) = RedisServer::start() else {
        return;
    };
    let fleet = Fleet::start(config(&server, "fault")).unwrap();
    connected(&fleet).await;
    first_grant(&fleet, "a.example", 1000.0, Duration::from_secs(5)).await;

    server.kill();
    let deadline = Instant::now() + Duration::from_secs(5);
    let (mut calls, mut local, mut slowest) = (0u64, 0u64, Duration::ZERO);
    while Instant::now() < deadline && local < 100 {
        let t = Instant::now();
        let slot = fleet.try_send("a.example", 1000.0, t);
        slowest = slowest.max(t.elapsed());
        calls += 1;
        if let Slot::Local { share } = slot {
            assert_eq!(share, 1.0);
            local += 1;
        }
        sleep(Duration::from_millis(1)).await;
    }
    eprintln!("{calls} calls, {local} local, slowest {slowest:?}");
    assert!(local >= 100, "try_send answers Local once Redis is gone");
    assert!(
        slowest < Duration::from_millis(100),
        "try_send never waits for Redis"
    );
    let stats = fleet.stats();
    assert!(!stats.connected && stats.local_since.is_some(), "{stats:?}");
    // Recorded while local, published after the rejoin.
    fleet.pause("b.example", SystemTime::now() + Duration::from_secs(30));

    // A new, empty server on the same port: the scripts are gone too.
    server.restart();
    connected(&fleet).await;
    first_grant(&fleet, "a.example", 1000.0, Duration::from_secs(5)).await;
    eventually("the pause recorded while local", Duration::from_secs(2), || {
        server.cmd::<bool>(&["EXISTS", "fault:{b.example}:pause"])
    })
    .await;
    let stats = fleet.stats();
    assert!(
        stats.local_total > Duration::ZERO && stats.local_since.is_none(),
        "{stats:?}"
    );

    // Flushed while connected: the next lease reloads the script.
    server.cmd::<()>(&["SCRIPT", "FLUSH"]);
    server.cmd::<()>(&["FLUSHALL"]);
    first_grant(&fleet, "c.example", 1000.0, Duration::from_secs(5)).await;
    assert!(fleet.is_connected());
    assert!(server.cmd::<bool>(&["EXISTS", "fault:{c.example}:tat"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_rejoin_the_fleet_reforms_without_holding_the_pace_or_dropping_the_count() {
    init_tracing();
    let Some(mut server) = RedisServer::start() else {
        return;
    };
    // Leases of a second: the fleet re-forms for four of them.
    let config = || {
        FleetConfig::builder(server.url(), "reform")
            .refresh(Duration::from_millis(20))
            .lease(Duration::from_secs(1))
            .command_timeout(Duration::from_millis(250))
            .build()
            .expect("valid config")
    };
    let (a, b) = (Fleet::start(config()).unwrap(), Fleet::start(config()).unwrap());
    connected(&a).await;
    connected(&b).await;
    let host = "reform.example";
    eventually("two live processes", Duration::from_secs(5), || {
        for f in [&a, &b] {
            f.try_send(host, 100.0, Instant::now());
        }
        a.share(host) == 0.5 && b.share(host) == 0.5
    })
    .await;
    server.kill();
    eventually("local", Duration::from_secs(5), || !a.is_connected()).await;
    // Back, empty; only A sends. Until the others are back, the schedule
    // (which prices A alone) does not hold A, and A's share stays a half.
    server.restart();
    connected(&a).await;
    let (mut waits, mut local) = (0, 0);
    for _ in 0..200 {
        match a.try_send(host, 20.0, Instant::now()) {
            Slot::WaitUntil(_) => waits += 1,
            Slot::Local { share } => {
                assert_eq!(share, 0.5, "the count does not fall while the fleet re-forms");
                local += 1;
            }
            Slot::Granted => {}
        }
        sleep(Duration::from_millis(1)).await;
    }
    assert_eq!(waits, 0, "the schedule held a pace while the fleet re-formed");
    assert!(local > 0, "200 sends at 20/s outran the slots leased");
    assert!(a.is_connected());
    // Formed: B is gone from the count, and the schedule holds again.
    eventually("the schedule in force, A alone", Duration::from_secs(10), || {
        let slot = a.try_send(host, 20.0, Instant::now());
        a.share(host) == 1.0 && matches!(slot, Slot::WaitUntil(_))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_redis_makes_the_process_local_until_it_answers_again() {
    init_tracing();
    let Some(server) = RedisServer::start() else {
        return;
    };
    let fleet = Fleet::start(config(&server, "hung")).unwrap();
    connected(&fleet).await;
    first_grant(&fleet, "h.example", 1000.0, Duration::from_secs(5)).await;
    // Stopped, not killed: the connection stays open and answers nothing.
    server.signal("STOP");
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut local = false;
    while !local {
        assert!(Instant::now() < deadline, "still not local: {:?}", fleet.stats());
        let t = Instant::now();
        local = matches!(fleet.try_send("h.example", 1000.0, t), Slot::Local { .. });
        assert!(
            t.elapsed() < Duration::from_millis(100),
            "try_send never waits for Redis"
        );
        sleep(Duration::from_millis(1)).await;
    }
    server.signal("CONT");
    connected(&fleet).await;
    first_grant(&fleet, "h.example", 1000.0, Duration::from_secs(5)).await;
}

#[test]
fn a_fleet_whose_runtime_is_gone_answers_local() {
    init_tracing();
    let Some(server) = RedisServer::start() else {
        return;
    };
    let runtime = || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    };
    let first = runtime();
    let fleet = first.block_on(async {
        let fleet = Fleet::start(config(&server, "orphan")).unwrap();
        connected(&fleet).await;
        first_grant(&fleet, "h.example", 1000.0, Duration::from_secs(5)).await;
        fleet
    });
    // The background task went with its runtime; Redis is still up.
    drop(first);
    runtime().block_on(async {
        eventually("Local without a background task", Duration::from_secs(8), || {
            matches!(
                fleet.try_send("h.example", 1000.0, Instant::now()),
                Slot::Local { .. }
            )
        })
        .await;
    });
    assert!(!fleet.stats().connected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starts_local_while_redis_is_down_and_joins_when_it_comes() {
    init_tracing();
    let Some(mut server) = RedisServer::start() else {
        return;
    };
    server.kill();
    let fleet = Fleet::start(config(&server, "late")).unwrap();
    let end = Instant::now() + Duration::from_millis(300);
    let (granted, local) = spend(&fleet, "h.example", 100.0, end).await;
    assert_eq!(granted, 0);
    assert!(local > 0);
    assert!(!fleet.stats().connected);
    server.restart();
    connected(&fleet).await;
    first_grant(&fleet, "h.example", 100.0, Duration::from_secs(5)).await;
}
