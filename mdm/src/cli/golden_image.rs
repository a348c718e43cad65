//! `russet golden-image create|update|list|show|delete|assign|unassign|verify`: the golden image
//! catalog (corporate VM images Parallels Desktop offers users) through the admin API
//! (`/api/v1/golden-images`). A checksum may be given as 64 hex, a `shasum -a 256` line, or
//! `@FILE` to read a `.sha256.txt` file; the server checks and normalises it. Create and
//! update print the server's URL warnings (HEAD check) unless `--no-check-urls`.

use super::client::{AdminClient, ClientArgs, urlencode};
use super::table;
use super::table::print_json;
use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::{Map, Value, json};

#[derive(Subcommand, Debug)]
pub enum GoldenImageCmd {
    /// Create a golden image: a name, an optional description (both shown to users), and an
    /// image (download URL and SHA-256) for Apple silicon, Intel, or both.
    Create {
        #[command(flatten)]
        client: ClientArgs,
        name: String,
        #[arg(long)]
        description: Option<String>,
        #[command(flatten)]
        images: Images,
        /// Skip the HEAD check of the URLs (air-gapped servers).
        #[arg(long)]
        no_check_urls: bool,
    },
    /// Change a golden image's description or images (the others stay as they are).
    Update {
        #[command(flatten)]
        client: ClientArgs,
        name: String,
        #[arg(long, conflicts_with = "no_description")]
        description: Option<String>,
        #[arg(long)]
        no_description: bool,
        #[command(flatten)]
        images: Images,
        /// Remove the Apple silicon image (an image for Intel must remain).
        #[arg(long, conflicts_with = "apple_silicon_url")]
        no_apple_silicon: bool,
        /// Remove the Intel image (an image for Apple silicon must remain).
        #[arg(long, conflicts_with = "intel_url")]
        no_intel: bool,
        /// Skip the HEAD check of changed URLs (air-gapped servers).
        #[arg(long)]
        no_check_urls: bool,
    },
    /// Every golden image with its groups.
    List {
        #[command(flatten)]
        client: ClientArgs,
    },
    /// One golden image.
    Show {
        #[command(flatten)]
        client: ClientArgs,
        name: String,
    },
    /// Delete a golden image: irreversible, its groups are left without one.
    Delete {
        #[command(flatten)]
        client: ClientArgs,
        name: String,
        /// Required: deleting cannot be undone.
        #[arg(long)]
        confirm: bool,
    },
    /// Assign a golden image to groups (a group holds at most one golden image).
    Assign {
        #[command(flatten)]
        client: ClientArgs,
        name: String,
        #[arg(long = "group", value_name = "GROUP", required = true, num_args = 1..)]
        groups: Vec<String>,
    },
    /// Take a golden image off groups.
    Unassign {
        #[command(flatten)]
        client: ClientArgs,
        name: String,
        #[arg(long = "group", value_name = "GROUP", required = true, num_args = 1..)]
        groups: Vec<String>,
    },
    /// Have the server download each image and compare its SHA-256 (progress on stderr);
    /// exits non-zero unless every architecture matches.
    Verify {
        #[command(flatten)]
        client: ClientArgs,
        name: String,
    },
}

/// The images per architecture; a URL goes with its checksum.
#[derive(Args, Debug)]
pub struct Images {
    /// Download URL of the Apple silicon image (http or https, no authentication).
    #[arg(long, value_name = "URL", requires = "apple_silicon_sha256")]
    apple_silicon_url: Option<String>,
    /// Its SHA-256: 64 hex, a `shasum -a 256` line, or @FILE (a .sha256.txt file).
    #[arg(long, value_name = "HASH", requires = "apple_silicon_url")]
    apple_silicon_sha256: Option<String>,
    /// Download URL of the Intel image (http or https, no authentication).
    #[arg(long, value_name = "URL", requires = "intel_sha256")]
    intel_url: Option<String>,
    /// Its SHA-256: 64 hex, a `shasum -a 256` line, or @FILE (a .sha256.txt file).
    #[arg(long, value_name = "HASH", requires = "intel_url")]
    intel_sha256: Option<String>,
}

/// `@FILE` reads the file (a `.sha256.txt`); anything else is sent as given.
fn checksum(given: &str) -> anyhow::Result<String> {
    match given.strip_prefix('@') {
        Some(path) => std::fs::read_to_string(path).with_context(|| format!("reading {path}")),
        None => Ok(given.to_owned()),
    }
}

