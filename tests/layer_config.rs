//! Every layer setting with an invalid value is a typed error naming the
//! field and the allowed range.

use std::time::Duration;

use http::StatusCode;
use tower_snapshotter::layer::{AdaptiveConfig, AutoscaleConfig, Limiter};
use tower_snapshotter::{Config, GatePolicy, SnapshotLayer, Snapshotter};

fn builder() -> tower_snapshotter::layer::SnapshotLayerBuilder {
    SnapshotLayer::builder(Snapshotter::new(Config::default()))
}

fn rejects(b: tower_snapshotter::layer::SnapshotLayerBuilder, field: &str, allowed: &str) {
    let err = b.build().expect_err("must be rejected");
    assert_eq!(err.field(), field, "{err}");
    assert!(err.to_string().contains(allowed), "{err} should show {allowed}");
}

#[test]
fn layer_settings() {
    rejects(
        builder().min_concurrency(2_000_000),
        "min_concurrency",
        "0 ..= 1000000",
    );
    rejects(
        builder().max_retry_after(Duration::from_secs(90_000)),
        "max_retry_after",
        "0s ..= 86400s",
    );
    rejects(
        builder().host_backoff(Duration::from_secs(90_000)),
        "host_backoff",
        "0s ..= 86400s",
    );
    // The adaptive limiter (the default) is its own back-off: a pause
    // set for it would be ignored, so it is refused; 0 (off) is what it does.
    rejects(
        builder().host_backoff(Duration::from_millis(400)),
        "host_backoff",
        "0s with Limiter::Adaptive (its controller is the back-off); 0s ..= 86400s with Limiter::Autoscale or Limiter::None",
    );
    assert!(builder().host_backoff(Duration::ZERO).build().is_ok());
    assert!(builder()
        .policy(GatePolicy::Wait)
        .host_backoff(Duration::from_millis(400))
        .build()
        .is_ok());
    rejects(builder().max_hosts(0), "max_hosts", "1 ..= 10000000");
    rejects(
        builder().counted_statuses([StatusCode::OK]),
        "counted_statuses",
        "400 ..= 599",
    );
    assert!(builder()
        .counted_statuses([StatusCode::SERVICE_UNAVAILABLE])
        .build()
        .is_ok());
}

#[test]
fn autoscale_settings() {
    let a = |c: AutoscaleConfig| builder().limiter(Limiter::Autoscale(c));
    let d = AutoscaleConfig::default();
    rejects(
        a(d.autoscale_interval(Duration::ZERO)),
        "autoscale_interval",
        "1ms ..= 3600s",
    );
    rejects(
        a(d.desired_concurrency_ratio(0.0)),
        "desired_concurrency_ratio",
        "(0, 1]",
    );
    rejects(a(d.scale_up_step_ratio(1.5)), "scale_up_step_ratio", "(0, 1]");
    rejects(
        a(d.scale_down_step_ratio(-1.0)),
        "scale_down_step_ratio",
        "(0, 1]",
    );
    rejects(a(d.max_concurrency(0)), "max_concurrency", "1000000");
    rejects(
        a(d.desired_concurrency(500)),
        "desired_concurrency",
        "max_concurrency (200)",
    );
    assert!(a(d).build().is_ok());
}

#[test]
fn adaptive_settings() {
    let a = |c: AdaptiveConfig| builder().limiter(Limiter::Adaptive(c));
    let d = AdaptiveConfig::default();
    rejects(a(d.max_concurrency(0)), "max_concurrency", "1 ..= 1000000");
    rejects(
        a(d.initial_concurrency(0)),
        "initial_concurrency",
        "1 ..= max_concurrency",
    );
    rejects(a(d.decrease_ratio(1.0)), "decrease_ratio", "(0, 1)");
    rejects(a(d.rtt_tolerance(0.5)), "rtt_tolerance", "1 ..= 100");
    rejects(a(d.min_rate(0.0)), "min_rate", "(0, 1000000]");
    assert!(a(d).build().is_ok());
}
