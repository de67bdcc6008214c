//! What one process tells the others through Redis: pauses (pushed or
//! polled), learned rates, and loss epochs.

use std::time::{Duration, SystemTime};

use tokio::time::{sleep, Instant};
use tower_snapshotter::fleet::{Fleet, FleetConfig, Learned};

use crate::redis_server::{eventually, RedisServer};
use crate::{config, connected, first_grant, init_tracing};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pause_is_seen_by_the_others_and_merges_by_the_latest_end() {
    init_tracing();
    let Some(server) = RedisServer::start() else {
        return;
    };
    let (a, b) = (
        Fleet::start(config(&server, "pause")).unwrap(),
        Fleet::start(config(&server, "pause")).unwrap(),
    );
    connected(&a).await;
    connected(&b).await;
    let host = "paused.example";
    assert_eq!(b.paused_until(host), None);
    sleep(Duration::from_millis(50)).await;
    let end = SystemTime::now() + Duration::from_secs(3);
    a.pause(host, end);
    assert!(a.paused_until(host).is_some(), "recorded locally at once");
    let seen_at = Instant::now();
    eventually("b to see a's pause", Duration::from_secs(2), || {
        b.paused_until(host).is_some()
    })
    .await;
    eprintln!("b saw the pause after {:?}", seen_at.elapsed());
    let seen = b.paused_until(host).unwrap();
    let diff = seen.duration_since(end).unwrap_or_else(|e| e.duration());
    assert!(diff <= Duration::from_millis(1), "{seen:?} vs {end:?}");

    // A process that starts later reads it when it first asks.
    let c = Fleet::start(config(&server, "pause")).unwrap();
    connected(&c).await;
    eventually("c to read the pause", Duration::from_secs(2), || {
        c.paused_until(host).is_some()
    })
    .await;

    // A shorter pause does not shorten it; a longer one extends it for all.
    b.pause(host, SystemTime::now() + Duration::from_secs(1));
    sleep(Duration::from_millis(200)).await;
    assert_eq!(a.paused_until(host), Some(seen));
    let later = SystemTime::now() + Duration::from_secs(5);
    b.pause(host, later);
    eventually("a to see the longer pause", Duration::from_secs(2), || {
        a.paused_until(host).is_some_and(|t| t > seen)
    })
    .await;
    // Another namespace shares nothing.
    let other = Fleet::start(config(&server, "elsewhere")).unwrap();
    connected(&other).await;
    other.paused_until(host);
    sleep(Duration::from_millis(200)).await;
    assert_eq!(other.paused_until(host), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_pushed_events_recently_used_hosts_are_polled() {
    init_tracing();
    let Some(server) = RedisServer::start() else {
        return;
    };
    // A user whom ACLs deny every channel: no SUBSCRIBE, no PUBLISH.
    server.cmd::<()>(&[
        "ACL",
        "SETUSER",
        "poller",
        "on",
        ">secret",
        "~*",
        "resetchannels",
        "+@all",
    ]);
    let url = server.url().replace("redis://", "redis://poller:secret@");
    let config = || {
        FleetConfig::builder(url.clone(), "poll")
            .refresh(Duration::from_millis(20))
            .command_timeout(Duration::from_millis(250))
            .build()
            .unwrap()
    };
    let (a, b) = (Fleet::start(config()).unwrap(), Fleet::start(config()).unwrap());
    connected(&a).await;
    connected(&b).await;
    assert!(!a.stats().subscribed && !b.stats().subscribed);
    let host = "polled.example";
    assert_eq!(b.paused_until(host), None);
    a.pause(host, SystemTime::now() + Duration::from_secs(3));
    eventually("b to poll a's pause", Duration::from_secs(2), || {
        b.paused_until(host).is_some()
    })
    .await;
    a.publish_learned(
        host,
        Learned {
            rate: 7.0,
            measured: true,
            last_loss: None,
        },
    );
    eventually("b to poll a's rate", Duration::from_secs(2), || {
        b.learned(host).is_some_and(|l| l.rate == 7.0)
    })
    .await;
    first_grant(&b, host, 100.0, Duration::from_secs(5)).await;
    assert!(a.is_connected() && b.is_connected());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_process_starts_from_what_the_fleet_learned() {
    init_tracing();
    let Some(server) = RedisServer::start() else {
        return;
    };
    let a = Fleet::start(config(&server, "learn")).unwrap();
    connected(&a).await;
    let host = "learned.example";
    let loss = SystemTime::now() - Duration::from_secs(3);
    a.publish_learned(
        host,
        Learned {
            rate: 42.5,
            measured: true,
            last_loss: Some(loss),
        },
    );
    assert_eq!(a.learned(host).map(|l| l.rate), Some(42.5), "cached at once");
    eventually("the learned values in Redis", Duration::from_secs(2), || {
        server
            .cmd::<Option<String>>(&["HGET", "learn:{learned.example}:learned", "rate"])
            .as_deref()
            == Some("42.5")
    })
    .await;

    let b = Fleet::start(config(&server, "learn")).unwrap();
    connected(&b).await;
    eventually("b to read the learned rate", Duration::from_secs(2), || {
        b.learned(host).is_some()
    })
    .await;
    let learned = b.learned(host).unwrap();
    assert_eq!(learned.rate, 42.5);
    assert!(learned.measured);
    let got = learned.last_loss.expect("last loss");
    let diff = got.duration_since(loss).unwrap_or_else(|e| e.duration());
    assert!(diff < Duration::from_millis(2), "{got:?} vs {loss:?}");

    // An update reaches the running process too.
    a.publish_learned(
        host,
        Learned {
            rate: 30.0,
            measured: false,
            last_loss: None,
        },
    );
    eventually("b to see the update", Duration::from_secs(2), || {
        b.learned(host).is_some_and(|l| l.rate == 30.0 && !l.measured)
    })
    .await;
    assert!(
        b.learned(host).unwrap().last_loss.is_some(),
        "the latest loss is kept"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_losses_are_one_epoch() {
    init_tracing();
    let Some(server) = RedisServer::start() else {
        return;
    };
    let cfg = || {
        FleetConfig::builder(server.url(), "epoch")
            .refresh(Duration::from_millis(20))
            .lease(Duration::from_millis(100))
            .command_timeout(Duration::from_millis(250))
            .build()
            .unwrap()
    };
    let (a, b) = (Fleet::start(cfg()).unwrap(), Fleet::start(cfg()).unwrap());
    connected(&a).await;
    connected(&b).await;
    let host = "lossy.example";
    b.learned(host);
    sleep(Duration::from_millis(100)).await;
    let sent = SystemTime::now() - Duration::from_millis(20);
    assert!(a.loss_epoch(host, sent), "the first loss starts an epoch");
    assert!(
        !a.loss_epoch(host, sent),
        "a second refusal from the same burst does not"
    );
    eventually("the epoch key", Duration::from_secs(2), || {
        server.cmd::<bool>(&["EXISTS", "epoch:{lossy.example}:epoch"])
    })
    .await;
    sleep(Duration::from_millis(50)).await;
    assert!(
        !b.loss_epoch(host, sent),
        "b's refusal from the same burst joins a's epoch"
    );
    assert!(b.learned(host).is_none(), "no rate was published");
    // After the window (two lease lengths), a new refusal is a new loss.
    sleep(Duration::from_millis(250)).await;
    assert!(b.loss_epoch(host, SystemTime::now()));
}
