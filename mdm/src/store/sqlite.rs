//! SQLite backend: one file, WAL, one writer at a time.

use super::core_store::{ReportRound, delivered};
use super::rows::{self, USER_CHANNEL_COLUMNS, UserChannelRow};
use super::{NewCommand, ReportRecord, StoreError, StoreResult};
use sqlx::pool::PoolConnection;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{AssertSqlSafe, Sqlite, SqliteConnection, Transaction};
use std::ops::{Deref, DerefMut};
use std::str::FromStr;
use std::time::Duration;

mod inline;

/// How long a connection waits in SQLite's busy handler. Writers take turns
/// ([`SqliteStore::write`], [`SqliteStore::write_one`], the inline report) and do not meet
/// there; a reader may, in the rare cases of SQLite's WAL documentation ("Sometimes queries
/// return SQLITE_BUSY in WAL mode", e.g. right after a checkpoint resets the log).
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

pub struct SqliteStore {
    pool: SqlitePool,
    /// One connection for [`Self::write`] transactions. SQLite has one writer at a time
    /// anyway; writers queue for their turn (an async wait, shared with `inline`) instead of
    /// in SQLite's busy handler, which polls with sleeps.
    writer: SqlitePool,
    /// The command report's connection on the request's thread, and the writer's turn that
    /// [`Self::write`] takes (see `inline`). `None` for an in-memory database, which exists
    /// only on the pool's one connection.
    inline: Option<inline::InlineWriter>,
}

/// A write transaction ([`SqliteStore::write`]), holding the writer's turn until it commits or
/// is dropped. Dereferences to the connection, as a `sqlx::Transaction` does.
pub(super) struct WriteTx {
    // Declared first, so dropped first: an abandoned transaction queues its ROLLBACK on the
    // worker before the turn is released (a writer that comes in before the worker has run it
    // waits in the busy handler, on that error path only).
    tx: Transaction<'static, Sqlite>,
    turn: Option<inline::Turn>,
}

impl WriteTx {
    pub(super) async fn commit(self) -> Result<(), sqlx::Error> {
        let turn = self.turn;
        let committed = self.tx.commit().await;
        drop(turn);
        committed
    }
}

/// One write statement outside a transaction ([`SqliteStore::write_one`]): the writer's
/// connection, holding the writer's turn until dropped.
pub(super) struct WriteConn {
    conn: PoolConnection<Sqlite>,
    _turn: Option<inline::Turn>,
}

impl Deref for WriteConn {
    type Target = SqliteConnection;
    fn deref(&self) -> &SqliteConnection {
        &self.conn
    }
}

impl DerefMut for WriteConn {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        &mut self.conn
    }
}

impl Deref for WriteTx {
    type Target = SqliteConnection;
    fn deref(&self) -> &SqliteConnection {
        &self.tx
    }
}

impl DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        &mut self.tx
    }
}

impl SqliteStore {
    /// Open (creating if missing) and migrate the database at `url` (`sqlite://path`).
    pub async fn connect(url: &str) -> StoreResult<Self> {
        let opts = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        // An in-memory database exists per connection: keep exactly one.
        let in_memory = url.contains(":memory:");
        let max = if in_memory { 1 } else { 4 };
        let pool = SqlitePoolOptions::new()
            .max_connections(max)
            // A ping before every acquire is a round trip to the connection's worker thread
            // per request, and cannot fail for a local file that is open.
            .test_before_acquire(false)
            .connect_with(opts.clone())
            .await?;
        sqlx::migrate!("../migrations/sqlite").run(&pool).await?;
        let (writer, inline) = if in_memory {
            (pool.clone(), None)
        } else {
            let inline = inline::InlineWriter::open(opts.get_filename(), BUSY_TIMEOUT)?;
            let writer = SqlitePoolOptions::new()
                .max_connections(1)
                .test_before_acquire(false)
                .connect_with(opts)
                .await?;
            (writer, Some(inline))
        };
        Ok(Self {
            pool,
            writer,
            inline,
        })
    }

    /// A write transaction. SQLite has one writer; a plain (deferred) `BEGIN` takes the write
    /// lock only at the first write, and two readers that both try to upgrade fail with
    /// SQLITE_BUSY without waiting (the busy handler cannot help a deadlock). `BEGIN IMMEDIATE`
    /// takes the write lock up front. Writers queue for their turn (an async wait) before
    /// that, shared with the inline command report, so they never meet in the busy handler.
    async fn write(&self) -> StoreResult<WriteTx> {
        let turn = self.turn().await;
        let tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        Ok(WriteTx { tx, turn })
    }

