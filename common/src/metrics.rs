//! Prometheus metrics of both daemons: registration helpers and the `GET /metrics` endpoint
//! (text exposition format 0.0.4, the one `promtool check metrics` reads).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use futures::future::BoxFuture;
use prometheus::core::Collector;
use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

/// Brings gauges up to date just before a scrape renders them.
pub type Refresh = Arc<dyn Fn() -> BoxFuture<'static, ()> + Send + Sync>;

/// Histogram buckets for durations, in seconds: 5 ms to about 20 minutes.
pub const DURATION_BUCKETS: [f64; 16] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 1200.0,
];

/// Histogram buckets for the owner task's command latency, in seconds: 10 µs to 2.5 s.
pub const FAST_BUCKETS: [f64; 12] = [
    0.00001, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25, 2.5,
];

/// Registers `collector` and returns it; names are fixed in code, so a clash is a bug.
fn registered<C: Collector + Clone + 'static>(registry: &Registry, collector: C) -> C {
    registry
        .register(Box::new(collector.clone()))
        .expect("metric names are unique");
    collector
}

/// A counter.
pub fn counter(registry: &Registry, name: &str, help: &str) -> IntCounter {
    registered(
        registry,
        IntCounter::new(name, help).expect("valid metric name"),
    )
}

/// A counter with labels.
pub fn counter_vec(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    registered(
        registry,
        IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric name"),
    )
}

/// A gauge.
pub fn gauge(registry: &Registry, name: &str, help: &str) -> IntGauge {
    registered(
        registry,
        IntGauge::new(name, help).expect("valid metric name"),
    )
}

/// A gauge with labels.
pub fn gauge_vec(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    registered(
        registry,
        IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric name"),
    )
}

/// A floating-point gauge with labels.
pub fn float_gauge_vec(
    registry: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> prometheus::GaugeVec {
    registered(
        registry,
        prometheus::GaugeVec::new(Opts::new(name, help), labels).expect("valid metric name"),
    )
}

/// A histogram over `buckets`.
pub fn histogram(registry: &Registry, name: &str, help: &str, buckets: &[f64]) -> Histogram {
    let opts = HistogramOpts::new(name, help).buckets(buckets.to_vec());
    registered(
        registry,
        Histogram::with_opts(opts).expect("valid metric name"),
    )
}

/// A histogram with labels over `buckets`.
pub fn histogram_vec(
    registry: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
    buckets: &[f64],
) -> HistogramVec {
    let opts = HistogramOpts::new(name, help).buckets(buckets.to_vec());
    registered(
        registry,
        HistogramVec::new(opts, labels).expect("valid metric name"),
    )
}

/// The registry's metrics in the text exposition format.
pub fn render(registry: &Registry) -> String {
    let mut body = Vec::new();
    TextEncoder::new()
        .encode(&registry.gather(), &mut body)
        .expect("metrics encode into memory");
    String::from_utf8(body).expect("the text format is UTF-8")
}

/// Binds `address` for an HTTP endpoint, naming its `flag` on failure.
pub async fn bind(address: SocketAddr, flag: &str) -> std::io::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(address).await.map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!("cannot listen on {address} ({flag}): {e}"),
        )
    })
}

/// Serves `GET /metrics` from `registry` on `listener` (after `refresh`) until `shutdown`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    registry: Registry,
    refresh: Refresh,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(registry, refresh);
    tracing::info!(address = %listener.local_addr()?, "metrics serving on /metrics");
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

/// The `GET /metrics` route, to serve alone or merged into a larger router.
pub fn router(registry: Registry, refresh: Refresh) -> axum::Router {
    let handler = move || {
        let (registry, refresh) = (registry.clone(), refresh.clone());
        async move {
            refresh().await;
            (
                [(
                    axum::http::header::CONTENT_TYPE,
                    TextEncoder::new().format_type().to_string(),
                )],
                render(&registry),
            )
        }
    };
    axum::Router::new().route("/metrics", axum::routing::get(handler))
}

/// A refresh that does nothing (for daemons whose gauges are kept current as things change).
pub fn no_refresh() -> Refresh {
    Arc::new(|| Box::pin(async {}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendered_metrics_carry_help_type_and_labels() {
        let registry = Registry::new();
        let ended = counter_vec(&registry, "baton_test_ended_total", "Ended.", &["reason"]);
        ended.with_label_values(&["moved"]).inc_by(2);
        let took = histogram(&registry, "baton_test_seconds", "Took.", &DURATION_BUCKETS);
        took.observe(0.3);
        let text = render(&registry);
        assert!(
            text.contains("# HELP baton_test_ended_total Ended."),
            "{text}"
        );
        assert!(
            text.contains("# TYPE baton_test_ended_total counter"),
            "{text}"
        );
        assert!(
            text.contains("baton_test_ended_total{reason=\"moved\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("baton_test_seconds_bucket{le=\"0.5\"} 1"),
            "{text}"
        );
        assert!(text.contains("baton_test_seconds_count 1"), "{text}");
    }

    #[tokio::test]
    async fn the_endpoint_refreshes_then_serves_the_text_format() {
        let registry = Registry::new();
        let gauge = gauge(&registry, "baton_test_refreshed", "Set by the refresh.");
        let refresh: Refresh = {
            let gauge = gauge.clone();
            Arc::new(move || {
                let gauge = gauge.clone();
                Box::pin(async move { gauge.set(7) })
            })
        };
        let listener = bind("127.0.0.1:0".parse().unwrap(), "--metrics-listen")
            .await
            .unwrap();
        let address = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(listener, registry, refresh, async {
            let _ = stopped.await;
        }));
        let body = get(address, "/metrics").await;
        assert!(body.starts_with("HTTP/1.1 200"), "{body}");
        assert!(body.contains("text/plain; version=0.0.4"), "{body}");
        assert!(body.contains("baton_test_refreshed 7"), "{body}");
        assert!(get(address, "/other").await.starts_with("HTTP/1.1 404"));
        stop.send(()).unwrap();
        server.await.unwrap().unwrap();
    }

    async fn get(address: SocketAddr, path: &str) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
        let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        response
    }
}
