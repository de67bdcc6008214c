//! Gating by the machine's verdict and by paused hosts, through
//! `tower::service_fn` inner services whose calls are counted: `Reject`,
//! `Wait`, the `min_concurrency` floor and `Autoscale`. Overload is forced
//! with a fake CPU probe; time is tokio's paused clock.

mod common;

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use common::*;
use tokio::sync::Semaphore;
use tower::{Layer, Service, ServiceExt};
use tower_snapshotter::layer::error::Overloaded;
use tower_snapshotter::layer::{AutoscaleConfig, Limiter};
use tower_snapshotter::{GatePolicy, Resources, SnapshotLayer, SnapshotService, Snapshotter};

type Req = http::Request<()>;
type Resp = http::Response<()>;

/// An inner service that counts its calls and answers 200, or 429 with
/// `Retry-After: 5` for `throttled.example`.
fn counting() -> (
    impl Service<Req, Response = Resp, Error = Infallible, Future = impl Send> + Clone,
    Arc<AtomicUsize>,
) {
    let calls = Arc::new(AtomicUsize::new(0));
    let c = Arc::clone(&calls);
    let svc = tower::service_fn(move |req: Req| {
        c.fetch_add(1, Ordering::SeqCst);
        let throttled = req.uri().host() == Some("throttled.example");
        async move {
            let mut r = http::Response::builder();
            if throttled {
                r = r.status(429).header("retry-after", "5");
            }
            Ok::<_, Infallible>(r.body(()).unwrap())
        }
    });
    (svc, calls)
}

/// An inner service whose answers wait for a permit of `gate` each; counts
/// its calls.
fn held(
    gate: Arc<Semaphore>,
) -> (
    impl Service<Req, Response = Resp, Error = Infallible, Future = impl Send + 'static> + Clone,
    Arc<AtomicUsize>,
) {
    let calls = Arc::new(AtomicUsize::new(0));
    let c = Arc::clone(&calls);
    let svc = tower::service_fn(move |_req: Req| {
        c.fetch_add(1, Ordering::SeqCst);
        let gate = Arc::clone(&gate);
        async move {
            gate.acquire().await.unwrap().forget();
            Ok::<_, Infallible>(http::Response::new(()))
        }
    });
    (svc, calls)
}

fn req(url: &str) -> Req {
    http::Request::get(url).body(()).unwrap()
}

/// A started snapshotter whose CPU is already judged overloaded.
async fn overloaded() -> (Snapshotter, FakeCpu) {
    let (snapshotter, cpu) = started(config().build().unwrap(), BUSY);
    until("the CPU is overloaded", || {
        snapshotter.overloaded().contains(Resources::CPU)
    })
    .await;
    (snapshotter, cpu)
}