    /// The writer's connection for one statement outside a transaction, in the writer's turn
    /// like [`Self::write`]: an autocommit write on the read pool would meet the inline report
    /// in the busy handler, which sleeps on a tokio worker.
    async fn write_one(&self) -> StoreResult<WriteConn> {
        let turn = self.turn().await;
        let conn = self.writer.acquire().await?;
        Ok(WriteConn { conn, _turn: turn })
    }

    /// The writer's turn, shared with the inline report; an in-memory database has one
    /// connection and no inline writer, so the pool's own queue is the turn there.
    async fn turn(&self) -> Option<inline::Turn> {
        match &self.inline {
            Some(inline) => Some(inline.turn().await),
            None => None,
        }
    }

    async fn user_channels(&self, device_ids: &[&str]) -> StoreResult<Vec<UserChannelRow>> {
        let ids = json_array(device_ids)?;
        let sql = format!(
            "{USER_CHANNEL_COLUMNS} WHERE device_id IN (SELECT value FROM json_each($1)) \
             AND id <> device_id ORDER BY device_id, id"
        );
        Ok(sqlx::query_as(AssertSqlSafe(sql))
            .bind(ids)
            .fetch_all(&self.pool)
            .await?)
    }
}

/// Large ID lists travel as one JSON text parameter and are expanded with `json_each`: no
/// limit on bound variables, one statement for any number of targets.
fn json_array<T: serde::Serialize>(items: &[T]) -> StoreResult<String> {
    serde_json::to_string(items).map_err(|e| StoreError::Config(e.to_string()))
}

// The statements of `REPORT_BATCH`, one macro each so that `REPORT_BATCH` and
// `REPORT_BATCH_TX` can `concat!` them and the inline writer can prepare them one by one.
macro_rules! report_enrolled_sql {
    () => {
        "\
SELECT 'enrolled' AS tag, NULL AS command_uuid, NULL AS request_type, NULL AS payload, \
    NULL AS payload_sealed FROM enrollments WHERE id = $1 AND enabled"
    };
}
macro_rules! report_touch_sql {
    () => {
        "\
UPDATE enrollments SET last_seen_at = $2, \
    session_started_at = CASE WHEN $3 THEN $2 ELSE session_started_at END \
    WHERE id = $1 AND enabled AND (last_seen_at IS NULL OR last_seen_at <= $8 \
    OR ($3 AND EXISTS (SELECT 1 FROM queue_entries w \
                       WHERE w.enrollment_id = $1 AND w.status = 'NotNow')))"
    };
}
macro_rules! report_store_sql {
    () => {
        "\
UPDATE queue_entries SET status = $5, result = $6, result_at = $2, \
    not_now_count = not_now_count + CASE WHEN $7 THEN 1 ELSE 0 END, \
    first_not_now_at = CASE WHEN $7 THEN COALESCE(first_not_now_at, $2) ELSE first_not_now_at END, \
    last_not_now_at = CASE WHEN $7 THEN $2 ELSE last_not_now_at END \
    WHERE $4 IS NOT NULL AND enrollment_id = $1 AND command_uuid = $4 \
    AND (status = 'Pending' OR status = 'Sent' OR status = 'NotNow') \
    AND EXISTS (SELECT 1 FROM enrollments WHERE id = $1 AND enabled) \
    RETURNING 'stored' AS tag, NULL AS command_uuid, \
    (SELECT request_type FROM commands WHERE uuid = queue_entries.command_uuid) AS request_type, \
    NULL AS payload, NULL AS payload_sealed"
    };
}
macro_rules! report_next_sql {
    () => {
        "\
UPDATE queue_entries SET status = 'Sent', delivered_at = COALESCE(delivered_at, $2), \
    delivery_count = delivery_count + 1 \
    WHERE enrollment_id = $1 AND command_uuid = ( \
        SELECT q.command_uuid FROM queue_entries q JOIN enrollments e ON e.id = q.enrollment_id \
        WHERE q.enrollment_id = $1 AND e.enabled \
        AND (q.status = 'Pending' OR q.status = 'Sent' OR q.status = 'NotNow') \
        AND (q.status = 'Pending' OR q.status = 'Sent' \
        OR (q.status = 'NotNow' AND q.last_not_now_at < \
            CASE WHEN $3 THEN $2 ELSE e.session_started_at END)) \
        ORDER BY q.priority DESC, q.seq LIMIT 1) \
    RETURNING 'next' AS tag, command_uuid, \
    (SELECT request_type FROM commands WHERE uuid = queue_entries.command_uuid) AS request_type, \
    (SELECT payload FROM commands WHERE uuid = queue_entries.command_uuid) AS payload, \
    (SELECT payload_sealed FROM commands WHERE uuid = queue_entries.command_uuid) AS payload_sealed"
    };
}
// The text of `REPORT_BATCH` (a macro, so `REPORT_BATCH_TX` can `concat!` it).
macro_rules! report_batch_sql {
    () => {
        concat!(
            report_enrolled_sql!(),
            "; ",
            report_touch_sql!(),
            "; ",
            report_store_sql!(),
            "; ",
            report_next_sql!()
        )
    };
}

