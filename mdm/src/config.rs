//! The server's configuration: the `serve` flags ([`ServeArgs`]), the optional TOML file, and the
//! names of the files `serve` leaves in the data directory for the CLI. Every `serve` flag is
//! also an environment variable `RUSSET_<NAME>` and a key in the TOML file given by `--config`
//! (precedence: flag, environment, file). The command tree around them is `crate::cli::Cli`.

use clap::{Args, ValueEnum};
use std::path::PathBuf;

/// The admin API token, in the data directory (mode 0600): written by `serve` on first start,
/// read by the CLI.
/// `--inventory-interval-secs` by default: once a day.
pub const INVENTORY_INTERVAL_DEFAULT_SECS: u64 = 86_400;
/// The shortest `--inventory-interval-secs`: inventory is five commands per Mac, and an hourly
/// round over 100,000 Macs is already more traffic than everything else together.
pub const INVENTORY_INTERVAL_MIN_SECS: u64 = 3_600;

pub const ADMIN_TOKEN_FILE: &str = "admin-token";
/// The admin API's URL, in the data directory: written by `serve`, read by the CLI.
pub const ADMIN_URL_FILE: &str = "admin-url";

#[derive(Clone, Copy, Debug, Default, ValueEnum, PartialEq, Eq)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// `Debug` is written by hand below: several flags are secrets (`--kek`, `--tls-pfx-password`,
/// `--scep-challenge`, `--metrics-token`, a password in `--database-url`).
#[derive(Args, Clone)]
pub struct ServeArgs {
    /// SQLite file, key-encryption key, generated material, admin token file.
    #[arg(long, env = "RUSSET_DATA_DIR", default_value = "./russet-data")]
    pub data_dir: PathBuf,
    /// `sqlite://<data-dir>/russet.db` by default, or `postgres://…`.
    #[arg(long, env = "RUSSET_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Device-facing listener (what Macs reach).
    #[arg(long, env = "RUSSET_LISTEN", default_value = "0.0.0.0:8443")]
    pub listen: String,
    /// Admin API listener.
    #[arg(long, env = "RUSSET_ADMIN_LISTEN", default_value = "127.0.0.1:8080")]
    pub admin_listen: String,
    /// Certificate chain (PEM) for the admin API: HTTPS on `--admin-listen`.
    #[arg(long, env = "RUSSET_ADMIN_TLS_CERT")]
    pub admin_tls_cert: Option<PathBuf>,
    /// Private key (PEM) for `--admin-tls-cert`.
    #[arg(long, env = "RUSSET_ADMIN_TLS_KEY")]
    pub admin_tls_key: Option<PathBuf>,
    /// Plain HTTP on a non-loopback `--admin-listen` (a TLS-terminating proxy in front). Without
    /// it, `serve` refuses to carry admin tokens in clear text across a network.
    #[arg(long, env = "RUSSET_ADMIN_INSECURE_HTTP")]
    pub admin_insecure_http: bool,
    /// Base URL written into enrollment profiles and DEP profiles (default
    /// `https://<listen address, or the hostname>:<port>`).
    #[arg(long, env = "RUSSET_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Server certificate chain (PEM) for `--listen`.
    #[arg(long, env = "RUSSET_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// Private key (PEM) for `--tls-cert`.
    #[arg(long, env = "RUSSET_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// Server certificate and key as PKCS#12.
    #[arg(long, env = "RUSSET_TLS_PFX")]
    pub tls_pfx: Option<PathBuf>,
    #[arg(long, env = "RUSSET_TLS_PFX_PASSWORD", hide_env_values = true)]
    pub tls_pfx_password: Option<String>,
    /// Plain HTTP on `--listen`, for running behind a TLS-terminating proxy.
    #[arg(long, env = "RUSSET_INSECURE_HTTP")]
    pub insecure_http: bool,
    /// Trusted header carrying the device TLS client certificate (RFC 9440 or URL-escaped PEM).
    /// Your proxy must overwrite any copy of it a client sends.
    #[arg(long, env = "RUSSET_CLIENT_CERT_HEADER")]
    pub client_cert_header: Option<String>,
    /// PEM CA file(s) whose client certificates are accepted as device identities.
    #[arg(long, env = "RUSSET_DEVICE_CA", value_delimiter = ',')]
    pub device_ca: Vec<PathBuf>,
    /// APNs base URL.
    #[arg(
        long,
        env = "RUSSET_APNS_URL",
        default_value = "https://api.push.apple.com"
    )]
    pub apns_url: String,
    /// Extra trust (PEM) for `--apns-url`.
    #[arg(long, env = "RUSSET_APNS_CA")]
    pub apns_ca: Option<PathBuf>,
    /// How often to re-push devices that have pending commands but stayed silent (seconds).
    #[arg(long, env = "RUSSET_PUSH_SWEEP_INTERVAL_SECS", default_value_t = 300)]
    pub push_sweep_interval_secs: u64,
    /// MDM vendor: the "MDM CSR" certificate from Apple's developer portal (PEM). With
    /// `--vendor-key`, this server signs customers' push CSRs at `POST /api/v1/vendor/sign`.
    #[arg(long, env = "RUSSET_VENDOR_CERT")]
    pub vendor_cert: Option<PathBuf>,
    /// MDM vendor: the private key of `--vendor-cert` (PEM).
    #[arg(long, env = "RUSSET_VENDOR_KEY")]
    pub vendor_key: Option<PathBuf>,
    /// MDM vendor: Apple's WWDR intermediate and root (PEM), appended to the signed request.
    #[arg(long, env = "RUSSET_VENDOR_CHAIN")]
    pub vendor_chain: Option<PathBuf>,
    /// Apple DEP base URL.
    #[arg(
        long,
        env = "RUSSET_DEP_URL",
        default_value = "https://mdmenrollment.apple.com"
    )]
    pub dep_url: String,
    /// PEM CA(s) that sign ADE MachineInfo instead of Apple's bundled device CA (labs and
    /// tests; leave unset in production).
    #[arg(long, env = "RUSSET_ADE_DEVICE_CA")]
    pub ade_device_ca: Option<PathBuf>,
    /// How often the DEP sync worker pulls device changes from Apple, per link (seconds).
    #[arg(long, env = "RUSSET_DEP_SYNC_INTERVAL_SECS", default_value_t = 300)]
    pub dep_sync_interval_secs: u64,
    /// How often each Mac is asked for its ProfileList, to verify its configuration profiles
    /// and repair drift (seconds; at least 3600).
    #[arg(
        long,
        env = "RUSSET_PROFILE_VERIFY_INTERVAL_SECS",
        default_value_t = 86400
    )]
    pub profile_verify_interval_secs: u64,
    /// How often each Mac is asked for its inventory (DeviceInformation, SecurityInfo, apps,
    /// certificates, users), in seconds; each Mac at its own offset within the interval.
    /// At least 3600.
    #[arg(
        long,
        env = "RUSSET_INVENTORY_INTERVAL_SECS",
        default_value_t = INVENTORY_INTERVAL_DEFAULT_SECS,
        value_parser = clap::value_parser!(u64).range(INVENTORY_INTERVAL_MIN_SECS..)
    )]
    pub inventory_interval_secs: u64,
    /// Collect inventory after enrollment and every `--inventory-interval-secs` (`false`: only
    /// when an admin asks, `russet inventory refresh`).
    #[arg(
        long,
        env = "RUSSET_INVENTORY",
        default_value_t = true,
        action = clap::ArgAction::Set,
        value_name = "true|false"
    )]
    pub inventory: bool,
    /// While a Mac with Russet's FileVault profile has not escrowed its recovery key (macOS
    /// does at the user's next login), SecurityInfo is asked again after this many seconds,
    /// doubling each time up to a day.
    #[arg(
        long,
        env = "RUSSET_FILEVAULT_ESCROW_RETRY_SECS",
        default_value_t = 3600,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub filevault_escrow_retry_secs: u64,
    /// Rotate a Mac's FileVault recovery key this many seconds after an admin revealed it (a
    /// revealed key is no longer Russet's secret alone); 0 (the default): never by itself.
    #[arg(
        long,
        env = "RUSSET_FILEVAULT_ROTATE_AFTER_REVEAL_SECS",
        default_value_t = 0
    )]
    pub filevault_rotate_after_reveal_secs: u64,
    /// Sign delivered configuration profiles that were uploaded unsigned, with the identity
    /// that signs enrollment profiles (System Settings then shows them as verified).
    #[arg(long, env = "RUSSET_SIGN_PROFILES")]
    pub sign_profiles: bool,
    /// Serve `GET /mdm/enroll` to anyone (otherwise only with an enrollment-link token).
    #[arg(long, env = "RUSSET_OPEN_ENROLLMENT")]
    pub open_enrollment: bool,
    /// Optional static SCEP challenge.
    #[arg(long, env = "RUSSET_SCEP_CHALLENGE", hide_env_values = true)]
    pub scep_challenge: Option<String>,
    /// Import the SCEP CA certificate (PEM) instead of generating one (needs `--scep-ca-key`).
    #[arg(long, env = "RUSSET_SCEP_CA_CERT", requires = "scep_ca_key")]
    pub scep_ca_cert: Option<PathBuf>,
    /// Private key (PEM, RSA) of `--scep-ca-cert`.
    #[arg(long, env = "RUSSET_SCEP_CA_KEY", requires = "scep_ca_cert")]
    pub scep_ca_key: Option<PathBuf>,
    /// Validity of issued device identities, in days.
    #[arg(long, env = "RUSSET_IDENTITY_VALIDITY_DAYS", default_value_t = 730)]
    pub identity_validity_days: u32,
    /// Lifetime of the one-time SCEP challenge in each downloaded profile, in minutes.
    #[arg(long, env = "RUSSET_CHALLENGE_TTL_MINUTES", default_value_t = 60)]
    pub challenge_ttl_minutes: u32,
    /// Answer macOS `UserAuthenticate` with a zero-length DigestChallenge (allow directory users'
    /// user channel) instead of refusing it with 410.
    #[arg(long, env = "RUSSET_USER_AUTHENTICATE_ZERO_CHALLENGE")]
    pub user_authenticate_zero_challenge: bool,
    /// Key-encryption key as 64 hex characters (otherwise `<data-dir>/kek`, created on first start).
    #[arg(long, env = "RUSSET_KEK", hide_env_values = true)]
    pub kek: Option<String>,
    #[arg(long, env = "RUSSET_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Also write the log lines (the same text or JSON as stderr) to this file, rotated by size:
    /// rotated files are gzip-compressed beside it (`russet.log.1.gz` is the newest).
    #[arg(long, env = "RUSSET_LOG_FILE")]
    pub log_file: Option<PathBuf>,
    /// Rotate `--log-file` once it passes this size: plain bytes or with a suffix `KB`/`MB`
    /// (binary: 1KB = 1024 bytes, 1MB = 1,048,576 bytes); 200KB to 4MB.
    #[arg(long, env = "RUSSET_LOG_MAX_SIZE", default_value = "1MB", value_parser = parse_log_size)]
    pub log_max_size: u64,
    /// How many rotated (gzip-compressed) log files to keep beside `--log-file`; the oldest
    /// is deleted beyond it. 1 to 20.
    #[arg(
        long,
        env = "RUSSET_LOG_MAX_FILES",
        default_value_t = 10,
        value_parser = clap::value_parser!(u16).range(LOG_MAX_FILES_MIN..=LOG_MAX_FILES_MAX)
    )]
    pub log_max_files: u16,
    /// Threads serving requests and background work (default: one per core; 1 to 1024). On a
    /// small host shared with PostgreSQL, fewer than the cores cost less CPU per request (the
    /// threads wake each other less; docs/benchmarks.md).
    #[arg(
        long,
        env = "RUSSET_WORKER_THREADS",
        value_parser = clap::value_parser!(u16).range(1..=1024)
    )]
    pub worker_threads: Option<u16>,
    /// A second bearer token accepted on `GET /metrics` only, so a Prometheus scraper holds
    /// no admin power (the admin token works there too).
    #[arg(long, env = "RUSSET_METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<String>,
    /// POST a JSON event (NanoMDM/MicroMDM webhook format) for every check-in and command
    /// report to this http:// or https:// URL. Repeat for several receivers (in the
    /// environment or the config file: a comma-separated list, or a TOML array).
    #[arg(
        long = "webhook-url",
        env = "RUSSET_WEBHOOK_URL",
        value_delimiter = ',',
        value_parser = parse_webhook_url,
        hide_env_values = true,
        value_name = "URL"
    )]
    pub webhook_urls: Vec<String>,
    /// Sign each webhook body: header `X-Hmac-Signature` = base64(HMAC-SHA256(key, body)).
    #[arg(
        long,
        env = "RUSSET_WEBHOOK_HMAC_KEY",
        hide_env_values = true,
        value_name = "KEY"
    )]
    pub webhook_hmac_key: Option<String>,
    /// First webhook retry delay in milliseconds (doubling up to --webhook-retry-max-ms);
    /// for tests and labs.
    #[arg(long, env = "RUSSET_WEBHOOK_RETRY_MIN_MS", default_value_t = 1_000, hide = true,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub webhook_retry_min_ms: u64,
    /// Longest webhook retry delay in milliseconds; for tests and labs.
    #[arg(long, env = "RUSSET_WEBHOOK_RETRY_MAX_MS", default_value_t = 600_000, hide = true,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub webhook_retry_max_ms: u64,
    /// Give up on a webhook event not delivered within this many seconds; for tests and labs.
    #[arg(long, env = "RUSSET_WEBHOOK_GIVE_UP_AFTER_SECS", default_value_t = 86_400,
          hide = true, value_parser = clap::value_parser!(u64).range(1..))]
    pub webhook_give_up_after_secs: u64,
}

