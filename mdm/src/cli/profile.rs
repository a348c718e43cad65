//! `russet profile …`: the configuration-profile catalog (upload, list, show, delete),
//! assignments, and the Custom Settings builder.

use super::client::{AdminClient, ClientArgs, urlencode};
use super::table;
use super::table::print_json;
use crate::protocol::mobileconfig::custom_settings;
use anyhow::{Context, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use clap::Subcommand;
use reqwest::Method;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

#[derive(Subcommand, Debug)]
pub enum ProfileCmd {
    /// Upload a .mobileconfig (XML or CMS-signed). Uploading an identifier again makes its next
    /// version; the same bytes again change nothing.
    Upload {
        #[command(flatten)]
        client: ClientArgs,
        file: PathBuf,
    },
    /// The catalog.
    List {
        #[command(flatten)]
        client: ClientArgs,
        /// Include deleted profiles.
        #[arg(long)]
        deleted: bool,
    },
    /// One profile: its versions and assignments.
    Show {
        #[command(flatten)]
        client: ClientArgs,
        identifier: String,
    },
    /// Delete a profile: it is removed from the Macs that have it; its history stays.
    Delete {
        #[command(flatten)]
        client: ClientArgs,
        identifier: String,
    },
    /// Where a profile stands on each Mac: pending, installing, verified, failed (with
    /// Apple's error), removing, removed.
    Status {
        #[command(flatten)]
        client: ClientArgs,
        identifier: String,
    },
    /// Ask Macs for their ProfileList now (the periodic check, on demand); drift is repaired
    /// on their answers.
    Verify {
        #[command(flatten)]
        client: ClientArgs,
        /// UDIDs or serial numbers.
        #[arg(long = "device", num_args = 1..)]
        devices: Vec<String>,
        /// Every member of this group.
        #[arg(long)]
        group: Option<String>,
    },
    /// Assign a profile to groups and devices.
    Assign(Targets),
    /// Remove assignments.
    Unassign(Targets),
    /// Build a managed-preferences profile (Apple's Custom Settings) for one preference domain
    /// from a JSON or plist file of settings, and upload it.
    CustomSettings {
        #[command(flatten)]
        client: ClientArgs,
        /// The profile's identifier (PayloadIdentifier), e.g. com.acme.parallels.
        #[arg(long)]
        identifier: String,
        /// The profile's name as Macs show it.
        #[arg(long)]
        name: String,
        /// The preference domain, e.g. "com.parallels.Parallels Desktop".
        #[arg(long)]
        domain: String,
        /// SETTINGS.json (an object; {"$data": base64} and {"$date": RFC 3339} for data and
        /// dates) or SETTINGS.plist (a dictionary).
        settings: PathBuf,
        /// Also write the built .mobileconfig here.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(clap::Args, Debug)]
pub struct Targets {
    #[command(flatten)]
    client: ClientArgs,
    identifier: String,
    /// Group names (repeat the flag, or give several).
    #[arg(long = "group", num_args = 1.., value_name = "GROUP")]
    groups: Vec<String>,
    /// Devices by UDID or serial number (repeat the flag, or give several).
    #[arg(long = "device", num_args = 1.., value_name = "DEVICE")]
    devices: Vec<String>,
}

pub async fn run(cmd: ProfileCmd) -> anyhow::Result<()> {
    match cmd {
        ProfileCmd::Upload { client, file } => {
            let bytes =
                std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            let api = AdminClient::from_args(&client)?;
            let v = api
                .call(
                    Method::POST,
                    "/api/v1/profiles",
                    Some(&json!({"mobileconfig": STANDARD.encode(bytes)})),
                )
                .await?;
            print_uploaded(&client, &v)
        }
        ProfileCmd::List { client, deleted } => {
            let api = AdminClient::from_args(&client)?;
            let q = if deleted { "?deleted=true" } else { "" };
            let v = api
                .call(Method::GET, &format!("/api/v1/profiles{q}"), None)
                .await?;
            if client.json {
                return print_json(&v);
            }
            let rows: Vec<Vec<String>> = v["profiles"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|p| {
                    vec![
                        table::cell(p, "/identifier"),
                        table::cell(p, "/name"),
                        table::cell(p, "/scope"),
                        table::cell(p, "/latest_version"),
                        types(p),
                        table::cell(p, "/assigned/groups"),
                        table::cell(p, "/assigned/devices"),
                        if p["deleted"] == json!(true) {
                            table::cell(p, "/deleted_at")
                        } else {
                            "-".into()
                        },
                    ]
                })
                .collect();
            table::print(
                &[
                    "IDENTIFIER",
                    "NAME",
                    "SCOPE",
                    "VERSION",
                    "PAYLOADS",
                    "GROUPS",
                    "DEVICES",
                    "DELETED",
                ],
                &rows,
            );
            Ok(())
        }
        ProfileCmd::Show { client, identifier } => {
            let api = AdminClient::from_args(&client)?;
            let v = api
                .call(Method::GET, &profile_path(&identifier), None)
                .await?;
            if client.json {
                return print_json(&v);
            }
            print_detail(&v);
            Ok(())
        }
        ProfileCmd::Delete { client, identifier } => {
            let api = AdminClient::from_args(&client)?;
            let v = api
                .call(Method::DELETE, &profile_path(&identifier), None)
                .await?;
            if client.json {
                return print_json(&v);
            }
            println!(
                "Deleted {identifier} (latest version {}); Macs that have it will have it \
                 removed. Its history stays: `russet profile list --deleted`.",
                table::cell(&v, "/latest_version")
            );
            Ok(())
        }
        ProfileCmd::Status { client, identifier } => {
            let api = AdminClient::from_args(&client)?;
            let path = format!("{}/status", profile_path(&identifier));
            let v = api.call(Method::GET, &path, None).await?;
            if client.json {
                return print_json(&v);
            }
            let counts = v["counts"]
                .as_object()
                .map(|c| {
                    c.iter()
                        .map(|(k, n)| format!("{k}: {n}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .unwrap_or_default();
            println!(
                "{identifier}: {}",
                if counts.is_empty() {
                    "on no Mac".into()
                } else {
                    counts
                }
            );
            let rows: Vec<Vec<String>> = v["devices"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|d| {
                    vec![
                        table::cell(d, "/enrollment_id"),
                        table::cell(d, "/state"),
                        table::cell(d, "/version"),
                        table::cell(d, "/verified_at"),
                        d["error"]
                            .pointer("/0/USEnglishDescription")
                            .or_else(|| d["error"].pointer("/message"))
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .to_string(),
                    ]
                })
                .collect();
            table::print(&["CHANNEL", "STATE", "VERSION", "VERIFIED", "ERROR"], &rows);
            Ok(())
        }
        ProfileCmd::Verify {
            client,
            devices,
            group,
        } => {
            let api = AdminClient::from_args(&client)?;
            let body = serde_json::json!({"devices": devices, "group": group});
            let v = api
                .call(Method::POST, "/api/v1/profiles/verify", Some(&body))
                .await?;
            if client.json {
                return print_json(&v);
            }
            println!("Asked {} Mac channel(s) for their ProfileList.", v["asked"]);
            Ok(())
        }
        ProfileCmd::Assign(t) => targets(t, Method::POST, "added").await,
        ProfileCmd::Unassign(t) => targets(t, Method::DELETE, "removed").await,
        ProfileCmd::CustomSettings {
            client,
            identifier,
            name,
            domain,
            settings,
            out,
        } => {
            let settings = read_settings(&settings)?;
            let api = AdminClient::from_args(&client)?;
            let v = api
                .call(
                    Method::POST,
                    "/api/v1/profiles/custom-settings",
                    Some(&json!({
                        "identifier": identifier,
                        "name": name,
                        "domain": domain,
                        "settings": settings,
                    })),
                )
                .await?;
            if let Some(path) = out {
                let built = STANDARD
                    .decode(v["mobileconfig"].as_str().unwrap_or_default())
                    .context("the server's built profile is not base64")?;
                std::fs::write(&path, built)
                    .with_context(|| format!("writing {}", path.display()))?;
                eprintln!("wrote {}", path.display());
            }
            print_uploaded(&client, &v)
        }
    }
}

fn profile_path(identifier: &str) -> String {
    format!("/api/v1/profiles/{}", urlencode(identifier))
}

/// Settings as the API takes them: a JSON object as it is; a plist dictionary converted
/// (`<data>` and `<date>` in the tagged forms).
fn read_settings(path: &Path) -> anyhow::Result<Value> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let is_plist = match path.extension().and_then(|e| e.to_str()) {
        Some("plist") => true,
        Some("json") => false,
        _ => bytes.trim_ascii_start().starts_with(b"<"),
    };
    if is_plist {
        let dict = custom_settings::settings_from_plist(&bytes)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        return Ok(custom_settings::settings_to_json(&dict));
    }
    let v: Value = serde_json::from_slice(&bytes)
        .with_context(|| format!("{} is not JSON", path.display()))?;
    if !v.is_object() {
        bail!(
            "{}: the settings must be a JSON object of preference keys",
            path.display()
        );
    }
    Ok(v)
}

async fn targets(t: Targets, method: Method, key: &str) -> anyhow::Result<()> {
    if t.groups.is_empty() && t.devices.is_empty() {
        bail!("name at least one --group or --device");
    }
    let api = AdminClient::from_args(&t.client)?;
    let v = api
        .call(
            method,
            &format!("{}/assignments", profile_path(&t.identifier)),
            Some(&json!({"groups": t.groups, "devices": t.devices})),
        )
        .await?;
    if t.client.json {
        return print_json(&v);
    }
    let list = |pointer: &str| -> String {
        let items: Vec<&str> = v
            .pointer(pointer)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        if items.is_empty() {
            "-".into()
        } else {
            items.join(", ")
        }
    };
    println!("{key} groups:   {}", list(&format!("/{key}/groups")));
    println!("{key} devices:  {}", list(&format!("/{key}/devices")));
    println!("unchanged:      {}", {
        let g = list("/unchanged/groups");
        let d = list("/unchanged/devices");
        format!("groups {g}; devices {d}")
    });
    println!("now assigned:   groups {}", list("/assignments/groups"));
    println!("                devices {}", list("/assignments/devices"));
    Ok(())
}

fn types(p: &Value) -> String {
    let t: Vec<&str> = p["payload_types"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    if t.is_empty() {
        "-".into()
    } else {
        t.join(", ")
    }
}

fn print_uploaded(client: &ClientArgs, v: &Value) -> anyhow::Result<()> {
    if client.json {
        return print_json(v);
    }
    let id = table::cell(v, "/profile/identifier");
    let version = table::cell(v, "/version");
    if v["created"] == json!(true) {
        println!("{id}: version {version} stored");
    } else {
        println!("{id}: unchanged (the same bytes as version {version})");
    }
    let vars: Vec<&str> = v["variables"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    if !vars.is_empty() {
        println!("variables filled in per Mac: {}", vars.join(", "));
    }
    for w in v["warnings"].as_array().into_iter().flatten() {
        eprintln!("warning: {}", w.as_str().unwrap_or(""));
    }
    Ok(())
}

fn print_detail(v: &Value) {
    println!("identifier:   {}", table::cell(v, "/identifier"));
    println!("name:         {}", table::cell(v, "/name"));
    println!("organization: {}", table::cell(v, "/organization"));
    println!("scope:        {}", table::cell(v, "/scope"));
    println!("payloads:     {}", types(v));
    println!("version:      {}", table::cell(v, "/latest_version"));
    if v["deleted"] == json!(true) {
        println!("DELETED:      {}", table::cell(v, "/deleted_at"));
    }
    let names = |pointer: &str| -> String {
        let n: Vec<&str> = v
            .pointer(pointer)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        if n.is_empty() {
            "-".into()
        } else {
            n.join(", ")
        }
    };
    println!("groups:       {}", names("/assignments/groups"));
    println!("devices:      {}", names("/assignments/devices"));
    println!();
    let rows: Vec<Vec<String>> = v["versions"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            vec![
                table::cell(r, "/version"),
                table::cell(r, "/created_at"),
                table::cell(r, "/uploaded_by"),
                if r["signed"] == json!(true) {
                    "yes"
                } else {
                    "no"
                }
                .into(),
                if r["has_variables"] == json!(true) {
                    "yes"
                } else {
                    "no"
                }
                .into(),
                r["sha256"]
                    .as_str()
                    .map(|s| s.chars().take(12).collect())
                    .unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    table::print(
        &[
            "VERSION",
            "UPLOADED",
            "BY",
            "SIGNED",
            "VARIABLES",
            "SHA-256",
        ],
        &rows,
    );
}
