//! The SQLite command report on the request's own thread (issue 19).
//!
//! A plain report used to cost a task hand-off (`tokio::spawn`) and a round trip to sqlx's
//! SQLite worker thread; docs/benchmarks.md ("Where the time went", and "The SQLite report on
//! the request's thread") found a third of the server's CPU in the kernel, mostly futex
//! wake-ups between those threads. Here the report's batch runs synchronously on a rusqlite
//! connection to the same file, on whichever tokio worker polls the request:
//!
//! - the connection sits behind an async mutex, and that mutex is also the writer's turn that
//!   every sqlx write transaction takes ([`super::SqliteStore::write`]), so there is one writer
//!   at a time and neither connection waits in SQLite's busy handler (which sleeps);
//! - waiting for the turn is an async wait; the work itself (tens of µs: a WAL commit with
//!   `synchronous = NORMAL` does not fsync) never crosses a thread;
//! - synchronous code cannot be abandoned half-way by a client that hangs up, so, unlike the
//!   sqlx batch, it needs no task of its own; a statement that fails rolls the transaction
//!   back (rusqlite's `Transaction` rolls back on drop).

use super::{REPORT_STATEMENTS, ReportRow};
use crate::store::rows::LAST_SEEN_GRANULARITY_MS;
use crate::store::{ReportRecord, ResultStatus};
use rusqlite::{Connection, Statement, ToSql, TransactionBehavior};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Mutex, OwnedMutexGuard};

/// The writer's turn, held by a sqlx write transaction for its whole life.
pub(super) type Turn = OwnedMutexGuard<Connection>;

/// The rusqlite writer connection, and with it the turn of every writer.
pub(super) struct InlineWriter {
    conn: Arc<Mutex<Connection>>,
}

impl InlineWriter {
    /// Open the (already migrated) database file with the pragmas sqlx sets on its own
    /// connections (`SqliteStore::connect`).
    pub(super) fn open(path: &Path, busy_timeout: Duration) -> rusqlite::Result<Self> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(busy_timeout)?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON",
        )?;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    /// Wait (asynchronously) for the writer's turn.
    pub(super) async fn turn(&self) -> Turn {
        self.conn.clone().lock_owned().await
    }

    /// A whole command report, its transaction included, on the caller's thread.
    pub(super) async fn report(&self, rec: &ReportRecord) -> rusqlite::Result<Vec<ReportRow>> {
        let mut conn = self.conn.lock().await;
        report(&mut conn, rec)
    }
}

/// [`REPORT_STATEMENTS`] in one `BEGIN IMMEDIATE` transaction.
fn report(conn: &mut Connection, rec: &ReportRecord) -> rusqlite::Result<Vec<ReportRow>> {
    let result = rec.result.as_ref();
    // The values of `$1` … `$8`, as `rows::bind_report!` binds them for sqlx.
    let values: [&dyn ToSql; 8] = [
        &rec.enrollment_id,
        &rec.now,
        &result.is_none(),
        &result.map(|r| r.command_uuid.as_str()),
        &result.map(|r| r.status.queue_status().as_str()),
        &result.map(|r| r.raw.as_slice()),
        &result.is_some_and(|r| r.status == ResultStatus::NotNow),
        &(rec.now - LAST_SEEN_GRANULARITY_MS),
    ];
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut found = Vec::new();
    for sql in REPORT_STATEMENTS {
        let mut stmt = tx.prepare_cached(sql)?;
        bind_numbered(&mut stmt, &values)?;
        let mut rows = stmt.raw_query();
        while let Some(row) = rows.next()? {
            found.push(ReportRow {
                tag: row.get(0)?,
                command_uuid: row.get(1)?,
                request_type: row.get(2)?,
                payload: row.get(3)?,
                payload_sealed: row.get(4)?,
            });
        }
    }
    tx.commit()?;
    Ok(found)
}

