//! Load harness: N simulated Macs against a real `russet serve` process.
//!
//! `cargo build --release -p russet-mdm -p russet-bench && target/release/russet-bench --macs 1000`
//! (see docs/benchmarks.md). Scenarios: enrollment, one command enqueued to every Mac, push
//! fan-out to the fake APNs, the command round trip (Idle → command → Acknowledged → empty),
//! and (`--profiles N`) N configuration profiles assigned to a group of every Mac, then their
//! first delivery. Figures: requests/s, round trips/s, p50/p99 latency, the server's CPU
//! seconds and peak RSS (from /proc). `--signature plain|attrs|mixed` picks the
//! `Mdm-Signature` shape; `--search` measures device search and the inventory sweep instead
//! (`search.rs`).

mod fanout;
mod identities;
mod profiles;
mod search;
mod server;
mod stats;

use clap::Parser;
use identities::{
    append_issued, cached_key_pool, cached_scep_ca, issue_over_scep, issued_cache_path, load_issued,
};
use plist::Value;
use russet_apns::fake::pki::{TestCa as ApnsCa, random_topic};
use russet_apns::fake::{FakeApns, FakeApnsConfig};
use russet_mdm::testing::{PgDatabase, postgres_admin_url};
use russet_tests::sim_mac::SimMac;
use serde_json::json;
use server::{ServerFiles, default_server_binary, start_server};
use stats::{Latencies, report};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

#[derive(Parser)]
#[command(about = "Russet load harness: simulated Macs against a real server process")]
struct Args {
    /// Number of simulated Macs.
    #[arg(long, default_value_t = 1000)]
    macs: usize,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// sqlite or postgres (a fresh database on RUSSET_TEST_DATABASE_URL, by default the local
    /// server postgres://postgres@127.0.0.1:5432/postgres).
    #[arg(long, default_value = "sqlite")]
    db: String,
    /// The `russet` binary to run (default: next to this one).
    #[arg(long)]
    server_bin: Option<PathBuf>,
    /// Where generated identities are cached between runs.
    #[arg(long, default_value = "target/bench-identities")]
    identities: PathBuf,
    /// Command round trips per Mac (0 skips the round-trip scenario, e.g. at 100k Macs).
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// RSA-2048 key pairs shared by the Macs (each Mac still has its own certificate).
    #[arg(long, default_value_t = 16)]
    key_pool: usize,
    /// SCEP requests in flight at once when identities must be issued.
    #[arg(long, default_value_t = 8)]
    scep_concurrency: usize,
    /// Configuration profiles to assign to a static group of every Mac (0 skips the
    /// scenario). Runs after the round trips, so those only see their own commands.
    #[arg(long, default_value_t = 0)]
    profiles: usize,
    /// With `--profiles`: time only the assignments, not the first delivery to the Macs.
    #[arg(long)]
    profiles_enqueue_only: bool,
    /// The command of the round-trip scenario's further rounds. `ProfileList` (the default) is
    /// read by the profiles feature when the Mac answers; a type no feature reads (e.g.
    /// `RestartDevice`, which the simulated Macs only acknowledge) measures the plain path.
    #[arg(long, default_value = "ProfileList")]
    round_trip_command: String,
    /// Only make sure `--macs` identities are cached (issuing the missing ones), then exit.
    #[arg(long)]
    issue_only: bool,
    /// The `Mdm-Signature` shape the Macs send: `plain` (over the body, as a Mac signs),
    /// `attrs` (signed attributes, as Go's pkcs7 and most client libraries sign) or `mixed`
    /// (every other Mac).
    #[arg(long, default_value = "mixed", value_parser = ["plain", "attrs", "mixed"])]
    signature: String,
    /// Device search and the inventory sweep instead: `--macs` devices with inventory written
    /// through the store, filters timed over HTTP, then the sweep (see `search.rs`).
    #[arg(long)]
    search: bool,
    /// The enqueue and push fan-out only, `--rounds` times (at least once), on `--macs`
    /// enrollments written through the store: no identities needed (see `fanout.rs`).
    #[arg(long)]
    fanout: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let bin = args
        .server_bin
        .clone()
        .unwrap_or_else(default_server_binary);
    anyhow::ensure!(
        bin.exists(),
        "server binary {} not found (cargo build --release -p russet-mdm)",
        bin.display()
    );
    let ca = cached_scep_ca(&args.identities)?;
    let keys = cached_key_pool(&args.identities, args.key_pool)?;
    let issued_path = issued_cache_path(&args.identities, &ca)?;
    let mut ids = load_issued(&issued_path, &keys, args.macs)?;
    let dir = tempfile::tempdir()?;
    let scep_ca_cert = dir.path().join("scep-ca.pem");
    let scep_ca_key = dir.path().join("scep-ca.key");
    std::fs::write(&scep_ca_cert, ca.cert_pem())?;
    std::fs::write(&scep_ca_key, ca.key.private_key_to_pem_pkcs8()?)?;

