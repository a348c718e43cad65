//! The real Russet server, started in-process on loopback ports, with its own device CA.

use crate::db::{Backend, PgDatabase};
use clap::Parser;
use russet_certs::testing::TestCa;
use russet_mdm::config::ServeArgs;
use russet_mdm::server::{self, Running};
use serde_json::Value;

pub struct TestServer {
    pub running: Option<Running>,
    pub device_url: String,
    pub admin_url: String,
    pub token: String,
    /// The CA the server trusts for device identities (`--device-ca`).
    pub ca: TestCa,
    pub data_dir: tempfile::TempDir,
    pg: Option<PgDatabase>,
    http: reqwest::Client,
    /// The `serve` arguments this server was started with ([`Self::restart`] uses them again).
    argv: Vec<String>,
}

#[derive(Parser)]
struct ServeOnly {
    #[command(flatten)]
    args: ServeArgs,
}

impl TestServer {
    /// Start a server on `backend` (plain HTTP on the device listener). Panics if it does not
    /// start: every end-to-end test needs one.
    pub async fn start(backend: Backend) -> TestServer {
        Self::start_with(backend, &[]).await
    }

    /// [`Self::start`] with extra `russet serve` flags.
    pub async fn start_with(backend: Backend, extra: &[&str]) -> TestServer {
        Self::start_inner(backend, extra, false)
            .await
            .unwrap_or_else(|e| panic!("server starts: {e:#}"))
    }

    /// Like [`Self::start_with`] but serving HTTPS on the device listener (a development
    /// certificate from Russet's CA unless `extra` names one). `device_url` is `https://`.
    pub async fn start_tls(backend: Backend, extra: &[&str]) -> TestServer {
        Self::start_inner(backend, extra, true)
            .await
            .unwrap_or_else(|e| panic!("server starts: {e:#}"))
    }

    async fn start_inner(
        backend: Backend,
        extra: &[&str],
        tls: bool,
    ) -> anyhow::Result<TestServer> {
        let pg = backend.database().await;
        let data_dir = tempfile::tempdir()?;
        let ca = TestCa::new("Russet Test Device CA");
        let ca_path = data_dir.path().join("device-ca.pem");
        std::fs::write(&ca_path, ca.cert_pem())?;
        let data = data_dir.path().join("data");
        let mut argv: Vec<String> = vec![
            "serve".into(),
            "--data-dir".into(),
            data.display().to_string(),
            "--listen".into(),
            "127.0.0.1:0".into(),
            "--admin-listen".into(),
            "127.0.0.1:0".into(),
            "--device-ca".into(),
            ca_path.display().to_string(),
        ];
        if !tls {
            argv.push("--insecure-http".into());
        }
        // Inventory would queue five commands after every enrollment, ahead of the commands
        // the tests send: off unless a test names `--inventory` itself.
        if !extra.contains(&"--inventory") {
            argv.extend(["--inventory".into(), "false".into()]);
        }
        if let Some(db) = &pg {
            argv.push("--database-url".into());
            argv.push(db.url.clone());
        }
        argv.extend(extra.iter().map(|s| s.to_string()));
        let parsed = ServeOnly::try_parse_from(&argv)?;
        let running = server::start(&parsed.args).await?;
        let token = running
            .new_admin_token
            .clone()
            .ok_or_else(|| anyhow::anyhow!("first start did not create an admin token"))?;
        Ok(TestServer {
            device_url: format!(
                "{}://{}",
                if tls { "https" } else { "http" },
                running.device_addr
            ),
            admin_url: running.admin_url.clone(),
            running: Some(running),
            token,
            ca,
            data_dir,
            pg,
            http: reqwest::Client::new(),
            argv,
        })
    }

    /// Stop the server and start it again with the same arguments, data directory and
    /// database (as an operator's restart); the listeners get new ports.
    pub async fn restart(&mut self) {
        if let Some(r) = self.running.take() {
            r.shutdown().await;
        }
        let parsed = ServeOnly::try_parse_from(&self.argv).expect("the same arguments parse");
        let running = server::start(&parsed.args)
            .await
            .unwrap_or_else(|e| panic!("server restarts: {e:#}"));
        let scheme = if self.device_url.starts_with("https") {
            "https"
        } else {
            "http"
        };
        self.device_url = format!("{scheme}://{}", running.device_addr);
        self.admin_url = running.admin_url.clone();
        self.running = Some(running);
    }

    /// The PostgreSQL database URL, when this server runs on PostgreSQL.
    pub fn postgres_url(&self) -> Option<&str> {
        self.pg.as_ref().map(|p| p.url.as_str())
    }

    /// Every byte of the SQLite database (main file, WAL, shared memory), for leak checks.
    pub fn sqlite_bytes(&self) -> Vec<u8> {
        let dir = self.data_dir.path().join("data");
        let mut all = Vec::new();
        for name in ["russet.db", "russet.db-wal", "russet.db-shm"] {
            if let Ok(b) = std::fs::read(dir.join(name)) {
                all.extend_from_slice(&b);
            }
        }
        all
    }

    /// `russet ARGS --server <admin> --token <token>` parsed as the binary would, for CLI tests
    /// that run a verb in-process against this server.
    pub fn cli(&self, args: &[&str]) -> anyhow::Result<russet_mdm::cli::Cli> {
        let mut argv = vec!["russet"];
        argv.extend_from_slice(args);
        argv.extend([
            "--server",
            self.admin_url.as_str(),
            "--token",
            self.token.as_str(),
        ]);
        Ok(russet_mdm::cli::Cli::try_parse_from(argv)?)
    }