/// A command report as one multi-statement batch, run in the caller's transaction (sqlx runs
/// the statements one after the other on the worker; `$n` are shared). Every statement
/// returns rows of one shape, told apart by `tag`:
///
/// 1. `enrolled` when the enrollment exists and is enabled — the later statements check the
///    same, so a disabled or unknown enrollment changes nothing; then touch it (last seen; an
///    `Idle` starts a session), written only when there is something to record (see
///    `rows::LAST_SEEN_GRANULARITY_MS`);
/// 2. store the result (`$4` is NULL for `Idle`): `stored`, with the command's request type,
///    when it landed on an open entry;
/// 3. pick the next command (priority, then FIFO; a `NotNow` entry waits for the next session,
///    see the rules in `rows`), mark it sent and return it with its payload: `next`. The
///    first `status` term is the condition of the partial index `queue_open_idx` (migration
///    0029), spelled out so that SQLite may use it: the entries then come in order, unsorted.
///
/// Status sets are written as `=` … `OR`, not `IN (…)`: SQLite evaluates a constant `IN` list
/// that no index lookup uses through a temporary b-tree built on every execution (`EXPLAIN`:
/// `OpenEphemeral`), which made every report open two (docs/benchmarks.md, issue 19).
///
/// Parameters: see `rows::bind_report!`.
const REPORT_BATCH: &str = report_batch_sql!();

/// The statements of [`REPORT_BATCH`], in order, for the inline writer (`inline`).
const REPORT_STATEMENTS: [&str; 4] = [
    report_enrolled_sql!(),
    report_touch_sql!(),
    report_store_sql!(),
    report_next_sql!(),
];

/// [`REPORT_BATCH`] wrapped in `BEGIN IMMEDIATE` … `COMMIT`, as one batch.
const REPORT_BATCH_TX: &str = concat!("BEGIN IMMEDIATE; ", report_batch_sql!(), "; COMMIT");

/// Run [`REPORT_BATCH_TX`] on the writer connection. A statement that fails stops the batch,
/// possibly inside its transaction: roll back, and close the connection rather than hand a
/// connection in an unknown state to the next writer.
async fn report_batch(writer: &SqlitePool, rec: &ReportRecord) -> StoreResult<Vec<ReportRow>> {
    let mut conn = writer.acquire().await?;
    match rows::bind_report!(sqlx::query_as(REPORT_BATCH_TX), rec)
        .fetch_all(&mut *conn)
        .await
    {
        Ok(rows) => Ok(rows),
        Err(e) => {
            // Fails harmlessly ("no transaction is active") when BEGIN itself failed.
            let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
            conn.close_on_drop();
            Err(e.into())
        }
    }
}

/// A row of [`REPORT_BATCH`].
#[derive(sqlx::FromRow)]
struct ReportRow {
    tag: String,
    command_uuid: Option<String>,
    request_type: Option<String>,
    payload: Option<Vec<u8>>,
    payload_sealed: Option<bool>,
}

/// The rows of one [`REPORT_BATCH`], told apart by their tags.
fn round_of_rows(rows: Vec<ReportRow>) -> ReportRound {
    let mut round = ReportRound::default();
    for row in rows {
        match row.tag.as_str() {
            "enrolled" => round.enrolled = true,
            "stored" => round.stored = row.request_type,
            "next" => {
                round.next = delivered(
                    row.command_uuid,
                    row.request_type,
                    row.payload,
                    row.payload_sealed,
                )
            }
            _ => {}
        }
    }
    round
}

