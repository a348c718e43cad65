//! `--fanout`: the enqueue of one command to the whole fleet and its push fan-out, on
//! enrollments written through Russet's own store (the calls an Authenticate and a TokenUpdate
//! make), so a 100k fleet needs no SCEP identities: issuing 100,000 of them takes most of
//! half an hour here, enrolling them another three minutes, and neither is what this measures
//! (the protocol path is measured by the default scenarios).
//!
//! Each run starts a fresh `russet serve` on a fresh copy of the seeded fleet, imports the
//! push certificate, enqueues SecurityInfo to every Mac and waits for the fake APNs to record a
//! push for each: the server's peak RSS (`VmHWM`) before, after the enqueue and after the
//! fan-out, and its CPU. `--rounds` fan-outs follow one another on the same server (a new
//! command each), to show whether the peak keeps growing.

use crate::server::{ServerFiles, start_server};
use crate::stats::report;
use russet_apns::fake::FakeApns;
use russet_apns::fake::pki::TestCa;
use russet_mdm::store::{AuthenticateRecord, Store, TokenUpdateRecord};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

fn udid(i: usize) -> String {
    format!(
        "FA{i:06}-0000-4000-8000-{:012}",
        i * 7919 % 1_000_000_000_000
    )
}

/// A 32-byte APNs token of its own per Mac (the fake APNs wants 64 hex digits).
fn token(i: usize) -> Vec<u8> {
    let mut t = vec![0xA5; 32];
    t[..8].copy_from_slice(&(i as u64).to_be_bytes());
    t
}

async fn seed_one(store: &dyn Store, i: usize, topic: &str, now: i64) -> anyhow::Result<()> {
    let id = udid(i);
    store
        .authenticate(&AuthenticateRecord {
            device_id: id.clone(),
            enrollment_type: "Device".into(),
            cert_hash: format!("{i:064x}"),
            cert_not_after: None,
            topic: topic.into(),
            serial_number: Some(format!("C02F{i:07}")),
            model: Some("Mac14,2".into()),
            model_name: Some("MacBook Air".into()),
            device_name: Some(format!("Mac {i}")),
            os_version: Some("15.1".into()),
            build_version: Some("24B83".into()),
            product_name: Some("Mac14,2".into()),
            raw: Vec::new(),
            now,
        })
        .await?;
    store
        .token_update(&TokenUpdateRecord {
            enrollment_id: id.clone(),
            device_id: id,
            enrollment_type: "Device".into(),
            user_id: None,
            user_short_name: None,
            user_long_name: None,
            topic: topic.into(),
            token: token(i),
            push_magic: format!("{i:08X}-7A3C-4E4F-9D0B-5C5E1E2F3A4B"),
            unlock_token_sealed: None,
            awaiting_configuration: false,
            now,
        })
        .await?;
    Ok(())
}

/// Write `macs` enrolled Macs with push tokens, `concurrency` at a time.
async fn seed(
    store: Arc<dyn Store>,
    macs: usize,
    topic: &str,
    concurrency: usize,
) -> anyhow::Result<()> {
    let now = russet_mdm::timefmt::now_ms();
    let t = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..concurrency.max(1) {
        let (store, next, topic) = (store.clone(), next.clone(), topic.to_string());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= macs {
                    return Ok::<_, anyhow::Error>(());
                }
                seed_one(store.as_ref(), i, &topic, now).await?;
            }
        }));
    }
    for t in tasks {
        t.await??;
    }
    println!("seeded {macs} enrolled Macs in {:.1?}", t.elapsed());
    Ok(())
}

