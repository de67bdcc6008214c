//! Hostile and broken servers, for real, on loopback: absurd and garbled
//! `Retry-After` values, several of them, non-UTF-8 bytes, a wait in
//! milliseconds beside it, endless 429s, servers that never answer or
//! reset the connection. The client must not panic, must not wait longer
//! than `max_retry_after`, must not grow its state, and errors must reach
//! the caller.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::*;
use http::HeaderValue;
use http_body_util::Full;
use tower::{Layer, ServiceBuilder, ServiceExt};
use tower_snapshotter::layer::error::Overloaded;
use tower_snapshotter::{GatePolicy, SnapshotLayer, Snapshotter};

fn snapshotter() -> Snapshotter {
    Snapshotter::with_probes(config().build().unwrap(), FakeCpu::new(IDLE), LowMemory)
}

/// A server answering 429 with the raw header values given for each
/// request's path (by index), 200 once the list is used up.
async fn hinting(values: Vec<Vec<(&'static str, Vec<u8>)>>) -> TestServer {
    TestServer::start(move |hit| {
        let i: usize = hit.path.trim_start_matches('/').parse().unwrap_or(usize::MAX);
        match values.get(i) {
            Some(list) if hit.nth == 0 => {
                let mut r = Reply::new(Full::new(Bytes::from_static(b"no")));
                *r.status_mut() = http::StatusCode::TOO_MANY_REQUESTS;
                for (name, v) in list {
                    if let Ok(v) = HeaderValue::from_bytes(v) {
                        r.headers_mut().append(*name, v);
                    }
                }
                r
            }
            _ => reply(200),
        }
    })
    .await
}

/// `Retry-After` fields with these raw values.
fn retry_afters(values: Vec<&[u8]>) -> Vec<(&'static str, Vec<u8>)> {
    values.into_iter().map(|v| ("retry-after", v.to_vec())).collect()
}

/// The pause a hostile value imposes, as `Reject` reports it (`None`: no
/// pause, the next request is sent).
async fn pause_after(values: Vec<&[u8]>) -> Option<Duration> {
    pause_after_headers(retry_afters(values)).await
}

/// The pause a refusal with these headers imposes (see [`pause_after`]).
async fn pause_after_headers(headers: Vec<(&'static str, Vec<u8>)>) -> Option<Duration> {
    let server = hinting(vec![headers]).await;
    let layer = SnapshotLayer::builder(snapshotter())
        .policy(GatePolicy::Reject)
        .max_retry_after(Duration::from_secs(2))
        .host_backoff(Duration::ZERO)
        .build()
        .unwrap();
    let svc = layer.layer(client());
    let r = svc.clone().oneshot(get(&server.url("/0"))).await.unwrap();
    assert_eq!(r.status(), 429);
    match svc.clone().oneshot(get(&server.url("/0"))).await {
        Ok(r) => {
            assert_eq!(r.status(), 200);
            None
        }
        Err(e) => {
            let o = e.downcast_ref::<Overloaded>().expect("an Overloaded refusal");
            Some(o.retry_after().expect("a host pause"))
        }
    }
}

/// Sends to `/0` twice through `layer` over a real client: refused (the
/// server's first answer there), then served. How long the second request
/// took, its wait included, and the service.
async fn waited_after_refusal(
    layer: SnapshotLayer,
    server: &TestServer,
) -> (Duration, tower_snapshotter::SnapshotService<HttpClient>) {
    let svc = layer.layer(client());
    let r = svc.clone().oneshot(get(&server.url("/0"))).await.unwrap();
    assert_eq!(r.status(), 429);
    let started = tokio::time::Instant::now();
    let r = svc.clone().oneshot(get(&server.url("/0"))).await.unwrap();
    assert_eq!(r.status(), 200);
    (started.elapsed(), svc)
}

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

#[tokio::test(start_paused = true)]
async fn endless_429s_from_many_hosts_keep_the_state_bounded() {
    bounded(async {
        // A million host names cannot all resolve to loopback, so this one
        // answers in process: 429 with Retry-After 30, whatever the host.
        let inner = tower::service_fn(|_req: http::Request<()>| async {
            let r = http::Response::builder()
                .status(429)
                .header("retry-after", "30")
                .body(())
                .unwrap();
            Ok::<_, std::convert::Infallible>(r)
        });
        let layer = SnapshotLayer::builder(snapshotter())
            .policy(GatePolicy::Reject)
            .max_hosts(50)
            .build()
            .unwrap();
        let svc = layer.layer(inner);
        for i in 0..10_000u32 {
            let req = http::Request::get(format!("http://h{i}.example/"))
                .body(())
                .unwrap();
            let r = svc.clone().oneshot(req).await.unwrap();
            assert_eq!(r.status(), 429);
        }
        let stats = layer.stats();
        assert!(stats.tracked_hosts <= 50, "{}", stats.tracked_hosts);
        assert!(stats
            .paused_hosts
            .iter()
            .all(|p| p.remaining <= Duration::from_secs(30)));
    })
    .await;
}

#[tokio::test]
async fn a_server_that_never_answers_times_out_to_the_caller() {
    // Accepts connections and never writes.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hold = tokio::spawn(async move {
        let mut kept = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            kept.push(s);
        }
    });
    let svc = ServiceBuilder::new()
        .layer(
            SnapshotLayer::builder(snapshotter())
                .policy(GatePolicy::Wait)
                .build()
                .unwrap(),
        )
        .timeout(Duration::from_millis(200))
        .service(client());
    let err = svc.oneshot(get(&format!("http://{addr}/"))).await.unwrap_err();
    assert!(err.is::<tower::timeout::error::Elapsed>(), "{err}");
    hold.abort();
}