impl SqliteStore {
    /// A report without device facts, its transaction included: on the request's thread
    /// (`inline`) for a database file. In memory, one batch on the writer's worker thread, one
    /// round trip instead of one per statement, in its own task: a batch that holds BEGIN must
    /// not be abandoned half-way by a client that hangs up.
    async fn report_round(&self, rec: &ReportRecord) -> StoreResult<ReportRound> {
        if let Some(inline) = &self.inline {
            return Ok(round_of_rows(inline.report(rec).await?));
        }
        let writer = self.writer.clone();
        let rec = rec.clone();
        let rows = tokio::spawn(async move { report_batch(&writer, &rec).await })
            .await
            .map_err(|e| StoreError::Config(format!("command report task: {e}")))??;
        Ok(round_of_rows(rows))
    }

    /// [`REPORT_BATCH`] inside a caller's write transaction.
    async fn report_round_in(tx: &mut WriteTx, rec: &ReportRecord) -> StoreResult<ReportRound> {
        let found = rows::bind_report!(sqlx::query_as(REPORT_BATCH), rec)
            .fetch_all(&mut **tx)
            .await?;
        Ok(round_of_rows(found))
    }

    /// Queue a stored command for every known target, inside a caller's transaction; returns
    /// the unknown targets.
    async fn enqueue_targets(
        tx: &mut WriteTx,
        cmd: &NewCommand,
        enrollment_ids: &[String],
    ) -> StoreResult<Vec<String>> {
        let ids = json_array(enrollment_ids)?;
        // Only the unknown IDs come back (usually none): fetching the known ones cost a row per
        // target, 100k rows for a fleet-wide command.
        let unknown: Vec<String> = sqlx::query_scalar(
            "SELECT j.value FROM json_each($1) j \
             WHERE NOT EXISTS (SELECT 1 FROM enrollments e WHERE e.id = j.value)",
        )
        .bind(&ids)
        .fetch_all(&mut **tx)
        .await?;
        // Writers are serialized (BEGIN IMMEDIATE), so MAX(seq) + array index is monotonic.
        let base: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) + 1 FROM queue_entries")
            .fetch_one(&mut **tx)
            .await?;
        // `WHERE TRUE` keeps SQLite from parsing `ON CONFLICT` as a join constraint.
        sqlx::query(
            "INSERT INTO queue_entries (enrollment_id, command_uuid, status, priority, seq, enqueued_at) \
             SELECT e.id, $2, 'Pending', $3, $4 + j.key, $5 \
             FROM json_each($1) j JOIN enrollments e ON e.id = j.value WHERE TRUE \
             ON CONFLICT (enrollment_id, command_uuid) DO NOTHING",
        )
        .bind(&ids)
        .bind(&cmd.command_uuid)
        .bind(cmd.priority)
        .bind(base)
        .bind(cmd.now)
        .execute(&mut **tx)
        .await?;
        Ok(unknown)
    }
}

super::core_store::impl_core_store!(SqliteStore, sqlx::Sqlite, "sqlite");
super::push::impl_push_store!(SqliteStore);
super::admin::impl_admin_store!(SqliteStore);
super::console::impl_console_store!(SqliteStore);
super::identity::impl_identity_store!(SqliteStore);
super::dep::impl_dep_store!(SqliteStore, sqlx::Sqlite, sqlite_leader);
super::ade::impl_ade_store!(SqliteStore);
super::groups::impl_group_store!(SqliteStore, sqlx::Sqlite);
super::profile_states::impl_profile_state_store!(SqliteStore, sqlx::Sqlite);
super::profiles::impl_profile_store!(SqliteStore, sqlx::Sqlite);
super::inventory::impl_inventory_store!(SqliteStore, sqlx::Sqlite);
super::webhooks::impl_webhook_store!(SqliteStore, sqlx::Sqlite, "");
super::filevault::impl_filevault_store!(SqliteStore, sqlx::Sqlite);
super::fleet::impl_fleet_store!(SqliteStore, sqlx::Sqlite);
super::recovery_lock::impl_recovery_lock_store!(SqliteStore, sqlx::Sqlite);
super::golden_images::impl_golden_image_store!(SqliteStore);
super::parallels_activation::impl_parallels_activation_store!(SqliteStore);
super::ddm::impl_ddm_store!(SqliteStore, sqlx::Sqlite);
