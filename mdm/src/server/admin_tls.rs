//! How the admin API is served: HTTPS with `--admin-tls-cert/--admin-tls-key`, plain HTTP on a
//! loopback address, or plain HTTP elsewhere only when the operator says so
//! (`--admin-insecure-http`, e.g. behind a TLS-terminating proxy). Admin tokens are bearer
//! secrets: on plain HTTP across a network anyone on the path may copy one (docs/security.md).

use crate::config::ServeArgs;
use crate::http::tls::{self, ServerIdentity};
use anyhow::{Context, bail};
use std::net::ToSocketAddrs;

/// What `serve` will do on `--admin-listen`.
pub enum AdminTransport {
    /// HTTPS with the operator's certificate.
    Tls(ServerIdentity),
    /// Plain HTTP on a loopback address: only this host can reach it.
    LoopbackHttp,
    /// Plain HTTP on a reachable address, as the operator asked.
    InsecureHttp,
}

impl AdminTransport {
    pub fn scheme(&self) -> &'static str {
        match self {
            AdminTransport::Tls(_) => "https",
            _ => "http",
        }
    }
}

/// Decide, before anything is opened or bound. Refuses a non-loopback `--admin-listen` in plain
/// HTTP without `--admin-insecure-http`, and an unreadable or mismatched certificate pair.
pub fn admin_transport(args: &ServeArgs) -> anyhow::Result<AdminTransport> {
    match (&args.admin_tls_cert, &args.admin_tls_key) {
        (Some(cert), Some(key)) => {
            let id = tls::load_pem_identity(cert, key, "--admin-tls-cert", "--admin-tls-key")?;
            // Fail at start, not at the first handshake, on a key that is not the cert's.
            tls::server_acceptor(&id).context("--admin-tls-cert/--admin-tls-key")?;
            return Ok(AdminTransport::Tls(id));
        }
        (Some(_), None) => bail!("--admin-tls-cert needs --admin-tls-key"),
        (None, Some(_)) => bail!("--admin-tls-key needs --admin-tls-cert"),
        (None, None) => {}
    }
    if is_loopback(&args.admin_listen)? {
        return Ok(AdminTransport::LoopbackHttp);
    }
    if args.admin_insecure_http {
        return Ok(AdminTransport::InsecureHttp);
    }
    bail!(
        "refusing to serve the admin API in plain HTTP on {}, which other hosts can reach: \
         admin tokens would cross the network in clear text. Give --admin-tls-cert and \
         --admin-tls-key (HTTPS), listen on 127.0.0.1, or pass --admin-insecure-http if a \
         TLS-terminating proxy is in front",
        args.admin_listen
    )
}

/// Every address `--admin-listen` names is a loopback one (`127.0.0.1:8080`, `[::1]:0`,
/// `localhost:8080`). `0.0.0.0` and `[::]` listen everywhere, so they are not.
fn is_loopback(listen: &str) -> anyhow::Result<bool> {
    let addrs: Vec<_> = listen
        .to_socket_addrs()
        .with_context(|| format!("--admin-listen {listen:?} is not an address:port"))?
        .collect();
    Ok(!addrs.is_empty() && addrs.iter().all(|a| a.ip().is_loopback()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Serve {
        #[command(flatten)]
        args: ServeArgs,
    }

    fn transport(flags: &[&str]) -> anyhow::Result<AdminTransport> {
        let argv = ["serve"].iter().chain(flags).copied();
        admin_transport(&Serve::try_parse_from(argv).expect("flags parse").args)
    }

    #[test]
    fn plain_http_is_for_loopback_unless_the_operator_insists() {
        for listen in ["127.0.0.1:8080", "[::1]:0", "localhost:0"] {
            let t = transport(&["--admin-listen", listen]).expect(listen);
            assert!(matches!(t, AdminTransport::LoopbackHttp), "{listen}");
        }
        for listen in ["0.0.0.0:8080", "[::]:8080", "192.0.2.10:8080"] {
            let e = transport(&["--admin-listen", listen]).err().expect(listen);
            let msg = e.to_string();
            assert!(
                msg.contains("--admin-insecure-http") && msg.contains(listen),
                "{msg}"
            );
            let t = transport(&["--admin-listen", listen, "--admin-insecure-http"]).expect(listen);
            assert!(matches!(t, AdminTransport::InsecureHttp));
            assert_eq!(t.scheme(), "http");
        }
    }

    #[test]
    fn half_a_certificate_pair_is_refused() {
        let e = transport(&["--admin-tls-cert", "/nonexistent.pem"])
            .err()
            .expect("refused");
        assert!(e.to_string().contains("--admin-tls-key"), "{e}");
        let e = transport(&["--admin-tls-key", "/nonexistent.pem"])
            .err()
            .expect("refused");
        assert!(e.to_string().contains("--admin-tls-cert"), "{e}");
        let e = transport(&[
            "--admin-tls-cert",
            "/nonexistent.pem",
            "--admin-tls-key",
            "/k",
        ])
        .err()
        .expect("refused");
        assert!(format!("{e:#}").contains("--admin-tls-cert"), "{e:#}");
    }
}
