//! Prometheus metrics (prometheus-client): admission requests by endpoint and result, latency,
//! certificate reloads, open connections and failed accepts. Handles are resolved once so the
//! hot path takes no label lookup.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::admit::Endpoint;

/// How an admission request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestResult {
    Allowed,
    Denied,
    /// Not answered with an AdmissionReview (HTTP 4xx: unreadable body, too large, ...).
    Error,
}

impl RequestResult {
    fn as_str(self) -> &'static str {
        match self {
            RequestResult::Allowed => "allowed",
            RequestResult::Denied => "denied",
            RequestResult::Error => "error",
        }
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    endpoint: &'static str,
    result: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EndpointLabels {
    endpoint: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReloadLabels {
    result: &'static str,
}

const ENDPOINTS: [Endpoint; 2] = [Endpoint::Mutate, Endpoint::Validate];
const RESULTS: [RequestResult; 3] = [
    RequestResult::Allowed,
    RequestResult::Denied,
    RequestResult::Error,
];

/// Latency buckets in seconds: 10 us (a review takes about that in-process) to 1 s.
const LATENCY_BUCKETS: [f64; 14] = [
    0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025,
    0.1, 0.25, 1.0,
];

/// All metrics of the webhook, and the registry that renders them.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// `[endpoint][result]`.
    requests: [[Counter; 3]; 2],
    /// `[endpoint]`.
    latency: [Histogram; 2],
    reload_ok: Counter,
    reload_failed: Counter,
    connections: Gauge,
    accept_errors: Counter,
    body_bytes: Gauge,
    budget_refusals: Counter,
}

/// An open TLS connection, counted in the `connections` gauge until dropped.
#[derive(Debug)]
pub struct OpenConnection(Gauge);

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.dec();
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Every metric registered, at zero.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("tkeha_webhook");
        let requests_family = Family::<RequestLabels, Counter>::default();
        let latency_family = Family::<EndpointLabels, Histogram>::new_with_constructor(
            new_latency_histogram as fn() -> Histogram,
        );
        let reloads_family = Family::<ReloadLabels, Counter>::default();
        registry.register(
            "admission_requests",
            "Admission requests by endpoint and result (allowed, denied, error)",
            requests_family.clone(),
        );
        registry.register(
            "admission_duration_seconds",
            "Time to answer an admission request, body read to response built",
            latency_family.clone(),
        );
        registry.register(
            "tls_reloads",
            "Serving certificate reloads after the files changed, by result",
            reloads_family.clone(),
        );
        let connections = Gauge::default();
        registry.register(
            "connections",
            "Open connections on the TLS listener",
            connections.clone(),
        );
        let accept_errors = Counter::default();
        registry.register(
            "accept_errors",
            "Failed accepts on a listener other than a peer giving up (EMFILE, ...), each followed by a pause",
            accept_errors.clone(),
        );
        let body_bytes = Gauge::default();
        registry.register(
            "body_bytes_in_flight",
            "Bytes of request bodies held now, against the body budget",
            body_bytes.clone(),
        );
        let budget_refusals = Counter::default();
        registry.register(
            "body_budget_refusals",
            "Requests answered 503 because their body would pass the body budget",
            budget_refusals.clone(),
        );
        let requests = ENDPOINTS.map(|endpoint| {
            RESULTS.map(|result| {
                requests_family
                    .get_or_create(&RequestLabels {
                        endpoint: endpoint.as_str(),
                        result: result.as_str(),
                    })
                    .clone()
            })
        });
        let latency = ENDPOINTS.map(|endpoint| {
            latency_family
                .get_or_create(&EndpointLabels {
                    endpoint: endpoint.as_str(),
                })
                .clone()
        });
        let reload_ok = reloads_family
            .get_or_create(&ReloadLabels { result: "ok" })
            .clone();
        let reload_failed = reloads_family
            .get_or_create(&ReloadLabels { result: "failed" })
            .clone();
        Self {
            registry,
            requests,
            latency,
            reload_ok,
            reload_failed,
            connections,
            accept_errors,
            body_bytes,
            budget_refusals,
        }
    }

    /// Count one admission request and its latency.
    pub fn observe(&self, endpoint: Endpoint, result: RequestResult, seconds: f64) {
        let e = endpoint_index(endpoint);
        let r = match result {
            RequestResult::Allowed => 0,
            RequestResult::Denied => 1,
            RequestResult::Error => 2,
        };
        self.requests[e][r].inc();
        self.latency[e].observe(seconds);
    }

    /// Count a certificate reload attempt.
    pub fn tls_reload(&self, ok: bool) {
        if ok {
            self.reload_ok.inc();
        } else {
            self.reload_failed.inc();
        }
    }

    /// Count an open connection until the guard is dropped.
    pub fn connection_opened(&self) -> OpenConnection {
        self.connections.inc();
        OpenConnection(self.connections.clone())
    }

    /// The gauge of body bytes in flight (the body budget keeps it).
    pub(crate) fn body_bytes_gauge(&self) -> Gauge {
        self.body_bytes.clone()
    }

    /// Count a body refused for the budget.
    pub(crate) fn budget_refused(&self) {
        self.budget_refusals.inc();
    }

    /// Count a failed accept.
    pub fn accept_error(&self) {
        self.accept_errors.inc();
    }

    /// The OpenMetrics text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

fn endpoint_index(endpoint: Endpoint) -> usize {
    match endpoint {
        Endpoint::Mutate => 0,
        Endpoint::Validate => 1,
    }
}

fn new_latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_by_endpoint_and_result_and_the_histogram() {
        let m = Metrics::new();
        m.observe(Endpoint::Validate, RequestResult::Denied, 0.000_2);
        m.observe(Endpoint::Validate, RequestResult::Denied, 0.000_3);
        m.observe(Endpoint::Mutate, RequestResult::Error, 0.01);
        m.tls_reload(true);
        let text = m.render();
        assert!(
            text.contains(
                r#"tkeha_webhook_admission_requests_total{endpoint="validate",result="denied"} 2"#
            ),
            "{text}"
        );
        assert!(text.contains(
            r#"tkeha_webhook_admission_requests_total{endpoint="mutate",result="error"} 1"#
        ));
        assert!(text.contains(
            r#"tkeha_webhook_admission_requests_total{endpoint="mutate",result="allowed"} 0"#
        ));
        assert!(
            text.contains(
                r#"tkeha_webhook_admission_duration_seconds_count{endpoint="validate"} 2"#
            )
        );
        assert!(text.contains(r#"tkeha_webhook_tls_reloads_total{result="ok"} 1"#));
        assert!(text.ends_with("# EOF\n"));
    }
}