/// A fresh database with the fleet: a copy of a kept SQLite file (seeded on first use under
/// `target/bench-fanout/`), or a new PostgreSQL database seeded now.
async fn fresh_database(
    backend: &str,
    dir: &Path,
    macs: usize,
    topic: &str,
) -> anyhow::Result<(String, Option<russet_mdm::testing::PgDatabase>)> {
    if backend == "postgres" {
        let pg =
            russet_mdm::testing::PgDatabase::create_on(&russet_mdm::testing::postgres_admin_url())
                .await?;
        let store = russet_mdm::store::open(&pg.url).await?;
        seed(store, macs, topic, 16).await?;
        return Ok((pg.url.clone(), Some(pg)));
    }
    let kept_dir = PathBuf::from("target/bench-fanout");
    std::fs::create_dir_all(&kept_dir)?;
    let kept = std::fs::canonicalize(&kept_dir)?.join(format!("sqlite-{macs}.db"));
    let marker = kept_dir.join(format!("sqlite-{macs}.seeded"));
    if !marker.exists() {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", kept.display()));
        }
        let store = russet_mdm::store::open(&format!("sqlite://{}", kept.display())).await?;
        // SQLite has one writer: more tasks only queue.
        seed(store, macs, topic, 1).await?;
        std::fs::write(&marker, topic)?;
    }
    // A consistent copy, whatever is still in the kept file's WAL.
    let copy = dir.join("fanout.db");
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", kept.display())).await?;
    sqlx::query("VACUUM INTO $1")
        .bind(copy.display().to_string())
        .execute(&pool)
        .await?;
    pool.close().await;
    Ok((format!("sqlite://{}", copy.display()), None))
}

/// What a fan-out run needs from the harness.
pub struct Run<'a> {
    pub bin: &'a Path,
    pub dir: &'a Path,
    pub files: &'a ServerFiles<'a>,
    pub fake: &'a FakeApns,
    pub apns_ca: &'a TestCa,
    pub topic: &'a str,
}

impl Run<'_> {
    /// The whole scenario: `rounds` fan-outs to `macs` seeded Macs on one server.
    pub async fn go(&self, backend: &str, macs: usize, rounds: usize) -> anyhow::Result<()> {
        let Run {
            bin,
            dir,
            files,
            fake,
            apns_ca,
            topic,
        } = *self;
        let (url, pg) = fresh_database(backend, dir, macs, topic).await?;
        let server = start_server(bin, dir, files, Some(&url))?;
        let http = reqwest::Client::new();
        let cert = apns_ca.issue_push_certificate(topic)?;
        let r = http
        .put(format!("{}/api/v1/apns/certificate", server.admin_url))
        .bearer_auth(&server.token)
        .json(&json!({"certificate_pem": String::from_utf8_lossy(&cert.cert_pem), "key_pem": String::from_utf8_lossy(&cert.key_pem)}))
        .send()
        .await?;
        anyhow::ensure!(
            r.status().is_success(),
            "importing the push certificate: {}",
            r.text().await?
        );
        let devices: Vec<String> = (0..macs).map(udid).collect();
        let (_, rss_start) = server.usage();
        println!(
            "server peak RSS before the first enqueue: {:.1} MiB",
            rss_start as f64 / 1024.0
        );
        for round in 0..rounds.max(1) {
            fake.clear_records();
            let (cpu0, _) = server.usage();
            let t = Instant::now();
            drop(
                server
                    .enqueue_to_all(&http, &devices)
                    .await?
                    .bytes()
                    .await?,
            );
            let enqueue = t.elapsed();
            let (cpu1, rss_enqueued) = server.usage();
            report(
                "enqueue 1 command to all",
                macs,
                "devices",
                enqueue,
                cpu1 - cpu0,
                None,
            );
            let deadline = Instant::now() + Duration::from_secs(300);
            while fake.push_count() < macs && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let fanned = t.elapsed();
            // The dispatcher records the outcomes after the last push: let it finish.
            tokio::time::sleep(Duration::from_millis(1500)).await;
            let (cpu2, rss_pushed) = server.usage();
            report(
                "push fan-out (enqueue→APNs)",
                fake.push_count(),
                "pushes",
                fanned,
                cpu2 - cpu0,
                None,
            );
            println!(
                "round {}: server peak RSS after the enqueue {:.1} MiB, after the fan-out {:.1} MiB",
                round + 1,
                rss_enqueued as f64 / 1024.0,
                rss_pushed as f64 / 1024.0
            );
            anyhow::ensure!(
                fake.push_count() >= macs,
                "only {} of {macs} Macs were pushed",
                fake.push_count()
            );
        }
        drop(server);
        if let Some(pg) = pg {
            pg.drop_now().await;
        }
        Ok(())
    }
}
