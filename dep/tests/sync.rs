//! The sync loop against the simulator, with in-memory cursor store and sink.

mod common;

use std::sync::atomic::Ordering;
use std::time::Instant;

use common::{Kill, MemCursor, MemSink, client, sim, sim_state};
use russet_dep::sim::{DepSimulator, SimConfig};
use russet_dep::{DepClient, SyncError, SyncPhase, SyncProgress, SyncReport, sync_once};

const LINK: &str = "link-1";

async fn run(
    c: &DepClient,
    cursors: &MemCursor,
    sink: &MemSink,
) -> (Result<SyncReport, SyncError>, Vec<SyncProgress>) {
    let mut seen = Vec::new();
    let r = sync_once(c, LINK, cursors, sink, |p| seen.push(p)).await;
    (r, seen)
}

#[tokio::test]
async fn fetches_10k_devices_in_pages_of_1000_persisting_every_cursor() {
    let sim = sim(10_000).await;
    let c = client(&sim);
    let (cursors, sink) = (MemCursor::default(), MemSink::default());
    let (report, progress) = run(&c, &cursors, &sink).await;
    let report = report.expect("sync");
    assert!(report.full_fetch);
    assert_eq!(report.fetch_pages, 10);
    assert_eq!(report.fetched, 10_000);
    assert_eq!(
        report.sync_pages, 1,
        "one (empty) sync page after the fetch"
    );
    assert_eq!(sink.len(), 10_000);
    assert_eq!(sink.max_deliveries(), 1);
    assert_eq!(sink.snapshot(), sim_state(&sim));
    // A cursor per fetch page plus the sync page's.
    assert_eq!(cursors.saves.load(Ordering::SeqCst), 11);
    assert_eq!(sim.requests("/server/devices"), 10);
    let fetch: Vec<_> = progress
        .iter()
        .filter(|p| p.phase == SyncPhase::Fetch)
        .collect();
    assert_eq!(fetch.len(), 10);
    assert!(fetch.iter().all(|p| p.page_devices == 1000));
    assert!(fetch[..9].iter().all(|p| p.more_to_follow) && !fetch[9].more_to_follow);
    assert_eq!(cursors.get(LINK), report.cursor);

    // The next run resumes with the stored cursor: nothing new.
    let (again, _) = run(&c, &cursors, &sink).await;
    let again = again.expect("second run");
    assert!(!again.full_fetch);
    assert_eq!(
        again.fetched + again.added + again.modified + again.deleted,
        0
    );
    assert_eq!(sink.max_deliveries(), 1);
}

#[tokio::test]
async fn sync_sees_added_modified_deleted() {
    let sim = sim(250).await;
    let c = client(&sim);
    let (cursors, sink) = (MemCursor::default(), MemSink::default());
    run(&c, &cursors, &sink).await.0.expect("initial");
    assert_eq!(sink.len(), 250);

    let added = sim.add_devices(30);
    let all = sim.devices();
    assert!(sim.modify_device(&all[0].serial_number, |d| d.asset_tag =
        Some("TAG-1".into())));
    // Modified twice: only the latest record of the page is delivered.
    assert!(sim.modify_device(&all[1].serial_number, |d| d.color = Some("SILVER".into())));
    assert!(sim.modify_device(&all[1].serial_number, |d| d.color =
        Some("STARLIGHT".into())));
    assert!(sim.delete_device(&all[2].serial_number));
    // Added then deleted within the same window.
    assert!(sim.delete_device(&added[0]));

    let (report, _) = run(&c, &cursors, &sink).await;
    let report = report.expect("sync");
    assert_eq!(
        report.fetch_pages, 0,
        "fetch cursor exhausted → straight to sync"
    );
    assert_eq!(report.added, 29);
    assert_eq!(report.modified, 2);
    assert_eq!(report.deleted, 2);
    assert_eq!(report.superseded, 2);
    assert_eq!(sink.snapshot(), sim_state(&sim));
    let stored = sink.snapshot();
    assert_eq!(
        stored[&all[0].serial_number].asset_tag.as_deref(),
        Some("TAG-1")
    );
    assert_eq!(
        stored[&all[1].serial_number].color.as_deref(),
        Some("STARLIGHT")
    );
    assert!(!stored.contains_key(&all[2].serial_number));
    assert!(!stored.contains_key(&added[0]));
}

