//! Helpers for tests and load harnesses (feature `test-util`, always on in this crate's own
//! tests): throw-away PostgreSQL databases, and the rules that decide where they live and
//! whether PostgreSQL cases run at all. Never enable in the server binary.
//!
//! PostgreSQL cases run on the server named by `RUSSET_TEST_DATABASE_URL`, by default the local
//! one (`postgres://postgres@127.0.0.1:5432/postgres`). When it cannot be reached they fail,
//! saying how to start it: a case that returns early would read as a pass. The only way out is
//! explicit: `RUSSET_TEST_SKIP_POSTGRES=1`, which the build scripts of `russet-mdm` and
//! `russet-tests` turn into `cfg(russet_skip_postgres)`, so those cases are compiled as
//! ignored and cargo reports them as such.

use sqlx::Connection;
use sqlx::postgres::PgConnection;

/// Names the PostgreSQL server on which test cases create their databases.
pub const DATABASE_URL_ENV: &str = "RUSSET_TEST_DATABASE_URL";

/// Set (to anything but empty or `0`) to opt out of the PostgreSQL cases.
pub const SKIP_POSTGRES_ENV: &str = "RUSSET_TEST_SKIP_POSTGRES";

/// The server used when [`DATABASE_URL_ENV`] is unset: the local one, as `.ci/run` sets it up.
pub const LOCAL_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// The PostgreSQL server on which test databases are created.
pub fn postgres_admin_url() -> String {
    std::env::var(DATABASE_URL_ENV)
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| LOCAL_POSTGRES_URL.to_owned())
}

/// Whether the person running the tests opted out of PostgreSQL ([`SKIP_POSTGRES_ENV`]). The
/// build scripts apply the same rule.
pub fn skip_postgres() -> bool {
    std::env::var(SKIP_POSTGRES_ENV).is_ok_and(|v| !v.is_empty() && v != "0")
}

/// No test database could be created: PostgreSQL is down, unreachable or refuses.
#[derive(Debug, thiserror::Error)]
#[error(
    "cannot create a test database on PostgreSQL at {url}: {source}\n\
     PostgreSQL cases need a server where they may create databases. Start the local one \
     (`.ci/run` does, or `pg_ctlcluster <version> main start`), or name another with \
     RUSSET_TEST_DATABASE_URL=postgres://…, or opt out with RUSSET_TEST_SKIP_POSTGRES=1 (the \
     PostgreSQL cases then show as ignored)."
)]
pub struct NoPostgres {
    /// The server's URL, password masked.
    url: String,
    source: sqlx::Error,
}

/// A throw-away PostgreSQL database: dropped by [`PgDatabase::drop_now`], or on `Drop` when a
/// test panicked before it could call that.
pub struct PgDatabase {
    /// The database's own URL, for `russet serve --database-url` or a store.
    pub url: String,
    admin_url: String,
    name: String,
    dropped: bool,
}

impl PgDatabase {
    /// A fresh database for a PostgreSQL test case, on [`postgres_admin_url`]. Panics, saying
    /// how to start PostgreSQL or opt out, when it cannot be created — and when the person
    /// opted out, since then every PostgreSQL case must be compiled as ignored.
    pub async fn create() -> PgDatabase {
        assert!(
            !skip_postgres(),
            "a PostgreSQL case ran although {SKIP_POSTGRES_ENV} is set: give it \
             #[cfg_attr(russet_skip_postgres, ignore = \"{SKIP_POSTGRES_ENV} is set\")]"
        );
        match Self::create_on(&postgres_admin_url()).await {
            Ok(db) => db,
            Err(e) => panic!("{e}"),
        }
    }

    /// A fresh database on the server at `admin_url`.
    pub async fn create_on(admin_url: &str) -> Result<PgDatabase, NoPostgres> {
        let refused = |source| NoPostgres {
            url: masked(admin_url),
            source,
        };
        let name = format!("russet_test_{}", uuid::Uuid::new_v4().simple());
        let mut conn = PgConnection::connect(admin_url).await.map_err(refused)?;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .map_err(refused)?;
        // The database exists; failing to close the admin connection changes nothing.
        let _ = conn.close().await;
        Ok(PgDatabase {
            url: with_database(admin_url, &name),
            admin_url: admin_url.to_owned(),
            name,
            dropped: false,
        })
    }

    /// Drop the database now (every connection to it is closed by force).
    pub async fn drop_now(mut self) {
        drop_database(&self.admin_url, &self.name).await;
        self.dropped = true;
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        if self.dropped {
            return;
        }
        // No async in Drop, and we may be inside a runtime: use a thread with its own.
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        let _ = std::thread::spawn(move || {
            if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                rt.block_on(drop_database(&admin_url, &name));
            }
        })
        .join();
    }
}

/// Best effort: a database left behind costs disk space, not correctness.
async fn drop_database(admin_url: &str, name: &str) {
    if let Ok(mut conn) = PgConnection::connect(admin_url).await {
        let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
        )))
        .execute(&mut conn)
        .await;
        let _ = conn.close().await;
    }
}

/// `postgres://user@host:port/db?opts` with `db` replaced by `name`.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let root = match base[authority_start..].find('/') {
        Some(i) => &base[..authority_start + i],
        None => base,
    };
    match query {
        Some(q) => format!("{root}/{name}?{q}"),
        None => format!("{root}/{name}"),
    }
}

/// The URL with its password (if any) replaced, for messages.
fn masked(url: &str) -> String {
    let authority_start = url.find("://").map_or(0, |i| i + 3);
    let rest = &url[authority_start..];
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => match rest[..at].find(':') {
            Some(colon) => format!(
                "{}{}:***{}",
                &url[..authority_start],
                &rest[..colon],
                &rest[at..]
            ),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::{masked, with_database};

    #[test]
    fn database_name_is_replaced() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/postgres", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            with_database("postgres://h:1?sslmode=disable", "x"),
            "postgres://h:1/x?sslmode=disable"
        );
    }

    #[test]
    fn passwords_are_masked_in_messages() {
        assert_eq!(
            masked("postgres://u:secret@h:5432/db?x=1"),
            "postgres://u:***@h:5432/db?x=1"
        );
        assert_eq!(
            masked("postgres://postgres@127.0.0.1:5432/postgres"),
            "postgres://postgres@127.0.0.1:5432/postgres"
        );
        assert_eq!(masked("postgres://h/db"), "postgres://h/db");
    }
}
