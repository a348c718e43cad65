//! Which database a test server runs on. Throw-away PostgreSQL databases come from
//! `russet_mdm::testing`, shared with the store's conformance suite and the load harness.

pub use russet_mdm::testing::PgDatabase;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// The database a server on this backend gets: none for SQLite (the server keeps its file
    /// in its data directory), a fresh PostgreSQL database otherwise. Panics, saying how to
    /// start PostgreSQL or opt out, when PostgreSQL cannot be reached.
    pub async fn database(self) -> Option<PgDatabase> {
        match self {
            Backend::Sqlite => None,
            Backend::Postgres => Some(PgDatabase::create().await),
        }
    }
}