    /// Every stored byte of this server's database, for "sealed at rest" checks: the SQLite
    /// files, or on PostgreSQL every row of every table of the public schema as text (a
    /// `bytea` column shows as hex).
    pub async fn database_dump(&self) -> Vec<u8> {
        use sqlx::Connection;
        let Some(url) = self.postgres_url() else {
            return self.sqlite_bytes();
        };
        let mut conn = sqlx::PgConnection::connect(url).await.expect("connect");
        let tables: Vec<String> = sqlx::query_scalar(
            "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public'",
        )
        .fetch_all(&mut conn)
        .await
        .expect("tables");
        let mut all = String::new();
        for t in tables {
            let rows: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                "SELECT CAST(t AS text) FROM {t} t"
            )))
            .fetch_all(&mut conn)
            .await
            .expect("rows");
            all.push_str(&rows.join("\n"));
        }
        all.into_bytes()
    }

    /// A second server process-equivalent sharing this one's PostgreSQL database, device CA
    /// and key-encryption key (as a scaled-out deployment would), with its own listeners and
    /// data directory. `None` unless this server runs on PostgreSQL.
    pub async fn start_sharing(&self) -> anyhow::Result<Option<TestServer>> {
        let Some(url) = self.postgres_url() else {
            return Ok(None);
        };
        let kek = std::fs::read_to_string(self.data_dir.path().join("data").join("kek"))?;
        let data_dir = tempfile::tempdir()?;
        let ca_path = data_dir.path().join("device-ca.pem");
        std::fs::write(&ca_path, self.ca.cert_pem())?;
        let argv = vec![
            "serve".to_string(),
            "--data-dir".into(),
            data_dir.path().join("data").display().to_string(),
            "--listen".into(),
            "127.0.0.1:0".into(),
            "--admin-listen".into(),
            "127.0.0.1:0".into(),
            "--insecure-http".into(),
            "--device-ca".into(),
            ca_path.display().to_string(),
            "--database-url".into(),
            url.to_string(),
            "--kek".into(),
            kek.trim().to_string(),
            "--inventory".into(),
            "false".into(),
        ];
        let parsed = ServeOnly::try_parse_from(&argv)?;
        let running = server::start(&parsed.args).await?;
        Ok(Some(TestServer {
            device_url: format!("http://{}", running.device_addr),
            admin_url: running.admin_url.clone(),
            running: Some(running),
            token: self.token.clone(),
            ca: TestCa {
                cert: self.ca.cert.clone(),
                key: self.ca.key.clone(),
            },
            data_dir,
            pg: None,
            http: reqwest::Client::new(),
            argv,
        }))
    }

    pub async fn stop(mut self) {
        if let Some(r) = self.running.take() {
            r.shutdown().await;
        }
        if let Some(pg) = self.pg.take() {
            pg.drop_now().await;
        }
    }

    /// A simulated Mac with an identity from this server's device CA.
    pub fn mac(&self) -> crate::SimMac {
        crate::SimMac::new(&self.device_url, self.ca.issue_device_identity("sim-mac"))
    }

    /// Admin API call with the admin token. Returns (status, JSON body or Null).
    pub async fn api(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        self.api_with_token(method, path, body, Some(&self.token))
            .await
    }

    /// Create an admin named `name` with `role` (`viewer`, `operator`, `admin`) through the
    /// API: its token.
    pub async fn admin_token(&self, name: &str, role: &str) -> String {
        let created = self
            .api_ok(
                reqwest::Method::POST,
                "/api/v1/admins",
                Some(serde_json::json!({"name": name, "role": role})),
            )
            .await;
        created["token"]
            .as_str()
            .unwrap_or_else(|| panic!("no token for {name}: {created}"))
            .to_string()
    }

    /// Admin API call that must succeed (2xx): its JSON answer; fails the test otherwise.
    pub async fn api_ok(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let (status, v) = self.api(method, path, body).await;
        assert!((200..300).contains(&status), "{path}: {status} {v}");
        v
    }

    /// A new static group holding these devices (UDIDs or serials; none is allowed).
    pub async fn group_with(&self, name: &str, devices: &[&str]) {
        self.api_ok(
            reqwest::Method::POST,
            "/api/v1/groups",
            Some(serde_json::json!({"name": name})),
        )
        .await;
        if !devices.is_empty() {
            self.api_ok(
                reqwest::Method::POST,
                &format!("/api/v1/groups/{name}/devices"),
                Some(serde_json::json!({"devices": devices})),
            )
            .await;
        }
    }

    pub async fn api_with_token(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
        token: Option<&str>,
    ) -> (u16, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.admin_url));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("admin API reachable");
        let status = resp.status().as_u16();
        let text = resp.text().await.expect("admin API body");
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, value)
    }

    /// Enqueue a typed command to one device; panics unless it was accepted.
    pub async fn enqueue(&self, udid: &str, command: Value) -> String {
        let (status, v) = self
            .api(
                reqwest::Method::POST,
                &format!("/api/v1/devices/{udid}/commands"),
                Some(command),
            )
            .await;
        assert_eq!(status, 201, "enqueue refused: {v}");
        v["command_uuid"]
            .as_str()
            .expect("command_uuid")
            .to_string()
    }
}
