//! Databases for tests: a SQLite file in a temp dir, or a fresh PostgreSQL database created on
//! the server named by `RUSSET_TEST_DATABASE_URL` (and dropped afterwards).

use sqlx::Connection;
use sqlx::postgres::PgConnection;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The admin URL for PostgreSQL tests, if configured. CI always sets it.
pub fn postgres_admin_url() -> Option<String> {
    std::env::var("RUSSET_TEST_DATABASE_URL")
        .ok()
        .filter(|s| !s.is_empty())
}

/// A throw-away PostgreSQL database: dropped by `drop_now`, or on `Drop` when a test panicked
/// before it could call that.
pub struct PgDatabase {
    pub url: String,
    admin_url: String,
    name: String,
    dropped: bool,
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

impl PgDatabase {
    pub async fn create(admin_url: &str) -> anyhow::Result<Self> {
        let name = format!("russet_e2e_{}", uuid::Uuid::new_v4().simple());
        let mut conn = PgConnection::connect(admin_url).await?;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await?;
        conn.close().await?;
        Ok(PgDatabase {
            url: replace_db_name(admin_url, &name),
            admin_url: admin_url.to_string(),
            name,
            dropped: false,
        })
    }

    pub async fn drop_now(mut self) {
        drop_database(&self.admin_url, &self.name).await;
        self.dropped = true;
    }
}

/// `postgres://u@h:p/db?x` → the same URL naming database `name`.
fn replace_db_name(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let root = match base[scheme_end..].find('/') {
        Some(i) => &base[..scheme_end + i],
        None => base,
    };
    match query {
        Some(q) => format!("{root}/{name}?{q}"),
        None => format!("{root}/{name}"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn database_name_is_replaced() {
        assert_eq!(
            super::replace_db_name("postgres://postgres@127.0.0.1:5432/postgres", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            super::replace_db_name("postgres://h:1?sslmode=disable", "x"),
            "postgres://h:1/x?sslmode=disable"
        );
    }
}
