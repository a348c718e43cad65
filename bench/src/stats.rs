//! What a scenario measured: latency percentiles, and the one-line report of a scenario.

use std::time::Duration;

/// Latency percentiles of a set of samples.
pub struct Latencies(pub Vec<Duration>);

impl Latencies {
    pub fn percentile(&mut self, p: f64) -> Duration {
        if self.0.is_empty() {
            return Duration::ZERO;
        }
        self.0.sort_unstable();
        let idx = ((self.0.len() as f64 - 1.0) * p).round() as usize;
        self.0[idx.min(self.0.len() - 1)]
    }
}

/// One line per scenario: count, wall time, rate, the server's CPU time per unit and, when
/// measured, latency percentiles.
pub fn report(
    name: &str,
    n: usize,
    unit: &str,
    elapsed: Duration,
    cpu: f64,
    lat: Option<&mut Latencies>,
) {
    let secs = elapsed.as_secs_f64();
    let mut line = format!(
        "{name:<28} {n:>8} {unit:<12} {secs:>8.2} s {:>10.0} {unit}/s  server CPU {cpu:>7.2} s = {:.3} ms/{unit}",
        n as f64 / secs,
        cpu * 1000.0 / n.max(1) as f64
    );
    if let Some(l) = lat {
        line.push_str(&format!(
            "  p50 {:.2} ms  p99 {:.2} ms",
            l.percentile(0.5).as_secs_f64() * 1000.0,
            l.percentile(0.99).as_secs_f64() * 1000.0
        ));
    }
    println!("{line}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_pick_from_sorted_samples() {
        let mut l = Latencies((1..=100).rev().map(Duration::from_millis).collect());
        assert_eq!(l.percentile(0.5), Duration::from_millis(51));
        assert_eq!(l.percentile(0.99), Duration::from_millis(99));
        assert_eq!(Latencies(vec![]).percentile(0.5), Duration::ZERO);
    }
}
