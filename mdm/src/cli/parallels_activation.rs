//! `russet parallels-activation set|show|list|remove`: Parallels Desktop activation per group
//! through the admin API (`/api/v1/groups/{name}/parallels-activation`). The license key is
//! read from a file or stdin (`--license-key-file -`), never from the command line, where it
//! would land in the shell's history and in `ps`; the server never shows it back, only its
//! last four characters.

use super::client::{AdminClient, ClientArgs, urlencode};
use super::table::{self, print_json};
use anyhow::{Context, bail};
use clap::Subcommand;
use reqwest::Method;
use serde_json::{Map, Value};
use std::io::Read;

#[derive(Subcommand, Debug)]
pub enum ParallelsActivationCmd {
    /// Set (or replace) how Parallels Desktop on a group's Macs is activated: a license key,
    /// or SSO (users sign in) with optional dialog texts.
    Set {
        #[command(flatten)]
        client: ClientArgs,
        #[arg(long)]
        group: String,
        /// File holding the license key (`-` reads stdin).
        #[arg(
            long,
            value_name = "PATH",
            conflicts_with = "sso",
            required_unless_present = "sso"
        )]
        license_key_file: Option<String>,
        /// SSO activation instead of a license key.
        #[arg(long)]
        sso: bool,
        /// An SSO dialog text, as NAME=TEXT with the preference key name Parallels' MDM guide
        /// gives (repeat for more).
        #[arg(long = "sso-text", value_name = "NAME=TEXT")]
        sso_texts: Vec<String>,
    },
    /// One group's activation (never the key: its last four characters).
    Show {
        #[command(flatten)]
        client: ClientArgs,
        #[arg(long)]
        group: String,
    },
    /// Every group's activation.
    List {
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Remove a group's activation (its profile is removed from the Macs).
    Remove {
        #[command(flatten)]
        client: ClientArgs,
        #[arg(long)]
        group: String,
    },
}

fn path(group: &str) -> String {
    format!("/api/v1/groups/{}/parallels-activation", urlencode(group))
}

/// The key from a file or stdin; at most a few KB (a key is ~35 characters).
fn read_key(source: &str) -> anyhow::Result<String> {
    let mut text = String::new();
    if source == "-" {
        std::io::stdin()
            .take(4096)
            .read_to_string(&mut text)
            .context("reading the license key from stdin")?;
    } else {
        std::fs::File::open(source)
            .with_context(|| format!("opening {source}"))?
            .take(4096)
            .read_to_string(&mut text)
            .with_context(|| format!("reading {source}"))?;
    }
    Ok(text.trim().to_owned())
}

fn print_activation(v: &Value) {
    println!("Group:       {}", table::cell(v, "/group"));
    println!("Activation:  {}", table::cell(v, "/activation_experience"));
    if v["license_key_hint"].is_string() {
        println!("License key: …{}", table::cell(v, "/license_key_hint"));
    }
    if let Some(texts) = v["sso_texts"].as_object().filter(|t| !t.is_empty()) {
        println!("SSO texts:");
        for (name, text) in texts {
            println!("  {name} = {}", text.as_str().unwrap_or_default());
        }
    }
    println!("Profile:     {}", table::cell(v, "/profile"));
    println!(
        "Updated:     {} by {}",
        table::cell(v, "/updated_at"),
        table::cell(v, "/updated_by")
    );
}

pub async fn run(cmd: ParallelsActivationCmd) -> anyhow::Result<()> {
    match cmd {
        ParallelsActivationCmd::Set {
            client,
            group,
            license_key_file,
            sso,
            sso_texts,
        } => {
            if !sso && !sso_texts.is_empty() {
                bail!("--sso-text goes with --sso (a license key activation shows no SSO dialog)");
            }
            let mut body = Map::new();
            if sso {
                body.insert("experience".into(), "sso".into());
                let mut texts = Map::new();
                for t in sso_texts {
                    let Some((name, text)) = t.split_once('=') else {
                        bail!("--sso-text {t:?}: expected NAME=TEXT");
                    };
                    texts.insert(name.to_owned(), text.into());
                }
                body.insert("sso_texts".into(), Value::Object(texts));
            } else {
                let source = license_key_file.context("--license-key-file or --sso")?;
                body.insert("experience".into(), "license_key".into());
                body.insert("license_key".into(), read_key(&source)?.into());
            }
            let api = AdminClient::from_args(&client)?;
            let v = api
                .call(Method::PUT, &path(&group), Some(&Value::Object(body)))
                .await?;
            if client.json {
                return print_json(&v);
            }
            print_activation(&v);
            Ok(())
        }
        ParallelsActivationCmd::Show { client, group } => {
            let api = AdminClient::from_args(&client)?;
            let v = api.call(Method::GET, &path(&group), None).await?;
            if client.json {
                return print_json(&v);
            }
            print_activation(&v);
            Ok(())
        }
        ParallelsActivationCmd::List { client } => {
            let api = AdminClient::from_args(&client)?;
            let v = api
                .call(Method::GET, "/api/v1/parallels-activations", None)
                .await?;
            if client.json {
                return print_json(&v);
            }
            let rows: Vec<Vec<String>> = v["parallels_activations"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .map(|a| {
                    vec![
                        table::cell(a, "/group"),
                        table::cell(a, "/activation_experience"),
                        table::cell(a, "/license_key_hint"),
                        table::cell(a, "/updated_at"),
                    ]
                })
                .collect();
            table::print(&["GROUP", "ACTIVATION", "KEY ENDS", "UPDATED"], &rows);
            Ok(())
        }
        ParallelsActivationCmd::Remove { client, group } => {
            let api = AdminClient::from_args(&client)?;
            let v = api.call(Method::DELETE, &path(&group), None).await?;
            if client.json {
                return print_json(&v);
            }
            println!(
                "Removed the Parallels Desktop activation of {group}; its profile is being removed from the group's Macs."
            );
            Ok(())
        }
    }
}
