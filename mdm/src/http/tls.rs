//! TLS on `--listen`: the operator's certificate (PEM chain + key, or PKCS#12), checked against
//! the `--public-url` host and the clock, or a development certificate issued by Russet's CA.
//! The listener requests (does not require) a client certificate; handlers read the verified
//! peer certificate from the connection (axum-server's `TlsInfo`) — see `http::identity`.

use anyhow::{Context, bail};
use openssl::asn1::Asn1Time;
use openssl::pkcs12::Pkcs12;
use openssl::pkey::{PKey, Private};
use openssl::ssl::{SslAcceptor, SslMethod, SslVerifyMode};
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::{X509, X509StoreContext};
use russet_certs::ca::CertificateAuthority;
use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

/// Validity of the generated development certificate (Apple refuses TLS certs over 825 days).
const DEV_CERT_VALIDITY: Duration = Duration::from_secs(397 * 24 * 3600);

/// A server certificate with its key and the intermediates to send.
pub struct ServerIdentity {
    pub cert: X509,
    pub key: PKey<Private>,
    pub chain: Vec<X509>,
    /// Generated from Russet's CA (development).
    pub generated: bool,
}

/// Which TLS flags were given, for `serve` and `doctor`.
pub struct TlsFiles<'a> {
    pub cert: Option<&'a Path>,
    pub key: Option<&'a Path>,
    pub pfx: Option<&'a Path>,
    pub pfx_password: Option<&'a str>,
}

/// The operator's certificate, if one was configured.
pub fn load_operator(files: &TlsFiles<'_>) -> anyhow::Result<Option<ServerIdentity>> {
    match (files.cert, files.key, files.pfx) {
        (Some(_), _, Some(_)) => bail!("give either --tls-cert/--tls-key or --tls-pfx, not both"),
        (Some(cert), Some(key), None) => {
            load_pem_identity(cert, key, "--tls-cert", "--tls-key").map(Some)
        }
        (Some(_), None, None) => bail!("--tls-cert needs --tls-key"),
        (None, Some(_), _) => bail!("--tls-key needs --tls-cert"),
        (None, None, Some(pfx)) => {
            russet_certs::scep::ensure_legacy_provider();
            let der = std::fs::read(pfx)
                .with_context(|| format!("reading --tls-pfx {}", pfx.display()))?;
            let parsed = Pkcs12::from_der(&der)
                .with_context(|| format!("--tls-pfx {} is not PKCS#12", pfx.display()))?
                .parse2(files.pfx_password.unwrap_or(""))
                .context("--tls-pfx: cannot open (wrong --tls-pfx-password?)")?;
            let cert = parsed.cert.context("--tls-pfx holds no certificate")?;
            let key = parsed.pkey.context("--tls-pfx holds no private key")?;
            let chain = parsed
                .ca
                .map(|s| s.into_iter().collect())
                .unwrap_or_default();
            Ok(Some(ServerIdentity {
                cert,
                key,
                chain,
                generated: false,
            }))
        }
        (None, None, None) => Ok(None),
    }
}

/// A PEM certificate chain (leaf first) and its PEM private key; each refusal names its flag.
pub fn load_pem_identity(
    cert: &Path,
    key: &Path,
    cert_flag: &str,
    key_flag: &str,
) -> anyhow::Result<ServerIdentity> {
    let pem =
        std::fs::read(cert).with_context(|| format!("reading {cert_flag} {}", cert.display()))?;
    let mut certs = X509::stack_from_pem(&pem)
        .with_context(|| format!("{cert_flag} {} is not a PEM chain", cert.display()))?;
    if certs.is_empty() {
        bail!("{cert_flag} {} holds no certificate", cert.display());
    }
    let leaf = certs.remove(0);
    let key_pem =
        std::fs::read(key).with_context(|| format!("reading {key_flag} {}", key.display()))?;
    let key = PKey::private_key_from_pem(&key_pem)
        .with_context(|| format!("{key_flag} {} is not a PEM private key", key.display()))?;
    Ok(ServerIdentity {
        cert: leaf,
        key,
        chain: certs,
        generated: false,
    })
}

