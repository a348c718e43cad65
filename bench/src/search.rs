//! `--search`: device search and the inventory sweep over a large fleet (issue 13).
//!
//! `--macs` devices with their inventory (DeviceInformation, SecurityInfo, 30 apps each) are
//! written through Russet's own store API, the calls the check-in and inventory paths make
//! (the protocol path itself is measured by the other scenarios: 100,000 Macs answering five
//! inventory commands each would take most of an hour here). Then:
//!
//! 1. a real `russet serve` on that database answers filters over HTTP (each query 5 times:
//!    median and slowest wall time, the server's CPU), the first page and the whole CSV
//!    report;
//! 2. the periodic sweep ([`InventoryService::sweep`], in this process, the server stopped)
//!    runs pass after pass until every Mac was asked: time per pass, and this process's
//!    resident memory after each pass, to show it stays flat.

use crate::server::{ServerFiles, process_usage, start_server};
use russet_mdm::inventory::{InventoryService, InventorySettings};
use russet_mdm::protocol::inventory::{App, DeviceInformation, SecurityInfo};
use russet_mdm::secrets::SecretBox;
use russet_mdm::service::{MdmService, ServiceOptions, UserAuthenticateMode};
use russet_mdm::store::inventory::{InventoryPart, InventoryUpdate};
use russet_mdm::store::{AuthenticateRecord, DeviceFacts, ReportRecord, Store, TokenUpdateRecord};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

const OS: &[(&str, &str)] = &[
    ("13.6.9", "22G830"),
    ("14.7.1", "23H222"),
    ("15.0.1", "24A348"),
    ("15.1", "24B83"),
    ("15.2", "24C101"),
];
const EXCEL: &[&str] = &["16.78", "16.80", "16.81", "16.89", "16.90"];
/// Apps per Mac, from a catalog of [`CATALOG`].
const APPS_PER_MAC: usize = 30;
const CATALOG: usize = 200;

/// The filters timed, each naming two facts (the measure), from row facts only to
/// apps only.
const QUERIES: &[&str] = &[
    "os_version < 15.0 and filevault = false",
    "model = Mac14,2 and filevault = true",
    "app = com.microsoft.Excel and app_version < 16.80",
    "os_version < 15 and app = \"Microsoft Excel\"",
    "serial = C02S0050000 and enrolled = true",
];

fn udid(i: usize) -> String {
    format!("0000{i:08}-SEARCH{:010}", i * 7919 % 10_000_000_000)
}

fn serial(i: usize) -> String {
    format!("C02S{i:07}")
}

fn apps(i: usize) -> Vec<App> {
    let mut apps: Vec<App> = (0..APPS_PER_MAC)
        .map(|k| {
            let c = (i * 7 + k * 13) % CATALOG;
            App {
                bundle_id: Some(format!("com.vendor{}.app{c}", c % 17)),
                name: format!("App {c}"),
                short_version: Some(format!("{}.{}", c % 9 + 1, (i + k) % 20)),
                version: Some(format!("{c}")),
                bundle_size: Some(1_000_000),
            }
        })
        .collect();
    // Excel on 60% of the Macs, in five versions.
    if i % 5 < 3 {
        apps.push(App {
            bundle_id: Some("com.microsoft.Excel".into()),
            name: "Microsoft Excel".into(),
            short_version: Some(EXCEL[i / 5 % EXCEL.len()].into()),
            version: None,
            bundle_size: Some(2_000_000_000),
        });
    }
    apps
}

