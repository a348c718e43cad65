//! `russet group create|update|add|remove|list|show|delete`: device groups through the admin
//! API (`/api/v1/groups`).

use super::client::{AdminClient, ClientArgs, urlencode};
use super::table;
use super::table::print_json;
use clap::Subcommand;
use reqwest::Method;
use serde_json::{Map, Value, json};

#[derive(Subcommand, Debug)]
pub enum GroupCmd {
    /// Create a group: static (add devices to it), or smart with --filter.
    Create {
        #[command(flatten)]
        client: ClientArgs,
        name: String,
        #[arg(long)]
        description: Option<String>,
        /// The device filter language, e.g. 'os_version < 15 and model_name = "MacBook Air"';
        /// the group's members are the devices it matches, now and as their facts change.
        #[arg(long, value_name = "EXPR")]
        filter: Option<String>,
    },
    /// Change a group's description or filter.
    Update {
        #[command(flatten)]
        client: ClientArgs,
        name: String,
        #[arg(long)]
        description: Option<String>,
        #[arg(long, value_name = "EXPR", conflicts_with = "no_filter")]
        filter: Option<String>,
        /// Make a smart group static (and empty).
        #[arg(long)]
        no_filter: bool,
    },
    /// Add devices (UDIDs or serial numbers; a serial known only from DEP joins when its Mac
    /// enrolls) to a static group.
    Add {
        #[command(flatten)]
        client: ClientArgs,
        name: String,
        #[arg(required = true, value_name = "DEVICE")]
        devices: Vec<String>,
    },
    /// Remove devices (UDIDs or serial numbers) from a static group.
    Remove {
        #[command(flatten)]
        client: ClientArgs,
        name: String,
        #[arg(required = true, value_name = "DEVICE")]
        devices: Vec<String>,
    },
    /// Every group with its kind and member count.
    List {
        #[command(flatten)]
        client: ClientArgs,
    },
    /// One group with its members.
    Show {
        #[command(flatten)]
        client: ClientArgs,
        name: String,
    },
    /// Delete a group (what was assigned to it is removed from its devices).
    Delete {
        #[command(flatten)]
        client: ClientArgs,
        name: String,
    },
}

fn path(name: &str) -> String {
    format!("/api/v1/groups/{}", urlencode(name))
}

pub async fn run(cmd: GroupCmd) -> anyhow::Result<()> {
    match cmd {
        GroupCmd::Create {
            client,
            name,
            description,
            filter,
        } => {
            let api = AdminClient::from_args(&client)?;
            let body = json!({"name": name, "description": description, "filter": filter});
            let v = api
                .call(Method::POST, "/api/v1/groups", Some(&body))
                .await?;
            if client.json {
                return print_json(&v);
            }
            println!(
                "Created {} group {name} ({} members).",
                table::cell(&v, "/kind"),
                table::cell(&v, "/member_count")
            );
            Ok(())
        }
        GroupCmd::Update {
            client,
            name,
            description,
            filter,
            no_filter,
        } => {
            let mut body = Map::new();
            if let Some(d) = description {
                body.insert("description".into(), d.into());
            }
            if no_filter {
                body.insert("filter".into(), Value::Null);
            } else if let Some(f) = filter {
                body.insert("filter".into(), f.into());
            }
            let api = AdminClient::from_args(&client)?;
            let v = api
                .call(Method::PATCH, &path(&name), Some(&Value::Object(body)))
                .await?;
            if client.json {
                return print_json(&v);
            }
            print_group(&v);
            Ok(())
        }
        GroupCmd::Add {
            client,
            name,
            devices,
        } => membership(&client, &name, devices, Method::POST).await,
        GroupCmd::Remove {
            client,
            name,
            devices,
        } => membership(&client, &name, devices, Method::DELETE).await,
        GroupCmd::List { client } => {
            let api = AdminClient::from_args(&client)?;
            let v = api.call(Method::GET, "/api/v1/groups", None).await?;
            if client.json {
                return print_json(&v);
            }
            let rows: Vec<Vec<String>> = v["groups"]
                .as_array()
                .map(|a| a.as_slice())
                .unwrap_or_default()
                .iter()
                .map(|g| {
                    vec![
                        table::cell(g, "/name"),
                        table::cell(g, "/kind"),
                        table::cell(g, "/member_count"),
                        table::cell(g, "/filter"),
                        table::cell(g, "/description"),
                    ]
                })
                .collect();
            table::print(&["NAME", "KIND", "MEMBERS", "FILTER", "DESCRIPTION"], &rows);
            Ok(())
        }
        GroupCmd::Show { client, name } => {
            let api = AdminClient::from_args(&client)?;
            let v = api.call(Method::GET, &path(&name), None).await?;
            if client.json {
                return print_json(&v);
            }
            print_group(&v);
            Ok(())
        }
        GroupCmd::Delete { client, name } => {
            let api = AdminClient::from_args(&client)?;
            let v = api.call(Method::DELETE, &path(&name), None).await?;
            if client.json {
                return print_json(&v);
            }
            println!("Deleted group {name}.");
            Ok(())
        }
    }
}

async fn membership(
    client: &ClientArgs,
    name: &str,
    devices: Vec<String>,
    method: Method,
) -> anyhow::Result<()> {
    let adding = method == Method::POST;
    let api = AdminClient::from_args(client)?;
    let v = api
        .call(
            method,
            &format!("{}/devices", path(name)),
            Some(&json!({"devices": devices})),
        )
        .await?;
    if client.json {
        return print_json(&v);
    }
    let count = |key: &str| v[key].as_array().map_or(0, Vec::len);
    if adding {
        println!(
            "Added {} to {name} ({} already members); {} members now.",
            count("added"),
            count("unchanged"),
            table::cell(&v, "/group/member_count")
        );
    } else {
        println!(
            "Removed {} from {name} ({} were not members); {} members now.",
            count("removed"),
            count("not_members"),
            table::cell(&v, "/group/member_count")
        );
    }
    Ok(())
}

fn print_group(v: &Value) {
    for (label, ptr) in [
        ("Name", "/name"),
        ("Kind", "/kind"),
        ("Filter", "/filter"),
        ("Description", "/description"),
        ("Members", "/member_count"),
        ("Created", "/created_at"),
        ("Updated", "/updated_at"),
    ] {
        println!("{label:<13}{}", table::cell(v, ptr));
    }
    let rows: Vec<Vec<String>> = v["members"]
        .as_array()
        .map(|a| a.as_slice())
        .unwrap_or_default()
        .iter()
        .map(|m| {
            let state = if m["pending"].as_bool() == Some(true) {
                "pending (joins when it enrolls)"
            } else {
                "device"
            };
            vec![
                table::cell(m, "/udid"),
                table::cell(m, "/serial"),
                table::cell(m, "/device_name"),
                state.to_owned(),
            ]
        })
        .collect();
    if !rows.is_empty() {
        println!();
        table::print(&["UDID", "SERIAL", "NAME", "MEMBER"], &rows);
    }
}