/// The certificate must name `host` (subjectAltName, or the CN when there is none) and be
/// within its validity period.
pub fn check_certificate(cert: &X509, host: &str) -> Result<(), String> {
    let now = Asn1Time::days_from_now(0).map_err(|e| e.to_string())?;
    if cert.not_after() < now {
        return Err(format!(
            "the TLS certificate expired on {}",
            cert.not_after()
        ));
    }
    if cert.not_before() > now {
        return Err(format!(
            "the TLS certificate is not valid before {}",
            cert.not_before()
        ));
    }
    if !matches_host(cert, host) {
        return Err(format!(
            "the TLS certificate does not name the --public-url host {host:?} (names: {})",
            names(cert).join(", ")
        ));
    }
    Ok(())
}

/// The DNS names and IP addresses a certificate's subjectAltName lists.
pub fn names(cert: &X509) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(sans) = cert.subject_alt_names() {
        for n in &sans {
            if let Some(d) = n.dnsname() {
                out.push(d.to_string());
            } else if let Some(ip) = n.ipaddress() {
                out.push(ip_text(ip));
            }
        }
    }
    out
}

fn ip_text(b: &[u8]) -> String {
    match b.len() {
        4 => IpAddr::from(<[u8; 4]>::try_from(b).unwrap_or([0; 4])).to_string(),
        16 => IpAddr::from(<[u8; 16]>::try_from(b).unwrap_or([0; 16])).to_string(),
        _ => hex::encode(b),
    }
}

fn matches_host(cert: &X509, host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let host_ip: Option<IpAddr> = host.parse().ok();
    let host_lc = host.to_ascii_lowercase();
    let dns_matches = |pattern: &str| {
        let p = pattern.to_ascii_lowercase();
        match p.strip_prefix("*.") {
            Some(rest) => host_lc
                .split_once('.')
                .is_some_and(|(first, tail)| !first.is_empty() && tail == rest),
            None => p == host_lc,
        }
    };
    if let Some(sans) = cert.subject_alt_names() {
        return sans
            .iter()
            .any(|n| match (host_ip, n.dnsname(), n.ipaddress()) {
                (Some(ip), _, Some(b)) => ip_text(b) == ip.to_string(),
                (None, Some(d), _) => dns_matches(d),
                _ => false,
            });
    }
    host_ip.is_none()
        && cert
            .subject_name()
            .entries_by_nid(openssl::nid::Nid::COMMONNAME)
            .filter_map(|e| {
                std::str::from_utf8(e.data().as_slice())
                    .ok()
                    .map(str::to_string)
            })
            .any(|cn| dns_matches(&cn))
}

/// A development certificate from Russet's CA for the public host, 127.0.0.1 and localhost.
pub fn dev_certificate(ca: &CertificateAuthority, host: &str) -> anyhow::Result<ServerIdentity> {
    let mut hosts = vec![
        host.trim_start_matches('[')
            .trim_end_matches(']')
            .to_string(),
    ];
    for extra in ["127.0.0.1", "localhost"] {
        if !hosts.iter().any(|h| h == extra) {
            hosts.push(extra.to_string());
        }
    }
    let (cert, key) = ca
        .issue_tls_server_certificate(&hosts, DEV_CERT_VALIDITY)
        .context("issuing the development TLS certificate")?;
    Ok(ServerIdentity {
        cert,
        key,
        chain: Vec::new(),
        generated: true,
    })
}

