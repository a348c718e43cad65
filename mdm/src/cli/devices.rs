//! `russet devices list|show|inventory|delete`.

use super::client::{AdminClient, ClientArgs, urlencode};
use super::table;
use anyhow::Context;
use clap::Subcommand;
use reqwest::Method;
use serde_json::Value;

#[derive(Subcommand, Debug)]
pub enum DevicesCmd {
    /// List devices.
    List {
        #[command(flatten)]
        client: ClientArgs,
        #[arg(long)]
        serial: Option<String>,
        /// Only enrolled (true) or only unenrolled (false) devices.
        #[arg(long)]
        enrolled: Option<bool>,
        #[arg(long, default_value_t = 100)]
        limit: u32,
        #[arg(long)]
        cursor: Option<String>,
        /// Only devices this filter matches, e.g. 'os_version < 15 and app = "Microsoft
        /// Excel" and app_version < 16.80' (fields: serial, udid, model, model_name,
        /// product_name, device_name, os_version, build_version, enrolled, apple_silicon,
        /// dep_profile, supervised, activation_lock, filevault, sip, firewall, secure_boot,
        /// recovery_lock, app, app_version, group, console_user).
        #[arg(long, value_name = "EXPR")]
        filter: Option<String>,
        /// Every matching device (all pages) as CSV, with the facts filters read: the report
        /// to open in a spreadsheet.
        #[arg(long, conflicts_with_all = ["json", "limit", "cursor"])]
        csv: bool,
        /// Write the CSV report to this file instead of standard output.
        #[arg(long, requires = "csv", value_name = "FILE")]
        output: Option<std::path::PathBuf>,
    },
    /// Show one device.
    Show {
        #[command(flatten)]
        client: ClientArgs,
        udid: String,
    },
    /// One Mac's inventory: hardware, OS, security, users, app count, and when each was
    /// collected.
    Inventory {
        #[command(flatten)]
        client: ClientArgs,
        /// UDID or serial number.
        device: String,
        /// Also list the installed applications.
        #[arg(long)]
        apps: bool,
    },
    /// Forget a device (escrowed PINs and keys stay).
    Delete {
        #[command(flatten)]
        client: ClientArgs,
        udid: String,
    },
}

