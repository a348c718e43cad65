//! `russet admin create|list|revoke`: admin accounts through the admin API
//! (`/api/v1/admins`). Needs a token whose admin has the role `admin`.

use super::client::{AdminClient, ClientArgs, urlencode};
use super::table;
use clap::Subcommand;
use reqwest::Method;
use serde_json::{Value, json};

#[derive(Subcommand, Debug)]
pub enum AdminCmd {
    /// Create an admin and print its token (shown this once; Russet keeps only a hash).
    Create {
        #[command(flatten)]
        client: ClientArgs,
        name: String,
        /// viewer: reads, no secrets · operator: commands, push, lock, assignments, PIN reveal ·
        /// admin: everything (wipe, admins, push certificate, DEP, enrollment, profiles).
        #[arg(long, value_parser = ["viewer", "operator", "admin"])]
        role: String,
    },
    /// Every admin with its role; revoked ones too.
    List {
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Revoke an admin: its tokens stop working at once. The last `admin` cannot be revoked.
    Revoke {
        #[command(flatten)]
        client: ClientArgs,
        name: String,
    },
}

pub async fn run(cmd: AdminCmd) -> anyhow::Result<()> {
    print!("{}", execute(cmd).await?);
    Ok(())
}

/// Run `cmd` and return what it prints.
pub async fn execute(cmd: AdminCmd) -> anyhow::Result<String> {
    match cmd {
        AdminCmd::Create { client, name, role } => {
            let api = AdminClient::from_args(&client)?;
            let v = api
                .call(
                    Method::POST,
                    "/api/v1/admins",
                    Some(&json!({"name": name, "role": role})),
                )
                .await?;
            if client.json {
                return Ok(format!("{}\n", serde_json::to_string_pretty(&v)?));
            }
            Ok(format!(
                "Created admin {} (role {}). Its token, shown this once:\n\n    {}\n\n\
                 Give it to {} (RUSSET_TOKEN or --token); Russet keeps only its hash.\n",
                table::cell(&v, "/admin/name"),
                table::cell(&v, "/admin/role"),
                table::cell(&v, "/token"),
                table::cell(&v, "/admin/name"),
            ))
        }
        AdminCmd::List { client } => {
            let api = AdminClient::from_args(&client)?;
            let v = api.call(Method::GET, "/api/v1/admins", None).await?;
            if client.json {
                return Ok(format!("{}\n", serde_json::to_string_pretty(&v)?));
            }
            let rows: Vec<Vec<String>> = v["admins"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .map(|a| {
                    let state = if a["active"] == Value::Bool(true) {
                        "active".to_string()
                    } else {
                        format!(
                            "revoked {} by {}",
                            table::cell(a, "/revoked_at"),
                            table::cell(a, "/revoked_by")
                        )
                    };
                    vec![
                        table::cell(a, "/name"),
                        table::cell(a, "/role"),
                        state,
                        table::cell(a, "/tokens"),
                        table::cell(a, "/created_at"),
                        table::cell(a, "/created_by"),
                    ]
                })
                .collect();
            Ok(table::render(
                &["NAME", "ROLE", "STATE", "TOKENS", "CREATED", "BY"],
                &rows,
            ))
        }
        AdminCmd::Revoke { client, name } => {
            let api = AdminClient::from_args(&client)?;
            let v = api
                .call(
                    Method::DELETE,
                    &format!("/api/v1/admins/{}", urlencode(&name)),
                    None,
                )
                .await?;
            if client.json {
                return Ok(format!("{}\n", serde_json::to_string_pretty(&v)?));
            }
            Ok(format!(
                "Revoked admin {name}: its tokens no longer work.\n"
            ))
        }
    }
}