/// Smallest `--log-max-size`: 200KB.
pub const LOG_MAX_SIZE_MIN: u64 = 200 * 1024;
/// Largest `--log-max-size`: 4MB.
pub const LOG_MAX_SIZE_MAX: u64 = 4 * 1024 * 1024;
pub const LOG_MAX_FILES_MIN: i64 = 1;
pub const LOG_MAX_FILES_MAX: i64 = 20;

/// `--log-max-size`: `1048576`, `1MB`, `200KB`, `4 MiB`, `512k` (case-insensitive; binary
/// units, as logrotate's `size 1M`), inside [`LOG_MAX_SIZE_MIN`]..=[`LOG_MAX_SIZE_MAX`].
pub fn parse_log_size(text: &str) -> Result<u64, String> {
    const RANGE: &str = "allowed: 200KB to 4MB (204800 to 4194304 bytes)";
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let number: u64 = digits
        .parse()
        .map_err(|_| format!("{text:?} is not a size like 1MB, 500KB or 1048576; {RANGE}"))?;
    let factor = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1024,
        "m" | "mb" | "mib" => 1024 * 1024,
        other => return Err(format!("unknown size unit {other:?} in {text:?}; {RANGE}")),
    };
    number
        .checked_mul(factor)
        .filter(|b| (LOG_MAX_SIZE_MIN..=LOG_MAX_SIZE_MAX).contains(b))
        .ok_or_else(|| format!("{text} is out of range; {RANGE}"))
}

