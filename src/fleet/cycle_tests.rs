//! The fleet's cycles through a real `redis-server` (started by the test,
//! as in `tests/fleet/`): two processes publish theirs and both merge
//! the same cycle; bad fields are left out and deleted; a key of another
//! type is replaced, and the key expires with its TTL.

use std::time::Duration;

use super::redis_server::{eventually, RedisServer};

use super::cycle::CycleRecord;
use super::{Fleet, FleetConfig};
use crate::tally::Tally;

fn fleet(server: &RedisServer) -> Fleet {
    let config = FleetConfig::builder(server.url(), "cycles")
        .refresh(Duration::from_millis(20))
        .command_timeout(Duration::from_millis(250))
        .build()
        .expect("valid config");
    Fleet::start(config).expect("inside a runtime")
}

/// Two processes, connected, each of which has leased `host`: its two
/// live processes.
async fn two_live_processes(server: &RedisServer, host: &str) -> (Fleet, Fleet) {
    let (a, b) = (fleet(server), fleet(server));
    for f in [&a, &b] {
        eventually("connected", Duration::from_secs(5), || f.stats().connected).await;
    }
    eventually("two live processes", Duration::from_secs(5), || {
        for f in [&a, &b] {
            f.try_send(host, 100.0, tokio::time::Instant::now());
        }
        a.share(host) == 0.5 && b.share(host) == 0.5
    })
    .await;
    (a, b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_merge_the_same_cycle_and_bad_fields_are_deleted() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let host = "example.com";
    // Both send to the host: two live processes.
    let (a, b) = two_live_processes(&server, host).await;
    // A stranger's garbage in the hash: not a record.
    let key = "cycles:{example.com}:cycles";
    let _: i64 = server.cmd(&["HSET", key, "stranger", "not a record"]);
    let now_us = super::unix_us(std::time::SystemTime::now());
    // A was refused at `now_us` after three sends; B heard of the pause
    // 30 ms later, having sent twice before the refusal and once after.
    a.publish_cycle(
        host,
        CycleRecord::from_log(now_us, true, true, &[-0.4, -0.2, 0.0]),
    );
    b.publish_cycle(
        host,
        CycleRecord::from_log(now_us + 30_000, false, true, &[-0.33, -0.13, -0.01]),
    );
    for f in [&a, &b] {
        eventually("the cycle merged", Duration::from_secs(5), || {
            f.stats().cycles_merged == 1
        })
        .await;
    }
    let ca = a.view(host, 0, &mut Tally::default()).cycle;
    let cb = b.view(host, 0, &mut Tally::default()).cycle;
    let (ca, cb) = (ca.expect("A merged"), cb.expect("B merged"));
    assert_eq!(ca.log, cb.log, "both processes merged one cycle");
    assert_eq!(ca.processes, 2);
    assert!(ca.complete && cb.complete, "every live process's record is in it");
    assert_eq!(ca.end_us, now_us, "it ends at A's refusal");
    // B's send after the refusal is not part of it.
    let expected: Vec<f32> = vec![-0.4, -0.3, -0.2, -0.1, 0.0];
    assert_eq!(ca.log.len(), expected.len());
    for (got, want) in ca.log.iter().zip(&expected) {
        assert!((got - want).abs() < 1e-5, "{:?}", ca.log);
    }
    // Seen once: not handed out again.
    assert!(a.view(host, ca.seq, &mut Tally::default()).cycle.is_none());
    let stranger: Option<String> = server.cmd(&["HGET", key, "stranger"]);
    assert_eq!(stranger, None, "the garbage field was deleted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cycles_key_of_another_type_is_replaced_and_expires_with_its_ttl() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let config = FleetConfig::builder(server.url(), "cyclettl")
        .refresh(Duration::from_millis(20))
        .key_ttl(Duration::from_secs(1))
        .command_timeout(Duration::from_millis(250))
        .build()
        .expect("valid config");
    let fleet = Fleet::start(config).expect("inside a runtime");
    eventually("connected", Duration::from_secs(5), || fleet.stats().connected).await;
    let host = "ttl.example";
    let key = "cyclettl:{ttl.example}:cycles";
    // Somebody else's string where the cycles' hash belongs.
    let _: () = server.cmd(&["SET", key, "not a hash"]);
    let now_us = super::unix_us(std::time::SystemTime::now());
    fleet.publish_cycle(
        host,
        CycleRecord::from_log(now_us, true, true, &[-0.2, -0.1, 0.0]),
    );
    eventually("the record in a hash", Duration::from_secs(5), || {
        server.cmd::<String>(&["TYPE", key]) == "hash"
    })
    .await;
    let ttl: i64 = server.cmd(&["PTTL", key]);
    assert!(ttl > 0 && ttl <= 1_200, "the cycles key has TTL {ttl} ms");
    eventually("the cycle merged", Duration::from_secs(5), || {
        fleet.stats().cycles_merged == 1
    })
    .await;
    let stats = fleet.stats();
    assert!(
        stats.connected,
        "a wrong type never makes the process local: {stats:?}"
    );
    drop(fleet);
    eventually("the key to expire", Duration::from_secs(4), || {
        server.cmd::<i64>(&["EXISTS", key]) == 0
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_published_after_the_merge_merges_the_cycle_again() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let host = "late.example";
    let (a, b) = two_live_processes(&server, host).await;
    let now_us = super::unix_us(std::time::SystemTime::now());
    a.publish_cycle(
        host,
        CycleRecord::from_log(now_us, true, true, &[-0.4, -0.2, 0.0]),
    );
    // B hears of the pause late: A merges without it, after its reads.
    eventually("A's first merge", Duration::from_secs(5), || {
        a.stats().cycles_merged == 1
    })
    .await;
    let first = a.view(host, 0, &mut Tally::default()).cycle.expect("merged");
    assert_eq!(
        (first.processes, first.complete, first.replaces),
        (1, false, false)
    );
    b.publish_cycle(
        host,
        CycleRecord::from_log(now_us + 300_000, false, true, &[-0.63, -0.43, -0.31]),
    );
    // A second after its merge, A reads again and finds B's record.
    eventually("A's merge again", Duration::from_secs(5), || {
        a.stats().cycles_remerged == 1
    })
    .await;
    let again = a
        .view(host, first.seq, &mut Tally::default())
        .cycle
        .expect("handed out: a new merge");
    assert_eq!((again.processes, again.replaces), (2, true));
    assert!(again.complete, "both live processes' records");
    assert_eq!(again.end_us, first.end_us, "the same cycle");
    // B heard of the pause 300 ms after A's refusal: its record is in
    // A's merge, with its three sends before that refusal.
    assert_eq!(again.log.len(), 6, "{:?}", again.log);
    // Read once more: nothing came since, no merge again.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(a.stats().cycles_remerged, 1);
}
