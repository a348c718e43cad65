//! `russet recovery-lock set DEVICE [--password P] | --group G`, `russet recovery-lock clear
//! DEVICE`, `russet recovery-lock show --serial S | --udid U [--reason R]`. DEVICE is a UDID or
//! a serial number.

use super::client::{AdminClient, ClientArgs, urlencode};
use super::table;
use clap::Subcommand;
use reqwest::Method;
use serde_json::{Value, json};
use std::fmt::Write as _;

#[derive(Subcommand, Debug)]
pub enum RecoveryLockCmd {
    /// Set (or rotate) the Recovery Lock password of a Mac, or of every Mac of a group (a
    /// random one per Mac). Escrowed before the command is sent; read it with `show`.
    Set {
        #[command(flatten)]
        client: ClientArgs,
        /// UDID or serial number.
        #[arg(required_unless_present = "group", conflicts_with = "group")]
        device: Option<String>,
        /// 8–64 printable ASCII characters; random (4 groups of 5) when omitted.
        #[arg(long, conflicts_with = "group")]
        password: Option<String>,
        /// Every Mac of this group, each with its own random password.
        #[arg(long)]
        group: Option<String>,
    },
    /// Clear a Mac's Recovery Lock (sent with the escrowed password in effect).
    Clear {
        #[command(flatten)]
        client: ClientArgs,
        /// UDID or serial number.
        device: String,
    },
    /// Escrowed Recovery Lock passwords of a Mac, newest first (the reveal is audited).
    Show {
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
}

pub async fn run(cmd: RecoveryLockCmd) -> anyhow::Result<()> {
    print!("{}", execute(cmd).await?);
    Ok(())
}

/// Run `cmd` and return what it prints.
pub async fn execute(cmd: RecoveryLockCmd) -> anyhow::Result<String> {
    match cmd {
        RecoveryLockCmd::Set {
            client,
            device,
            password,
            group,
        } => {
            let api = AdminClient::from_args(&client)?;
            if let Some(group) = group {
                let v = api
                    .call(
                        Method::POST,
                        "/api/v1/recovery-lock",
                        Some(&json!({"group": group})),
                    )
                    .await?;
                return print_group(&v, client.json);
            }
            let device = device.ok_or_else(|| {
                anyhow::anyhow!("usage: russet recovery-lock set DEVICE | --group G")
            })?;
            let v = api
                .call(
                    Method::POST,
                    &format!("/api/v1/devices/{}/recovery-lock", urlencode(&device)),
                    Some(&json!({"password": password})),
                )
                .await?;
            print_issued(&v, client.json)
        }
        RecoveryLockCmd::Clear { client, device } => {
            let api = AdminClient::from_args(&client)?;
            let v = api
                .call(
                    Method::DELETE,
                    &format!("/api/v1/devices/{}/recovery-lock", urlencode(&device)),
                    None,
                )
                .await?;
            print_issued(&v, client.json)
        }
        RecoveryLockCmd::Show {
            client,
            serial,
            udid,
            reason,
        } => show(&client, serial, udid, reason).await,
    }
}

fn print_issued(v: &Value, json: bool) -> anyhow::Result<String> {
    if json {
        return Ok(format!("{}\n", serde_json::to_string_pretty(v)?));
    }
    let what = if v["kind"] == "clear" {
        "Clear of Recovery Lock"
    } else if v["replaces_current"] == true {
        "New Recovery Lock password (rotation)"
    } else {
        "Recovery Lock password"
    };
    let mut out = String::new();
    writeln!(
        out,
        "{what} queued for {}: command {}",
        table::cell(v, "/udid"),
        table::cell(v, "/command_uuid")
    )?;
    writeln!(
        out,
        "Escrowed; an admin reads it with `russet recovery-lock show --serial {}`.",
        table::cell(v, "/serial_number")
    )?;
    Ok(out)
}

fn print_group(v: &Value, json: bool) -> anyhow::Result<String> {
    if json {
        return Ok(format!("{}\n", serde_json::to_string_pretty(v)?));
    }
    let rows: Vec<Vec<String>> = v["devices"]
        .as_array()
        .map(|a| a.as_slice())
        .unwrap_or_default()
        .iter()
        .map(|d| {
            vec![
                table::cell(d, "/udid"),
                if d["queued"] == true {
                    "queued"
                } else {
                    "not queued"
                }
                .to_string(),
                if d["queued"] == true {
                    table::cell(d, "/command_uuid")
                } else {
                    table::cell(d, "/error")
                },
            ]
        })
        .collect();
    let mut out = format!(
        "Recovery Lock passwords queued for {} Mac(s) of {}.\n",
        table::cell(v, "/queued"),
        table::cell(v, "/group")
    );
    if !rows.is_empty() {
        out.push_str(&table::render(
            &["UDID", "RESULT", "COMMAND / REASON"],
            &rows,
        ));
    }
    Ok(out)
}

async fn show(
    client: &ClientArgs,
    serial: Option<String>,
    udid: Option<String>,
    reason: Option<String>,
) -> anyhow::Result<String> {
    let api = AdminClient::from_args(client)?;
    let mut q = Vec::new();
    if let Some(s) = serial {
        q.push(format!("serial={}", urlencode(&s)));
    }
    if let Some(u) = udid {
        q.push(format!("udid={}", urlencode(&u)));
    }
    if let Some(r) = reason {
        q.push(format!("reason={}", urlencode(&r)));
    }
    let v = api
        .call(
            Method::GET,
            &format!("/api/v1/recovery-lock-passwords?{}", q.join("&")),
            None,
        )
        .await?;
    if client.json {
        return Ok(format!("{}\n", serde_json::to_string_pretty(&v)?));
    }
    let mut out = String::new();
    let device = &v["device"];
    if device.is_object() {
        writeln!(
            out,
            "{} ({}): IsRecoveryLockEnabled={} (as of the last SecurityInfo)",
            table::cell(device, "/udid"),
            table::cell(device, "/serial_number"),
            table::cell(device, "/recovery_lock_enabled"),
        )?;
    }
    let rows: Vec<Vec<String>> = v["passwords"]
        .as_array()
        .map(|a| a.as_slice())
        .unwrap_or_default()
        .iter()
        .map(|p| {
            let mut row: Vec<String> = [
                "/password",
                "/kind",
                "/state",
                "/serial_number",
                "/udid",
                "/created_at",
                "/issued_by",
            ]
            .iter()
            .map(|ptr| table::cell(p, ptr))
            .collect();
            if p["kind"] == "clear" {
                row[0] = "(cleared)".into();
            }
            row
        })
        .collect();
    if rows.is_empty() {
        out.push_str("No escrowed Recovery Lock passwords found.\n");
    } else {
        out.push_str(&table::render(
            &[
                "PASSWORD", "KIND", "STATE", "SERIAL", "UDID", "ISSUED", "BY",
            ],
            &rows,
        ));
    }
    Ok(out)
}