/// Check a `--webhook-url`: an absolute `http://` or `https://` URL with a host. Returns it
/// normalized (the outbox keys rows by it).
pub fn parse_webhook_url(text: &str) -> Result<String, String> {
    let url = reqwest::Url::parse(text.trim())
        .map_err(|e| format!("{text:?} is not a URL ({e}); give an http:// or https:// URL"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
        return Err(format!(
            "{text:?}: webhooks are POSTed over HTTP; give an http:// or https:// URL with a host"
        ));
    }
    Ok(url.to_string())
}

/// Export the keys of a TOML config file as `RUSSET_*` environment variables that are not set
/// yet, so clap sees them with the right precedence. Call before any thread is started.
pub fn load_config_file(path: &std::path::Path) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("reading config {}: {e}", path.display()))?;
    let table: toml::Table = text
        .parse()
        .map_err(|e| anyhow::anyhow!("config {} is not valid TOML: {e}", path.display()))?;
    for (key, value) in table {
        let name = format!("RUSSET_{}", key.replace('-', "_").to_ascii_uppercase());
        let text = match value {
            toml::Value::String(s) => s,
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            toml::Value::Array(items) => items
                .iter()
                .map(|v| {
                    v.as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| v.to_string())
                })
                .collect::<Vec<_>>()
                .join(","),
            other => anyhow::bail!("config key {key}: unsupported value {other}"),
        };
        if std::env::var_os(&name).is_none() {
            // SAFETY: called from main before the runtime or any other thread exists.
            unsafe { std::env::set_var(&name, text) };
        }
    }
    Ok(())
}

