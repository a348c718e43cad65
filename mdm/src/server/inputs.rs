//! What `serve` reads from the operator: files named by flags (KEK, device CAs, vendor
//! credentials, TLS) and the public host name. Each refusal names the flag.

use crate::config::ServeArgs;
use crate::http;
use crate::push::certificate::VendorSigner;
use crate::secrets::SecretBox;
use anyhow::{Context, bail};
use axum::http::HeaderName;
use russet_certs::DeviceTrust;
use russet_certs::ca::CertificateAuthority;
use std::net::SocketAddr;
use std::sync::Arc;

const KEK_FILE: &str = "kek";

/// The key-encryption key: `--kek`, else `<data-dir>/kek` (created on first start).
pub(super) fn load_kek(args: &ServeArgs) -> anyhow::Result<SecretBox> {
    if let Some(hex) = &args.kek {
        return SecretBox::from_hex(hex).context("--kek / RUSSET_KEK");
    }
    let path = args.data_dir.join(KEK_FILE);
    let (kek, created) = SecretBox::load_or_create(&path)?;
    if created {
        tracing::warn!(
            path = %path.display(),
            "created a new key-encryption key: back it up; without it escrowed secrets cannot be read"
        );
    }
    Ok(kek)
}

/// Who may sign device requests: Russet's own SCEP CA, plus any `--device-ca` (identities
/// issued elsewhere, e.g. by another SCEP server during a migration).
pub(super) fn device_trust(
    args: &ServeArgs,
    ca: &CertificateAuthority,
) -> anyhow::Result<DeviceTrust> {
    let mut trust = DeviceTrust::from_pem(&ca.cert_pem()?)?;
    for p in &args.device_ca {
        let pem =
            std::fs::read(p).with_context(|| format!("reading --device-ca {}", p.display()))?;
        trust
            .add_pem(&pem)
            .with_context(|| format!("parsing --device-ca {}", p.display()))?;
    }
    tracing::info!(
        extra_cas = args.device_ca.len(),
        "device identities are trusted when issued by Russet's SCEP CA{}",
        if args.device_ca.is_empty() {
            ""
        } else {
            " or a --device-ca"
        }
    );
    Ok(trust)
}

/// The vendor's CSR-signing credentials, when this server runs the broker.
pub(super) fn load_vendor(args: &ServeArgs) -> anyhow::Result<Option<Arc<VendorSigner>>> {
    let (Some(cert), Some(key)) = (&args.vendor_cert, &args.vendor_key) else {
        if args.vendor_cert.is_some() || args.vendor_key.is_some() {
            bail!("--vendor-cert and --vendor-key go together");
        }
        return Ok(None);
    };
    let chain = match &args.vendor_chain {
        Some(p) => {
            std::fs::read(p).with_context(|| format!("reading --vendor-chain {}", p.display()))?
        }
        None => Vec::new(),
    };
    Ok(Some(Arc::new(VendorSigner::load(
        &std::fs::read(cert)
            .with_context(|| format!("reading --vendor-cert {}", cert.display()))?,
        &std::fs::read(key).with_context(|| format!("reading --vendor-key {}", key.display()))?,
        &chain,
    )?)))
}

/// Extra trust for `--apns-url` (a private fake APNs in tests and demos).
pub(super) fn apns_extra_ca(args: &ServeArgs) -> anyhow::Result<Option<Vec<u8>>> {
    args.apns_ca
        .as_ref()
        .map(|p| std::fs::read(p).with_context(|| format!("reading --apns-ca {}", p.display())))
        .transpose()
}

pub(super) fn tls_files(args: &ServeArgs) -> http::tls::TlsFiles<'_> {
    http::tls::TlsFiles {
        cert: args.tls_cert.as_deref(),
        key: args.tls_key.as_deref(),
        pfx: args.tls_pfx.as_deref(),
        pfx_password: args.tls_pfx_password.as_deref(),
    }
}

pub(super) fn client_cert_header(args: &ServeArgs) -> anyhow::Result<Option<HeaderName>> {
    args.client_cert_header
        .as_deref()
        .map(|n| HeaderName::try_from(n).with_context(|| format!("--client-cert-header {n:?}")))
        .transpose()
}

/// The host of `--public-url`; by default the listen address when it names one, else the
/// machine's hostname.
pub fn public_host(args: &ServeArgs, bound: Option<SocketAddr>) -> anyhow::Result<String> {
    if let Some(url) = &args.public_url {
        let rest = url
            .strip_prefix("https://")
            .or_else(|| url.strip_prefix("http://"))
            .with_context(|| format!("--public-url {url:?} must start with https://"))?;
        let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
        let host = if let Some(v6) = authority.strip_prefix('[') {
            v6.split(']').next().unwrap_or("").to_string()
        } else {
            authority.split(':').next().unwrap_or("").to_string()
        };
        if host.is_empty() {
            bail!("--public-url {url:?} has no host");
        }
        return Ok(host);
    }
    let ip = bound
        .map(|a| a.ip())
        .or_else(|| args.listen.parse::<SocketAddr>().ok().map(|a| a.ip()));
    match ip {
        Some(ip) if !ip.is_unspecified() => Ok(ip.to_string()),
        _ => Ok(hostname()),
    }
}

/// The base URL written into enrollment and DEP profiles: `--public-url`, else
/// `https://<host>:<device port>`.
pub(super) fn public_url(args: &ServeArgs, host: &str, device_addr: SocketAddr) -> String {
    match &args.public_url {
        Some(u) => u.trim_end_matches('/').to_string(),
        None if host.contains(':') => format!("https://[{host}]:{}", device_addr.port()),
        None => format!("https://{host}:{}", device_addr.port()),
    }
}

/// The machine's host name (Linux `/proc`, else `$HOSTNAME`, else `localhost`).
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}
