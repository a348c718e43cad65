//! Fresh databases for the conformance suite: a temp file per SQLite test, a new database
//! per PostgreSQL test.

use crate::store::{PostgresStore, SqliteStore, Store};
use sqlx::{AssertSqlSafe, Connection, Executor, PgConnection};
use std::sync::Arc;

pub const PG_ENV: &str = "RUSSET_TEST_DATABASE_URL";

pub struct Sqlite {
    pub store: Arc<dyn Store>,
    _dir: tempfile::TempDir,
}

pub async fn sqlite() -> Sqlite {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("russet.db").display());
    let store = SqliteStore::connect(&url).await.unwrap();
    Sqlite {
        store: Arc::new(store),
        _dir: dir,
    }
}

pub struct Postgres {
    pub store: Arc<dyn Store>,
    admin_url: String,
    name: String,
}

/// A fresh database per test, so tests run in parallel. `None` without the env variable.
pub async fn postgres() -> Option<Postgres> {
    let admin_url = std::env::var(PG_ENV).ok()?;
    let name = format!("russet_t_{}", uuid::Uuid::new_v4().simple());
    let mut admin = PgConnection::connect(&admin_url).await.unwrap();
    admin
        .execute(AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .await
        .unwrap();
    admin.close().await.unwrap();
    let store = PostgresStore::connect(&with_database(&admin_url, &name))
        .await
        .unwrap();
    Some(Postgres {
        store: Arc::new(store),
        admin_url,
        name,
    })
}

impl Postgres {
    pub async fn drop_database(self) {
        drop(self.store);
        let mut admin = PgConnection::connect(&self.admin_url).await.unwrap();
        admin
            .execute(AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            )))
            .await
            .unwrap();
    }
}

/// `postgres://user@host:port/db?opts` with `db` replaced.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let base = match base[authority_start..].find('/') {
        Some(i) => &base[..authority_start + i],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}