#[tokio::test(start_paused = true)]
async fn reject_refuses_without_calling_inner_when_overloaded() {
    bounded(async {
        let (snapshotter, cpu) = overloaded().await;
        let layer = SnapshotLayer::builder(snapshotter.clone())
            .policy(GatePolicy::Reject)
            .min_concurrency(0)
            .build()
            .unwrap();
        let (inner, calls) = counting();
        let mut svc = layer.layer(inner);

        for _ in 0..3 {
            // Reject is always ready; the call fails at once.
            let ready = svc.ready().await.expect("always ready");
            let err = ready
                .call(req("http://a.example/"))
                .await
                .expect_err("overloaded");
            let overloaded = err.downcast_ref::<Overloaded>().expect("an Overloaded error");
            assert!(overloaded.resources().contains(Resources::CPU), "{overloaded}");
            assert_eq!(overloaded.host(), None);
        }
        assert_eq!(
            calls.load(Ordering::SeqCst),
            0,
            "the inner service was never called"
        );
        assert_eq!(layer.stats().rejected, 3);

        cpu.set(IDLE);
        until("the CPU is idle", || snapshotter.overloaded().is_empty()).await;
        let r = svc
            .ready()
            .await
            .unwrap()
            .call(req("http://a.example/"))
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn reject_refuses_a_paused_host_without_calling_inner() {
    bounded(async {
        let snapshotter = Snapshotter::with_probes(config().build().unwrap(), FakeCpu::new(IDLE), LowMemory);
        let layer = SnapshotLayer::builder(snapshotter)
            .policy(GatePolicy::Reject)
            .build()
            .unwrap();
        let (inner, calls) = counting();
        let svc = layer.layer(inner);

        let r = svc
            .clone()
            .oneshot(req("http://throttled.example/"))
            .await
            .unwrap();
        assert_eq!(r.status(), 429);
        let err = svc
            .clone()
            .oneshot(req("http://throttled.example/again"))
            .await
            .expect_err("paused");
        let overloaded = err.downcast_ref::<Overloaded>().expect("an Overloaded error");
        assert_eq!(overloaded.resources(), Resources::CLIENT);
        assert_eq!(overloaded.host(), Some("throttled.example"));
        let left = overloaded.retry_after().expect("how long the pause lasts");
        assert!(
            left > Duration::from_secs(4) && left <= Duration::from_secs(5),
            "{left:?}"
        );
        assert_eq!(calls.load(Ordering::SeqCst), 1);

        // Another host is not paused.
        let r = svc.clone().oneshot(req("http://other.example/")).await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(calls.load(Ordering::SeqCst), 2);

        tokio::time::advance(Duration::from_millis(5001)).await;
        let r = svc
            .clone()
            .oneshot(req("http://throttled.example/"))
            .await
            .unwrap();
        assert_eq!(r.status(), 429, "sent again once the pause is over");
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        assert_eq!(layer.stats().rejected, 1);
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn wait_wakes_on_a_verdict_change() {
    bounded(async {
        let (snapshotter, cpu) = overloaded().await;
        let layer = SnapshotLayer::builder(snapshotter.clone())
            .policy(GatePolicy::Wait)
            .min_concurrency(0)
            .build()
            .unwrap();
        let (inner, calls) = counting();
        let mut svc = layer.layer(inner);

        let mut ready = tokio_test::task::spawn(ServiceExt::<Req>::ready(&mut svc));
        assert!(ready.poll().is_pending(), "still waiting");
        // More samples of the same overload do not wake it, nor let it through.
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(!ready.is_woken(), "woken without a verdict change");
        assert!(ready.poll().is_pending(), "still waiting");

        cpu.set(IDLE);
        until("the CPU is idle", || snapshotter.overloaded().is_empty()).await;
        assert!(ready.is_woken(), "the verdict change woke the waiting poll_ready");
        assert!(matches!(ready.poll(), Poll::Ready(Ok(_))), "ready");
        drop(ready);
        svc.call(req("http://a.example/")).await.unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    })
    .await;
}

/// Under overload, `min_concurrency(1)` admits one request; a second waits
/// until the first finishes.
async fn min_concurrency_keeps_one_request_flowing(policy: GatePolicy) {
    let (snapshotter, _cpu) = overloaded().await;
    let layer = SnapshotLayer::builder(snapshotter.clone())
        .policy(policy)
        .min_concurrency(1)
        .build()
        .unwrap();
    let gate = Arc::new(Semaphore::new(0));
    let (inner, calls) = held(Arc::clone(&gate));
    let svc = layer.layer(inner);

    let mut first = svc.clone();
    let first = tokio::spawn(first.ready().await.unwrap().call(req("http://a.example/1")));
    tokio::task::yield_now().await;
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "one request admitted under overload"
    );

    let mut second = svc.clone();
    let mut ready = tokio_test::task::spawn(ServiceExt::<Req>::ready(&mut second));
    assert!(ready.poll().is_pending(), "still waiting");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(snapshotter.overloaded().contains(Resources::CPU));
    assert!(ready.poll().is_pending(), "still waiting");

    gate.add_permits(1);
    first.await.unwrap().unwrap();
    assert!(ready.is_woken(), "the finished request woke the waiting one");
    assert!(matches!(ready.poll(), Poll::Ready(Ok(_))), "ready");
    drop(ready);
    let second = tokio::spawn(second.call(req("http://a.example/2")));
    tokio::task::yield_now().await;
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert!(
        snapshotter.overloaded().contains(Resources::CPU),
        "still overloaded"
    );
    gate.add_permits(1);
    second.await.unwrap().unwrap();
}

#[tokio::test(start_paused = true)]
async fn min_concurrency_keeps_one_request_flowing_under_wait() {
    bounded(async {
        min_concurrency_keeps_one_request_flowing(GatePolicy::Wait).await;
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn min_concurrency_keeps_one_request_flowing_under_autoscale() {
    bounded(async {
        min_concurrency_keeps_one_request_flowing(GatePolicy::Autoscale).await;
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn min_concurrency_under_reject_refuses_the_second() {
    bounded(async {
        let (snapshotter, _cpu) = overloaded().await;
        let layer = SnapshotLayer::builder(snapshotter)
            .policy(GatePolicy::Reject)
            .min_concurrency(1)
            .build()
            .unwrap();
        let gate = Arc::new(Semaphore::new(0));
        let (inner, calls) = held(Arc::clone(&gate));
        let svc = layer.layer(inner);

        let first = tokio::spawn(svc.clone().oneshot(req("http://a.example/1")));
        tokio::task::yield_now().await;
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        let err = svc
            .clone()
            .oneshot(req("http://a.example/2"))
            .await
            .expect_err("over the floor");
        assert!(err.is::<Overloaded>());
        assert_eq!(calls.load(Ordering::SeqCst), 1);

        gate.add_permits(1);
        first.await.unwrap().unwrap();
        let third = tokio::spawn(svc.clone().oneshot(req("http://a.example/3")));
        tokio::task::yield_now().await;
        assert_eq!(calls.load(Ordering::SeqCst), 2, "the floor's slot came back");
        gate.add_permits(1);
        third.await.unwrap().unwrap();
    })
    .await;
}

/// Spawns a request through a clone of `svc`, holding its permit while the
/// inner service holds its answer.
fn spawn_request<S>(
    svc: &SnapshotService<S>,
    url: &str,
) -> tokio::task::JoinHandle<Result<Resp, tower::BoxError>>
where
    S: Service<Req, Response = Resp, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    tokio::spawn(svc.clone().oneshot(req(url)))
}

#[tokio::test(start_paused = true)]
async fn autoscale_steps_up_when_busy_and_idle_and_down_under_overload() {
    bounded(async {
        let (snapshotter, cpu) = started(config().build().unwrap(), IDLE);
        let layer = SnapshotLayer::builder(snapshotter.clone())
            .limiter(Limiter::Autoscale(
                AutoscaleConfig::default().autoscale_interval(Duration::from_secs(2)),
            ))
            .build()
            .unwrap();
        let gate = Arc::new(Semaphore::new(0));
        let (inner, calls) = held(Arc::clone(&gate));
        let svc = layer.layer(inner);
        let stats = || layer.stats();
        assert_eq!(stats().desired_concurrency, Some(10));

        // Nine in flight, before the first interval ends: no step yet.
        let mut tasks: Vec<_> = (0..9)
            .map(|i| spawn_request(&svc, &format!("http://a.example/{i}")))
            .collect();
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(stats().in_flight, Some(9));
        assert_eq!(stats().desired_concurrency, Some(10));

        // After the interval, the next admission steps it: 9 ≥ floor(0.9 · 10),
        // and the system is idle.
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert!(snapshotter.system_status().historical().unwrap().is_system_idle());
        tasks.push(spawn_request(&svc, "http://a.example/9"));
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert_eq!(stats().desired_concurrency, Some(11));
        assert_eq!(stats().in_flight, Some(10));

        // The new limit holds: an eleventh request is admitted, a twelfth waits.
        tasks.push(spawn_request(&svc, "http://a.example/10"));
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert_eq!(stats().in_flight, Some(11));
        let mut twelfth = svc.clone();
        let mut ready = tokio_test::task::spawn(ServiceExt::<Req>::ready(&mut twelfth));
        assert!(ready.poll().is_pending(), "still waiting");
        assert_eq!(calls.load(Ordering::SeqCst), 11);

        // Overload: once the whole history shows it, each interval steps down
        // by ceil(5 %).
        cpu.set(BUSY);
        until("the history is overloaded", || {
            snapshotter
                .system_status()
                .historical()
                .is_ok_and(|i| i.overloaded().contains(Resources::CPU))
        })
        .await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert!(ready.poll().is_pending(), "still waiting");
        assert_eq!(stats().desired_concurrency, Some(10), "11 - ceil(0.55)");
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert!(ready.poll().is_pending(), "still waiting");
        assert_eq!(stats().desired_concurrency, Some(9), "10 - ceil(0.5)");
        drop(ready);

        gate.add_permits(100);
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        assert_eq!(stats().in_flight, Some(0));
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_waiting_request_follows_a_pause_that_grows_meanwhile() {
    bounded(async {
        // Two requests to one host are in flight when the first answers
        // 429 with Retry-After: 1; a third then waits. The second answers
        // Retry-After: 5, so the third must wait for the new end.
        let answers = [Arc::new(Semaphore::new(0)), Arc::new(Semaphore::new(0))];
        let sent = Arc::new(std::sync::Mutex::new(Vec::<(String, tokio::time::Instant)>::new()));
        let inner = {
            let (answers, sent) = (answers.clone(), Arc::clone(&sent));
            tower::service_fn(move |req: Req| {
                let path = req.uri().path().to_owned();
                sent.lock()
                    .unwrap()
                    .push((path.clone(), tokio::time::Instant::now()));
                let answers = answers.clone();
                async move {
                    let wait = match path.as_str() {
                        "/1" => Some((&answers[0], "1")),
                        "/2" => Some((&answers[1], "5")),
                        _ => None,
                    };
                    let mut r = http::Response::builder();
                    if let Some((gate, retry_after)) = wait {
                        gate.acquire().await.unwrap().forget();
                        r = r.status(429).header("retry-after", retry_after);
                    }
                    Ok::<_, Infallible>(r.body(()).unwrap())
                }
            })
        };
        let snapshotter = Snapshotter::with_probes(config().build().unwrap(), FakeCpu::new(IDLE), LowMemory);
        let layer = SnapshotLayer::builder(snapshotter)
            .policy(GatePolicy::Wait)
            .build()
            .unwrap();
        let svc = layer.layer(inner);
        let sent_to = |p: &str| sent.lock().unwrap().iter().filter(|(q, _)| q == p).count();

        let first = tokio::spawn(svc.clone().oneshot(req("http://x.example/1")));
        let second = tokio::spawn(svc.clone().oneshot(req("http://x.example/2")));
        tokio::task::yield_now().await;
        answers[0].add_permits(1);
        assert_eq!(first.await.unwrap().unwrap().status(), 429);
        let start = tokio::time::Instant::now();
        let third = tokio::spawn(svc.clone().oneshot(req("http://x.example/3")));
        tokio::task::yield_now().await;
        assert_eq!(layer.stats().host_waits, 1);
        answers[1].add_permits(1);
        assert_eq!(second.await.unwrap().unwrap().status(), 429);

        // Past the first pause and its jitter: still held by the second.
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(sent_to("/3"), 0, "sent after the first pause, inside the second");
        assert_eq!(third.await.unwrap().unwrap().status(), 200);
        let at = sent.lock().unwrap().iter().find(|(p, _)| p == "/3").unwrap().1;
        assert!(
            at >= start + Duration::from_secs(5),
            "sent {:?} after",
            at - start
        );
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn without_per_host_partitions_a_retry_after_pauses_every_host() {
    bounded(async {
        let snapshotter = Snapshotter::with_probes(config().build().unwrap(), FakeCpu::new(IDLE), LowMemory);
        let layer = SnapshotLayer::builder(snapshotter)
            .policy(GatePolicy::Reject)
            .per_host(false)
            .build()
            .unwrap();
        let (inner, calls) = counting();
        let svc = layer.layer(inner);

        let r = svc
            .clone()
            .oneshot(req("http://throttled.example/"))
            .await
            .unwrap();
        assert_eq!(r.status(), 429);
        let err = svc
            .clone()
            .oneshot(req("http://other.example/"))
            .await
            .expect_err("every host is paused");
        let overloaded = err.downcast_ref::<Overloaded>().expect("an Overloaded error");
        assert_eq!(overloaded.resources(), Resources::CLIENT);
        assert!(overloaded
            .retry_after()
            .is_some_and(|d| d > Duration::from_secs(4)));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(layer.stats().tracked_hosts, 1, "one partition for all hosts");

        tokio::time::advance(Duration::from_millis(5001)).await;
        let r = svc.clone().oneshot(req("http://other.example/")).await.unwrap();
        assert_eq!(r.status(), 200);
    })
    .await;
}

/// An inner service answering `status` with the given headers, counting calls.
fn answering(
    status: u16,
    headers: &'static [(&'static str, &'static str)],
) -> (
    impl Service<Req, Response = Resp, Error = Infallible, Future = impl Send> + Clone,
    Arc<AtomicUsize>,
) {
    let calls = Arc::new(AtomicUsize::new(0));
    let c = Arc::clone(&calls);
    let svc = tower::service_fn(move |_req: Req| {
        c.fetch_add(1, Ordering::SeqCst);
        let mut r = http::Response::builder().status(status);
        for (name, value) in headers {
            r = r.header(*name, *value);
        }
        std::future::ready(Ok::<_, Infallible>(r.body(()).unwrap()))
    });
    (svc, calls)
}

/// The time left in the host's pause, from a call that `Reject` refuses.
async fn refused_for<S>(svc: &SnapshotService<S>) -> Duration
where
    S: Service<Req, Response = Resp, Error = Infallible> + Clone,
{
    let err = svc
        .clone()
        .oneshot(req("http://h.example/"))
        .await
        .expect_err("the host is paused");
    let overloaded = err.downcast_ref::<Overloaded>().expect("an Overloaded error");
    overloaded.retry_after().expect("a host pause")
}

#[tokio::test(start_paused = true)]
async fn a_503_with_retry_after_pauses_its_host_without_counting() {
    bounded(async {
        let snapshotter = Snapshotter::with_probes(config().build().unwrap(), FakeCpu::new(IDLE), LowMemory);
        let layer = SnapshotLayer::builder(snapshotter.clone())
            .policy(GatePolicy::Reject)
            .build()
            .unwrap();
        let (inner, calls) = answering(503, &[("retry-after", "2")]);
        let svc = layer.layer(inner);

        let r = svc.clone().oneshot(req("http://h.example/")).await.unwrap();
        assert_eq!(r.status(), 503);
        let left = refused_for(&svc).await;
        assert!(
            left > Duration::from_secs(1) && left <= Duration::from_secs(2),
            "{left:?}"
        );
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(
            snapshotter.client_recorder().error_count(),
            0,
            "503 is not counted by default"
        );

        // Counted when configured.
        let layer = SnapshotLayer::builder(snapshotter.clone())
            .counted_statuses([http::StatusCode::SERVICE_UNAVAILABLE])
            .build()
            .unwrap();
        let (inner, _) = answering(503, &[]);
        let r = layer
            .layer(inner)
            .oneshot(req("http://h.example/"))
            .await
            .unwrap();
        assert_eq!(r.status(), 503);
        assert_eq!(snapshotter.client_recorder().error_count(), 1);
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn counted_answers_without_retry_after_back_the_host_off() {
    bounded(async {
        let snapshotter = Snapshotter::with_probes(config().build().unwrap(), FakeCpu::new(IDLE), LowMemory);
        let layer = SnapshotLayer::builder(snapshotter)
            .policy(GatePolicy::Reject)
            .host_backoff(Duration::from_millis(400))
            .build()
            .unwrap();
        let (inner, calls) = answering(429, &[]);
        let svc = layer.layer(inner);

        // 400 ms, then doubling while the 429s go on.
        for (n, pause) in [400u64, 800, 1600].into_iter().enumerate() {
            let r = svc.clone().oneshot(req("http://h.example/")).await.unwrap();
            assert_eq!(r.status(), 429);
            let left = refused_for(&svc).await;
            assert!(
                left > Duration::from_millis(pause / 2) && left <= Duration::from_millis(pause),
                "pause {n}: {left:?}, expected up to {pause} ms"
            );
            tokio::time::advance(left + Duration::from_millis(1)).await;
        }
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_success_ends_the_back_off() {
    bounded(async {
        let snapshotter = Snapshotter::with_probes(config().build().unwrap(), FakeCpu::new(IDLE), LowMemory);
        let layer = SnapshotLayer::builder(snapshotter)
            .policy(GatePolicy::Reject)
            .host_backoff(Duration::from_millis(400))
            .build()
            .unwrap();
        // The host answers 429, 429, 200, 429: the pause after the last 429
        // starts again from the base instead of doubling to 1600 ms.
        let answers = Arc::new(AtomicUsize::new(0));
        let a = Arc::clone(&answers);
        let inner = tower::service_fn(move |_req: Req| {
            let n = a.fetch_add(1, Ordering::SeqCst);
            let status = if n == 2 { 200 } else { 429 };
            let r = http::Response::builder().status(status).body(()).unwrap();
            std::future::ready(Ok::<_, Infallible>(r))
        });
        let svc = layer.layer(inner);
        for expected in [400u64, 800] {
            let r = svc.clone().oneshot(req("http://h.example/")).await.unwrap();
            assert_eq!(r.status(), 429);
            let left = refused_for(&svc).await;
            assert!(left > Duration::from_millis(expected / 2) && left <= Duration::from_millis(expected));
            tokio::time::advance(left + Duration::from_millis(1)).await;
        }
        let r = svc.clone().oneshot(req("http://h.example/")).await.unwrap();
        assert_eq!(r.status(), 200);
        let r = svc.clone().oneshot(req("http://h.example/")).await.unwrap();
        assert_eq!(r.status(), 429);
        let left = refused_for(&svc).await;
        assert!(
            left <= Duration::from_millis(400),
            "back to the base after a success: {left:?}"
        );
    })
    .await;
}
