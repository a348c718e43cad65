//! `russet os-update enforce|list|delete`: OS updates enforced per group through Declarative
//! Device Management, through the admin API (`/api/v1/os-updates`).

use super::client::{AdminClient, ClientArgs};
use super::table;
use super::table::print_json;
use clap::Subcommand;
use reqwest::Method;
use serde_json::{Map, Value};

#[derive(Subcommand, Debug)]
pub enum OsUpdateCmd {
    /// Enforce a macOS version on a group's Macs by a deadline (the Mac's local time).
    Enforce {
        #[command(flatten)]
        client: ClientArgs,
        #[arg(long)]
        group: String,
        /// Target macOS version, e.g. 15.2 (14, 14.7, 15.1.1).
        #[arg(long)]
        version: String,
        /// Local date-time on the Mac: YYYY-MM-DDTHH:MM[:SS], no zone.
        #[arg(long)]
        deadline: String,
        /// Target build, e.g. 24C101.
        #[arg(long)]
        build: Option<String>,
        /// A web page about the update, shown to users.
        #[arg(long)]
        details_url: Option<String>,
    },
    /// Every OS update with its Macs' states.
    List {
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Stop enforcing an OS update.
    Delete {
        #[command(flatten)]
        client: ClientArgs,
        id: i64,
    },
}

pub async fn run(cmd: OsUpdateCmd) -> anyhow::Result<()> {
    match cmd {
        OsUpdateCmd::Enforce {
            client,
            group,
            version,
            deadline,
            build,
            details_url,
        } => {
            let mut body = Map::new();
            body.insert("group".into(), group.into());
            body.insert("target_os_version".into(), version.into());
            body.insert("deadline".into(), deadline.into());
            if let Some(b) = build {
                body.insert("target_build_version".into(), b.into());
            }
            if let Some(u) = details_url {
                body.insert("details_url".into(), u.into());
            }
            let api = AdminClient::from_args(&client)?;
            let v = api
                .call(
                    Method::POST,
                    "/api/v1/os-updates",
                    Some(&Value::Object(body)),
                )
                .await?;
            if client.json {
                return print_json(&v);
            }
            println!(
                "OS update {}: group {} to macOS {} by {} (local time).",
                table::cell(&v, "/id"),
                table::cell(&v, "/group"),
                table::cell(&v, "/target_os_version"),
                table::cell(&v, "/deadline"),
            );
            Ok(())
        }
        OsUpdateCmd::List { client } => {
            let api = AdminClient::from_args(&client)?;
            let v = api.call(Method::GET, "/api/v1/os-updates", None).await?;
            if client.json {
                return print_json(&v);
            }
            let empty = Vec::new();
            let rows: Vec<Vec<String>> = v["os_updates"]
                .as_array()
                .unwrap_or(&empty)
                .iter()
                .map(|u| {
                    let counts = u["counts"]
                        .as_object()
                        .map(|c| {
                            c.iter()
                                .filter(|(_, n)| n.as_u64().unwrap_or(0) > 0)
                                .map(|(k, n)| format!("{k} {n}"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        })
                        .unwrap_or_default();
                    vec![
                        table::cell(u, "/id"),
                        table::cell(u, "/group"),
                        table::cell(u, "/target_os_version"),
                        table::cell(u, "/target_build_version"),
                        table::cell(u, "/deadline"),
                        counts,
                    ]
                })
                .collect();
            table::print(
                &["ID", "GROUP", "VERSION", "BUILD", "DEADLINE", "MACS"],
                &rows,
            );
            Ok(())
        }
        OsUpdateCmd::Delete { client, id } => {
            let api = AdminClient::from_args(&client)?;
            let v = api
                .call(Method::DELETE, &format!("/api/v1/os-updates/{id}"), None)
                .await?;
            if client.json {
                return print_json(&v);
            }
            println!("Deleted OS update {id}.");
            Ok(())
        }
    }
}
