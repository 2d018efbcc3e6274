//! The throughput cap and the throughput/latency arithmetic `skald perf` reports.
//!
//! Owns: when the next record may be sent under a records/s cap, the HDR latency
//! histogram (microseconds, 1 µs to 10 min at 3 significant digits; longer values are
//! clamped, never dropped), and the text of the report lines. Pure: time is passed in,
//! so all of it is unit-tested without clocks.

use std::time::Duration;

use hdrhistogram::Histogram;

/// Largest latency the histogram tells apart; anything slower is recorded as this.
const LATENCY_US_MAX: u64 = 600_000_000;
/// Kafka's tools count a MB as 1024 * 1024 bytes.
const BYTES_PER_MB: f64 = 1024.0 * 1024.0;

/// How long to wait before sending record number `sent` (0-based) so that no more than
/// `records_per_sec` are sent on average since the start; `None`: send now. A cap of
/// zero or less means no cap.
pub fn throttle_delay(sent: u64, elapsed: Duration, records_per_sec: f64) -> Option<Duration> {
    if records_per_sec <= 0.0 || !records_per_sec.is_finite() {
        return None;
    }
    let due = Duration::from_secs_f64(sent as f64 / records_per_sec);
    due.checked_sub(elapsed).filter(|wait| !wait.is_zero())
}

/// Records/s and MB/s over `elapsed` (zero elapsed: zero rates, not infinity).
pub fn rates(records: u64, bytes: u64, elapsed: Duration) -> (f64, f64) {
    let seconds = elapsed.as_secs_f64();
    if seconds <= 0.0 {
        return (0.0, 0.0);
    }
    (
        records as f64 / seconds,
        bytes as f64 / BYTES_PER_MB / seconds,
    )
}

/// Latencies in microseconds.
#[derive(Clone, Debug)]
pub struct Latencies {
    histogram: Histogram<u64>,
}

impl Default for Latencies {
    fn default() -> Self {
        Latencies::new()
    }
}

impl Latencies {
    pub fn new() -> Latencies {
        let histogram = Histogram::new_with_bounds(1, LATENCY_US_MAX, 3)
            .expect("constant histogram bounds are valid");
        Latencies { histogram }
    }

    pub fn record(&mut self, latency: Duration) {
        let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.histogram
            .saturating_record(us.clamp(1, LATENCY_US_MAX));
    }

    pub fn count(&self) -> u64 {
        self.histogram.len()
    }

    /// Adds every value of `other`.
    pub fn merge(&mut self, other: &Latencies) {
        // Same bounds on both sides, so adding cannot fail; a failure would only lose
        // statistics, never records.
        let _ = self.histogram.add(&other.histogram);
    }

    pub fn clear(&mut self) {
        self.histogram.reset();
    }

    /// `quantile` in 0..=1, in milliseconds.
    pub fn quantile_ms(&self, quantile: f64) -> f64 {
        self.histogram.value_at_quantile(quantile) as f64 / 1000.0
    }

    pub fn mean_ms(&self) -> f64 {
        self.histogram.mean() / 1000.0
    }

    pub fn max_ms(&self) -> f64 {
        self.histogram.max() as f64 / 1000.0
    }
}

/// The producer report line, in the shape of kafka-producer-perf-test:
/// `N records sent, R records/sec (M MB/sec), A ms avg latency, X ms max latency,
/// p50 ms 50th, p99 ms 99th, p999 ms 99.9th.` (the percentiles only when `percentiles`).
pub fn producer_line(
    records: u64,
    bytes: u64,
    elapsed: Duration,
    latencies: &Latencies,
    percentiles: bool,
) -> String {
    let (records_per_sec, mb_per_sec) = rates(records, bytes, elapsed);
    let mut line = format!(
        "{records} records sent, {records_per_sec:.1} records/sec ({mb_per_sec:.2} MB/sec), \
         {:.2} ms avg latency, {:.2} ms max latency",
        latencies.mean_ms(),
        latencies.max_ms()
    );
    if percentiles {
        line.push_str(&format!(
            ", {:.2} ms 50th, {:.2} ms 99th, {:.2} ms 99.9th",
            latencies.quantile_ms(0.5),
            latencies.quantile_ms(0.99),
            latencies.quantile_ms(0.999)
        ));
    }
    line.push('.');
    line
}