/// Find `--config FILE` / `--config=FILE` in raw arguments (before clap parses them).
pub fn config_path_from_args(args: &[String]) -> Option<PathBuf> {
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--config" {
            return it.next().map(PathBuf::from);
        }
        if let Some(v) = a.strip_prefix("--config=") {
            return Some(PathBuf::from(v));
        }
    }
    std::env::var_os("RUSSET_CONFIG").map(PathBuf::from)
}

impl std::fmt::Debug for ServeArgs {
    /// Where it listens and keeps its data; never a flag that can hold a secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServeArgs")
            .field("data_dir", &self.data_dir)
            .field("listen", &self.listen)
            .field("admin_listen", &self.admin_listen)
            .field("public_url", &self.public_url)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_sizes_read_binary_units_and_stay_in_range() {
        assert_eq!(parse_log_size("1MB"), Ok(1_048_576));
        assert_eq!(parse_log_size("200KB"), Ok(204_800));
        assert_eq!(parse_log_size("4MB"), Ok(4_194_304));
        assert_eq!(parse_log_size("4 MiB"), Ok(4_194_304));
        assert_eq!(parse_log_size("512k"), Ok(524_288));
        assert_eq!(parse_log_size("300000"), Ok(300_000));
        for bad in [
            "199KB",
            "5MB",
            "100",
            "0",
            "",
            "MB",
            "1GB",
            "-1MB",
            "99999999999999999999",
        ] {
            let e = parse_log_size(bad).expect_err(bad);
            assert!(e.contains("200KB to 4MB"), "{bad}: {e}");
        }
    }

    #[test]
    fn webhook_urls_must_be_http_or_https_with_a_host() {
        assert_eq!(
            parse_webhook_url("https://hooks.example.com/mdm?x=1"),
            Ok("https://hooks.example.com/mdm?x=1".to_string())
        );
        assert_eq!(
            parse_webhook_url("http://127.0.0.1:9000"),
            Ok("http://127.0.0.1:9000/".to_string())
        );
        for bad in [
            "ftp://example.com/",
            "example.com/hook",
            "file:///tmp/x",
            "",
            "http://",
        ] {
            let e = parse_webhook_url(bad).expect_err(bad);
            assert!(e.contains("http://"), "{bad}: {e}");
        }
    }
}
