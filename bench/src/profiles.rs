//! The configuration-profiles scenario: a static group of every enrolled Mac, N Custom
//! Settings profiles, then each profile assigned to the group (N sequential API calls, each
//! answering after the reconciler queued the InstallProfile commands for every member, one
//! command per batch of 2000 Macs), and
//! optionally the first delivery (Idle → InstallProfile × N → ProfileList → the rest).

use crate::server::Server;
use crate::stats::{Latencies, report};
use plist::{Dictionary, Value};
use russet_apns::fake::FakeApns;
use russet_mdm::profiles::reconcile::BATCH;
use russet_tests::sim_mac::SimMac;
use serde_json::{Value as Json, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// The group every Mac is put in.
const GROUP: &str = "bench-all";
/// `POST /api/v1/groups/{name}/devices` takes at most this many devices per call.
const GROUP_CHUNK: usize = 1000;

/// One admin API call; the status and the JSON answer.
async fn api(
    http: &reqwest::Client,
    server: &Server,
    method: reqwest::Method,
    path: &str,
    body: Option<Json>,
) -> anyhow::Result<(u16, Json)> {
    let mut req = http
        .request(method, format!("{}{path}", server.admin_url))
        .bearer_auth(&server.token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await?;
    let status = r.status().as_u16();
    let text = r.text().await?;
    let v = serde_json::from_str(&text).unwrap_or(Json::String(text));
    Ok((status, v))
}

fn expect(what: &str, want: u16, (status, v): (u16, Json)) -> anyhow::Result<Json> {
    anyhow::ensure!(status == want, "{what}: answered {status}: {v}");
    Ok(v)
}

/// Wait until the fake APNs has recorded no new push for a second (at most `max`); the
/// number of pushes since `before`.
async fn pushes_settled(fake: &FakeApns, before: usize, max: Duration) -> usize {
    let deadline = Instant::now() + max;
    let mut last = fake.push_count();
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = fake.push_count();
        if now == last {
            break;
        }
        last = now;
    }
    last.saturating_sub(before)
}

/// What the assignments did.
pub struct Assigned {
    pub identifiers: Vec<String>,
    /// Assignments whose answer was not `installs` = every Mac and one command per reconciler
    /// batch of Macs (the caller
    /// fails the run with them, after the other figures are out).
    pub not_bulk: Vec<String>,
}

/// Group, profiles, assignments.
pub async fn assign_to_group(
    http: &reqwest::Client,
    server: &Server,
    fake: &FakeApns,
    macs: &[Arc<SimMac>],
    profiles: usize,
) -> anyhow::Result<Assigned> {
    // A static group of every Mac, in chunks of 1000.
    expect(
        "creating the group",
        201,
        api(
            http,
            server,
            reqwest::Method::POST,
            "/api/v1/groups",
            Some(json!({"name": GROUP})),
        )
        .await?,
    )?;
    let (c0, _) = server.usage();
    let t = Instant::now();
    let mut added = 0;
    for chunk in macs.chunks(GROUP_CHUNK) {
        let udids: Vec<&str> = chunk.iter().map(|m| m.udid.as_str()).collect();
        let v = expect(
            "adding Macs to the group",
            200,
            api(
                http,
                server,
                reqwest::Method::POST,
                &format!("/api/v1/groups/{GROUP}/devices"),
                Some(json!({"devices": udids})),
            )
            .await?,
        )?;
        added += v["added"].as_array().map_or(0, Vec::len);
    }
    anyhow::ensure!(
        added == macs.len(),
        "the group got {added} of {} Macs",
        macs.len()
    );
    let (c1, _) = server.usage();
    report(
        "group: add Macs (1000/call)",
        added,
        "devices",
        t.elapsed(),
        c1 - c0,
        None,
    );

    // N Custom Settings profiles (built by the server), not assigned yet.
    let mut identifiers = Vec::with_capacity(profiles);
    for i in 0..profiles {
        let identifier = format!("org.russet.bench.profile{i}");
        expect(
            "building a Custom Settings profile",
            201,
            api(
                http,
                server,
                reqwest::Method::POST,
                "/api/v1/profiles/custom-settings",
                Some(json!({
                    "identifier": identifier,
                    "name": format!("Bench profile {i}"),
                    "domain": format!("org.russet.bench{i}"),
                    "settings": {"Index": i, "Enabled": true, "Label": format!("profile {i}")},
                })),
            )
            .await?,
        )?;
        identifiers.push(identifier);
    }

    // The measured part: each profile assigned to the group, one call after the other.
    let pushes0 = fake.push_count();
    let (c0, _) = server.usage();
    let t = Instant::now();
    let mut lat = Latencies(Vec::with_capacity(profiles));
    let mut wrong = Vec::new();
    for identifier in &identifiers {
        let s = Instant::now();
        let v = expect(
            "assigning a profile to the group",
            200,
            api(
                http,
                server,
                reqwest::Method::POST,
                &format!("/api/v1/profiles/{identifier}/assignments"),
                Some(json!({"groups": [GROUP]})),
            )
            .await?,
        )?;
        lat.0.push(s.elapsed());
        let r = &v["reconciled"];
        let (devices, installs, commands) = (
            r["devices"].as_u64().unwrap_or(0) as usize,
            r["installs"].as_u64().unwrap_or(0) as usize,
            r["commands"].as_u64().unwrap_or(0) as usize,
        );
        if installs != macs.len() || commands != macs.len().div_ceil(BATCH) {
            wrong.push(format!(
                "{identifier}: reconciled {{devices {devices}, installs {installs}, commands {commands}}}"
            ));
        }
    }
    let elapsed = t.elapsed();
    let (c1, rss) = server.usage();
    let cpu = c1 - c0;
    report(
        "assign profile to group",
        profiles,
        "profiles",
        elapsed,
        cpu,
        Some(&mut lat),
    );
    println!(
        "  {profiles} profiles × {} Macs = {} InstallProfile queue entries in {:.2} s: {:.3} s/profile, \
         server CPU {cpu:.2} s ({:.3} s/profile, {:.1} µs/queue entry), server peak RSS {:.1} MiB",
        macs.len(),
        profiles * macs.len(),
        elapsed.as_secs_f64(),
        elapsed.as_secs_f64() / profiles.max(1) as f64,
        cpu / profiles.max(1) as f64,
        cpu * 1e6 / (profiles * macs.len()).max(1) as f64,
        rss as f64 / 1024.0
    );
    let pushes = pushes_settled(fake, pushes0, Duration::from_secs(120)).await;
    let (c2, rss) = server.usage();
    println!(
        "  pushes after the assignments: {pushes}; server CPU until they settled {:.2} s; peak RSS {:.1} MiB",
        c2 - c0,
        rss as f64 / 1024.0
    );
    for w in &wrong {
        eprintln!(
            "ASSIGNMENT NOT IN BULK: {w} (want installs {}, commands {})",
            macs.len(),
            macs.len().div_ceil(BATCH)
        );
    }
    Ok(Assigned {
        identifiers,
        not_bulk: wrong,
    })
}

/// What one Mac did in its session.
struct Session {
    latencies: Vec<Duration>,
    request_types: Vec<String>,
}

/// One Mac's session after the assignments: Idle, then answer every command the way macOS
/// does (InstallProfile acknowledged, ProfileList listing what it installed, anything else
/// acknowledged) until the server has nothing more.
async fn deliver(m: &SimMac) -> anyhow::Result<Session> {
    let mut latencies = Vec::new();
    let mut request_types = Vec::new();
    let mut installed: BTreeMap<String, String> = BTreeMap::new();
    let s = Instant::now();
    let mut reply = m.idle().await;
    latencies.push(s.elapsed());
    for _ in 0..200 {
        anyhow::ensure!(reply.status == 200, "connect answered {}", reply.status);
        let Some((uuid, request_type, command)) = reply.command() else {
            return Ok(Session {
                latencies,
                request_types,
            });
        };
        let extra: Vec<(&str, Value)> = match request_type.as_str() {
            "InstallProfile" => {
                let payload = command
                    .get("Payload")
                    .and_then(Value::as_data)
                    .ok_or_else(|| anyhow::anyhow!("InstallProfile without Payload"))?;
                let profile = Value::from_reader(std::io::Cursor::new(payload))
                    .ok()
                    .and_then(Value::into_dictionary)
                    .ok_or_else(|| anyhow::anyhow!("InstallProfile: not an unsigned profile"))?;
                let field = |k: &str| {
                    profile
                        .get(k)
                        .and_then(Value::as_string)
                        .map(str::to_string)
                        .ok_or_else(|| anyhow::anyhow!("InstallProfile: no {k}"))
                };
                installed.insert(field("PayloadIdentifier")?, field("PayloadUUID")?);
                Vec::new()
            }
            "ProfileList" => {
                let list = installed
                    .iter()
                    .map(|(identifier, uuid)| {
                        let mut d = Dictionary::new();
                        d.insert(
                            "PayloadIdentifier".into(),
                            Value::String(identifier.clone()),
                        );
                        d.insert("PayloadUUID".into(), Value::String(uuid.clone()));
                        d.insert("PayloadVersion".into(), Value::Integer(1.into()));
                        d.insert("IsManaged".into(), Value::Boolean(true));
                        d.insert("PayloadContent".into(), Value::Array(Vec::new()));
                        Value::Dictionary(d)
                    })
                    .collect();
                vec![("ProfileList", Value::Array(list))]
            }
            _ => Vec::new(),
        };
        request_types.push(request_type);
        let s = Instant::now();
        reply = m.report(&uuid, "Acknowledged", &extra).await;
        latencies.push(s.elapsed());
    }
    anyhow::bail!("the server kept sending commands: {request_types:?}")
}

/// The first delivery: every Mac checks in and works through its queue. Then every profile
/// must be `verified` on every Mac (its ProfileList showed it).
pub async fn first_delivery(
    http: &reqwest::Client,
    server: &Server,
    macs: &[Arc<SimMac>],
    sem: &Arc<Semaphore>,
    identifiers: &[String],
) -> anyhow::Result<()> {
    let (c0, _) = server.usage();
    let t = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for m in macs {
        let (m, sem) = (m.clone(), sem.clone());
        tasks.spawn(async move {
            let _p = sem.acquire().await;
            deliver(&m).await
        });
    }
    let mut lat = Latencies(Vec::new());
    let mut by_type: BTreeMap<String, usize> = BTreeMap::new();
    let mut sessions_wrong = 0;
    while let Some(r) = tasks.join_next().await {
        let session = r??;
        lat.0.extend(session.latencies);
        let installs = session
            .request_types
            .iter()
            .filter(|t| *t == "InstallProfile")
            .count();
        if installs != identifiers.len() {
            sessions_wrong += 1;
        }
        for t in session.request_types {
            *by_type.entry(t).or_default() += 1;
        }
    }
    let elapsed = t.elapsed();
    let (c1, rss) = server.usage();
    let requests = lat.0.len();
    report(
        "first delivery (requests)",
        requests,
        "requests",
        elapsed,
        c1 - c0,
        Some(&mut lat),
    );
    println!(
        "  {} Macs in {:.2} s = {:.0} Macs/s, server CPU {:.2} ms/Mac; commands answered: {by_type:?}; \
         server peak RSS {:.1} MiB",
        macs.len(),
        elapsed.as_secs_f64(),
        macs.len() as f64 / elapsed.as_secs_f64(),
        (c1 - c0) * 1000.0 / macs.len().max(1) as f64,
        rss as f64 / 1024.0
    );
    anyhow::ensure!(
        sessions_wrong == 0,
        "{sessions_wrong} Macs did not get exactly {} InstallProfile commands",
        identifiers.len()
    );
    for identifier in identifiers {
        let v = expect(
            "profile status",
            200,
            api(
                http,
                server,
                reqwest::Method::GET,
                &format!("/api/v1/profiles/{identifier}/status"),
                None,
            )
            .await?,
        )?;
        let verified = v["counts"]["verified"].as_u64().unwrap_or(0) as usize;
        anyhow::ensure!(
            verified == macs.len(),
            "{identifier}: verified on {verified} of {} Macs: {}",
            macs.len(),
            v["counts"]
        );
    }
    println!(
        "  all {} profiles verified on all {} Macs",
        identifiers.len(),
        macs.len()
    );
    Ok(())
}
