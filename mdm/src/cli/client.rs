//! The admin API client of the CLI commands: where to find the server and token
//! ([`ClientArgs`]), the client ([`AdminClient`]), and URL path/query escaping ([`urlencode`]).

use crate::config::{ADMIN_TOKEN_FILE, ADMIN_URL_FILE};
use anyhow::{Context, anyhow, bail};
use clap::Args;
use reqwest::Method;
use serde_json::Value;
use std::path::PathBuf;

const DEFAULT_ADMIN_URL: &str = "http://127.0.0.1:8080";

/// Where admin CLI commands find the server and token: `--server`/`--token`, then
/// `RUSSET_SERVER`/`RUSSET_TOKEN`, then the local data directory.
#[derive(Args, Debug, Clone)]
pub struct ClientArgs {
    /// Admin API base URL, e.g. http://127.0.0.1:8080.
    #[arg(long, env = "RUSSET_SERVER")]
    pub server: Option<String>,
    /// Admin API token.
    #[arg(long, env = "RUSSET_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// CA certificate(s), PEM, to trust for an `https://` server beyond the system roots (an
    /// admin certificate from a private CA, `--admin-tls-cert`).
    #[arg(long, env = "RUSSET_CA_FILE")]
    pub ca_file: Option<PathBuf>,
    /// Data directory of a local server (holds `admin-token` and `admin-url`).
    #[arg(long, env = "RUSSET_DATA_DIR", default_value = "./russet-data")]
    pub data_dir: PathBuf,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// A thin admin API client: finds server and token, sends JSON, turns API errors into one-line
/// messages.
pub struct AdminClient {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl AdminClient {
    pub fn from_args(args: &ClientArgs) -> anyhow::Result<Self> {
        let base = match &args.server {
            Some(s) => s.clone(),
            None => std::fs::read_to_string(args.data_dir.join(ADMIN_URL_FILE))
                .map(|s| s.trim().to_string())
                .unwrap_or_else(|_| DEFAULT_ADMIN_URL.to_string()),
        };
        let token = match &args.token {
            Some(t) => t.clone(),
            None => std::fs::read_to_string(args.data_dir.join(ADMIN_TOKEN_FILE))
                .map(|s| s.trim().to_string())
                .with_context(|| {
                    format!(
                        "no admin token: pass --token, set RUSSET_TOKEN, or run where {}/{} exists",
                        args.data_dir.display(),
                        ADMIN_TOKEN_FILE
                    )
                })?,
        };
        let mut http = reqwest::Client::builder().timeout(std::time::Duration::from_secs(60));
        if let Some(path) = &args.ca_file {
            let pem = std::fs::read(path)
                .with_context(|| format!("reading --ca-file {}", path.display()))?;
            let roots = reqwest::Certificate::from_pem_bundle(&pem)
                .with_context(|| format!("--ca-file {} is not PEM certificates", path.display()))?;
            if roots.is_empty() {
                bail!("--ca-file {} holds no certificate", path.display());
            }
            http = http.tls_certs_merge(roots);
        }
        Ok(AdminClient {
            http: http.build()?,
            base: base.trim_end_matches('/').to_string(),
            token,
        })
    }

    /// A client for an explicit server and token (e.g. a vendor's API).
    pub fn new(base: &str, token: String) -> anyhow::Result<Self> {
        Ok(AdminClient {
            http: reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(60))
                .build()?,
            base: base.trim_end_matches('/').to_string(),
            token,
        })
    }

    /// A request with the token set, for callers that read the answer themselves (streams).
    pub fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token)
    }

    /// GET a text answer (a CSV report); an error answer becomes its message.
    pub async fn text(&self, path: &str) -> anyhow::Result<String> {
        let resp = self
            .request(Method::GET, path)
            .send()
            .await
            .with_context(|| format!("cannot reach the admin API at {}", self.base))?;
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        if !status.is_success() {
            bail!("{} (HTTP {})", error_message(&text), status.as_u16());
        }
        Ok(text)
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<Value> {
        let url = format!("{}{path}", self.base);
        let mut req = self.http.request(method, &url).bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req
            .send()
            .await
            .with_context(|| format!("cannot reach the admin API at {}", self.base))?;
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        let value: Value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).map_err(|_| anyhow!("HTTP {status}: {text}"))?
        };
        if !status.is_success() {
            bail!("{} (HTTP {})", error_message(&text), status.as_u16());
        }
        Ok(value)
    }
}

/// Longest NDJSON line read from the server (progress and result lines are well under 1 KiB).
const MAX_LINE: usize = 64 * 1024;

/// An NDJSON answer (`?stream=true`: DEP sync, golden image verify), a JSON value a line.
pub struct NdjsonStream {
    resp: reqwest::Response,
    buf: Vec<u8>,
}

impl NdjsonStream {
    /// The next line's value; `None` at the end. A line that is not JSON is skipped.
    pub async fn next(&mut self) -> anyhow::Result<Option<Value>> {
        loop {
            while let Some(pos) = self.buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=pos).collect();
                if let Ok(v) = serde_json::from_slice::<Value>(&line) {
                    return Ok(Some(v));
                }
            }
            if self.buf.len() > MAX_LINE {
                bail!("the server sent a line longer than {MAX_LINE} bytes");
            }
            match self.resp.chunk().await? {
                Some(chunk) => self.buf.extend_from_slice(&chunk),
                None => return Ok(None),
            }
        }
    }
}

impl AdminClient {
    /// Sends a request built by [`Self::request`] whose answer is NDJSON, for long work: a
    /// day at most (the server bounds the work itself). An error status is an error with the
    /// API's message.
    pub async fn stream(&self, req: reqwest::RequestBuilder) -> anyhow::Result<NdjsonStream> {
        let resp = req
            .timeout(std::time::Duration::from_secs(24 * 3600))
            .send()
            .await
            .with_context(|| format!("cannot reach the admin API at {}", self.base))?;
        let status = resp.status();
        if !status.is_success() {
            let text = resp.text().await.unwrap_or_default();
            bail!("{} (HTTP {})", error_message(&text), status.as_u16());
        }
        Ok(NdjsonStream {
            resp,
            buf: Vec::new(),
        })
    }
}

/// The message of an admin API error body (`{"error": {"message": …}}`).
fn error_message(body: &str) -> String {
    serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| {
            v.pointer("/error/message")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .unwrap_or_else(|| "request failed".to_owned())
}

/// Percent-encode `s` for a URL path segment or query value (unreserved characters and `:`
/// stay as they are).
pub(crate) fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b':' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
