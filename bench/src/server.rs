//! The server under test: a `russet serve` process (release build) whose CPU time and peak
//! memory are read from /proc.

use crate::identities::BENCH_SCEP_CHALLENGE;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `russet serve` process; killed when dropped.
pub struct Server {
    child: Child,
    pub device_url: String,
    pub admin_url: String,
    pub token: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// `POST /api/v1/commands`: one SecurityInfo to every device in `devices` (the bulk
    /// enqueue both 100k scenarios measure); fails unless the server answers 201. The answer's
    /// body is left to the caller (read or not, as its timing needs).
    pub async fn enqueue_to_all(
        &self,
        http: &reqwest::Client,
        devices: &[String],
    ) -> anyhow::Result<reqwest::Response> {
        let r = http
            .post(format!("{}/api/v1/commands", self.admin_url))
            .bearer_auth(&self.token)
            .json(&serde_json::json!({"devices": devices, "command": {"request_type": "SecurityInfo"}}))
            .send()
            .await?;
        anyhow::ensure!(
            r.status().as_u16() == 201,
            "bulk enqueue: {}",
            r.text().await?
        );
        Ok(r)
    }

    /// CPU seconds and peak RSS (KiB) of the server so far.
    pub fn usage(&self) -> (f64, u64) {
        process_usage(self.child.id()).unwrap_or((0.0, 0))
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Files the server is started with: the harness's SCEP CA and the fake APNs.
pub struct ServerFiles<'a> {
    pub scep_ca_cert: &'a Path,
    pub scep_ca_key: &'a Path,
    pub apns_url: &'a str,
    pub apns_ca: &'a Path,
}

/// Start `bin serve` with its data in `dir`, on `db` (a PostgreSQL URL) or SQLite, and wait
/// until it wrote its admin URL and token.
pub fn start_server(
    bin: &Path,
    dir: &Path,
    files: &ServerFiles<'_>,
    db: Option<&str>,
) -> anyhow::Result<Server> {
    let port = free_port()?;
    let data = dir.join("data");
    let mut cmd = Command::new(bin);
    cmd.args(["serve", "--insecure-http", "--admin-listen", "127.0.0.1:0"])
        .arg("--listen")
        .arg(format!("127.0.0.1:{port}"))
        .arg("--data-dir")
        .arg(&data)
        .arg("--scep-ca-cert")
        .arg(files.scep_ca_cert)
        .arg("--scep-ca-key")
        .arg(files.scep_ca_key)
        .args(["--scep-challenge", BENCH_SCEP_CHALLENGE])
        .args([
            "--apns-url",
            files.apns_url,
            "--push-sweep-interval-secs",
            "3600",
        ])
        // The benches measure the commands they send; inventory would queue five of its own
        // ahead of them after every enrollment.
        .args(["--inventory", "false"])
        .arg("--apns-ca")
        .arg(files.apns_ca)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Some(url) = db {
        cmd.args(["--database-url", url]);
    }
    let child = cmd.spawn()?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while !data.join("admin-url").exists() || !data.join("admin-token").exists() {
        anyhow::ensure!(Instant::now() < deadline, "server did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(Server {
        child,
        device_url: format!("http://127.0.0.1:{port}"),
        admin_url: std::fs::read_to_string(data.join("admin-url"))?
            .trim()
            .to_string(),
        token: std::fs::read_to_string(data.join("admin-token"))?
            .trim()
            .to_string(),
    })
}

/// The PostgreSQL backends serving one database (the server's pool), watched from a
/// connection of the harness's own (excluded): their CPU is the rest of a round trip's cost.
/// Read from /proc, so PostgreSQL must run on this machine; a backend that exits between
/// two readings takes its CPU with it (the server's pool keeps its connections).
pub struct PostgresBackends {
    conn: sqlx::PgConnection,
    database: String,
}

impl PostgresBackends {
    /// Watch the backends of the database `url` names.
    pub async fn watch(url: &str) -> anyhow::Result<Self> {
        use sqlx::Connection;
        let database = url
            .split('?')
            .next()
            .and_then(|u| u.rsplit_once('/'))
            .map(|(_, db)| db.to_string())
            .ok_or_else(|| anyhow::anyhow!("no database name in {url}"))?;
        Ok(PostgresBackends {
            conn: sqlx::PgConnection::connect(url).await?,
            database,
        })
    }

    /// Statements run on the database so far: PostgreSQL counts each as a transaction (the
    /// commits and rollbacks of `pg_stat_database`, which reports with a short delay).
    pub async fn transactions(&mut self) -> anyhow::Result<i64> {
        Ok(sqlx::query_scalar(
            "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = $1",
        )
        .bind(&self.database)
        .fetch_one(&mut self.conn)
        .await?)
    }

    /// CPU seconds of the database's backends so far (this connection's excluded).
    pub async fn cpu(&mut self) -> anyhow::Result<f64> {
        let pids: Vec<i32> = sqlx::query_scalar(
            "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
        )
        .bind(&self.database)
        .fetch_all(&mut self.conn)
        .await?;
        Ok(pids
            .into_iter()
            .filter_map(|p| u32::try_from(p).ok())
            .filter_map(process_usage)
            .map(|(cpu, _)| cpu)
            .sum())
    }
}

/// CPU seconds (user + system) and peak RSS (KiB) of a process, from /proc.
pub fn process_usage(pid: u32) -> Option<(f64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the `(comm)` part; utime and stime are the 14th and 15th fields overall.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    let ticks = 100.0; // USER_HZ on Linux
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let hwm = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    Some(((utime + stime) / ticks, hwm))
}

/// The release `russet` binary next to this one (both live in target/release).
pub fn default_server_binary() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.join("russet")))
        .unwrap_or_else(|| PathBuf::from("russet"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_our_own_process_usage() {
        let (cpu, rss) = process_usage(std::process::id()).expect("/proc");
        assert!(cpu >= 0.0);
        assert!(rss > 0);
    }
}