impl Images {
    /// The architectures given, as the API's JSON keys.
    fn into_body(self, body: &mut Map<String, Value>) -> anyhow::Result<()> {
        for (key, url, sha) in [
            (
                "apple_silicon",
                self.apple_silicon_url,
                self.apple_silicon_sha256,
            ),
            ("intel", self.intel_url, self.intel_sha256),
        ] {
            if let (Some(url), Some(sha)) = (url, sha) {
                body.insert(key.into(), json!({"url": url, "sha256": checksum(&sha)?}));
            }
        }
        Ok(())
    }
}

fn path(name: &str) -> String {
    format!("/api/v1/golden-images/{}", urlencode(name))
}

pub async fn run(cmd: GoldenImageCmd) -> anyhow::Result<()> {
    match cmd {
        GoldenImageCmd::Create {
            client,
            name,
            description,
            images,
            no_check_urls,
        } => {
            let mut body = Map::new();
            body.insert("name".into(), name.into());
            body.insert("check_urls".into(), (!no_check_urls).into());
            if let Some(d) = description {
                body.insert("description".into(), d.into());
            }
            images.into_body(&mut body)?;
            let api = AdminClient::from_args(&client)?;
            let v = api
                .call(
                    Method::POST,
                    "/api/v1/golden-images",
                    Some(&Value::Object(body)),
                )
                .await?;
            if client.json {
                return print_json(&v);
            }
            println!("Created golden image {}.", table::cell(&v, "/name"));
            print_image(&v);
            print_warnings(&v);
            Ok(())
        }
        GoldenImageCmd::Update {
            client,
            name,
            description,
            no_description,
            images,
            no_apple_silicon,
            no_intel,
            no_check_urls,
        } => {
            let mut body = Map::new();
            body.insert("check_urls".into(), (!no_check_urls).into());
            if no_description {
                body.insert("description".into(), Value::Null);
            } else if let Some(d) = description {
                body.insert("description".into(), d.into());
            }
            images.into_body(&mut body)?;
            if no_apple_silicon {
                body.insert("apple_silicon".into(), Value::Null);
            }
            if no_intel {
                body.insert("intel".into(), Value::Null);
            }
            let api = AdminClient::from_args(&client)?;
            let v = api
                .call(Method::PATCH, &path(&name), Some(&Value::Object(body)))
                .await?;
            if client.json {
                return print_json(&v);
            }
            print_image(&v);
            print_warnings(&v);
            Ok(())
        }
        GoldenImageCmd::List { client } => {
            let api = AdminClient::from_args(&client)?;
            let v = api.call(Method::GET, "/api/v1/golden-images", None).await?;
            if client.json {
                return print_json(&v);
            }
            let rows: Vec<Vec<String>> = v["golden_images"]
                .as_array()
                .map(|a| a.as_slice())
                .unwrap_or_default()
                .iter()
                .map(|g| {
                    let has = |key: &str| if g[key].is_object() { "yes" } else { "-" };
                    vec![
                        table::cell(g, "/name"),
                        has("apple_silicon").to_owned(),
                        has("intel").to_owned(),
                        groups(g),
                        table::cell(g, "/description"),
                    ]
                })
                .collect();
            table::print(
                &["NAME", "APPLE SILICON", "INTEL", "GROUPS", "DESCRIPTION"],
                &rows,
            );
            Ok(())
        }
        GoldenImageCmd::Show { client, name } => {
            let api = AdminClient::from_args(&client)?;
            let v = api.call(Method::GET, &path(&name), None).await?;
            if client.json {
                return print_json(&v);
            }
            print_image(&v);
            Ok(())
        }
        GoldenImageCmd::Delete {
            client,
            name,
            confirm,
        } => {
            // Without --confirm the server answers why not (irreversible, which groups would
            // lose their image), so the admin sees that before deciding.
            let api = AdminClient::from_args(&client)?;
            let v = api
                .call(
                    Method::DELETE,
                    &format!("{}?confirm={confirm}", path(&name)),
                    None,
                )
                .await?;
            if client.json {
                return print_json(&v);
            }
            let freed = v["groups_freed"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_str).collect::<Vec<_>>())
                .unwrap_or_default();
            if freed.is_empty() {
                println!("Deleted golden image {name}.");
            } else {
                println!(
                    "Deleted golden image {name}; these groups have no golden image now: {}.",
                    freed.join(", ")
                );
            }
            Ok(())
        }
        GoldenImageCmd::Assign {
            client,
            name,
            groups,
        } => assignment(&client, &name, groups, Method::POST).await,
        GoldenImageCmd::Unassign {
            client,
            name,
            groups,
        } => assignment(&client, &name, groups, Method::DELETE).await,
        GoldenImageCmd::Verify { client, name } => verify(&client, &name).await,
    }
}

