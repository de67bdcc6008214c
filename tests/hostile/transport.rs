//! Servers that never answer or reset the connection: the error reaches
//! the caller.

use std::time::Duration;

use tower::{Layer, ServiceBuilder, ServiceExt};
use tower_snapshotter::layer::error::Overloaded;
use tower_snapshotter::{GatePolicy, SnapshotLayer};

use crate::common::*;
use crate::snapshotter;

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
