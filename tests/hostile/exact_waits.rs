//! Exact waits beside `Retry-After` (`retry-after-ms`, Traefik's
//! `X-Retry-In`): followed to the millisecond, garbage there ignored.

use std::time::Duration;

use tower_snapshotter::SnapshotLayer;

use crate::{hinting, pause_after_headers, snapshotter, waited_after_refusal};

#[tokio::test(start_paused = true)]
async fn a_wait_in_milliseconds_is_followed_to_the_millisecond() {
    // OpenAI's and Azure OpenAI's refusals: `Retry-After` in whole
    // seconds, `retry-after-ms` exact. Read from `Retry-After` alone, the
    // host was paused 1 s where 150 ms was asked.
    let paused = pause_after_headers(vec![
        ("retry-after", b"1".to_vec()),
        ("retry-after-ms", b"150".to_vec()),
    ])
    .await
    .expect("a pause");
    assert!(paused <= Duration::from_millis(150), "{paused:?}");
    assert!(paused >= Duration::from_millis(100), "{paused:?}");
    // Garbage there leaves `Retry-After` to answer.
    let paused = pause_after_headers(vec![
        ("retry-after", b"1".to_vec()),
        ("retry-after-ms", b"soon".to_vec()),
    ])
    .await
    .expect("a pause");
    assert!(paused > Duration::from_millis(500), "{paused:?}");
}

#[tokio::test(start_paused = true)]
async fn traefiks_exact_wait_is_followed_and_garbage_there_is_not() {
    // Traefik: `Retry-After` rounded up to whole seconds, `X-Retry-In`
    // the exact wait as Go prints a duration.
    let traefik = |exact: &[u8]| vec![("retry-after", b"1".to_vec()), ("x-retry-in", exact.to_vec())];
    let paused = pause_after_headers(traefik(b"150ms")).await.expect("a pause");
    assert!(paused <= Duration::from_millis(150), "{paused:?}");
    assert!(paused >= Duration::from_millis(100), "{paused:?}");
    // Absurd: capped by `max_retry_after` (2 s) as `Retry-After` is.
    let paused = pause_after_headers(traefik(b"99999h")).await.expect("a pause");
    assert!(paused <= Duration::from_secs(2), "{paused:?}");
    assert!(paused > Duration::from_secs(1), "{paused:?}");
    // Not the same wait rounded: the longer (capped).
    let disagreeing = vec![("retry-after", b"60".to_vec()), ("x-retry-in", b"5ms".to_vec())];
    let paused = pause_after_headers(disagreeing).await.expect("a pause");
    assert!(paused > Duration::from_secs(1), "{paused:?}");
    // Garbage, negative or non-UTF-8: `Retry-After` answers.
    for junk in [&b"soon"[..], b"-5ms", b"12", b"\xff\xfe"] {
        let paused = pause_after_headers(traefik(junk)).await.expect("a pause");
        assert!(
            paused > Duration::from_millis(500),
            "{:?}: {paused:?}",
            String::from_utf8_lossy(junk)
        );
    }
}

/// Under the default (adaptive) layer an exact wait under a second is the
/// host's next slot: the next request goes when it is due, not a second
/// later as `Retry-After: 1` would have it, and the host is not paused.
#[tokio::test(start_paused = true)]
async fn an_exact_wait_holds_the_next_send_to_the_slot_it_names() {
    let server = hinting(vec![vec![
        ("retry-after", b"1".to_vec()),
        ("x-retry-in", b"40ms".to_vec()),
    ]])
    .await;
    let (waited, svc) = waited_after_refusal(SnapshotLayer::new(snapshotter()), &server).await;
    assert!(
        waited >= Duration::from_millis(35),
        "sent {waited:?} after the refusal"
    );
    assert!(
        waited < Duration::from_millis(500),
        "sent {waited:?} after the refusal"
    );
    assert!(
        svc.stats().paused_hosts.is_empty(),
        "{:?}",
        svc.stats().paused_hosts
    );
}
