//! Identities for the simulated Macs, as `mdmclient` gets them: issued by the server's own
//! `/scep` under the harness's SCEP CA, and cached between runs (the CA, a pool of key pairs,
//! and the issued certificates in order).

use openssl::pkey::{PKey, Private};
use openssl::x509::X509;
use russet_certs::scep::PkiStatus;
use russet_certs::scep::client::{ClientOptions, build_pkcs_req, parse_cert_rep};
use russet_certs::testing::{DeviceIdentity, TestCa};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The static SCEP challenge the harness gives the server (`--scep-challenge`).
pub const BENCH_SCEP_CHALLENGE: &str = "russet-bench";

/// The harness's SCEP CA, created once and kept in `dir/scep-ca.pem` (certificate then key):
/// the server imports it (`--scep-ca-cert/--scep-ca-key`), so identities it issued in an earlier
/// run stay valid for the next one.
pub fn cached_scep_ca(dir: &Path) -> anyhow::Result<TestCa> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join("scep-ca.pem");
    if let Ok(pem) = std::fs::read(&path) {
        return Ok(TestCa {
            cert: X509::from_pem(&pem)?,
            key: PKey::private_key_from_pem(&pem)?,
        });
    }
    let ca = TestCa::new("Russet bench SCEP CA");
    let mut pem = ca.cert.to_pem()?;
    pem.extend(ca.key.private_key_to_pem_pkcs8()?);
    std::fs::write(&path, pem)?;
    Ok(ca)
}

/// A pool of RSA-2048 key pairs shared by the simulated Macs (Mac `i` uses key `i % pool`).
/// Generating 100k RSA keys would take far longer than the runs it serves; each Mac still gets
/// its own certificate from the server's SCEP endpoint, and the server never sees the keys.
pub fn cached_key_pool(dir: &Path, size: usize) -> anyhow::Result<Vec<PKey<Private>>> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join("key-pool.pem");
    let mut keys = Vec::new();
    if let Ok(pem) = std::fs::read_to_string(&path) {
        for block in pem.split_inclusive("-----END PRIVATE KEY-----\n") {
            if block.contains("BEGIN PRIVATE KEY") {
                keys.push(PKey::private_key_from_pem(block.as_bytes())?);
            }
        }
    }
    if keys.is_empty() {
        let mut pem = Vec::new();
        for _ in 0..size.max(1) {
            let key = PKey::from_rsa(openssl::rsa::Rsa::generate(2048)?)?;
            pem.extend(key.private_key_to_pem_pkcs8()?);
            keys.push(key);
        }
        std::fs::write(&path, pem)?;
    }
    Ok(keys)
}

/// Where the certificates issued under `ca` are cached: one PEM file, Mac `i` = certificate `i`.
/// Named after the CA's fingerprint, so a new CA never meets certificates of an old one.
pub fn issued_cache_path(dir: &Path, ca: &TestCa) -> anyhow::Result<PathBuf> {
    let fp: String = openssl::sha::sha256(&ca.cert.to_der()?)[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    Ok(dir.join(format!("issued-{fp}.pem")))
}

/// The cached certificates (at most `n`), paired with their pool keys.
pub fn load_issued(
    path: &Path,
    keys: &[PKey<Private>],
    n: usize,
) -> anyhow::Result<Vec<DeviceIdentity>> {
    let certs = match std::fs::read(path) {
        Ok(pem) => X509::stack_from_pem(&pem)?,
        Err(_) => Vec::new(),
    };
    let mut out = Vec::with_capacity(n.min(certs.len()));
    for (i, cert) in certs.into_iter().take(n).enumerate() {
        let key = keys[i % keys.len()].clone();
        let public = cert.public_key()?;
        anyhow::ensure!(
            public.public_eq(&key),
            "cached certificate {i} does not match its pool key (delete {})",
            path.display()
        );
        out.push(DeviceIdentity { cert, key });
    }
    Ok(out)
}

/// Obtain identities `from..to` from the server's `/scep` (PKCSReq with the static challenge),
/// `concurrency` at a time, as a Mac's `mdmclient` does. Returns them in order.
pub async fn issue_over_scep(
    scep_url: &str,
    ca_cert: &X509,
    keys: &[PKey<Private>],
    range: std::ops::Range<usize>,
    concurrency: usize,
) -> anyhow::Result<Vec<DeviceIdentity>> {
    let http = reqwest::Client::new();
    let sem = Arc::new(tokio::sync::Semaphore::new(concurrency.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    for i in range.clone() {
        let (http, sem, url) = (http.clone(), sem.clone(), scep_url.to_string());
        let (ca, key) = (ca_cert.clone(), keys[i % keys.len()].clone());
        tasks.spawn(async move {
            let _permit = sem.acquire().await?;
            let cn = format!("bench-mac-{i}");
            let req = build_pkcs_req(
                &ca,
                &key,
                &cn,
                Some(BENCH_SCEP_CHALLENGE),
                ClientOptions::default(),
            )?;
            let resp = http
                .post(format!("{url}?operation=PKIOperation"))
                .body(req.der.clone())
                .send()
                .await?;
            let status = resp.status();
            let body = resp.bytes().await?;
            anyhow::ensure!(status.is_success(), "SCEP answered {status}");
            let rep = parse_cert_rep(&body, &req.signer_cert, &req.signer_key)?;
            anyhow::ensure!(
                rep.status == PkiStatus::Success,
                "SCEP refused: {:?} {:?}",
                rep.status,
                rep.fail_info
            );
            let cert = rep
                .issued
                .ok_or_else(|| anyhow::anyhow!("CertRep without a certificate"))?;
            Ok::<_, anyhow::Error>((i, DeviceIdentity { cert, key }))
        });
    }
    let mut out: Vec<Option<DeviceIdentity>> = (0..range.len()).map(|_| None).collect();
    while let Some(r) = tasks.join_next().await {
        let (i, id) = r??;
        out[i - range.start] = Some(id);
    }
    Ok(out.into_iter().flatten().collect())
}

/// Append issued certificates to the cache file, in order.
pub fn append_issued(path: &Path, ids: &[DeviceIdentity]) -> anyhow::Result<()> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    for id in ids {
        f.write_all(&id.cert.to_pem()?)?;
    }
    f.sync_all()?;
    Ok(())
}