    // Fake APNs with a push certificate the server will import.
    let apns_ca = ApnsCa::new("bench push CA")?;
    let topic = random_topic();
    let fake = FakeApns::start(FakeApnsConfig::trusting_ca(&apns_ca.cert_pem(), &topic)).await?;
    let fake_ca = dir.path().join("apns-ca.pem");
    std::fs::write(&fake_ca, fake.ca_pem())?;
    let apns_url = fake.base_url();
    let files = ServerFiles {
        scep_ca_cert: &scep_ca_cert,
        scep_ca_key: &scep_ca_key,
        apns_url: &apns_url,
        apns_ca: &fake_ca,
    };

    if args.search {
        anyhow::ensure!(
            matches!(args.db.as_str(), "sqlite" | "postgres"),
            "--db {}: sqlite or postgres",
            args.db
        );
        println!(
            "russet-bench --search: {} Macs, database {}, {} cores",
            args.macs,
            args.db,
            std::thread::available_parallelism().map_or(0, |n| n.get())
        );
        return search::run(&bin, dir.path(), &files, &args.db, args.macs).await;
    }
    if args.fanout {
        anyhow::ensure!(
            matches!(args.db.as_str(), "sqlite" | "postgres"),
            "--db {}: sqlite or postgres",
            args.db
        );
        println!(
            "russet-bench --fanout: {} seeded Macs, database {}, {} cores",
            args.macs,
            args.db,
            std::thread::available_parallelism().map_or(0, |n| n.get())
        );
        let run = fanout::Run {
            bin: &bin,
            dir: dir.path(),
            files: &files,
            fake: &fake,
            apns_ca: &apns_ca,
            topic: &topic,
        };
        return run.go(&args.db, args.macs, args.rounds).await;
    }

    // Identities the cache lacks come from a server's /scep, as a Mac gets its own: a separate
    // SQLite server, so issuance does not count in the figures of the run that follows.
    if ids.len() < args.macs {
        let missing = args.macs - ids.len();
        eprintln!(
            "identities: {} cached, issuing {missing} over SCEP ({} in flight, {} pooled keys)",
            ids.len(),
            args.scep_concurrency,
            keys.len()
        );
        let scep_dir = tempfile::tempdir()?;
        let server = start_server(&bin, scep_dir.path(), &files, None)?;
        let (c0, _) = server.usage();
        let t = Instant::now();
        let mut done = ids.len();
        // In chunks, saved as they come, so an interrupted issuance of 100k is not lost.
        while done < args.macs {
            let end = (done + 5000).min(args.macs);
            let new = issue_over_scep(
                &format!("{}/scep", server.device_url),
                &ca.cert,
                &keys,
                done..end,
                args.scep_concurrency,
            )
            .await?;
            append_issued(&issued_path, &new)?;
            ids.extend(new);
            done = end;
        }
        let (c1, _) = server.usage();
        report(
            "SCEP issuance (PKCSReq)",
            missing,
            "identities",
            t.elapsed(),
            c1 - c0,
            None,
        );
    }
    if args.issue_only {
        return Ok(());
    }