/// Bind the statement's `$n` parameters to `values[n - 1]`. Each statement of the batch uses
/// its own subset of the shared numbers, which rusqlite's positional binding cannot express.
fn bind_numbered(stmt: &mut Statement<'_>, values: &[&dyn ToSql]) -> rusqlite::Result<()> {
    for index in 1..=stmt.parameter_count() {
        let name = stmt.parameter_name(index).unwrap_or_default();
        let value = name
            .strip_prefix('$')
            .and_then(|n| n.parse::<usize>().ok())
            .and_then(|n| n.checked_sub(1))
            .and_then(|n| values.get(n))
            .ok_or_else(|| rusqlite::Error::InvalidParameterName(name.to_owned()))?;
        stmt.raw_bind_parameter(index, value)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::SqliteStore;
    use crate::store::conformance::fixtures::{answer, enqueue, enroll, entry, idle, next};
    use crate::store::rows::LAST_SEEN_GRANULARITY_MS;
    use crate::store::{
        AdminStore, CommandResultRecord, QueueStatus, ReportRecord, ResultStatus, Store, StoreError,
    };
    use std::sync::Arc;
    use std::time::Duration;

    async fn file_store() -> (Arc<SqliteStore>, tempfile::TempDir) {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("russet.db").display());
        let store = SqliteStore::connect(&url).await.expect("store");
        assert!(store.inline.is_some(), "a database file reports inline");
        (Arc::new(store), dir)
    }

    async fn last_seen(store: &SqliteStore, eid: &str) -> Option<i64> {
        sqlx::query_scalar("SELECT last_seen_at FROM enrollments WHERE id = $1")
            .bind(eid)
            .fetch_one(&store.pool)
            .await
            .expect("enrollment")
    }

    /// A statement that fails half-way (here the result's `UPDATE`, refused by a trigger)
    /// undoes the batch's earlier statements, and leaves the connection and the turn to the
    /// next writer.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_statement_rolls_the_report_back() {
        let (store, _dir) = file_store().await;
        enroll(&*store, "D1", 1_000).await;
        enqueue(&*store, "C1", 0, 1_000, &["D1"]).await;
        assert_eq!(next(&idle(&*store, "D1", 2_000).await), Some("C1"));
        let seen = last_seen(&store, "D1").await;
        sqlx::query(
            "CREATE TRIGGER refuse_ack BEFORE UPDATE OF status ON queue_entries \
             WHEN NEW.status = 'Acknowledged' BEGIN SELECT RAISE(ABORT, 'refused'); END",
        )
        .execute(&store.pool)
        .await
        .expect("trigger");
        // Late enough that the batch's touch writes `last_seen_at` before the failing update.
        let later = 2_000 + 2 * LAST_SEEN_GRANULARITY_MS;
        let rec = ReportRecord {
            enrollment_id: "D1".into(),
            result: Some(CommandResultRecord {
                command_uuid: "C1".into(),
                status: ResultStatus::Acknowledged,
                raw: b"<plist/>".to_vec(),
            }),
            device_facts: None,
            now: later,
        };
        let err = store.command_report(&rec).await.expect_err("refused");
        assert!(matches!(err, StoreError::Sqlite(_)), "{err:?}");
        assert_eq!(
            last_seen(&store, "D1").await,
            seen,
            "the touch was rolled back"
        );
        assert_eq!(entry(&*store, "C1", "D1").await.status, QueueStatus::Sent);

        sqlx::query("DROP TRIGGER refuse_ack")
            .execute(&store.pool)
            .await
            .expect("drop trigger");
        let outcome = answer(&*store, "D1", "C1", ResultStatus::Acknowledged, later).await;
        assert!(!outcome.not_enrolled);
        assert_eq!(last_seen(&store, "D1").await, Some(later));
        assert_eq!(
            entry(&*store, "C1", "D1").await.status,
            QueueStatus::Acknowledged
        );
    }

    /// A report waits for an open write transaction asynchronously. On one thread this is the
    /// difference: a report that waited in SQLite's busy handler instead would block the very
    /// thread the transaction needs to commit, and fail with SQLITE_BUSY after the timeout.
    #[tokio::test(flavor = "current_thread")]
    async fn a_report_waits_for_its_turn_without_blocking_the_thread() {
        let (store, _dir) = file_store().await;
        enroll(&*store, "D1", 1_000).await;
        enqueue(&*store, "C1", 0, 1_000, &["D1"]).await;

        let mut tx = store.write().await.expect("write");
        sqlx::query("UPDATE commands SET priority = 5 WHERE uuid = 'C1'")
            .execute(&mut *tx)
            .await
            .expect("update");
        let report = tokio::spawn({
            let store = store.clone();
            async move { next(&idle(&*store, "D1", 2_000).await).map(str::to_owned) }
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!report.is_finished(), "the report waits for the writer");
        tx.commit().await.expect("commit");
        let handed = tokio::time::timeout(Duration::from_secs(2), report)
            .await
            .expect("the report ran once the writer committed")
            .expect("report task");
        assert_eq!(handed.as_deref(), Some("C1"));
    }

    /// And the other way round: a write transaction waits while the report has the turn.
    #[tokio::test(flavor = "current_thread")]
    async fn a_write_transaction_waits_for_the_report() {
        let (store, _dir) = file_store().await;
        let inline = store.inline.as_ref().expect("inline writer");
        let turn = inline.turn().await;
        assert!(
            tokio::time::timeout(Duration::from_millis(100), store.write())
                .await
                .is_err(),
            "write() waits for the turn"
        );
        drop(turn);
        store
            .write()
            .await
            .expect("write")
            .commit()
            .await
            .expect("commit");
    }

    /// A single write outside a transaction takes the turn too.
    #[tokio::test(flavor = "current_thread")]
    async fn a_single_write_waits_for_the_turn() {
        let (store, _dir) = file_store().await;
        let inline = store.inline.as_ref().expect("inline writer");
        let turn = inline.turn().await;
        assert!(
            tokio::time::timeout(Duration::from_millis(100), store.set_setting("k", "v"))
                .await
                .is_err(),
            "set_setting waits for the turn"
        );
        drop(turn);
        store.set_setting("k", "v").await.expect("set");
        assert_eq!(store.setting("k").await.expect("get").as_deref(), Some("v"));
    }

    /// The store's multi-statement write transactions (push results, inventory, DEP,
    /// profiles, identity renewal) take the turn too: opened on the read pool, such a
    /// transaction held SQLite's write lock across its awaits while a report waited for it in
    /// the busy handler, on the thread the transaction needed — with one worker (a one-core
    /// host, or `--worker-threads 1`) the report failed with SQLITE_BUSY after the timeout and
    /// the Mac got a 500 (found by `russet-bench`, docs/benchmarks.md).
    #[tokio::test(flavor = "current_thread")]
    async fn store_write_transactions_wait_for_the_turn() {
        use crate::store::push::PushResultRecord;
        use crate::store::{InventoryStore, PushStore};
        let (store, _dir) = file_store().await;
        enroll(&*store, "D1", 1_000).await;
        let pushed = [PushResultRecord {
            enrollment_id: "D1".into(),
            at: 2_000,
            result: "delivered".into(),
            block: None,
        }];
        let due = [("D1".to_owned(), 90_000)];

        let inline = store.inline.as_ref().expect("inline writer");
        let turn = inline.turn().await;
        assert!(
            tokio::time::timeout(Duration::from_millis(100), store.record_pushes(&pushed))
                .await
                .is_err(),
            "record_pushes waits for the turn"
        );
        assert!(
            tokio::time::timeout(
                Duration::from_millis(100),
                store.mark_inventory_requested(&due, 2_000)
            )
            .await
            .is_err(),
            "mark_inventory_requested waits for the turn"
        );
        drop(turn);
        store.record_pushes(&pushed).await.expect("record pushes");
        store
            .mark_inventory_requested(&due, 2_000)
            .await
            .expect("mark inventory requested");
    }

    /// The case above as it happened: a Mac reports while push results are being recorded
    /// (a fan-out of several statements), on one thread. Every report is answered, none after
    /// a busy timeout.
    #[tokio::test(flavor = "current_thread")]
    async fn reports_while_push_results_are_recorded_on_one_thread() {
        use crate::store::PushStore;
        use crate::store::push::{PushResultRecord, RECORD_CHUNK};
        let (store, _dir) = file_store().await;
        let macs: Vec<String> = (0..8).map(|i| format!("D{i}")).collect();
        for m in &macs {
            enroll(&*store, m, 1_000).await;
        }
        // Several chunks: the transaction holds the write lock between its statements.
        let pushes: Vec<PushResultRecord> = (0..RECORD_CHUNK * 4)
            .map(|i| PushResultRecord {
                enrollment_id: macs[i % macs.len()].clone(),
                at: 2_000,
                result: "delivered".into(),
                block: None,
            })
            .collect();
        let started = std::time::Instant::now();
        let pushing = tokio::spawn({
            let store = store.clone();
            async move { store.record_pushes(&pushes).await }
        });
        let mut reports = 0usize;
        while !pushing.is_finished() {
            let rec = ReportRecord {
                enrollment_id: macs[reports % macs.len()].clone(),
                result: None,
                device_facts: None,
                now: 2_000,
            };
            store
                .command_report(&rec)
                .await
                .expect("the report is answered");
            reports += 1;
            tokio::task::yield_now().await;
        }
        pushing.await.expect("task").expect("push results recorded");
        assert!(reports > 0);
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "no write waited out the busy timeout: {:?}",
            started.elapsed()
        );
    }
}