#[tokio::test]
async fn a_server_that_resets_connections_gives_the_caller_an_error() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let resets = tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            drop(s);
        }
    });
    let s = snapshotter();
    let svc = SnapshotLayer::builder(s.clone())
        .policy(GatePolicy::Wait)
        .build()
        .unwrap()
        .layer(client());
    for _ in 0..20 {
        let err = svc
            .clone()
            .oneshot(get(&format!("http://{addr}/")))
            .await
            .unwrap_err();
        assert!(
            err.downcast_ref::<Overloaded>().is_none(),
            "a transport error, not a refusal: {err}"
        );
    }
    assert_eq!(s.client_recorder().error_count(), 0, "resets are not 429s");
    resets.abort();
}

/// Requests a closed loop of 64 sends through the default layer to a
/// host answering the `n`th request after `wait(n)` with `status(n)`, no
/// `Retry-After`, over 10 s of paused time. Bounded by a count as well
/// (5 000): a flood ends there instead of running for hours of paused
/// time; a request the pace holds past the end is dropped there.
async fn sent_by_a_closed_loop(answer: fn(usize) -> (u64, u16)) -> usize {
    let sent = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&sent);
    let inner = tower::service_fn(move |_req: http::Request<()>| {
        let (wait, status) = answer(count.fetch_add(1, Ordering::Relaxed));
        async move {
            tokio::time::sleep(Duration::from_millis(wait)).await;
            let r = http::Response::builder().status(status).body(()).unwrap();
            Ok::<_, std::convert::Infallible>(r)
        }
    });
    let layer = SnapshotLayer::builder(snapshotter())
        .policy(GatePolicy::Adaptive)
        .build()
        .unwrap();
    let svc = layer.layer(inner);
    let end = tokio::time::Instant::now() + Duration::from_secs(10);
    let cap = 5_000;
    let workers: Vec<_> = (0..64)
        .map(|_| {
            let (svc, sent) = (svc.clone(), Arc::clone(&sent));
            tokio::spawn(async move {
                while tokio::time::Instant::now() < end && sent.load(Ordering::Relaxed) < cap {
                    let req = http::Request::get("http://refuses.test/").body(()).unwrap();
                    let _ = tokio::time::timeout_at(end, svc.clone().oneshot(req)).await;
                }
            })
        })
        .collect();
    bounded(async {
        for w in workers {
            w.await.unwrap();
        }
    })
    .await;
    sent.load(Ordering::Relaxed)
}

#[tokio::test(start_paused = true)]
async fn a_host_that_refuses_everything_at_once_is_not_flooded_by_a_closed_loop() {
    // 429 without `Retry-After`, a millisecond away, before anything was
    // ever accepted: each refusal frees a worker's slot for its next send
    // at once. Left unpaced until an acceptance, 64 workers sent 100 000
    // requests while the paused clock barely moved; the refusals start a
    // search from the slowest pace instead.
    let sent = sent_by_a_closed_loop(|_| (1, 429)).await;
    assert!(
        sent < 500,
        "{sent} requests to a host that refused them all in 10 s"
    );
}

#[tokio::test(start_paused = true)]
async fn a_host_that_refuses_at_once_once_its_burst_is_spent_is_not_flooded() {
    // A bucket of three, 150 ms away, refilled only a second later: the
    // burst is accepted a round trip after it was sent, and every request
    // after it refused within a millisecond. With something accepted, the
    // rule for refusals before any acceptance did not apply, and 64
    // workers sent on unpaced, without end (5 060 requests before the
    // count's bound).
    let sent = sent_by_a_closed_loop(|n| if n < 3 { (150, 200) } else { (1, 429) }).await;
    assert!(sent < 500, "{sent} requests in 10 s to a host that took three");
}

/// Spring Cloud Gateway names its bucket on every answer
/// (`X-RateLimit-Replenish-Rate` tokens a second, `-Requested-Tokens` a
/// request): the default layer paces the host at that rate from the first
/// answer, and an absurd one (a request in a million seconds) holds a
/// request about `max_retry_after` at the most, as an absurd
/// `Retry-After` does. Three requests after the first: the first of them
/// goes at once (the pace's first slot), the other two an interval apart.
#[tokio::test(start_paused = true)]
async fn an_announced_rate_paces_the_host_and_an_absurd_one_waits_about_the_cap_at_most() {
    for (tokens, per_request, least, most) in [
        ("10", "1", Duration::from_millis(180), Duration::from_millis(1000)),
        (
            "1",
            "1000000",
            Duration::from_millis(3500),
            Duration::from_millis(5500),
        ),
    ] {
        let server = TestServer::start(move |_hit| {
            let mut r = reply(200);
            r.headers_mut()
                .insert("x-ratelimit-replenish-rate", HeaderValue::from_static(tokens));
            r.headers_mut().insert(
                "x-ratelimit-requested-tokens",
                HeaderValue::from_static(per_request),
            );
            r
        })
        .await;
        let layer = SnapshotLayer::builder(snapshotter())
            .max_retry_after(Duration::from_secs(2))
            .build()
            .unwrap();
        let svc = layer.layer(client());
        let r = svc.clone().oneshot(get(&server.url("/a"))).await.unwrap();
        assert_eq!(r.status(), 200);
        let started = tokio::time::Instant::now();
        for _ in 0..3 {
            let r = svc.clone().oneshot(get(&server.url("/b"))).await.unwrap();
            assert_eq!(r.status(), 200);
        }
        let waited = started.elapsed();
        assert!(
            waited >= least && waited <= most,
            "{tokens}/{per_request}: {waited:?}"
        );
    }
}
