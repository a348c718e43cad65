//! `russet ddm upload|list|delete`: raw Declarative Device Management declarations for a
//! group, through the admin API (`/api/v1/ddm/declarations`). The server checks a declaration
//! against Apple's declarative schemas and names every problem.

use super::client::{AdminClient, ClientArgs, urlencode};
use super::table;
use super::table::print_json;
use anyhow::Context;
use clap::Subcommand;
use reqwest::Method;
use serde_json::{Value, json};
use std::path::PathBuf;

#[derive(Subcommand, Debug)]
pub enum DdmCmd {
    /// Upload a declaration (a JSON file: {"Type", "Identifier", "Payload"}) for a group's
    /// Macs; the same identifier again replaces it.
    Upload {
        #[command(flatten)]
        client: ClientArgs,
        #[arg(long)]
        group: String,
        file: PathBuf,
    },
    /// Every uploaded declaration.
    List {
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Delete an uploaded declaration (it leaves the Macs at their next sync).
    Delete {
        #[command(flatten)]
        client: ClientArgs,
        identifier: String,
    },
}

/// Largest declaration file read (Apple's declarations are small; a data asset names a URL).
const MAX_FILE: u64 = 1024 * 1024;

pub async fn run(cmd: DdmCmd) -> anyhow::Result<()> {
    match cmd {
        DdmCmd::Upload {
            client,
            group,
            file,
        } => {
            let size = std::fs::metadata(&file)
                .with_context(|| format!("reading {}", file.display()))?
                .len();
            anyhow::ensure!(size <= MAX_FILE, "{} is larger than 1 MiB", file.display());
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let declaration: Value = serde_json::from_str(&text)
                .with_context(|| format!("{} is not JSON", file.display()))?;
            let api = AdminClient::from_args(&client)?;
            let v = api
                .call(
                    Method::POST,
                    "/api/v1/ddm/declarations",
                    Some(&json!({"group": group, "declaration": declaration})),
                )
                .await?;
            if client.json {
                return print_json(&v);
            }
            println!(
                "Uploaded {} ({}) for group {}.",
                table::cell(&v, "/identifier"),
                table::cell(&v, "/type"),
                table::cell(&v, "/group"),
            );
            Ok(())
        }
        DdmCmd::List { client } => {
            let api = AdminClient::from_args(&client)?;
            let v = api
                .call(Method::GET, "/api/v1/ddm/declarations", None)
                .await?;
            if client.json {
                return print_json(&v);
            }
            let empty = Vec::new();
            let rows: Vec<Vec<String>> = v["declarations"]
                .as_array()
                .unwrap_or(&empty)
                .iter()
                .map(|d| {
                    vec![
                        table::cell(d, "/identifier"),
                        table::cell(d, "/kind"),
                        table::cell(d, "/type"),
                        table::cell(d, "/group"),
                    ]
                })
                .collect();
            table::print(&["IDENTIFIER", "KIND", "TYPE", "GROUP"], &rows);
            Ok(())
        }
        DdmCmd::Delete { client, identifier } => {
            let api = AdminClient::from_args(&client)?;
            let v = api
                .call(
                    Method::DELETE,
                    &format!("/api/v1/ddm/declarations/{}", urlencode(&identifier)),
                    None,
                )
                .await?;
            if client.json {
                return print_json(&v);
            }
            println!("Deleted {identifier}.");
            Ok(())
        }
    }
}