    let pg = match args.db.as_str() {
        "sqlite" => None,
        "postgres" => Some(PgDatabase::create_on(&postgres_admin_url()).await?),
        other => anyhow::bail!("--db {other}: sqlite or postgres"),
    };
    let server = start_server(
        &bin,
        dir.path(),
        &files,
        pg.as_ref().map(|p| p.url.as_str()),
    )?;
    let http = reqwest::Client::new();
    let cert = apns_ca.issue_push_certificate(&topic)?;
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

    // One HTTP client (one connection pool) for all the Macs: building 100k clients would cost
    // more than the scenarios. At most `concurrency` requests are in flight, so as many
    // keep-alive connections carry them.
    let device_http = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency)
        .build()?;
    let macs: Vec<Arc<SimMac>> = ids
        .into_iter()
        .enumerate()
        .map(|(i, id)| {
            let mut m = SimMac::with_client(&server.device_url, id, device_http.clone());
            m.topic = topic.clone();
            m.signed_attributes = match args.signature.as_str() {
                "attrs" => true,
                "mixed" => i % 2 == 1,
                _ => false,
            };
            Arc::new(m)
        })
        .collect();
    println!(
        "russet-bench: {} Macs, concurrency {}, database {}, signatures {}, {} cores",
        args.macs,
        args.concurrency,
        args.db,
        args.signature,
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0)
    );
    let sem = Arc::new(Semaphore::new(args.concurrency));

    // 1. Enrollment: Authenticate + TokenUpdate per Mac.
    let (cpu0, _) = server.usage();
    let t = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for m in &macs {
        let (m, sem) = (m.clone(), sem.clone());
        tasks.spawn(async move {
            let _p = sem.acquire().await;
            let mut lat = Vec::with_capacity(2);
            for msg in [m.authenticate_message(), m.token_update_message()] {
                let s = Instant::now();
                let r = m.checkin(&msg).await;
                lat.push(s.elapsed());
                if r.status != 200 {
                    return Err(anyhow::anyhow!("check-in answered {}", r.status));
                }
            }
            Ok(lat)
        });
    }
    let mut lat = Latencies(Vec::new());
    while let Some(r) = tasks.join_next().await {
        lat.0.extend(r??);
    }
    let (cpu1, rss_enrolled) = server.usage();
    report(
        "enrollment (2 requests/Mac)",
        macs.len() * 2,
        "requests",
        t.elapsed(),
        cpu1 - cpu0,
        Some(&mut lat),
    );
    println!(
        "server peak RSS after enrolling {} Macs: {:.1} MiB",
        macs.len(),
        rss_enrolled as f64 / 1024.0
    );

    // 2. One command enqueued to every Mac; 3. push fan-out to the fake APNs.
    let devices: Vec<String> = macs.iter().map(|m| m.udid.clone()).collect();
    let t = Instant::now();
    let _answer = server.enqueue_to_all(&http, &devices).await?;
    let enqueue = t.elapsed();
    let (cpu2, rss_enqueued) = server.usage();
    report(
        "enqueue 1 command to all",
        macs.len(),
        "devices",
        enqueue,
        cpu2 - cpu1,
        None,
    );
    let deadline = Instant::now() + Duration::from_secs(300);
    while fake.push_count() < macs.len() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (cpu3, rss_pushed) = server.usage();
    report(
        "push fan-out (enqueue→APNs)",
        fake.push_count(),
        "pushes",
        t.elapsed(),
        cpu3 - cpu1,
        None,
    );
    println!(
        "server peak RSS after the enqueue {:.1} MiB, after the fan-out {:.1} MiB",
        rss_enqueued as f64 / 1024.0,
        rss_pushed as f64 / 1024.0
    );

    // 4. Command round trips: Idle → command → Acknowledged → empty (the SecurityInfo above,
    // then fresh commands for further rounds).
    let mut round_lat = Latencies(Vec::new());
    let mut total = Duration::ZERO;
    let mut cpu_total = 0.0;
    // On PostgreSQL, its backends' CPU too (same machine, read from /proc).
    let mut backends = match &pg {
        Some(p) => Some(server::PostgresBackends::watch(&p.url).await?),
        None => None,
    };
    let mut pg_cpu = 0.0;
    let mut pg_xacts = 0i64;
    for round in 0..args.rounds {
        if round > 0 {
            let r = http
                .post(format!("{}/api/v1/commands", server.admin_url))
                .bearer_auth(&server.token)
                .json(&json!({"devices": devices, "command": {"request_type": args.round_trip_command}}))
                .send()
                .await?;
            anyhow::ensure!(r.status().as_u16() == 201, "enqueue: {}", r.text().await?);
        }
        let (c0, _) = server.usage();
        if let Some(b) = backends.as_mut() {
            pg_cpu -= b.cpu().await?;
            pg_xacts -= b.transactions().await?;
        }
        let t = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for m in &macs {
            let (m, sem) = (m.clone(), sem.clone());
            tasks.spawn(async move {
                let _p = sem.acquire().await;
                let s = Instant::now();
                let reply = m.idle().await;
                let Some((uuid, request_type, _)) = reply.command() else {
                    return Err(anyhow::anyhow!(
                        "no command after Idle (status {})",
                        reply.status
                    ));
                };
                // What a Mac with nothing to report sends back: the answer's key, empty.
                let answer: Vec<(&str, Value)> = match request_type.as_str() {
                    "ProfileList" => vec![("ProfileList", Value::Array(Vec::new()))],
                    "SecurityInfo" => vec![("SecurityInfo", Value::Dictionary(Default::default()))],
                    _ => Vec::new(),
                };
                let done = m.report(&uuid, "Acknowledged", &answer).await;
                anyhow::ensure!(
                    done.status == 200 && done.body.is_empty(),
                    "ack answered {}",
                    done.status
                );
                Ok(s.elapsed())
            });
        }
        while let Some(r) = tasks.join_next().await {
            round_lat.0.push(r??);
        }
        total += t.elapsed();
        let (c1, _) = server.usage();
        cpu_total += c1 - c0;
        if let Some(b) = backends.as_mut() {
            pg_cpu += b.cpu().await?;
            // pg_stat_database lags its backends by up to half a second.
            tokio::time::sleep(Duration::from_millis(600)).await;
            pg_xacts += b.transactions().await?;
        }
    }
    if args.rounds > 0 {
        let n = macs.len() * args.rounds;
        report(
            "command round trip (2 req)",
            n,
            "roundtrips",
            total,
            cpu_total,
            Some(&mut round_lat),
        );
        if backends.is_some() {
            // The whole cost on PostgreSQL: Russet's process and the database's backends.
            println!(
                "  PostgreSQL backends CPU {pg_cpu:.2} s = {:.3} ms/roundtrip; Russet + PostgreSQL = {:.3} ms/roundtrip; {:.1} transactions/roundtrip",
                pg_cpu * 1000.0 / n.max(1) as f64,
                (cpu_total + pg_cpu) * 1000.0 / n.max(1) as f64,
                pg_xacts as f64 / n.max(1) as f64
            );
        }
    }

    // 5. Configuration profiles: a static group of every Mac, `--profiles` Custom Settings
    // profiles assigned to it one after the other (each answer comes once the InstallProfile
    // commands for every member are queued), then the first delivery.
    let mut not_bulk = Vec::new();
    if args.profiles > 0 {
        let assigned =
            profiles::assign_to_group(&http, &server, &fake, &macs, args.profiles).await?;
        if !args.profiles_enqueue_only {
            profiles::first_delivery(&http, &server, &macs, &sem, &assigned.identifiers).await?;
        }
        not_bulk = assigned.not_bulk;
    }
    let (_, rss) = server.usage();
    println!("server peak RSS {:.1} MiB", rss as f64 / 1024.0);
    drop(server);
    if let Some(pg) = pg {
        pg.drop_now().await;
    }
    anyhow::ensure!(
        not_bulk.is_empty(),
        "{} of {} profile assignments did not queue one InstallProfile command per batch of Macs for all {}: {}",
        not_bulk.len(),
        args.profiles,
        args.macs,
        not_bulk.join("; ")
    );
    Ok(())
}