/// The HEAD check's warnings, on stderr (the image was created or changed all the same).
fn print_warnings(v: &Value) {
    for w in v["warnings"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        eprintln!(
            "warning: {} {}: {}",
            table::cell(w, "/architecture"),
            table::cell(w, "/url"),
            table::cell(w, "/warning")
        );
    }
}

/// Streams the verify: progress on stderr, then a table of the results.
async fn verify(client: &ClientArgs, name: &str) -> anyhow::Result<()> {
    let api = AdminClient::from_args(client)?;
    let mut lines = api
        .stream(api.request(Method::POST, &format!("{}/verify?stream=true", path(name))))
        .await?;
    let mut results: Vec<Value> = Vec::new();
    let mut done: Option<Value> = None;
    while let Some(v) = lines.next().await? {
        if client.json {
            println!("{v}");
        }
        match v["event"].as_str() {
            Some("progress") if !client.json => eprintln!("{}", progress_text(&v)),
            Some("result") => results.push(v),
            Some("done") => done = Some(v),
            Some("error") => bail!("verify failed: {}", table::cell(&v, "/message")),
            _ => {}
        }
    }
    if !client.json {
        let rows: Vec<Vec<String>> = results
            .iter()
            .map(|r| {
                let outcome = if r["match"].as_bool() == Some(true) {
                    "match".to_owned()
                } else if r["error"].is_string() {
                    format!("error: {}", table::cell(r, "/error"))
                } else {
                    "MISMATCH".to_owned()
                };
                vec![
                    table::cell(r, "/architecture"),
                    outcome,
                    table::cell(r, "/bytes"),
                    table::cell(r, "/seconds"),
                    table::cell(r, "/expected"),
                    table::cell(r, "/actual"),
                ]
            })
            .collect();
        table::print(
            &[
                "ARCHITECTURE",
                "RESULT",
                "BYTES",
                "SECONDS",
                "EXPECTED",
                "ACTUAL",
            ],
            &rows,
        );
    }
    match done {
        Some(d) if d["ok"].as_bool() == Some(true) => Ok(()),
        Some(_) => bail!("golden image {name}: not every image matches its SHA-256"),
        None => bail!("the server ended the verify without a result"),
    }
}

/// `apple_silicon: 12.0 MiB of 40.0 MiB (30%)`.
fn progress_text(v: &Value) -> String {
    let mib = |n: u64| n as f64 / (1024.0 * 1024.0);
    let bytes = v["bytes"].as_u64().unwrap_or(0);
    let arch = table::cell(v, "/architecture");
    match v["total"].as_u64().filter(|t| *t > 0) {
        Some(total) => format!(
            "{arch}: {:.1} MiB of {:.1} MiB ({}%)",
            mib(bytes),
            mib(total),
            bytes.saturating_mul(100) / total
        ),
        None => format!("{arch}: {:.1} MiB", mib(bytes)),
    }
}

async fn assignment(
    client: &ClientArgs,
    name: &str,
    group_names: Vec<String>,
    method: Method,
) -> anyhow::Result<()> {
    let assigning = method == Method::POST;
    let api = AdminClient::from_args(client)?;
    let v = api
        .call(
            method,
            &format!("{}/groups", path(name)),
            Some(&json!({"groups": group_names})),
        )
        .await?;
    if client.json {
        return print_json(&v);
    }
    let count = |key: &str| v[key].as_array().map_or(0, Vec::len);
    if assigning {
        println!(
            "Assigned {name} to {} groups ({} had it already); its groups: {}.",
            count("added"),
            count("unchanged"),
            groups(&v["golden_image"])
        );
    } else {
        println!(
            "Took {name} off {} groups ({} did not have it); its groups: {}.",
            count("removed"),
            count("not_assigned"),
            groups(&v["golden_image"])
        );
    }
    Ok(())
}

/// The groups of an image, comma-separated, or `-`.
fn groups(v: &Value) -> String {
    let names: Vec<&str> = v["groups"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if names.is_empty() {
        "-".to_owned()
    } else {
        names.join(", ")
    }
}

fn print_image(v: &Value) {
    for (label, ptr) in [
        ("Name", "/name"),
        ("Description", "/description"),
        ("Apple silicon", "/apple_silicon/url"),
        ("  SHA-256", "/apple_silicon/sha256"),
        ("Intel", "/intel/url"),
        ("  SHA-256", "/intel/sha256"),
    ] {
        println!("{label:<15}{}", table::cell(v, ptr));
    }
    println!("{:<15}{}", "Groups", groups(v));
    for (label, ptr) in [
        ("Created", "/created_at"),
        ("Created by", "/created_by"),
        ("Updated", "/updated_at"),
        ("Updated by", "/updated_by"),
    ] {
        println!("{label:<15}{}", table::cell(v, ptr));
    }
}