async fn seed_one(store: &dyn Store, i: usize, now: i64) -> anyhow::Result<()> {
    let (os, build) = OS[i % OS.len()];
    let model = if i.is_multiple_of(4) {
        "Mac14,2"
    } else {
        "Mac15,3"
    };
    let id = udid(i);
    store
        .authenticate(&AuthenticateRecord {
            device_id: id.clone(),
            enrollment_type: "Device".into(),
            cert_hash: format!("{:064x}", i),
            cert_not_after: None,
            topic: "com.apple.mgmt.External.bench".into(),
            serial_number: Some(serial(i)),
            model: Some(model.into()),
            model_name: Some("MacBook Air".into()),
            device_name: Some(format!("Mac {i}")),
            os_version: Some(os.into()),
            build_version: Some(build.into()),
            product_name: Some(model.into()),
            raw: Vec::new(),
            now,
        })
        .await?;
    store
        .token_update(&TokenUpdateRecord {
            enrollment_id: id.clone(),
            device_id: id.clone(),
            enrollment_type: "Device".into(),
            user_id: None,
            user_short_name: None,
            user_long_name: None,
            topic: "com.apple.mgmt.External.bench".into(),
            token: vec![1, 2, 3, 4],
            push_magic: "magic".into(),
            unlock_token_sealed: None,
            awaiting_configuration: false,
            now,
        })
        .await?;
    store
        .command_report(&ReportRecord {
            enrollment_id: id.clone(),
            result: None,
            device_facts: Some(DeviceFacts {
                is_apple_silicon: Some(i % 4 != 3),
                os_version: Some(os.into()),
                build_version: Some(build.into()),
                ..DeviceFacts::default()
            }),
            now,
        })
        .await?;
    // Due for inventory already, so the sweep has the whole fleet to ask.
    let update = |part| InventoryUpdate {
        device_id: id.clone(),
        part,
        now,
        next_due_at: now - 1000,
    };
    store
        .save_inventory(&update(InventoryPart::DeviceInformation {
            facts: Box::new(DeviceInformation {
                serial_number: Some(serial(i)),
                model: Some(model.into()),
                os_version: Some(os.into()),
                build_version: Some(build.into()),
                is_supervised: Some(i.is_multiple_of(2)),
                is_apple_silicon: Some(i % 4 != 3),
                ..DeviceInformation::default()
            }),
            json: serde_json::json!({"OSVersion": os}),
        }))
        .await?;
    store
        .save_inventory(&update(InventoryPart::Security {
            facts: SecurityInfo {
                filevault_enabled: Some(!i.is_multiple_of(10)),
                sip_enabled: Some(true),
                firewall_enabled: Some(i.is_multiple_of(3)),
                secure_boot_level: Some("full".into()),
                ..SecurityInfo::default()
            },
            json: "{}".into(),
        }))
        .await?;
    store
        .save_inventory(&update(InventoryPart::Applications {
            apps: apps(i),
            json: "[]".into(),
        }))
        .await?;
    Ok(())
}

/// Write `macs` devices with inventory, `concurrency` at a time.
async fn seed(store: Arc<dyn Store>, macs: usize, concurrency: usize) -> anyhow::Result<()> {
    let now = russet_mdm::timefmt::now_ms();
    let t = Instant::now();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..concurrency.max(1) {
        let (store, next) = (store.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= macs {
                    return Ok::<_, anyhow::Error>(());
                }
                seed_one(store.as_ref(), i, now).await?;
                if i % 10_000 == 9_999 {
                    eprintln!("  seeded {} Macs in {:.0?}", i + 1, t.elapsed());
                }
            }
        }));
    }
    for t in tasks {
        t.await??;
    }
    println!(
        "seeded {macs} Macs with inventory ({APPS_PER_MAC} apps each, Excel on 3 in 5: {} app \
         rows) in {:.1?}",
        macs * APPS_PER_MAC + macs * 3 / 5,
        t.elapsed()
    );
    Ok(())
}

fn median(mut v: Vec<Duration>) -> (Duration, Duration) {
    v.sort();
    (v[v.len() / 2], v[v.len() - 1])
}