/// Is the certificate's chain trusted by the system roots? If not, the enrollment profile must
/// carry the root, or the Mac cannot reach the server to enroll (Apple, "Managing
/// certificates": trust payloads in the same profile as the MDM payload install first).
/// Returns the root to embed, when one is known.
pub fn private_root(id: &ServerIdentity, ca: &CertificateAuthority) -> Option<X509> {
    if id.generated {
        return Some(ca.cert().to_owned());
    }
    if publicly_trusted(id) {
        return None;
    }
    if let Some(last) = id.chain.last()
        && last.issued(last) == openssl::x509::X509VerifyResult::OK
    {
        return Some(last.clone());
    }
    let top = id.chain.last().unwrap_or(&id.cert);
    if ca.cert().issued(top) == openssl::x509::X509VerifyResult::OK {
        return Some(ca.cert().to_owned());
    }
    tracing::warn!(
        "the TLS certificate does not chain to a system root and its root is not in \
         --tls-cert: Macs must trust that root before they can enroll"
    );
    None
}

fn publicly_trusted(id: &ServerIdentity) -> bool {
    let check = || -> Result<bool, openssl::error::ErrorStack> {
        let mut b = X509StoreBuilder::new()?;
        b.set_default_paths()?;
        let store = b.build();
        let mut chain = openssl::stack::Stack::new()?;
        for c in &id.chain {
            chain.push(c.clone())?;
        }
        let mut ctx = X509StoreContext::new()?;
        ctx.init(&store, &id.cert, &chain, |c| c.verify_cert())
    };
    check().unwrap_or(false)
}

/// The TLS acceptor: the server identity; a client certificate is requested, not required, and
/// accepted here whatever it is — handlers verify it against the device trust like any other
/// identity source. `client_cas` are advertised as acceptable issuers.
pub fn acceptor(id: &ServerIdentity, client_cas: &[X509]) -> anyhow::Result<SslAcceptor> {
    let mut b = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server())?;
    b.set_certificate(&id.cert)?;
    for c in &id.chain {
        b.add_extra_chain_cert(c.clone())?;
    }
    b.set_private_key(&id.key)?;
    b.check_private_key()
        .context("the TLS private key does not match the certificate")?;
    for ca in client_cas {
        b.add_client_ca(ca)?;
    }
    b.set_session_id_context(b"russet-device")?;
    b.set_verify_callback(SslVerifyMode::PEER, |_preverify, _ctx| true);
    Ok(b.build())
}

/// A TLS acceptor that asks for no client certificate (the admin listener: admins present a
/// token, and a browser would otherwise offer to pick a certificate).
pub fn server_acceptor(id: &ServerIdentity) -> anyhow::Result<SslAcceptor> {
    let mut b = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server())?;
    b.set_certificate(&id.cert)?;
    for c in &id.chain {
        b.add_extra_chain_cert(c.clone())?;
    }
    b.set_private_key(&id.key)?;
    b.check_private_key()
        .context("the TLS private key does not match the certificate")?;
    Ok(b.build())
}

/// The verified-later TLS client certificate (DER) of the connection, as a request extension.
/// (axum-server's own `TlsInfo` reads OpenSSL's peer chain, which on the server side omits the
/// client's leaf certificate, so a Mac that sends only its identity would look anonymous.)
#[derive(Clone, Debug)]
pub struct PeerCertificate(pub Option<Vec<u8>>);

/// axum-server's OpenSSL acceptor plus the [`PeerCertificate`] extension on every request.
#[derive(Clone)]
pub struct PeerCertAcceptor(pub axum_server::tls_openssl::OpenSSLAcceptor);

impl<I, S> axum_server::accept::Accept<I, S> for PeerCertAcceptor
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    S: Send + 'static,
{
    type Stream = tokio_openssl::SslStream<I>;
    type Service = axum::middleware::AddExtension<axum_server::tls::TlsService<S>, PeerCertificate>;
    type Future =
        futures::future::BoxFuture<'static, std::io::Result<(Self::Stream, Self::Service)>>;

    fn accept(&self, stream: I, service: S) -> Self::Future {
        use tower::Layer;
        let fut = self.0.accept(stream, service);
        Box::pin(async move {
            let (stream, service) = fut.await?;
            let peer = stream
                .ssl()
                .peer_certificate()
                .and_then(|c| c.to_der().ok());
            Ok((
                stream,
                axum::Extension(PeerCertificate(peer)).layer(service),
            ))
        })
    }
}
