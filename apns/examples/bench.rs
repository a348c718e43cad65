//! Pushes per second from `ApnsClient::push_many` to the fake APNs (TLS + HTTP/2, client
//! certificate), for 10k and 100k devices. Not a test: run it in release.
//!
//! ```text
//! cargo run --release -p russet-apns --example bench [-- DEVICES... [--connections N] [--concurrency N]]
//! ```

use std::time::{Duration, Instant};

use russet_apns::fake::pki::{TestCa, random_topic};
use russet_apns::fake::{FakeApns, FakeApnsConfig};
use russet_apns::{ApnsClient, ApnsConfig, MdmPush, PushCertificate, PushOutcome};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut sizes = Vec::new();
    let mut connections = vec![1, 2, 4];
    let mut concurrency = 1000;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--connections" => connections = vec![args.next().ok_or("N")?.parse()?],
            "--concurrency" => concurrency = args.next().ok_or("N")?.parse()?,
            n => sizes.push(n.parse::<u32>()?),
        }
    }
    if sizes.is_empty() {
        sizes = vec![10_000, 100_000];
    }

    let ca = TestCa::new("bench CA")?;
    let topic = random_topic();
    let issued = ca.issue_push_certificate(&topic)?;
    let cert = PushCertificate::from_pem(&issued.cert_pem, &issued.key_pem)?;
    println!(
        "fake APNs and client in one process, {} CPUs, concurrency {concurrency}",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!(
        "{:>8} {:>5} {:>10} {:>12}",
        "devices", "conns", "seconds", "pushes/s"
    );
    for &n in &sizes {
        for &conns in &connections {
            // A fresh fake per run, so its record of pushes starts empty.
            let fake = FakeApns::start(FakeApnsConfig::trusting_ca(&ca.cert_pem(), &topic)).await?;
            let client = ApnsClient::new(
                &cert,
                ApnsConfig {
                    base_url: fake.base_url(),
                    extra_ca_pem: Some(fake.ca_pem().to_vec()),
                    connections: conns,
                    request_timeout: Duration::from_secs(60),
                    ..ApnsConfig::default()
                },
            )?;
            // Warm up: open every connection before timing.
            let warm: Vec<_> = (0..conns as u32).map(|i| push(u32::MAX - i)).collect();
            client.push_many(warm, conns).await;
            fake.clear_records();

            let pushes: Vec<MdmPush> = (0..n).map(push).collect();
            let start = Instant::now();
            let results = client.push_many(pushes, concurrency).await;
            let secs = start.elapsed().as_secs_f64();
            let delivered = results
                .iter()
                .filter(|(_, o)| *o == PushOutcome::Delivered)
                .count();
            if delivered != n as usize || fake.push_count() != n as usize {
                return Err(format!(
                    "only {delivered} of {n} delivered, {} recorded",
                    fake.push_count()
                )
                .into());
            }
            println!(
                "{n:>8} {conns:>5} {secs:>10.2} {:>12.0}",
                f64::from(n) / secs
            );
        }
    }
    Ok(())
}

fn push(i: u32) -> MdmPush {
    let mut token = vec![0x5Au8; 32];
    token[..4].copy_from_slice(&i.to_be_bytes());
    MdmPush {
        token,
        push_magic: format!("{i:08X}-E342-4A27-8742-E930EA116B0A"),
    }
}
