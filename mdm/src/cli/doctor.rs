//! `russet doctor`: checks what `russet serve` would run with (same flags, environment and
//! config file) and prints one line per check: `ok`, `warn` or `fail`. Exit status is non-zero
//! when any check fails.

use crate::config::ServeArgs;
use crate::http::tls::{self, TlsFiles};
use crate::timefmt::now_ms;
use std::fmt;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Ok,
    Warn,
    Fail,
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Level::Ok => "ok  ",
            Level::Warn => "warn",
            Level::Fail => "fail",
        })
    }
}

pub struct Check {
    pub level: Level,
    pub name: &'static str,
    pub detail: String,
}

fn check(level: Level, name: &'static str, detail: impl Into<String>) -> Check {
    Check {
        level,
        name,
        detail: detail.into(),
    }
}

const APNS_TIMEOUT: Duration = Duration::from_secs(5);

pub async fn run(args: &ServeArgs) -> anyhow::Result<()> {
    let checks = checks(args).await;
    for c in &checks {
        println!("{}  {:<18} {}", c.level, c.name, c.detail);
    }
    let failed = checks.iter().filter(|c| c.level == Level::Fail).count();
    if failed > 0 {
        anyhow::bail!("{failed} check(s) failed");
    }
    Ok(())
}

/// Every check, in order.
pub async fn checks(args: &ServeArgs) -> Vec<Check> {
    let mut out = vec![
        port_check("listen", &args.listen),
        port_check("admin-listen", &args.admin_listen),
        tls_check(args),
        admin_tls_check(args),
    ];
    out.extend(push_check(args).await);
    out.push(apns_check(args).await);
    out
}

fn port_check(name: &'static str, addr: &str) -> Check {
    let Ok(sock) = addr.parse::<SocketAddr>() else {
        return check(
            Level::Fail,
            name,
            format!("{addr:?} is not an address:port"),
        );
    };
    match std::net::TcpListener::bind(sock) {
        Ok(_) => check(Level::Ok, name, format!("{addr} is free")),
        Err(e) => {
            let probe = if sock.ip().is_unspecified() {
                SocketAddr::from(([127, 0, 0, 1], sock.port()))
            } else {
                sock
            };
            if TcpStream::connect_timeout(&probe, Duration::from_secs(2)).is_ok() {
                check(
                    Level::Ok,
                    name,
                    format!("{addr} is in use and answering (a running server?)"),
                )
            } else {
                check(Level::Fail, name, format!("cannot bind {addr}: {e}"))
            }
        }
    }
}

/// How the admin API will be served: the decision `serve` makes at start.
fn admin_tls_check(args: &ServeArgs) -> Check {
    use crate::server::admin_tls::{AdminTransport, admin_transport};
    match admin_transport(args) {
        Ok(AdminTransport::Tls(id)) => {
            let names = tls::names(&id.cert).join(", ");
            let now = openssl::asn1::Asn1Time::days_from_now(0);
            match now {
                Ok(now) if id.cert.not_after() < now => check(
                    Level::Fail,
                    "admin-tls",
                    format!("--admin-tls-cert expired on {}", id.cert.not_after()),
                ),
                _ => check(
                    Level::Ok,
                    "admin-tls",
                    format!(
                        "HTTPS on {} (certificate names: {names})",
                        args.admin_listen
                    ),
                ),
            }
        }
        Ok(AdminTransport::LoopbackHttp) => check(
            Level::Ok,
            "admin-tls",
            format!(
                "plain HTTP on loopback {}: only this host reaches the admin API",
                args.admin_listen
            ),
        ),
        Ok(AdminTransport::InsecureHttp) => check(
            Level::Warn,
            "admin-tls",
            format!(
                "--admin-insecure-http: plain HTTP on {}; admin tokens cross the network in \
                 clear text unless a TLS proxy is in front",
                args.admin_listen
            ),
        ),
        Err(e) => check(Level::Fail, "admin-tls", format!("{e:#}")),
    }
}

