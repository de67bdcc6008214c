//! The keys in Redis: wrong-typed and garbage values counted as absent
//! and overwritten, and expiry after the key TTL.

use std::time::{Duration, SystemTime};

use tower_snapshotter::fleet::{Fleet, FleetConfig, Learned};

use crate::redis_server::{eventually, RedisServer};
use crate::{config, connected, first_grant, init_tracing};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_typed_and_garbage_keys_count_as_absent_and_are_overwritten() {
    init_tracing();
    let Some(server) = RedisServer::start() else {
        return;
    };
    // Wrong types under one host...
    server.cmd::<()>(&["LPUSH", "bad:{h.example}:tat", "x"]);
    server.cmd::<()>(&["SET", "bad:{h.example}:procs", "not a set"]);
    server.cmd::<()>(&["SADD", "bad:{h.example}:pause", "x"]);
    server.cmd::<()>(&["SET", "bad:{h.example}:learned", "not a hash"]);
    server.cmd::<()>(&["LPUSH", "bad:{h.example}:epoch", "x"]);
    server.cmd::<()>(&["SET", "bad:{h.example}:paces", "not a hash"]);
    // ...garbage values of the right type under another.
    server.cmd::<()>(&["SET", "bad:{g.example}:tat", "1e300"]);
    server.cmd::<()>(&["ZADD", "bad:{g.example}:procs", "1e300", "ghost"]);
    server.cmd::<()>(&["SET", "bad:{g.example}:pause", "99999999999999999999"]);
    server.cmd::<()>(&[
        "HSET",
        "bad:{g.example}:learned",
        "rate",
        "inf",
        "last_loss",
        "nan",
    ]);
    server.cmd::<()>(&["SET", "bad:{g.example}:epoch", "12"]);
    server.cmd::<()>(&["HSET", "bad:{g.example}:paces", "ghost", "1e300", "other", "nan"]);

    let fleet = Fleet::start(config(&server, "bad")).unwrap();
    connected(&fleet).await;
    for host in ["h.example", "g.example"] {
        assert_eq!(fleet.paused_until(host), None);
        first_grant(&fleet, host, 100.0, Duration::from_secs(5)).await;
        assert_eq!(fleet.paused_until(host), None, "{host}");
        assert_eq!(fleet.learned(host), None, "{host}");
        assert_eq!(fleet.share(host), 1.0, "{host}: only this process is live");
        assert!(fleet.loss_epoch(host, SystemTime::now()), "{host}");
    }
    eventually("the epochs", Duration::from_secs(2), || {
        server.cmd::<String>(&["TYPE", "bad:{h.example}:epoch"]) == "string"
            && server
                .cmd::<Option<i64>>(&["PTTL", "bad:{g.example}:epoch"])
                .unwrap_or(-1)
                > 0
    })
    .await;
    fleet.pause("h.example", SystemTime::now() + Duration::from_secs(10));
    eventually("the pause", Duration::from_secs(2), || {
        server.cmd::<String>(&["TYPE", "bad:{h.example}:pause"]) == "string"
    })
    .await;
    for (key, ty) in [
        ("bad:{h.example}:tat", "string"),
        ("bad:{h.example}:procs", "zset"),
        ("bad:{h.example}:learned", "hash"),
        ("bad:{g.example}:procs", "zset"),
        ("bad:{h.example}:paces", "hash"),
    ] {
        assert_eq!(server.cmd::<String>(&["TYPE", key]), ty, "{key}");
    }
    assert_eq!(
        server.cmd::<Option<String>>(&["ZSCORE", "bad:{g.example}:procs", "ghost"]),
        None,
        "a member from the far future is dropped"
    );
    assert_eq!(
        server
            .cmd::<Vec<String>>(&["HKEYS", "bad:{g.example}:paces"])
            .len(),
        1,
        "the paces of processes not live are dropped, this one's kept"
    );
    let stats = fleet.stats();
    assert!(
        stats.connected,
        "bad data never makes the process local: {stats:?}"
    );
    assert!(fleet.paused_until("h.example").is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_expire_after_their_ttl() {
    init_tracing();
    let Some(server) = RedisServer::start() else {
        return;
    };
    let config = FleetConfig::builder(server.url(), "ttl")
        .refresh(Duration::from_millis(20))
        .lease(Duration::from_millis(50))
        .key_ttl(Duration::from_secs(1))
        .command_timeout(Duration::from_millis(250))
        .build()
        .unwrap();
    let fleet = Fleet::start(config).unwrap();
    connected(&fleet).await;
    let host = "ttl.example";
    first_grant(&fleet, host, 100.0, Duration::from_secs(5)).await;
    fleet.pause(host, SystemTime::now() + Duration::from_millis(300));
    fleet.publish_learned(
        host,
        Learned {
            rate: 100.0,
            measured: false,
            last_loss: None,
        },
    );
    assert!(fleet.loss_epoch(host, SystemTime::now()));
    // The epoch key lives only for its window, so each key is checked as
    // it is seen.
    let mut seen = std::collections::BTreeSet::new();
    eventually("all seven keys", Duration::from_secs(2), || {
        for key in server.cmd::<Vec<String>>(&["KEYS", "ttl:*"]) {
            // -2: gone since `KEYS`; 0: under a millisecond left.
            let ttl: i64 = server.cmd(&["PTTL", &key]);
            assert!(ttl == -2 || (0..=1_200).contains(&ttl), "{key} has TTL {ttl} ms");
            seen.insert(key);
        }
        seen.len() == 7
    })
    .await;
    drop(fleet);
    eventually("the keys to expire", Duration::from_secs(4), || {
        server.cmd::<Vec<String>>(&["KEYS", "ttl:*"]).is_empty()
    })
    .await;
}
