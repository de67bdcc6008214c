//! Absurd and garbled `Retry-After` values: capped by `max_retry_after`
//! or ignored.

use std::time::Duration;

use tower_snapshotter::SnapshotLayer;

use crate::common::*;
use crate::{hinting, pause_after, retry_afters, snapshotter, waited_after_refusal};

#[tokio::test(start_paused = true)]
async fn absurd_values_are_capped_by_max_retry_after() {
    bounded(async {
        for v in [
            &b"99999999999"[..],
            b"18446744073709551616",
            b"Fri, 31 Dec 9999 23:59:59 GMT",
        ] {
            let left = pause_after(vec![v]).await.expect("a pause");
            assert!(
                left <= Duration::from_secs(2),
                "{:?}: {left:?}",
                String::from_utf8_lossy(v)
            );
            assert!(left > Duration::from_secs(1));
        }
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn garbage_negative_fractional_and_past_values_mean_no_wait() {
    bounded(async {
        for v in [
            &b"-5"[..],
            b"1.5",
            b"soon",
            b"",
            b"Thu, 01 Jan 1970 00:00:00 GMT",
            b"\xff\xfe",
            b"0x10",
        ] {
            assert_eq!(
                pause_after(vec![v]).await,
                None,
                "{:?}",
                String::from_utf8_lossy(v)
            );
        }
        // Several disagreeing values are ambiguous: ignored.
        assert_eq!(pause_after(vec![b"5", b"7"]).await, None);
        // Several agreeing ones count once.
        assert!(pause_after(vec![b"1", b"1"]).await.is_some());
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_waiting_request_goes_out_once_the_capped_pause_ends() {
    bounded(async {
        let server = hinting(vec![retry_afters(vec![b"99999999999"])]).await;
        let layer = SnapshotLayer::builder(snapshotter())
            .max_retry_after(Duration::from_secs(2))
            .build()
            .unwrap();
        let (waited, _) = waited_after_refusal(layer, &server).await;
        // The cap (2 s) plus at most a tenth of it in jitter, not 3 000 years.
        assert!(
            waited >= Duration::from_secs(2) - Duration::from_millis(5),
            "{waited:?}"
        );
        assert!(waited <= Duration::from_millis(2300), "{waited:?}");
    })
    .await;
}