pub async fn run(cmd: DevicesCmd) -> anyhow::Result<()> {
    match cmd {
        DevicesCmd::List {
            client,
            serial,
            enrolled,
            limit,
            cursor,
            filter,
            csv,
            output,
        } => {
            let api = AdminClient::from_args(&client)?;
            let mut query = if csv {
                vec!["format=csv".to_string()]
            } else {
                vec![format!("limit={limit}")]
            };
            if let Some(s) = serial {
                query.push(format!("serial={}", urlencode(&s)));
            }
            if let Some(e) = enrolled {
                query.push(format!("enrolled={e}"));
            }
            if let Some(c) = cursor {
                query.push(format!("cursor={}", urlencode(&c)));
            }
            if let Some(f) = filter {
                query.push(format!("filter={}", urlencode(&f)));
            }
            if csv {
                let report = api
                    .text(&format!("/api/v1/devices?{}", query.join("&")))
                    .await?;
                match output {
                    Some(path) => std::fs::write(&path, report)
                        .with_context(|| format!("writing {}", path.display()))?,
                    None => print!("{report}"),
                }
                return Ok(());
            }
            let v = api
                .call(
                    Method::GET,
                    &format!("/api/v1/devices?{}", query.join("&")),
                    None,
                )
                .await?;
            if client.json {
                println!("{}", serde_json::to_string_pretty(&v)?);
                return Ok(());
            }
            let rows: Vec<Vec<String>> = v["devices"]
                .as_array()
                .map(|a| a.as_slice())
                .unwrap_or_default()
                .iter()
                .map(|d| {
                    vec![
                        table::cell(d, "/udid"),
                        table::cell(d, "/serial_number"),
                        table::cell(d, "/model"),
                        table::cell(d, "/os_version"),
                        table::cell(d, "/enrolled"),
                        table::cell(d, "/last_seen_at"),
                    ]
                })
                .collect();
            table::print(
                &["UDID", "SERIAL", "MODEL", "OS", "ENROLLED", "LAST SEEN"],
                &rows,
            );
            if let Some(next) = v["next_cursor"].as_str() {
                println!("(more: --cursor {next})");
            }
            Ok(())
        }
        DevicesCmd::Show { client, udid } => {
            let api = AdminClient::from_args(&client)?;
            let v = api
                .call(
                    Method::GET,
                    &format!("/api/v1/devices/{}", urlencode(&udid)),
                    None,
                )
                .await?;
            if client.json {
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                print_device(&v);
            }
            Ok(())
        }
        DevicesCmd::Inventory {
            client,
            device,
            apps,
        } => {
            let api = AdminClient::from_args(&client)?;
            let v = api
                .call(
                    Method::GET,
                    &format!(
                        "/api/v1/devices/{}/inventory?apps={apps}",
                        urlencode(&device)
                    ),
                    None,
                )
                .await?;
            if client.json {
                println!("{}", serde_json::to_string_pretty(&v)?);
                return Ok(());
            }
            super::inventory::print_inventory(&v);
            if apps {
                let rows: Vec<Vec<String>> = v["app_list"]
                    .as_array()
                    .map(|a| a.as_slice())
                    .unwrap_or_default()
                    .iter()
                    .map(|a| {
                        vec![
                            table::cell(a, "/name"),
                            table::cell(a, "/bundle_id"),
                            table::cell(a, "/short_version"),
                        ]
                    })
                    .collect();
                table::print(&["APP", "BUNDLE ID", "VERSION"], &rows);
            }
            Ok(())
        }
        DevicesCmd::Delete { client, udid } => {
            let api = AdminClient::from_args(&client)?;
            let v = api
                .call(
                    Method::DELETE,
                    &format!("/api/v1/devices/{}", urlencode(&udid)),
                    None,
                )
                .await?;
            if client.json {
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                println!("Deleted {udid} (escrowed secrets are kept).");
            }
            Ok(())
        }
    }
}

fn print_device(v: &Value) {
    let fields = [
        ("UDID", "/udid"),
        ("Serial", "/serial_number"),
        ("Name", "/device_name"),
        ("Model", "/model"),
        ("OS", "/os_version"),
        ("Build", "/build_version"),
        ("Enrollment", "/enrollment_type"),
        ("Enrolled", "/enrolled"),
        ("Awaiting configuration", "/awaiting_configuration"),
        ("Push topic", "/push/topic"),
        ("Push token", "/push/token"),
        ("Token updates", "/push/token_update_count"),
        ("Identity SHA-256", "/identity/certificate_sha256"),
        ("Identity expires", "/identity/not_after"),
        ("Authenticated", "/authenticated_at"),
        ("Last seen", "/last_seen_at"),
        ("Checked out", "/checked_out_at"),
        ("FileVault", "/filevault/enabled"),
        ("FileVault key escrowed", "/filevault/escrowed"),
        (
            "FileVault key received",
            "/filevault/current_key/received_at",
        ),
        (
            "FileVault key verified",
            "/filevault/current_key/verified_at",
        ),
        ("Recovery Lock", "/recovery_lock/enabled"),
        ("Recovery Lock change", "/recovery_lock/latest/state"),
    ];
    for (label, ptr) in fields {
        println!("{label:<24}{}", table::cell(v, ptr));
    }
    if let Some(groups) = v["groups"].as_array().filter(|g| !g.is_empty()) {
        let names: Vec<&str> = groups.iter().filter_map(Value::as_str).collect();
        println!("{:<24}{}", "Groups", names.join(", "));
    }
    if let Some(users) = v["user_channels"].as_array().filter(|u| !u.is_empty()) {
        println!("User channels:");
        for u in users {
            println!(
                "  {}  {}  enrolled={}",
                table::cell(u, "/enrollment_id"),
                table::cell(u, "/user_short_name"),
                table::cell(u, "/enrolled")
            );
        }
    }
}
