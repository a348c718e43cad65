//! `russet command send|status`.

use super::client::{AdminClient, ClientArgs, urlencode};
use super::table;
use anyhow::{Context, bail};
use base64::Engine;
use clap::Subcommand;
use reqwest::Method;
use serde_json::{Map, Value, json};
use std::path::PathBuf;

#[derive(Subcommand, Debug)]
pub enum CommandCmd {
    /// Queue a command for a device:
    /// `russet command send UDID --type DeviceInformation --Queries '["SerialNumber"]'`,
    /// or a raw command plist with `--plist FILE`.
    /// Apple keys follow `--type` as `--Key value`; a value that starts with `[` or `{` (or is
    /// true/false) is read as JSON; a key given twice becomes an array.
    Send {
        #[command(flatten)]
        client: ClientArgs,
        udid: String,
        /// RequestType, e.g. DeviceInformation.
        #[arg(long = "type", conflicts_with = "plist")]
        request_type: Option<String>,
        /// A command plist file (`{Command: {RequestType: …}}`).
        #[arg(long)]
        plist: Option<PathBuf>,
        /// Apple command keys: --Key value …
        #[arg(
            trailing_var_arg = true,
            allow_hyphen_values = true,
            value_name = "--Key value"
        )]
        keys: Vec<String>,
    },
    /// Status of a command on each device, with results.
    Status {
        #[command(flatten)]
        client: ClientArgs,
        uuid: String,
    },
}

pub async fn run(cmd: CommandCmd) -> anyhow::Result<()> {
    match cmd {
        CommandCmd::Send {
            mut client,
            udid,
            request_type,
            plist,
            mut keys,
        } => {
            take_client_flags(&mut keys, &mut client)?;
            let body = match (request_type, plist) {
                (_, Some(path)) => {
                    if !keys.is_empty() {
                        bail!("--plist takes no --Key value arguments");
                    }
                    let bytes = std::fs::read(&path)
                        .with_context(|| format!("reading {}", path.display()))?;
                    json!({"plist": base64::engine::general_purpose::STANDARD.encode(bytes)})
                }
                (Some(t), None) => typed_body(&t, &keys)?,
                (None, None) => bail!("give --type REQUEST_TYPE or --plist FILE"),
            };
            let api = AdminClient::from_args(&client)?;
            let v = api
                .call(
                    Method::POST,
                    &format!("/api/v1/devices/{}/commands", urlencode(&udid)),
                    Some(&body),
                )
                .await?;
            if client.json {
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                println!(
                    "Queued {} for {udid}: {}",
                    table::cell(&v, "/request_type"),
                    table::cell(&v, "/command_uuid")
                );
            }
            Ok(())
        }
        CommandCmd::Status { client, uuid } => {
            let api = AdminClient::from_args(&client)?;
            let v = api
                .call(
                    Method::GET,
                    &format!("/api/v1/commands/{}", urlencode(&uuid)),
                    None,
                )
                .await?;
            if client.json {
                println!("{}", serde_json::to_string_pretty(&v)?);
                return Ok(());
            }
            println!(
                "{} {} (created {})",
                table::cell(&v, "/request_type"),
                table::cell(&v, "/command_uuid"),
                table::cell(&v, "/created_at")
            );
            let rows: Vec<Vec<String>> = v["devices"]
                .as_array()
                .map(|a| a.as_slice())
                .unwrap_or_default()
                .iter()
                .map(|d| {
                    vec![
                        table::cell(d, "/enrollment_id"),
                        table::cell(d, "/status"),
                        table::cell(d, "/delivered_at"),
                        table::cell(d, "/result_at"),
                    ]
                })
                .collect();
            table::print(&["ENROLLMENT", "STATUS", "DELIVERED", "RESULT AT"], &rows);
            Ok(())
        }
    }
}

/// The trailing `--Key value` list swallows whatever follows it, including our own flags
/// (`… --Queries X --json`): take those back out.
fn take_client_flags(keys: &mut Vec<String>, client: &mut ClientArgs) -> anyhow::Result<()> {
    let mut rest = Vec::with_capacity(keys.len());
    let mut it = std::mem::take(keys).into_iter();
    while let Some(k) = it.next() {
        let mut value = |flag: &str| it.next().with_context(|| format!("{flag} needs a value"));
        match k.as_str() {
            "--json" => client.json = true,
            "--server" => client.server = Some(value("--server")?),
            "--token" => client.token = Some(value("--token")?),
            "--data-dir" => client.data_dir = PathBuf::from(value("--data-dir")?),
            "--ca-file" => client.ca_file = Some(PathBuf::from(value("--ca-file")?)),
            _ => {
                rest.push(k);
                if let Some(v) = it.next() {
                    rest.push(v);
                }
            }
        }
    }
    *keys = rest;
    Ok(())
}

/// Build `{"request_type": T, "Key": value, …}` from `--Key value` pairs.
fn typed_body(request_type: &str, keys: &[String]) -> anyhow::Result<Value> {
    let mut map = Map::new();
    map.insert(
        "request_type".into(),
        Value::String(request_type.to_string()),
    );
    let mut it = keys.iter();
    while let Some(k) = it.next() {
        let Some(name) = k.strip_prefix("--").filter(|n| !n.is_empty()) else {
            bail!("expected --Key before {k:?}");
        };
        let raw = it
            .next()
            .with_context(|| format!("--{name} needs a value"))?;
        let value = parse_value(raw);
        match map.remove(name) {
            None => {
                map.insert(name.to_string(), value);
            }
            Some(Value::Array(mut items)) => {
                items.push(value);
                map.insert(name.to_string(), Value::Array(items));
            }
            Some(prev) => {
                map.insert(name.to_string(), Value::Array(vec![prev, value]));
            }
        }
    }
    Ok(Value::Object(map))
}

fn parse_value(raw: &str) -> Value {
    let t = raw.trim_start();
    if t.starts_with('[') || t.starts_with('{') || raw == "true" || raw == "false" {
        serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.to_string()))
    } else {
        Value::String(raw.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_value_pairs_become_typed_json() {
        let keys: Vec<String> = [
            "--Queries",
            "[\"SerialNumber\"]",
            "--ManagedOnly",
            "true",
            "--Identifier",
            "com.example",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let v = typed_body("ProfileList", &keys).expect("body");
        assert_eq!(v["request_type"], "ProfileList");
        assert_eq!(v["Queries"], json!(["SerialNumber"]));
        assert_eq!(v["ManagedOnly"], json!(true));
        assert_eq!(v["Identifier"], json!("com.example"));
        let repeated: Vec<String> = ["--Queries", "A", "--Queries", "B"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            typed_body("X", &repeated).expect("body")["Queries"],
            json!(["A", "B"])
        );
        assert!(typed_body("X", &["Queries".to_string()]).is_err());
        assert!(typed_body("X", &["--Queries".to_string()]).is_err());
    }

    #[test]
    fn client_flags_after_the_keys_are_taken_back() {
        let mut keys: Vec<String> = ["--Queries", "--json", "--json", "--data-dir", "/d"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let mut client = ClientArgs {
            server: None,
            token: None,
            ca_file: None,
            data_dir: PathBuf::from("x"),
            json: false,
        };
        take_client_flags(&mut keys, &mut client).expect("flags");
        // "--json" right after a key is that key's value; the second one is our flag.
        assert_eq!(keys, vec!["--Queries".to_string(), "--json".to_string()]);
        assert!(client.json);
        assert_eq!(client.data_dir, PathBuf::from("/d"));
    }
}