#[tokio::test]
async fn exhausted_fetch_cursor_switches_to_sync() {
    let sim = sim(20).await;
    let c = client(&sim);
    let (cursors, sink) = (MemCursor::default(), MemSink::default());
    run(&c, &cursors, &sink).await.0.expect("initial");
    let fetches = sim.requests("/server/devices");
    sim.add_devices(5);
    let report = run(&c, &cursors, &sink).await.0.expect("second");
    // One fetch attempt answered EXHAUSTED_CURSOR, then sync.
    assert_eq!(sim.requests("/server/devices"), fetches + 1);
    assert_eq!(report.fetch_pages, 0);
    assert_eq!(report.added, 5);
    assert_eq!(sink.snapshot(), sim_state(&sim));
}

#[tokio::test]
async fn expired_cursor_forces_a_full_refetch() {
    let sim = sim(2_500).await;
    let c = client(&sim);
    let (cursors, sink) = (MemCursor::default(), MemSink::default());
    run(&c, &cursors, &sink).await.0.expect("initial");
    sim.add_devices(10);
    sim.expire_cursors();
    let report = run(&c, &cursors, &sink).await.0.expect("refetch");
    assert_eq!(report.cursor_resets, 1);
    assert!(report.full_fetch);
    assert_eq!(report.fetch_pages, 3);
    assert_eq!(report.fetched, 2_510);
    assert_eq!(sink.snapshot(), sim_state(&sim));
    // The new cursor works.
    sim.add_devices(1);
    let report = run(&c, &cursors, &sink).await.0.expect("after refetch");
    assert_eq!((report.cursor_resets, report.added), (0, 1));
}

#[tokio::test]
async fn invalid_cursor_forces_a_full_refetch_and_repeated_rejection_stops() {
    let sim = sim(30).await;
    let c = client(&sim);
    let (cursors, sink) = (MemCursor::default(), MemSink::default());
    cursors
        .cursors
        .lock()
        .expect("lock")
        .insert(LINK.into(), "not-a-cursor".into());
    let report = run(&c, &cursors, &sink).await.0.expect("refetch");
    assert_eq!(report.cursor_resets, 1);
    assert_eq!(sink.len(), 30);

    sim.inject("/devices/sync", 400, "EXPIRED_CURSOR", 10);
    let err = run(&c, &cursors, &sink).await.0.expect_err("gives up");
    assert!(matches!(err, SyncError::TooManyResets(2)), "{err}");
    sim.clear_injections();
}

#[tokio::test]
async fn session_expiry_mid_sync_reauthenticates() {
    let sim = sim(5_000).await;
    let c = client(&sim);
    let (cursors, sink) = (MemCursor::default(), MemSink::default());
    let mut pages = 0;
    let report = sync_once(&c, LINK, &cursors, &sink, |_| {
        pages += 1;
        if pages == 2 || pages == 4 {
            sim.expire_sessions();
        }
    })
    .await
    .expect("sync");
    assert_eq!(report.fetched, 5_000);
    assert_eq!(sim.requests("/session"), 3);
    assert_eq!(sink.max_deliveries(), 1);
    assert_eq!(sink.snapshot(), sim_state(&sim));
}

#[tokio::test]
async fn errors_are_surfaced_without_advancing_the_cursor() {
    let sim = sim(1_500).await;
    let c = client(&sim);
    let (cursors, sink) = (MemCursor::default(), MemSink::default());
    sim.inject("/server/devices", 403, "T_C_NOT_SIGNED", 1);
    let err = run(&c, &cursors, &sink).await.0.expect_err("T&C");
    match err {
        SyncError::Dep(e) => assert!(e.is_terms_not_signed()),
        other => panic!("{other}"),
    }
    assert!(cursors.get(LINK).is_none());
    // 500 then success: retried inside the client.
    sim.inject("/server/devices", 500, "", 1);
    let report = run(&c, &cursors, &sink).await.0.expect("retried");
    assert_eq!(report.fetched, 1_500);
}

