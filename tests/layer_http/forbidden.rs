//! Bare 403s: a run of them, nothing accepted between, is a block's
//! (`mod_evasive`, firewalls' rate rules) and backs the host off; a site's
//! forbidden pages among its others pause nothing.

use std::time::Duration;

use tower::{Layer, ServiceExt};
use tower_snapshotter::{GatePolicy, SnapshotLayer};

use crate::common::*;
use crate::idle_snapshotter;

#[tokio::test(start_paused = true)]
async fn a_host_answering_nothing_but_bare_403s_is_backed_off_from_the_eighth() {
    bounded(async {
        // A block of twelve answers, then the host serves again.
        let server = TestServer::start(|hit| reply(if hit.nth < 12 { 403 } else { 200 })).await;
        let layer = SnapshotLayer::builder(idle_snapshotter())
            .policy(GatePolicy::Wait)
            .build()
            .unwrap();
        let svc = layer.layer(client());
        for i in 0..14 {
            let status = svc
                .clone()
                .oneshot(get(&server.url("/p")))
                .await
                .unwrap()
                .status();
            assert_eq!(
                status,
                if i < 12 { 403 } else { 200 },
                "answer {i} reaches the caller as it was"
            );
        }
        let times = server.times("/p");
        assert_eq!(times[7], times[0], "seven 403s are no block's: sent at once");
        // The eighth is a block's: a back-off pause (500 ms, doubling)
        // before each request that follows, until the host accepts.
        for (i, pair) in times[7..13].windows(2).enumerate() {
            assert!(
                pair[1] - pair[0] >= Duration::from_millis(500),
                "request {} went {:?} after the one before it",
                i + 8,
                pair[1] - pair[0]
            );
        }
        assert!(layer.stats().time_paused >= Duration::from_millis(2_500));
        assert!(layer.stats().paused_hosts.is_empty(), "the acceptance ended it");
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_sites_forbidden_pages_among_its_others_pause_nothing() {
    bounded(async {
        // Every third page forbidden: forty-eight answers, sixteen of them
        // 403s, none of them two in a row.
        let server = TestServer::start(|hit| reply(if hit.nth % 3 == 2 { 403 } else { 200 })).await;
        let layer = SnapshotLayer::builder(idle_snapshotter())
            .policy(GatePolicy::Wait)
            .build()
            .unwrap();
        let svc = layer.layer(client());
        let mut forbidden = 0;
        for _ in 0..48 {
            if svc
                .clone()
                .oneshot(get(&server.url("/q")))
                .await
                .unwrap()
                .status()
                == 403
            {
                forbidden += 1;
            }
        }
        assert_eq!(forbidden, 16);
        let times = server.times("/q");
        assert_eq!(times[47], times[0], "no request waited");
        assert_eq!(layer.stats().time_paused, Duration::ZERO);
    })
    .await;
}
