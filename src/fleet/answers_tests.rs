//! The fleet's answers through a real `redis-server` (started by the test,
//! as in `tests/fleet/`): two processes' counts sum into one load; bad
//! fields are dropped; a key of another type is replaced, and the key gets
//! its TTL.

use std::time::Duration;

use super::redis_server::{eventually, RedisServer};

use super::{Fleet, FleetConfig};
use crate::tally::Tally;

/// Answers counted as `(Unix ms, accepted, refused)`.
fn counted(answers: &[(u64, u32, u32)]) -> Tally {
    let mut t = Tally::default();
    for &(ms, accepted, refused) in answers {
        t.add(ms, accepted, refused);
    }
    t
}

fn fleet(server: &RedisServer, namespace: &str) -> Fleet {
    let config = FleetConfig::builder(server.url(), namespace)
        .refresh(Duration::from_millis(20))
        .key_ttl(Duration::from_secs(2))
        .command_timeout(Duration::from_millis(250))
        .build()
        .expect("valid config");
    Fleet::start(config).expect("inside a runtime")
}

/// Two processes under `namespace`, once both are connected.
async fn two_connected(server: &RedisServer, namespace: &str) -> (Fleet, Fleet) {
    let (a, b) = (fleet(server, namespace), fleet(server, namespace));
    for f in [&a, &b] {
        eventually("connected", Duration::from_secs(5), || f.stats().connected).await;
    }
    (a, b)
}

/// Leases for `host` in both processes until `done`.
async fn lease_until(fleets: [&Fleet; 2], host: &str, what: &str, mut done: impl FnMut() -> bool) {
    eventually(what, Duration::from_secs(5), || {
        for f in fleets {
            f.try_send(host, 100.0, tokio::time::Instant::now());
        }
        done()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_answers_sum_into_one_load_and_bad_fields_are_dropped() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let (a, b) = two_connected(&server, "answers").await;
    let host = "example.com";
    lease_until([&a, &b], host, "two live processes", || {
        a.share(host) == 0.5 && b.share(host) == 0.5
    })
    .await;
    // A stranger's garbage in the hash: no count.
    let key = "answers:{example.com}:answers";
    let _: i64 = server.cmd(&["HSET", key, "stranger", "1", "a17", "nope", "pghost", "12"]);
    let now_ms = super::unix_ms(std::time::SystemTime::now());
    // Garbage in the span these answers go to: a count that would
    // overflow, and one that is no number. Replaced, not added to.
    let span = now_ms / 100;
    let (a_field, r_field) = (format!("a{span}"), format!("r{span}"));
    let _: i64 = server.cmd(&["HSET", key, &a_field, "9223372036854775807", &r_field, "many"]);
    a.view(host, 0, &mut counted(&[(now_ms, 30, 5)]));
    b.view(host, 0, &mut counted(&[(now_ms, 10, 2), (now_ms + 1, 10, 3)]));
    // Once both reported past these answers, each reads the fleet's sum.
    lease_until([&a, &b], host, "the fleet's answers", || {
        [&a, &b].iter().all(|f| {
            f.view(host, 0, &mut Tally::default())
                .load
                .is_some_and(|l| l.peak == 50.0 && l.refused == 10 && l.paces > 0.0)
        })
    })
    .await;
    for field in ["stranger", "a17", "pghost"] {
        let v: Option<String> = server.cmd(&["HGET", key, field]);
        assert_eq!(v, None, "the bad field {field} was dropped");
    }
    let ttl: i64 = server.cmd(&["PTTL", key]);
    assert!(ttl > 0 && ttl <= 2_000, "the answers key has TTL {ttl} ms");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answers_key_of_another_type_is_replaced() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let (a, b) = two_connected(&server, "answertype").await;
    let host = "type.example";
    let key = "answertype:{type.example}:answers";
    // Somebody else's list where the answers' hash belongs.
    let _: i64 = server.cmd(&["RPUSH", key, "not", "a", "hash"]);
    let now_ms = super::unix_ms(std::time::SystemTime::now());
    a.view(host, 0, &mut counted(&[(now_ms, 0, 1)]));
    lease_until([&a, &b], host, "the answers in a hash", || {
        server.cmd::<String>(&["TYPE", key]) == "hash"
    })
    .await;
    lease_until([&a, &b], host, "the refusal counted", || {
        a.view(host, 0, &mut Tally::default())
            .load
            .is_some_and(|l| l.refused == 1)
    })
    .await;
    assert!(
        a.stats().connected && b.stats().connected,
        "a wrong type never makes a process local"
    );
}
