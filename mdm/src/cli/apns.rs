//! `russet push`, `russet apns status|csr|import`, `russet vendor sign`.

use super::client::{AdminClient, ClientArgs, urlencode};
use super::table;
use anyhow::Context;
use base64::Engine;
use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::{Value, json};
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct PushCmd {
    #[command(flatten)]
    pub client: ClientArgs,
    pub udid: String,
}

#[derive(Subcommand, Debug)]
pub enum ApnsCmd {
    /// The push certificate: topic, expiry, days left, last APNs refusal.
    Status {
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Generate a key (kept inside Russet) and a CSR to have signed by your MDM vendor.
    Csr {
        #[command(flatten)]
        client: ClientArgs,
        #[arg(long, default_value = "Russet MDM")]
        common_name: String,
        #[arg(long)]
        email: Option<String>,
        #[arg(long)]
        country: Option<String>,
        /// Write the CSR (or, with --sign-with, the upload file) here instead of stdout.
        #[arg(long)]
        out: Option<PathBuf>,
        /// A vendor's Russet (`POST /api/v1/vendor/sign`) to sign the CSR right away.
        #[arg(long)]
        sign_with: Option<String>,
        /// Token for the vendor's API.
        #[arg(long, env = "RUSSET_VENDOR_TOKEN", hide_env_values = true)]
        vendor_token: Option<String>,
    },
    /// Import the push certificate: PEM (with --key; a PEM holding both certificate and key, as
    /// `openssl pkcs12 -nodes` writes; or alone for a CSR made by Russet) or PKCS#12.
    Import {
        #[command(flatten)]
        client: ClientArgs,
        file: PathBuf,
        #[arg(long)]
        key: Option<PathBuf>,
        #[arg(long, env = "RUSSET_PFX_PASSWORD", hide_env_values = true)]
        pfx_password: Option<String>,
        /// Accept a certificate with a different topic: every enrolled Mac must then re-enroll.
        #[arg(long)]
        force_new_topic: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum VendorCmd {
    /// Sign a customer's push CSR offline; writes the file to upload to Apple's portal.
    Sign {
        #[arg(long)]
        csr: PathBuf,
        #[arg(long)]
        vendor_cert: PathBuf,
        #[arg(long)]
        vendor_key: PathBuf,
        /// Apple's WWDR intermediate and root, PEM.
        #[arg(long)]
        chain: Option<PathBuf>,
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

fn read(path: &PathBuf) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}

fn emit(text: &str, out: Option<&PathBuf>) -> anyhow::Result<()> {
    match out {
        Some(p) => {
            std::fs::write(p, text).with_context(|| format!("writing {}", p.display()))?;
            eprintln!("Wrote {}", p.display());
        }
        None => println!("{}", text.trim_end()),
    }
    Ok(())
}

pub async fn push(cmd: PushCmd) -> anyhow::Result<()> {
    let api = AdminClient::from_args(&cmd.client)?;
    let v = api
        .call(
            Method::POST,
            &format!("/api/v1/devices/{}/push", urlencode(&cmd.udid)),
            None,
        )
        .await?;
    if cmd.client.json {
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!(
            "Push to {}: {} {}",
            cmd.udid,
            table::cell(&v, "/push"),
            match &v["detail"] {
                Value::Null => String::new(),
                d => d.to_string(),
            }
        );
    }
    Ok(())
}

pub async fn apns(cmd: ApnsCmd) -> anyhow::Result<()> {
    match cmd {
        ApnsCmd::Status { client } => {
            let v = AdminClient::from_args(&client)?
                .call(Method::GET, "/api/v1/apns", None)
                .await?;
            if client.json {
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else if v["configured"] != json!(true) {
                println!(
                    "No push certificate. Create a CSR with `russet apns csr`, or import one."
                );
            } else {
                let c = &v["certificate"];
                for (label, ptr) in [
                    ("Topic", "/topic"),
                    ("Subject", "/subject"),
                    ("Expires", "/not_after"),
                    ("Days left", "/days_left"),
                    ("Warning", "/warning"),
                    ("APNs alert", "/alert"),
                    ("Imported", "/imported_at"),
                ] {
                    println!("{label:<12}{}", table::cell(c, ptr));
                }
            }
            Ok(())
        }
        ApnsCmd::Csr {
            client,
            common_name,
            email,
            country,
            out,
            sign_with,
            vendor_token,
        } => {
            let api = AdminClient::from_args(&client)?;
            let v = api
                .call(
                    Method::POST,
                    "/api/v1/apns/csr",
                    Some(&json!({"common_name": common_name, "email": email, "country": country})),
                )
                .await?;
            let csr = v["csr_pem"].as_str().unwrap_or_default().to_string();
            let Some(url) = sign_with else {
                return emit(&csr, out.as_ref());
            };
            let vendor = AdminClient::new(
                &url,
                vendor_token
                    .context("--sign-with needs --vendor-token (or RUSSET_VENDOR_TOKEN)")?,
            )?;
            let signed = vendor
                .call(
                    Method::POST,
                    "/api/v1/vendor/sign",
                    Some(&json!({"csr_pem": csr})),
                )
                .await?;
            eprintln!(
                "Signed by the vendor: upload this file at https://identity.apple.com/pushcert"
            );
            emit(
                signed["upload_file"].as_str().unwrap_or_default(),
                out.as_ref(),
            )
        }
        ApnsCmd::Import {
            client,
            file,
            key,
            pfx_password,
            force_new_topic,
        } => {
            let bytes = read(&file)?;
            let body = if bytes.windows(11).any(|w| w == b"-----BEGIN ") {
                let key_pem = key.as_ref().map(read).transpose()?;
                json!({
                    "certificate_pem": String::from_utf8_lossy(&bytes),
                    "key_pem": key_pem.map(|k| String::from_utf8_lossy(&k).into_owned()),
                    "force_new_topic": force_new_topic,
                })
            } else {
                json!({
                    "pkcs12": base64::engine::general_purpose::STANDARD.encode(&bytes),
                    "password": pfx_password.unwrap_or_default(),
                    "force_new_topic": force_new_topic,
                })
            };
            let v = AdminClient::from_args(&client)?
                .call(Method::PUT, "/api/v1/apns/certificate", Some(&body))
                .await?;
            if client.json {
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                if let Some(w) = v["warning"].as_str() {
                    eprintln!("WARNING: {w}");
                }
                println!(
                    "Imported push certificate for topic {} (expires {}).",
                    table::cell(&v, "/certificate/topic"),
                    table::cell(&v, "/certificate/not_after")
                );
            }
            Ok(())
        }
    }
}

pub fn vendor(cmd: VendorCmd) -> anyhow::Result<()> {
    let VendorCmd::Sign {
        csr,
        vendor_cert,
        vendor_key,
        chain,
        out,
    } = cmd;
    let chain = chain.as_ref().map(read).transpose()?.unwrap_or_default();
    let signer = crate::push::certificate::VendorSigner::load(
        &read(&vendor_cert)?,
        &read(&vendor_key)?,
        &chain,
    )?;
    let upload = signer.sign(&read(&csr)?)?;
    emit(&upload, out.as_ref())
}
