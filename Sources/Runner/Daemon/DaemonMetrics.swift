import Prometheus

/// The daemon's metrics, in the Prometheus text format at `GET /metrics`.
///
/// - `syft_jobs_finished_total{status}`: runs ended, by the history's status
///   (succeeded, failed, timed_out, killed, refused).
/// - `syft_job_duration_seconds`: wall time of the runs that reached the sandbox.
/// - `syft_jobs_running`, `syft_jobs_queued`: now.
/// - `syft_jobs_received_total{outcome}`: SyftBox submissions received: pending, approved (by a rule), rejected.
/// - `syft_sandbox_setup_failures_total`: runs whose sandbox could not be set up.
public final class DaemonMetrics: Sendable {
    public let registry = PrometheusCollectorRegistry()
    let running: Gauge
    let queued: Gauge
    let duration: DurationHistogram
    let setupFailures: Counter

    public init() {
        running = registry.makeGauge(descriptor: Self.name("jobs_running", help: "Jobs running in a sandbox now."))
        queued = registry.makeGauge(descriptor: Self.name("jobs_queued", help: "Approved jobs waiting for a slot."))
        duration = registry.makeDurationHistogram(
            descriptor: Self.name("job_duration", unit: "seconds", help: "Wall time of the runs that reached the sandbox."),
            buckets: [.milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1),
                      .seconds(2), .seconds(5), .seconds(10), .seconds(30), .seconds(60), .seconds(300), .seconds(600),
                      .seconds(1800), .seconds(3600)])
        setupFailures = registry.makeCounter(
            descriptor: Self.name("sandbox_setup_failures", unit: "total", help: "Runs whose sandbox could not be set up."))
        // Present from the start, so a dashboard sees zeros rather than nothing.
        for status in ["succeeded", "failed", "timed_out", "killed", "refused"] { _ = finished(status) }
        for outcome in ["pending", "approved", "rejected"] { _ = received(outcome) }
    }

    private func finished(_ status: String) -> Counter {
        registry.makeCounter(descriptor: Self.name("jobs_finished", unit: "total", help: "Runs ended, by status."),
                             labels: [("status", status)])
    }

    private func received(_ outcome: String) -> Counter {
        registry.makeCounter(descriptor: Self.name("jobs_received", unit: "total",
                                                   help: "SyftBox submissions received, by outcome."),
                             labels: [("outcome", outcome)])
    }

    private static func name(_ metric: String, unit: String = "", help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(namespace: "syft", metricName: metric, unitName: unit, helpText: help)
    }

    func runFinished(status: String, wallMilliseconds: Int64?) {
        finished(status).increment()
        if let wallMilliseconds { duration.record(.milliseconds(wallMilliseconds)) }
    }

    func submissionReceived(_ outcome: String) { received(outcome).increment() }

    func sandboxSetupFailed() { setupFailures.increment() }

    func queue(running: Int, waiting: Int) {
        self.running.set(Int64(running))
        queued.set(Int64(waiting))
    }

    /// The text format (version 0.0.4).
    public func exposition() -> [UInt8] {
        var buffer: [UInt8] = []
        registry.emit(into: &buffer)
        return buffer
    }
}
