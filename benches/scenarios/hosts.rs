//! Scenario 7: two hosts, one throttled hard, and the healthy one's goodput.

use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use tower_snapshotter::GatePolicy;

use crate::clients::{chosen, client, remote_only, Variant};
use crate::load::{drive, figures};
use crate::plots::{self, Plot, Series};
use crate::report::{answers, flat, print_row, series, Row};
use crate::server::{server, Behaviour};

/// Scenario 7: two hosts, one throttled hard; the healthy one's goodput
/// against its goodput alone.
pub(crate) async fn two_hosts() {
    let secs = 4.0;
    let mut runs: Vec<(String, Series)> = Vec::new();
    for v in chosen(vec![
        Variant::None,
        Variant::Fixed(8),
        Variant::Policy(GatePolicy::Wait),
        Variant::Policy(GatePolicy::Adaptive),
    ]) {
        let healthy = server(Behaviour::Fast).await;
        let throttled = server(Behaviour::Bucket {
            rate: Arc::new(AtomicU64::new(100)),
            retry_after: true,
        })
        .await;
        let s = remote_only();
        let (svc, _l) = client(v, &s);
        let solo = drive(
            svc,
            vec![(1, format!("http://{}/", healthy.addr))],
            |_| 500.0,
            Duration::from_secs_f64(secs),
        )
        .await;
        let solo = figures(&answers(&solo), Some(1), 1.0, secs).goodput;
        let s = remote_only();
        let (svc, _l) = client(v, &s);
        let urls = vec![
            (0, format!("http://{}/", throttled.addr)),
            (1, format!("http://{}/", healthy.addr)),
        ];
        let both = drive(svc, urls, |_| 1000.0, Duration::from_secs_f64(secs)).await;
        // The healthy host's goodput and the throttled host's 429s, as the
        // table has them.
        runs.push((
            v.name(),
            series(&answers(&both), |a| {
                if a.host == 1 {
                    (200..=299).contains(&a.status)
                } else {
                    a.status == 429
                }
            }),
        ));
        let mixed = figures(&answers(&both), Some(1), 1.0, secs).goodput;
        print_row(&Row {
            scenario: "7 two hosts, one throttled",
            variant: v.name(),
            goodput: format!("healthy {mixed:.0}/s = {:.1} % of its {solo:.0}/s alone", mixed / solo.max(1e-9) * 100.0),
            share_429: format!("{:.1} %", figures(&answers(&both), Some(0), 1.0, secs).share_429 * 100.0),
            react: "-".into(),
            recover: "-".into(),
            note: "500/s to each host; the throttled one allows 100/s with Retry-After: 1; 429 share is the throttled host's".into(),
        });
    }
    plots::write(
        "7-two-hosts",
        &Plot {
            title: "7 two hosts at 500/s each, one a token bucket of 100/s with Retry-After: 1".into(),
            counted_at: "the run with both hosts; counted at the client, by when each answer came",
            goodput: "healthy host's 2xx/s",
            refused: "throttled host's 429s/s",
            reference: flat("healthy host's demand 500/s".into(), 500.0, secs + 2.0),
            counted: Some((1.0, secs)),
            runs: &runs,
        },
    );
}