/// The consumer report line: `N records consumed, R records/sec (M MB/sec),
/// T MB total in S s.`
pub fn consumer_line(records: u64, bytes: u64, elapsed: Duration) -> String {
    let (records_per_sec, mb_per_sec) = rates(records, bytes, elapsed);
    format!(
        "{records} records consumed, {records_per_sec:.1} records/sec ({mb_per_sec:.2} MB/sec), \
         {:.2} MB total in {:.2} s.",
        bytes as f64 / BYTES_PER_MB,
        elapsed.as_secs_f64()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttle_holds_the_average_rate() {
        // 1000/s: record 500 is due at 0.5 s.
        assert_eq!(
            throttle_delay(500, Duration::from_millis(200), 1000.0),
            Some(Duration::from_millis(300))
        );
        assert_eq!(
            throttle_delay(500, Duration::from_millis(500), 1000.0),
            None
        );
        assert_eq!(throttle_delay(500, Duration::from_secs(9), 1000.0), None);
        assert_eq!(throttle_delay(0, Duration::ZERO, 1000.0), None);
        // No cap.
        assert_eq!(throttle_delay(u64::MAX, Duration::ZERO, -1.0), None);
        assert_eq!(throttle_delay(u64::MAX, Duration::ZERO, 0.0), None);
        assert_eq!(throttle_delay(u64::MAX, Duration::ZERO, f64::NAN), None);
    }

    #[test]
    fn throttled_sender_never_runs_ahead() {
        // Simulated clock: the sender sleeps exactly as told; after 10 s at 250/s it has
        // sent 2500 records (not more), whatever the step.
        let rate = 250.0;
        let mut now = Duration::ZERO;
        let mut sent = 0u64;
        for _ in 0..100_000 {
            if now >= Duration::from_secs(10) {
                break;
            }
            match throttle_delay(sent, now, rate) {
                Some(wait) => now += wait,
                None => {
                    sent += 1;
                    now += Duration::from_micros(10);
                }
            }
        }
        assert!((2500..=2501).contains(&sent), "sent {sent}");
    }

    #[test]
    fn rates_and_lines() {
        assert_eq!(
            rates(1000, 1024 * 1024, Duration::from_secs(2)),
            (500.0, 0.5)
        );
        assert_eq!(rates(5, 5, Duration::ZERO), (0.0, 0.0));
        let mut latencies = Latencies::new();
        for ms in 1..=100u64 {
            latencies.record(Duration::from_millis(ms));
        }
        assert_eq!(latencies.count(), 100);
        assert!((latencies.quantile_ms(0.5) - 50.0).abs() < 0.1);
        assert!((latencies.quantile_ms(0.99) - 99.0).abs() < 0.1);
        assert!((latencies.max_ms() - 100.0).abs() < 0.1);
        let line = producer_line(1000, 1024 * 1024, Duration::from_secs(2), &latencies, true);
        assert!(
            line.starts_with("1000 records sent, 500.0 records/sec (0.50 MB/sec), 50.50 ms avg"),
            "{line}"
        );
        assert!(line.ends_with("ms 99.9th."), "{line}");
        assert_eq!(
            consumer_line(10, 2 * 1024 * 1024, Duration::from_secs(1)),
            "10 records consumed, 10.0 records/sec (2.00 MB/sec), 2.00 MB total in 1.00 s."
        );
    }

    #[test]
    fn latencies_clamp_instead_of_dropping() {
        let mut latencies = Latencies::new();
        latencies.record(Duration::ZERO);
        latencies.record(Duration::from_secs(100_000));
        assert_eq!(latencies.count(), 2);
        let mut merged = Latencies::new();
        merged.merge(&latencies);
        assert_eq!(merged.count(), 2);
        merged.clear();
        assert_eq!(merged.count(), 0);
    }
}