/// Time the filter queries against a real server on the seeded database.
async fn time_queries(
    bin: &Path,
    dir: &Path,
    files: &ServerFiles<'_>,
    db: Option<&str>,
) -> anyhow::Result<()> {
    let server = start_server(bin, dir, files, db)?;
    let http = reqwest::Client::new();
    let get = |query: String| {
        let req = http
            .get(format!("{}/api/v1/devices?{query}", server.admin_url))
            .bearer_auth(&server.token);
        async move {
            let r = req.send().await?;
            anyhow::ensure!(r.status().is_success(), "{}", r.text().await?);
            Ok::<_, anyhow::Error>(r.bytes().await?)
        }
    };
    // Warm the server's and the database's caches once, as a running server would be.
    get(format!("filter={}", enc(QUERIES[0]))).await?;
    println!(
        "\n{:<52} {:>9} {:>9} {:>10} {:>9}",
        "filter (first page, limit 100)", "median", "slowest", "CPU/query", "found"
    );
    for q in QUERIES {
        let mut times = Vec::new();
        let (c0, _) = server.usage();
        let mut found = 0;
        for _ in 0..5 {
            let t = Instant::now();
            let body = get(format!("filter={}&limit=100", enc(q))).await?;
            times.push(t.elapsed());
            let v: serde_json::Value = serde_json::from_slice(&body)?;
            found = v["devices"].as_array().map_or(0, Vec::len);
        }
        let (c1, _) = server.usage();
        let (med, max) = median(times);
        println!(
            "{q:<52} {:>7.0}ms {:>7.0}ms {:>8.0}ms {found:>9}",
            med.as_secs_f64() * 1000.0,
            max.as_secs_f64() * 1000.0,
            (c1 - c0) / 5.0 * 1000.0
        );
    }
    for q in &QUERIES[..3] {
        let (c0, _) = server.usage();
        let t = Instant::now();
        let body = get(format!("format=csv&filter={}", enc(q))).await?;
        let took = t.elapsed();
        let (c1, _) = server.usage();
        let rows = body
            .iter()
            .filter(|b| **b == b'\n')
            .count()
            .saturating_sub(1);
        println!(
            "CSV report: {q:<40} {:>6.0}ms, server CPU {:>5.0}ms, {rows} rows, {} KB",
            took.as_secs_f64() * 1000.0,
            (c1 - c0) * 1000.0,
            body.len() / 1024
        );
    }
    let (_, rss) = server.usage();
    println!("server peak RSS: {:.1} MiB", rss as f64 / 1024.0);
    Ok(())
}

/// Run the sweep pass after pass until every Mac was asked.
async fn time_sweep(store: Arc<dyn Store>, macs: usize) -> anyhow::Result<()> {
    let vault = Arc::new(SecretBox::generate()?);
    let service = Arc::new(MdmService::new(
        store.clone(),
        vault,
        ServiceOptions {
            user_authenticate: UserAuthenticateMode::Refuse,
            ..ServiceOptions::default()
        },
    ));
    let inventory = InventoryService::new(
        store,
        service,
        InventorySettings {
            interval: Duration::from_secs(86_400),
            collect: true,
        },
    );
    let me = std::process::id();
    let rss_now = || {
        std::fs::read_to_string(format!("/proc/{me}/status"))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("VmRSS:"))
                    .and_then(|v| v.split_whitespace().next())
                    .and_then(|v| v.parse::<u64>().ok())
            })
            .unwrap_or(0)
    };
    println!("\nsweep (in this process; RSS of this process after each pass):");
    let (c0, _) = process_usage(me).unwrap_or((0.0, 0));
    let t = Instant::now();
    let mut asked = 0;
    let mut passes = 0;
    let mut slowest = Duration::ZERO;
    let mut rss = Vec::new();
    while asked < macs {
        let p = Instant::now();
        let n = inventory.sweep().await?;
        slowest = slowest.max(p.elapsed());
        if n == 0 {
            break;
        }
        asked += n;
        passes += 1;
        rss.push(rss_now());
    }
    let (c1, _) = process_usage(me).unwrap_or((0.0, 0));
    println!(
        "{passes} passes asked {asked} Macs (5 commands each) in {:.1?}: {:.0} ms per pass \
         (slowest {:.0} ms), {:.2} ms CPU of this process per Mac",
        t.elapsed(),
        t.elapsed().as_secs_f64() * 1000.0 / passes.max(1) as f64,
        slowest.as_secs_f64() * 1000.0,
        (c1 - c0) * 1000.0 / asked.max(1) as f64
    );
    let mib: Vec<String> = rss
        .iter()
        .map(|k| format!("{:.0}", *k as f64 / 1024.0))
        .collect();
    println!("RSS after each pass (MiB): {}", mib.join(" "));
    Ok(())
}

