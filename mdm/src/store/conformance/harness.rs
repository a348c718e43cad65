//! Fresh databases for the conformance suite: a temp file per SQLite test, a new database
//! per PostgreSQL test (`crate::testing`).

use crate::store::{PostgresStore, SqliteStore, Store};
use crate::testing::PgDatabase;
use std::sync::Arc;

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
    db: PgDatabase,
}

/// A fresh database per test, so tests run in parallel. Panics, saying how to start
/// PostgreSQL or opt out, when it cannot be reached.
pub async fn postgres() -> Postgres {
    let db = PgDatabase::create().await;
    let store = PostgresStore::connect(&db.url)
        .await
        .expect("connect to and migrate the test database");
    Postgres {
        store: Arc::new(store),
        db,
    }
}

impl Postgres {
    pub async fn drop_database(self) {
        drop(self.store);
        self.db.drop_now().await;
    }
}
