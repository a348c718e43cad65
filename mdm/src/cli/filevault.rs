//! `russet filevault enforce|key|rotate|status`: FileVault through the admin API (contract v2).

use super::client::{AdminClient, ClientArgs, urlencode};
use super::table;
use super::table::print_json;
use clap::Subcommand;
use reqwest::Method;
use serde_json::json;
use std::path::PathBuf;

#[derive(Subcommand, Debug)]
pub enum FileVaultCmd {
    /// Turn FileVault on for a group's Macs, the personal recovery key escrowed with Russet.
    Enforce {
        #[command(flatten)]
        client: ClientArgs,
        #[arg(long)]
        group: String,
        /// Enable at once at the next login instead of at logout (default: at logout).
        #[arg(long)]
        no_defer: bool,
        /// Logins the user may skip before FileVault is forced (0–30; default: never forced).
        #[arg(long)]
        max_bypass: Option<i64>,
        /// FileVaultMaster certificate (PEM) as the institutional recovery key (Intel only).
        #[arg(long)]
        institutional_cert: Option<PathBuf>,
        /// Shown to the user: where the key is escrowed.
        #[arg(long)]
        location: Option<String>,
        /// ForceEnableInSetupAssistant for ADE Macs on macOS 14+.
        #[arg(long)]
        in_setup_assistant: bool,
    },
    /// Escrowed personal recovery keys of a Mac, newest first (the reveal is audited; works
    /// after the Mac was deleted or re-enrolled).
    Key {
        #[command(flatten)]
        client: ClientArgs,
        #[arg(long, required_unless_present = "udid")]
        serial: Option<String>,
        #[arg(long)]
        udid: Option<String>,
        /// Why you need it (written to the audit log).
        #[arg(long)]
        reason: Option<String>,
    },
    /// Rotate a Mac's personal recovery key (RotateFileVaultKey); the new one is escrowed.
    Rotate {
        #[command(flatten)]
        client: ClientArgs,
        /// UDID or serial number.
        device: String,
    },
    /// A Mac's FileVault state: on/off, key escrowed (when, verified), rotations.
    Status {
        #[command(flatten)]
        client: ClientArgs,
        /// UDID or serial number.
        device: String,
    },
}

pub async fn run(cmd: FileVaultCmd) -> anyhow::Result<()> {
    match cmd {
        FileVaultCmd::Enforce {
            client,
            group,
            no_defer,
            max_bypass,
            institutional_cert,
            location,
            in_setup_assistant,
        } => {
            let pem = match institutional_cert {
                Some(p) => Some(
                    std::fs::read_to_string(&p)
                        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", p.display()))?,
                ),
                None => None,
            };
            let body = json!({
                "group": group, "defer": !no_defer, "max_bypass_attempts": max_bypass,
                "institutional_certificate_pem": pem, "location": location,
                "force_in_setup_assistant": in_setup_assistant,
            });
            let api = AdminClient::from_args(&client)?;
            let v = api
                .call(Method::POST, "/api/v1/filevault/enforce", Some(&body))
                .await?;
            if client.json {
                return print_json(&v);
            }
            println!(
                "FileVault enforced on {group}: profile {} version {}{}",
                table::cell(&v, "/profile"),
                table::cell(&v, "/version"),
                if v["new_version"] == json!(true) {
                    " (new)"
                } else {
                    ""
                }
            );
            for n in v["notes"].as_array().map(Vec::as_slice).unwrap_or_default() {
                println!("note: {}", n.as_str().unwrap_or_default());
            }
            Ok(())
        }
        FileVaultCmd::Key {
            client,
            serial,
            udid,
            reason,
        } => {
            let mut q = Vec::new();
            for (k, v) in [("serial", serial), ("udid", udid), ("reason", reason)] {
                if let Some(v) = v {
                    q.push(format!("{k}={}", urlencode(&v)));
                }
            }
            let api = AdminClient::from_args(&client)?;
            let v = api
                .call(
                    Method::GET,
                    &format!("/api/v1/filevault-keys?{}", q.join("&")),
                    None,
                )
                .await?;
            if client.json {
                return print_json(&v);
            }
            let rows: Vec<Vec<String>> = v["keys"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .map(|k| {
                    [
                        "/key",
                        "/state",
                        "/serial_number",
                        "/udid",
                        "/source",
                        "/received_at",
                        "/verified_at",
                        "/superseded_at",
                    ]
                    .iter()
                    .map(|p| table::cell(k, p))
                    .collect()
                })
                .collect();
            table::print(
                &[
                    "KEY",
                    "STATE",
                    "SERIAL",
                    "UDID",
                    "SOURCE",
                    "RECEIVED",
                    "VERIFIED",
                    "SUPERSEDED",
                ],
                &rows,
            );
            Ok(())
        }
        FileVaultCmd::Rotate { client, device } => {
            let api = AdminClient::from_args(&client)?;
            let v = api
                .call(
                    Method::POST,
                    &format!("/api/v1/devices/{}/filevault/rotate", urlencode(&device)),
                    None,
                )
                .await?;
            if client.json {
                return print_json(&v);
            }
            println!(
                "RotateFileVaultKey queued for {device}: command {} (the new key is escrowed \
                 when the Mac answers; `russet filevault key` shows it)",
                table::cell(&v, "/command_uuid")
            );
            Ok(())
        }
        FileVaultCmd::Status { client, device } => {
            let api = AdminClient::from_args(&client)?;
            let v = api
                .call(
                    Method::GET,
                    &format!("/api/v1/devices/{}/filevault", urlencode(&device)),
                    None,
                )
                .await?;
            if client.json {
                return print_json(&v);
            }
            println!(
                "FileVault: {} (collected {})",
                table::cell(&v, "/enabled"),
                table::cell(&v, "/collected_at")
            );
            println!(
                "Recovery key escrowed: {} (received {}, verified {}); {} kept, {} undecryptable",
                table::cell(&v, "/escrowed"),
                table::cell(&v, "/current_key/received_at"),
                table::cell(&v, "/current_key/verified_at"),
                table::cell(&v, "/keys_kept"),
                table::cell(&v, "/undecryptable")
            );
            println!(
                "Institutional key: {}",
                table::cell(&v, "/institutional_key")
            );
            Ok(())
        }
    }
}
