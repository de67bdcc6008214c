//! A real `Server` on loopback, asked by a hyper-util client: what the
//! client sees is what the model decides, and `counts()` / `log()` agree
//! with it.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use testkit::{RetryAfter, Server, Spec};
use tokio::io::AsyncWriteExt;
use tokio::time::Instant;

type HttpClient = Client<HttpConnector, Empty<Bytes>>;

fn client() -> HttpClient {
    Client::builder(TokioExecutor::new()).build(HttpConnector::new())
}

/// One GET; its status, headers and body.
async fn get(client: &HttpClient, url: &str) -> (StatusCode, HeaderMap, Bytes) {
    let request = Request::get(url).body(Empty::new()).expect("a request");
    let response = client.request(request).await.expect("an answer");
    let (parts, body) = response.into_parts();
    let body = body.collect().await.expect("a body").to_bytes();
    (parts.status, parts.headers, body)
}

async fn start(spec: Spec, latency: Duration) -> Server {
    Server::start(spec.build(Instant::now()), latency)
        .await
        .expect("a server on loopback")
}

#[tokio::test]
async fn gcra_server_refuses_past_its_burst_with_429_and_retry_after() {
    // 1/s with a burst of 5: 6 at once, then one a second.
    let spec = Spec::Gcra {
        rate: 1.0,
        burst: 5,
        retry_after: RetryAfter::Static(1),
    };
    let server = start(spec, Duration::ZERO).await;
    assert!(server.addr().ip().is_loopback());
    assert_eq!(server.base_url(), format!("http://{}", server.addr()));
    let client = client();
    let began = Instant::now();
    let mut seen = Vec::new();
    for i in 0..20 {
        let (status, headers, body) = get(&client, &format!("{}/page/{i}", server.base_url())).await;
        match status {
            StatusCode::OK => {
                assert_eq!(&body[..], b"ok");
                assert!(headers.get("retry-after").is_none());
            }
            StatusCode::TOO_MANY_REQUESTS => {
                assert_eq!(&body[..], b"slow down");
                let ra: Vec<_> = headers.get_all("retry-after").iter().collect();
                assert_eq!(ra, ["1"], "one Retry-After: 1");
            }
            other => panic!("request {i}: unexpected {other}"),
        }
        seen.push(status);
    }
    let elapsed = began.elapsed();

    let served = seen.iter().filter(|s| **s == StatusCode::OK).count() as u64;
    let refused = seen.len() as u64 - served;
    assert!(
        seen[..6].iter().all(|s| *s == StatusCode::OK),
        "the burst: {seen:?}"
    );
    // Only a whole second on the server's clock frees one more.
    assert!(
        served <= 6 + elapsed.as_secs(),
        "{served} served in {elapsed:?}: {seen:?}"
    );
    if elapsed < Duration::from_secs(1) {
        assert_eq!(served, 6, "{seen:?}");
        assert_eq!(seen[6], StatusCode::TOO_MANY_REQUESTS);
    }

    assert_eq!(server.counts(), (served, refused));
    let log = server.log();
    let logged: Vec<_> = log.iter().map(|a| a.status).collect();
    assert_eq!(logged, seen, "the log is what the client saw, in order");
    assert!(log.windows(2).all(|w| w[0].at <= w[1].at));
    assert!(log.last().unwrap().at <= server.started().elapsed());
}

#[tokio::test]
async fn concurrency_server_answers_503_past_the_limit() {
    let latency = Duration::from_millis(500);
    let server = start(Spec::Concurrency { limit: 2 }, latency).await;
    let client = client();
    let url = format!("{}/", server.base_url());

    let mut tasks = Vec::new();
    for _ in 0..6 {
        let (client, url) = (client.clone(), url.clone());
        tasks.push(tokio::spawn(async move {
            let began = Instant::now();
            let (status, headers, _) = get(&client, &url).await;
            (status, headers, began.elapsed())
        }));
    }
    let mut ok = 0;
    let mut unavailable = 0;
    for t in tasks {
        let (status, headers, took) = t.await.unwrap();
        match status {
            StatusCode::OK => {
                ok += 1;
                assert!(took >= latency, "a served one waits its latency: {took:?}");
            }
            StatusCode::SERVICE_UNAVAILABLE => {
                unavailable += 1;
                assert!(headers.get("retry-after").is_none());
                assert!(took < latency, "a refusal is at once: {took:?}");
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!((ok, unavailable), (2, 4));
    assert_eq!(server.counts(), (2, 4));

    // Both have left: the next one is served.
    let (status, _, _) = get(&client, &url).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(server.counts(), (3, 4));
    let log = server.log();
    assert_eq!(log.len(), 7);
    assert_eq!(
        log.iter()
            .filter(|a| a.status == StatusCode::SERVICE_UNAVAILABLE)
            .count(),
        4
    );
}

#[tokio::test]
async fn concurrency_slot_is_freed_when_the_client_hangs_up() {
    let latency = Duration::from_millis(300);
    let server = start(Spec::Concurrency { limit: 1 }, latency).await;
    // A raw client that sends one request and hangs up before the answer.
    let mut stream = tokio::net::TcpStream::connect(server.addr()).await.unwrap();
    stream
        .write_all(b"GET / HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n")
        .await
        .unwrap();
    while server.counts() != (1, 0) {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    drop(stream);
    tokio::time::sleep(latency + Duration::from_millis(200)).await;

    let (status, _, _) = get(&client(), &format!("{}/", server.base_url())).await;
    assert_eq!(status, StatusCode::OK, "the hung-up request left its slot");
    assert_eq!(server.counts(), (2, 0));
}

#[tokio::test]
async fn window_github_server_sends_one_date_and_the_quota_headers() {
    let spec = Spec::Window {
        rate: 2.0,
        window: Duration::from_secs(5),
        headers: testkit::QuotaHeaders::GitHub,
    };
    let server = start(spec, Duration::ZERO).await;
    let client = client();
    let url = format!("{}/", server.base_url());
    for i in 0..12u64 {
        let (status, headers, _) = get(&client, &url).await;
        assert_eq!(headers.get_all("date").iter().count(), 1, "one Date: {headers:?}");
        assert_eq!(headers["x-ratelimit-limit"], "10");
        if i < 10 {
            assert_eq!(status, StatusCode::OK);
            assert_eq!(headers["x-ratelimit-remaining"], (9 - i).to_string().as_str());
        } else {
            assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
            assert!(headers.contains_key("retry-after"));
        }
    }
}

#[tokio::test]
async fn server_stops_when_dropped() {
    let server = start(Spec::Concurrency { limit: 1 }, Duration::ZERO).await;
    let addr = server.addr();
    let (status, _, _) = get(&client(), &format!("{}/", server.base_url())).await;
    assert_eq!(status, StatusCode::OK);
    drop(server);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "nothing listens after the drop"
    );
}
