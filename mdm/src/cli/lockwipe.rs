//! `russet lock`, `russet wipe`, `russet wipe cancel`, `russet pin show`, `russet audit list`.

use super::client::{AdminClient, ClientArgs, urlencode};
use super::table;
use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::{Value, json};

#[derive(Args, Debug)]
pub struct LockCmd {
    #[command(flatten)]
    pub client: ClientArgs,
    pub udid: String,
    /// Six digits; generated with a CSPRNG when omitted.
    #[arg(long)]
    pub pin: Option<String>,
    /// Shown on the lock screen (macOS 10.14+).
    #[arg(long)]
    pub message: Option<String>,
    /// Shown on the lock screen (macOS 11.5+, Apple silicon).
    #[arg(long)]
    pub phone: Option<String>,
}

#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct WipeCmd {
    #[command(subcommand)]
    pub cancel: Option<WipeSub>,
    #[command(flatten)]
    pub client: ClientArgs,
    pub udid: Option<String>,
    /// The Mac's serial number, typed to confirm.
    #[arg(long)]
    pub confirm: Option<String>,
    #[arg(long)]
    pub pin: Option<String>,
    /// ObliterationBehavior (macOS 12+): Default, DoNotObliterate, ObliterateWithWarning, Always.
    #[arg(long)]
    pub obliteration: Option<String>,
    /// Send even though a wipe was already sent to this Mac.
    #[arg(long)]
    pub force: bool,
}

#[derive(Subcommand, Debug)]
pub enum WipeSub {
    /// Cancel a wipe the Mac has not received yet.
    Cancel {
        #[command(flatten)]
        client: ClientArgs,
        udid: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum PinCmd {
    /// Escrowed unlock PINs of a Mac, newest first (the reveal is audited).
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

#[derive(Subcommand, Debug)]
pub enum AuditCmd {
    /// Admin actions and secret reveals, newest first.
    List {
        #[command(flatten)]
        client: ClientArgs,
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
}

fn print_issued(v: &Value, what: &str, udid: &str) {
    println!(
        "{what} queued for {udid}: command {}",
        table::cell(v, "/command_uuid")
    );
    println!(
        "Unlock PIN: {}   (escrowed; find it again with `russet pin show`)",
        table::cell(v, "/pin")
    );
    let facts = &v["device"]["pin_facts"];
    if facts.is_object() {
        println!(
            "The Mac reported: PINRequiredForDeviceLock={} PINRequiredForEraseDevice={} IsAppleSilicon={}",
            table::cell(facts, "/PINRequiredForDeviceLock"),
            table::cell(facts, "/PINRequiredForEraseDevice"),
            table::cell(facts, "/IsAppleSilicon")
        );
    }
}

pub async fn lock(cmd: LockCmd) -> anyhow::Result<()> {
    let api = AdminClient::from_args(&cmd.client)?;
    let body = json!({"pin": cmd.pin, "message": cmd.message, "phone_number": cmd.phone});
    let v = api
        .call(
            Method::POST,
            &format!("/api/v1/devices/{}/lock", urlencode(&cmd.udid)),
            Some(&body),
        )
        .await?;
    if cmd.client.json {
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        print_issued(&v, "DeviceLock", &cmd.udid);
    }
    Ok(())
}

pub async fn wipe(cmd: WipeCmd) -> anyhow::Result<()> {
    if let Some(WipeSub::Cancel { client, udid }) = cmd.cancel {
        let api = AdminClient::from_args(&client)?;
        let v = api
            .call(
                Method::DELETE,
                &format!("/api/v1/devices/{}/wipe", urlencode(&udid)),
                None,
            )
            .await?;
        if client.json {
            println!("{}", serde_json::to_string_pretty(&v)?);
        } else {
            println!("Wipe of {udid} canceled before delivery.");
        }
        return Ok(());
    }
    let udid = cmd
        .udid
        .ok_or_else(|| anyhow::anyhow!("usage: russet wipe UDID --confirm SERIAL"))?;
    let api = AdminClient::from_args(&cmd.client)?;
    let body = json!({
        "confirm_serial": cmd.confirm, "pin": cmd.pin,
        "obliteration_behavior": cmd.obliteration, "force": cmd.force,
    });
    let v = api
        .call(
            Method::POST,
            &format!("/api/v1/devices/{}/wipe", urlencode(&udid)),
            Some(&body),
        )
        .await?;
    if cmd.client.json {
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        print_issued(&v, "EraseDevice", &udid);
    }
    Ok(())
}

pub async fn pin(cmd: PinCmd) -> anyhow::Result<()> {
    let PinCmd::Show {
        client,
        serial,
        udid,
        reason,
    } = cmd;
    let api = AdminClient::from_args(&client)?;
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
            &format!("/api/v1/unlock-pins?{}", q.join("&")),
            None,
        )
        .await?;
    if client.json {
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    let rows: Vec<Vec<String>> = v["pins"]
        .as_array()
        .map(|a| a.as_slice())
        .unwrap_or_default()
        .iter()
        .map(|p| {
            [
                "/pin",
                "/request_type",
                "/serial_number",
                "/udid",
                "/status",
                "/created_at",
                "/issued_by",
            ]
            .iter()
            .map(|ptr| table::cell(p, ptr))
            .collect()
        })
        .collect();
    if rows.is_empty() {
        println!("No escrowed PINs found.");
    } else {
        table::print(
            &["PIN", "COMMAND", "SERIAL", "UDID", "STATUS", "ISSUED", "BY"],
            &rows,
        );
    }
    Ok(())
}

pub async fn audit(cmd: AuditCmd) -> anyhow::Result<()> {
    let AuditCmd::List { client, limit } = cmd;
    let api = AdminClient::from_args(&client)?;
    let v = api
        .call(Method::GET, &format!("/api/v1/audit?limit={limit}"), None)
        .await?;
    if client.json {
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    let rows: Vec<Vec<String>> = v["entries"]
        .as_array()
        .map(|a| a.as_slice())
        .unwrap_or_default()
        .iter()
        .map(|e| {
            vec![
                table::cell(e, "/at"),
                table::cell(e, "/actor"),
                table::cell(e, "/address"),
                table::cell(e, "/action"),
                table::cell(e, "/target"),
                e["detail"].to_string(),
            ]
        })
        .collect();
    table::print(
        &["AT", "ACTOR", "ADDRESS", "ACTION", "TARGET", "DETAIL"],
        &rows,
    );
    Ok(())
}
