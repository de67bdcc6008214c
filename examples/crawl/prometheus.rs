//! `--metrics`: the layer's metrics served in the Prometheus format.

use tower::BoxError;

/// Installs a Prometheus recorder serving on `addr`.
#[cfg(feature = "metrics")]
pub(crate) fn serve_metrics(addr: std::net::SocketAddr) -> Result<(), BoxError> {
    metrics_exporter_prometheus::PrometheusBuilder::new()
        .with_http_listener(addr)
        .install()
        .map_err(|e| format!("metrics on {addr}: {e}"))?;
    eprintln!("metrics: http://{addr}/metrics");
    Ok(())
}

/// Without the feature there is nothing to serve.
#[cfg(not(feature = "metrics"))]
pub(crate) fn serve_metrics(addr: std::net::SocketAddr) -> Result<(), BoxError> {
    Err(format!("--metrics {addr} needs the metrics feature: cargo run --release --example crawl --features metrics -- --metrics {addr}").into())
}
