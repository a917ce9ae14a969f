//! The coordinator's metrics, through the `metrics` crate and rendered by its Prometheus
//! exporter. The recorder is this service's own (not the process-global one), so two
//! coordinators in one process (tests) keep separate counts.

use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram, with_local_recorder, Unit};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle, PrometheusRecorder};
use zkinfer_protocol::{ExecutorId, JobState, ALL_STATES};

/// The metrics of one coordinator.
pub struct Metrics {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh set, with every metric described.
    pub fn new() -> Self {
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        let m = Metrics { recorder, handle };
        m.record(|| {
            describe_gauge!("zkinfer_jobs", "Jobs by state.");
            describe_histogram!("zkinfer_prove_seconds", Unit::Seconds, "Seconds from start of proving to a verified delivery.");
            describe_counter!("zkinfer_routing_picked_claims", "Jobs claimed by the executor the router picked.");
            describe_counter!("zkinfer_http_requests", "HTTP requests answered, by route and status.");
            describe_histogram!("zkinfer_http_request_seconds", Unit::Seconds, "Seconds to answer an HTTP request, by route.");
        });
        m
    }

    fn record<T>(&self, f: impl FnOnce() -> T) -> T {
        with_local_recorder(&self.recorder, f)
    }

    /// A verified delivery, `seconds` after proving started.
    pub fn proved(&self, seconds: f64) {
        self.record(|| histogram!("zkinfer_prove_seconds").record(seconds));
    }

    /// The router's pick claimed a job.
    pub fn picked_claim(&self, executor: ExecutorId) {
        self.record(|| counter!("zkinfer_routing_picked_claims", "executor" => executor.to_string()).increment(1));
    }

    /// An HTTP request answered.
    pub fn request(&self, route: &str, status: u16, seconds: f64) {
        self.record(|| {
            counter!("zkinfer_http_requests", "route" => route.to_string(), "status" => status.to_string()).increment(1);
            histogram!("zkinfer_http_request_seconds", "route" => route.to_string()).record(seconds);
        });
    }

    /// The Prometheus text, with the job gauges set from `counts` first.
    pub fn render(&self, counts: &[(JobState, i64)]) -> String {
        self.record(|| {
            for s in ALL_STATES {
                let n = counts.iter().find(|c| c.0 == s).map_or(0, |c| c.1);
                gauge!("zkinfer_jobs", "state" => s.as_str()).set(n as f64);
            }
        });
        self.handle.render()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_sets_count_separately() {
        let (a, b) = (Metrics::new(), Metrics::new());
        a.proved(1.5);
        let text = a.render(&[(JobState::Proved, 1)]);
        assert!(text.contains("zkinfer_prove_seconds_count 1"), "{text}");
        assert!(text.contains("zkinfer_jobs{state=\"proved\"} 1") && text.contains("zkinfer_jobs{state=\"queued\"} 0"), "{text}");
        assert!(!b.render(&[]).contains("zkinfer_prove_seconds_count"), "b saw nothing proved");
    }
}
