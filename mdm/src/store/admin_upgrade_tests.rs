//! Migration 0014 on a database from before admin accounts: every existing token becomes an
//! admin with the role `admin` (one per token name), so an upgrade locks nobody out.

use super::{AdminStore, PostgresStore, SqliteStore};
use sqlx::migrate::Migrator;
use std::borrow::Cow;

/// The migrations before admin accounts.
fn before_0014(full: Migrator) -> Migrator {
    let migrations: Vec<_> = full
        .migrations
        .iter()
        .filter(|m| m.version < 14)
        .cloned()
        .collect();
    Migrator {
        migrations: Cow::Owned(migrations),
        ..full
    }
}

const OLD_TOKENS: &str = "INSERT INTO admin_tokens (name, hash, created_at) VALUES \
     ('admin', X'01', 5), ('ci', X'02', 6), ('admin', X'03', 7)";
const OLD_TOKENS_PG: &str = "INSERT INTO admin_tokens (name, hash, created_at) VALUES \
     ('admin', '\\x01', 5), ('ci', '\\x02', 6), ('admin', '\\x03', 7)";

async fn assert_upgraded(store: &dyn AdminStore) {
    let tokens: Vec<(String, String, Vec<u8>)> = store
        .admin_tokens()
        .await
        .expect("tokens")
        .into_iter()
        .map(|t| (t.name, t.role, t.hash))
        .collect();
    assert_eq!(
        tokens,
        [
            ("admin".into(), "admin".into(), vec![1]),
            ("ci".into(), "admin".into(), vec![2]),
            ("admin".into(), "admin".into(), vec![3]),
        ]
    );
    let admins: Vec<(String, String, i64, i64)> = store
        .admins()
        .await
        .expect("admins")
        .into_iter()
        .map(|a| (a.name, a.role, a.created_at, a.tokens))
        .collect();
    assert_eq!(
        admins,
        [
            ("admin".into(), "admin".into(), 5, 2),
            ("ci".into(), "admin".into(), 6, 1)
        ]
    );
}

#[tokio::test]
async fn sqlite_tokens_become_admins() {
    let dir = tempfile::tempdir().expect("dir");
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("old.db").display());
    {
        let pool = sqlx::SqlitePool::connect(&url).await.expect("sqlite");
        before_0014(sqlx::migrate!("../migrations/sqlite"))
            .run(&pool)
            .await
            .expect("old migrations");
        sqlx::query(OLD_TOKENS)
            .execute(&pool)
            .await
            .expect("old tokens");
        pool.close().await;
    }
    let store = SqliteStore::connect(&url).await.expect("upgraded");
    assert_upgraded(&store).await;
}

#[tokio::test]
#[cfg_attr(russet_skip_postgres, ignore = "RUSSET_TEST_SKIP_POSTGRES is set")]
async fn postgres_tokens_become_admins() {
    let db = crate::testing::PgDatabase::create().await;
    {
        let pool = sqlx::PgPool::connect(&db.url).await.expect("postgres");
        before_0014(sqlx::migrate!("../migrations/postgres"))
            .run(&pool)
            .await
            .expect("old migrations");
        sqlx::query(OLD_TOKENS_PG)
            .execute(&pool)
            .await
            .expect("old tokens");
        pool.close().await;
    }
    let store = PostgresStore::connect(&db.url).await.expect("upgraded");
    assert_upgraded(&store).await;
    drop(store);
    db.drop_now().await;
}