fn tls_check(args: &ServeArgs) -> Check {
    if args.insecure_http {
        return check(
            Level::Ok,
            "tls",
            "--insecure-http: plain HTTP, TLS is the proxy's job",
        );
    }
    let host = match crate::server::public_host(args, None) {
        Ok(h) => h,
        Err(e) => return check(Level::Fail, "tls", format!("{e:#}")),
    };
    let files = TlsFiles {
        cert: args.tls_cert.as_deref(),
        key: args.tls_key.as_deref(),
        pfx: args.tls_pfx.as_deref(),
        pfx_password: args.tls_pfx_password.as_deref(),
    };
    match tls::load_operator(&files) {
        Ok(Some(id)) => match tls::check_certificate(&id.cert, &host) {
            Ok(()) => check(
                Level::Ok,
                "tls",
                format!(
                    "certificate names {host} and expires {}",
                    id.cert.not_after()
                ),
            ),
            Err(e) => check(Level::Fail, "tls", e),
        },
        Ok(None) => check(
            Level::Warn,
            "tls",
            format!(
                "no --tls-cert/--tls-pfx: a development certificate for {host} will be generated"
            ),
        ),
        Err(e) => check(Level::Fail, "tls", format!("{e:#}")),
    }
}

async fn push_check(args: &ServeArgs) -> Vec<Check> {
    let url = args
        .database_url
        .clone()
        .unwrap_or_else(|| format!("sqlite://{}", args.data_dir.join("russet.db").display()));
    if url.starts_with("sqlite:") && !args.data_dir.join("russet.db").exists() {
        return vec![check(
            Level::Warn,
            "push-certificate",
            "no database yet (first start of serve creates it): placeholder push topic in use",
        )];
    }
    let store = match crate::store::open(&url).await {
        Ok(s) => s,
        Err(e) => return vec![check(Level::Fail, "database", format!("{e}"))],
    };
    let mut out = vec![check(Level::Ok, "database", store.backend())];
    match store.active_push_certificate().await {
        Ok(Some(c)) => {
            let now = now_ms();
            if c.not_after <= now {
                out.push(check(
                    Level::Fail,
                    "push-certificate",
                    format!("{} expired", c.topic),
                ));
            } else if c.not_after < now + 30 * 86_400_000 {
                out.push(check(
                    Level::Warn,
                    "push-certificate",
                    format!("{} expires within 30 days: renew it", c.topic),
                ));
            } else {
                out.push(check(Level::Ok, "push-certificate", c.topic));
            }
        }
        Ok(None) => out.push(check(
            Level::Warn,
            "push-certificate",
            crate::service::enrollment::PLACEHOLDER_TOPIC_WARNING,
        )),
        Err(e) => out.push(check(Level::Fail, "push-certificate", format!("{e}"))),
    }
    out.extend(dep_checks(store.as_ref()).await);
    out
}

/// One line per DEP link: token present and not expiring, Apple not refusing it.
async fn dep_checks(store: &dyn crate::store::Store) -> Vec<Check> {
    let links = match store.dep_links().await {
        Ok(l) => l,
        Err(e) => return vec![check(Level::Fail, "dep", format!("{e}"))],
    };
    if links.is_empty() {
        return vec![check(Level::Ok, "dep", "no DEP link configured")];
    }
    let now = now_ms();
    links
        .iter()
        .map(|l| {
            let name = &l.name;
            if l.token_sealed.is_none() {
                return check(
                    Level::Warn,
                    "dep",
                    format!("link {name}: no token yet (russet dep link token {name} FILE)"),
                );
            }
            if let Some(code) = &l.last_error_code
                && l.last_error_at > l.last_ok_at
                && matches!(
                    code.as_str(),
                    "T_C_NOT_SIGNED" | "ACCESS_DENIED" | "UNAUTHORIZED"
                )
            {
                return check(
                    Level::Fail,
                    "dep",
                    format!(
                        "link {name}: Apple refuses it ({code}){}",
                        if code == "T_C_NOT_SIGNED" {
                            ": accept the new terms in Apple Business/School Manager"
                        } else {
                            ": download a new token"
                        }
                    ),
                );
            }
            match crate::dep::views::token_warning(l.token_expiry, now) {
                Some(("expired", msg)) => check(Level::Fail, "dep", format!("link {name}: {msg}")),
                Some((_, msg)) => check(Level::Warn, "dep", format!("link {name}: {msg}")),
                None => check(
                    Level::Ok,
                    "dep",
                    format!(
                        "link {name}: {} ({})",
                        l.org_name.as_deref().unwrap_or("organisation unknown"),
                        l.server_name.as_deref().unwrap_or("-")
                    ),
                ),
            }
        })
        .collect()
}