fn enc(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The seeded database of `macs` devices on `backend`, kept between runs under
/// `target/bench-search/` (SQLite) or as the PostgreSQL database `russet_bench_search_<macs>`
/// (seeding 100k takes minutes): its URL, and whether it still needs seeding (then it is new
/// and empty).
async fn kept_database(backend: &str, macs: usize) -> anyhow::Result<(String, bool, PathBuf)> {
    let dir = PathBuf::from("target/bench-search");
    std::fs::create_dir_all(&dir)?;
    let marker = dir.join(format!("{backend}-{macs}.seeded"));
    let seeded = marker.exists();
    let url = match backend {
        "sqlite" => {
            let file = dir.join(format!("sqlite-{macs}.db"));
            if !seeded {
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{}{suffix}", file.display()));
                }
            }
            format!(
                "sqlite://{}",
                std::fs::canonicalize(&dir)?
                    .join(format!("sqlite-{macs}.db"))
                    .display()
            )
        }
        _ => {
            use sqlx::Connection;
            let admin = russet_mdm::testing::postgres_admin_url();
            let name = format!("russet_bench_search_{macs}");
            if !seeded {
                let mut conn = sqlx::PgConnection::connect(&admin).await?;
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                )))
                .execute(&mut conn)
                .await?;
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&mut conn)
                    .await?;
            }
            let base = admin.split('?').next().unwrap_or(&admin);
            let base = base.rsplit_once('/').map_or(base, |(b, _)| b);
            format!("{base}/{name}")
        }
    };
    Ok((url, !seeded, marker))
}

/// The whole scenario on `backend` (`sqlite` or `postgres`).
pub async fn run(
    bin: &Path,
    dir: &Path,
    files: &ServerFiles<'_>,
    backend: &str,
    macs: usize,
) -> anyhow::Result<()> {
    let (url, fresh, marker) = kept_database(backend, macs).await?;
    let store = russet_mdm::store::open(&url).await?;
    if fresh {
        // SQLite has one writer: more tasks only queue.
        let concurrency = if backend == "postgres" { 16 } else { 1 };
        seed(store.clone(), macs, concurrency).await?;
        std::fs::write(&marker, "")?;
    } else {
        println!("reusing the {macs} Macs seeded earlier ({url})");
        // The server writes its admin token to a new data directory only on a first start:
        // make this one (the database's admins are the harness's own).
        let forget = ["DELETE FROM admin_tokens", "DELETE FROM admins"];
        if backend == "postgres" {
            let pool = sqlx::PgPool::connect(&url).await?;
            for q in forget {
                sqlx::query(q).execute(&pool).await?;
            }
        } else {
            let pool = sqlx::SqlitePool::connect(&url).await?;
            for q in forget {
                sqlx::query(q).execute(&pool).await?;
            }
        }
    }
    time_queries(bin, dir, files, Some(&url)).await?;
    if !fresh {
        // An earlier run's sweep asked every Mac: make them all due again.
        let reset = "UPDATE inventory SET next_due_at = 0, requested_at = NULL";
        if backend == "postgres" {
            let pool = sqlx::PgPool::connect(&url).await?;
            sqlx::query(reset).execute(&pool).await?;
        } else {
            let pool = sqlx::SqlitePool::connect(&url).await?;
            sqlx::query(reset).execute(&pool).await?;
        }
    }
    time_sweep(store, macs).await
}