/// Drops the sync future where `kill` says, then resumes; checks nothing is lost or duplicated.
async fn kill_and_resume(kill: Kill, changes_after_fetch: bool) {
    let sim = DepSimulator::start(SimConfig {
        devices: 10_000,
        ..Default::default()
    })
    .await
    .expect("sim");
    let c = client(&sim);
    let (cursors, sink) = (MemCursor::default(), MemSink::default());
    let mut base_pages = 0;
    if changes_after_fetch {
        run(&c, &cursors, &sink).await.0.expect("initial");
        base_pages = sink.pages.load(Ordering::SeqCst);
        // 2,500 changes → 25 sync pages (the sync loop lets the server choose the page size;
        // the simulator's default is 100, like Apple's).
        let added = sim.add_devices(2_000);
        for s in added.iter().take(300) {
            sim.modify_device(s, |d| d.asset_tag = Some("T".into()));
        }
        for s in added.iter().skip(1_000).take(200) {
            sim.delete_device(s);
        }
    }
    match kill {
        Kill::None => {}
        Kill::BeforeSinkCommit(k) => *sink.kill_before.lock().expect("lock") = Some(base_pages + k),
        Kill::AfterSinkCommit(k) => *sink.kill_after.lock().expect("lock") = Some(base_pages + k),
        Kill::AfterCursorSave(k) => {
            let saves = cursors.saves.load(Ordering::SeqCst);
            *cursors.kill.lock().expect("lock") = Some(saves + k);
        }
    }
    tokio::select! {
        r = sync_once(&c, LINK, &cursors, &sink, |_| {}) => panic!("sync finished before the kill: {r:?}"),
        _ = sink.killed.notified() => {}
        _ = cursors.killed.notified() => {}
    }
    *sink.kill_before.lock().expect("lock") = None;
    *sink.kill_after.lock().expect("lock") = None;
    *cursors.kill.lock().expect("lock") = None;
    let stored_before = sink.len();

    let report = run(&c, &cursors, &sink).await.0.expect("resume");
    assert!(!report.full_fetch || !changes_after_fetch);
    assert_eq!(report.cursor_resets, 0);
    assert_eq!(sink.snapshot(), sim_state(&sim), "nothing lost ({kill:?})");
    let max = sink.max_deliveries();
    match kill {
        // At most the one page whose commit raced the kill is re-delivered; upserts absorb it.
        Kill::AfterSinkCommit(_) if !changes_after_fetch => assert_eq!(max, 2),
        Kill::AfterSinkCommit(_) => assert!(max <= 3, "{max}"),
        _ if !changes_after_fetch => assert_eq!(max, 1, "duplicated ({kill:?})"),
        // Sync records legitimately repeat serials (added, then modified, then deleted).
        _ => assert!(max <= 3, "{max}"),
    }
    if !changes_after_fetch {
        let delivered: usize = sink.deliveries.lock().expect("lock").values().sum();
        let extra = if matches!(kill, Kill::AfterSinkCommit(_)) {
            1000
        } else {
            0
        };
        assert_eq!(delivered, 10_000 + extra, "{kill:?}");
        assert!(stored_before <= 10_000);
    }
}

#[tokio::test]
async fn killed_mid_fetch_resumes_without_loss_or_duplicates() {
    kill_and_resume(Kill::AfterCursorSave(3), false).await;
    kill_and_resume(Kill::BeforeSinkCommit(4), false).await;
    kill_and_resume(Kill::AfterSinkCommit(7), false).await;
    kill_and_resume(Kill::AfterCursorSave(10), false).await;
}

#[tokio::test]
async fn killed_mid_sync_resumes_without_loss() {
    kill_and_resume(Kill::AfterCursorSave(5), true).await;
    kill_and_resume(Kill::BeforeSinkCommit(12), true).await;
    kill_and_resume(Kill::AfterSinkCommit(20), true).await;
}

/// `cargo test -p russet-dep --release --test sync -- --ignored --nocapture`
#[tokio::test(flavor = "multi_thread")]
#[ignore = "measurement, not a check"]
async fn measure_100k_sync() {
    let t0 = Instant::now();
    let sim = sim(100_000).await;
    let setup = t0.elapsed();
    let c = client(&sim);
    let (cursors, sink) = (MemCursor::default(), MemSink::default());
    let t1 = Instant::now();
    let report = run(&c, &cursors, &sink).await.0.expect("sync");
    let took = t1.elapsed();
    assert_eq!(sink.len(), 100_000);
    println!(
        "DEP sync of 100k simulated devices: {:.2?} ({} fetch pages, {:.0} devices/s); simulator setup {:.2?}",
        took,
        report.fetch_pages,
        100_000.0 / took.as_secs_f64(),
        setup
    );
}

#[tokio::test]
async fn sync_future_is_send_for_spawning() {
    let sim = sim(3).await;
    let c = std::sync::Arc::new(client(&sim));
    let cursors = std::sync::Arc::new(MemCursor::default());
    let sink = std::sync::Arc::new(MemSink::default());
    let (c2, cur2, sink2) = (c.clone(), cursors.clone(), sink.clone());
    let report = tokio::spawn(async move { sync_once(&c2, LINK, &*cur2, &*sink2, |_| {}).await })
        .await
        .expect("join")
        .expect("sync");
    assert_eq!(report.fetched, 3);
}