/// `https://host[:port]/…` → (host, port).
fn host_port(url: &str) -> Option<(String, u16)> {
    let rest = url.strip_prefix("https://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    match authority.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => {
            Some((h.trim_matches(['[', ']']).to_string(), p.parse().ok()?))
        }
        _ => Some((authority.to_string(), 443)),
    }
}

async fn apns_check(args: &ServeArgs) -> Check {
    let Some((host, port)) = host_port(&args.apns_url) else {
        return check(
            Level::Fail,
            "apns",
            format!("--apns-url {:?} is not an https:// URL", args.apns_url),
        );
    };
    let extra_ca = args.apns_ca.clone();
    let target = format!("{host}:{port}");
    let result = tokio::task::spawn_blocking(move || -> Result<(), String> {
        let addr = (host.as_str(), port)
            .to_socket_addrs()
            .map_err(|e| format!("cannot resolve {host}: {e}"))?
            .next()
            .ok_or_else(|| format!("{host} has no address"))?;
        let tcp = TcpStream::connect_timeout(&addr, APNS_TIMEOUT).map_err(|e| e.to_string())?;
        tcp.set_read_timeout(Some(APNS_TIMEOUT))
            .map_err(|e| e.to_string())?;
        tcp.set_write_timeout(Some(APNS_TIMEOUT))
            .map_err(|e| e.to_string())?;
        let mut b = openssl::ssl::SslConnector::builder(openssl::ssl::SslMethod::tls_client())
            .map_err(|e| e.to_string())?;
        if let Some(path) = extra_ca {
            let pem = std::fs::read(&path).map_err(|e| format!("--apns-ca: {e}"))?;
            for c in openssl::x509::X509::stack_from_pem(&pem).map_err(|e| e.to_string())? {
                b.cert_store_mut().add_cert(c).map_err(|e| e.to_string())?;
            }
        }
        b.build()
            .connect(&host, tcp)
            .map(|_| ())
            .map_err(|e| format!("TLS handshake: {e}"))
    })
    .await
    .unwrap_or_else(|e| Err(e.to_string()));
    match result {
        Ok(()) => check(Level::Ok, "apns", format!("TLS handshake with {target}")),
        Err(e) => check(
            Level::Warn,
            "apns",
            format!("{target} not reachable ({e}); offline?"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::dep::{DepLinkRecord, DepTokenUpdate};

    fn link(name: &str) -> DepLinkRecord {
        DepLinkRecord::new(name, "pem".into(), vec![1], 1)
    }

    #[tokio::test]
    async fn dep_links_are_checked_for_token_expiry_and_apple_refusals() {
        let dir = tempfile::tempdir().expect("tmp");
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let store = crate::store::open(&url).await.expect("store");
        let levels = |c: &[Check]| c.iter().map(|c| c.level).collect::<Vec<_>>();
        assert_eq!(levels(&dep_checks(store.as_ref()).await), vec![Level::Ok]);

        for name in ["a", "b", "c"] {
            assert!(store.insert_dep_link(&link(name)).await.expect("insert"));
        }
        let now = now_ms();
        let token = |expiry: i64| DepTokenUpdate {
            token_sealed: vec![2],
            token_expiry: expiry,
            server_uuid: None,
            server_name: Some("Russet".into()),
            org_name: Some("Example".into()),
            admin_id: None,
            account_json: "{}".into(),
            now,
        };
        let year = 365 * 86_400_000;
        store
            .set_dep_link_token("a", &token(now + year))
            .await
            .expect("token");
        store
            .set_dep_link_token("b", &token(now + 3 * 86_400_000))
            .await
            .expect("token");
        // c has no token yet.
        assert_eq!(
            levels(&dep_checks(store.as_ref()).await),
            vec![Level::Ok, Level::Warn, Level::Warn]
        );
        store
            .record_dep_call("a", Some(("T_C_NOT_SIGNED", "terms")), now + 1)
            .await
            .expect("record");
        let checks = dep_checks(store.as_ref()).await;
        assert_eq!(checks[0].level, Level::Fail);
        assert!(
            checks[0].detail.contains("accept the new terms"),
            "{}",
            checks[0].detail
        );
    }
}
