//! The load harness behind `russet-bench`: simulated Macs with cached identities, a `russet`
//! server process whose CPU time and peak memory are read from /proc, and latency statistics.

use openssl::pkey::PKey;
use openssl::x509::X509;
use russet_certs::testing::{DeviceIdentity, TestCa};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Load (or create and save) a device CA and `n` identities it issued. RSA key generation is
/// not what a benchmark should measure, so identities are made once per count and reused.
pub fn cached_identities(dir: &Path, n: usize) -> anyhow::Result<(TestCa, Vec<DeviceIdentity>)> {
    std::fs::create_dir_all(dir)?;
    let ca_path = dir.join("ca.pem");
    let ca = if ca_path.exists() {
        let pem = std::fs::read(&ca_path)?;
        TestCa {
            cert: X509::from_pem(&pem)?,
            key: PKey::private_key_from_pem(&pem)?,
        }
    } else {
        let ca = TestCa::new("Russet bench device CA");
        let mut pem = ca.cert.to_pem()?;
        pem.extend(ca.key.private_key_to_pem_pkcs8()?);
        std::fs::write(&ca_path, pem)?;
        ca
    };
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let path = dir.join(format!("mac-{i}.pem"));
        let id = match std::fs::read(&path) {
            Ok(pem) => DeviceIdentity {
                cert: X509::from_pem(&pem)?,
                key: PKey::private_key_from_pem(&pem)?,
            },
            Err(_) => {
                let id = ca.issue_device_identity(&format!("bench-mac-{i}"));
                let mut pem = id.cert.to_pem()?;
                pem.extend(id.key.private_key_to_pem_pkcs8()?);
                std::fs::write(&path, pem)?;
                id
            }
        };
        out.push(id);
    }
    Ok((ca, out))
}

/// CPU seconds (user + system) and peak RSS (KiB) of a process, from /proc.
pub fn process_usage(pid: u32) -> Option<(f64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the `(comm)` part; utime and stime are the 14th and 15th fields overall.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    let ticks = 100.0; // USER_HZ on Linux
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let hwm = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    Some(((utime + stime) / ticks, hwm))
}

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

/// The release `russet` binary next to this one (both live in target/release).
pub fn default_server_binary() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.join("russet")))
        .unwrap_or_else(|| PathBuf::from("russet"))
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

    #[test]
    fn reads_our_own_process_usage() {
        let (cpu, rss) = process_usage(std::process::id()).expect("/proc");
        assert!(cpu >= 0.0);
        assert!(rss > 0);
    }
}
