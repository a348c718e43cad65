//! `russet dep …` (links, sync, device records, profiles, disown) and `russet dep-sim`.

use super::client::{AdminClient, ClientArgs, urlencode};
use super::table;
use super::table::print_json;
use anyhow::{Context, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::{Value, json};
use std::path::PathBuf;

#[derive(Subcommand, Debug)]
pub enum DepCmd {
    /// DEP links (one per MDM server in Apple Business/School Manager).
    #[command(subcommand)]
    Link(LinkCmd),
    /// Pull device changes from Apple now (one pass), printing progress.
    Sync {
        #[command(flatten)]
        client: ClientArgs,
        #[arg(long)]
        link: Option<String>,
    },
    /// DEP device records and Russet's status of each.
    Devices {
        #[command(flatten)]
        client: ClientArgs,
        #[arg(long)]
        link: Option<String>,
        /// not_assigned, assigned, enrolled or disowned.
        #[arg(long)]
        status: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: u32,
        /// Continue after this serial (the `next_cursor` of a previous page).
        #[arg(long)]
        cursor: Option<String>,
    },
    /// Enrollment profiles at Apple.
    #[command(subcommand)]
    Profile(ProfileCmd),
    /// Remove devices from your organisation for good (irreversible).
    Disown {
        #[command(flatten)]
        client: ClientArgs,
        #[arg(required = true)]
        serials: Vec<String>,
        #[arg(long)]
        link: Option<String>,
        /// Required: disowning cannot be undone.
        #[arg(long)]
        confirm: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum LinkCmd {
    /// New key pair and certificate for a link; prints the certificate to upload to Apple.
    Create {
        #[command(flatten)]
        client: ClientArgs,
        name: String,
        /// Replace the key pair of an existing link (its token stops working).
        #[arg(long)]
        force: bool,
    },
    /// The certificate (PEM) to upload to Apple Business/School Manager.
    Cert {
        #[command(flatten)]
        client: ClientArgs,
        name: String,
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Load the token Apple gave you (`…_smime.p7m`, or a JSON token) and test it.
    Token {
        #[command(flatten)]
        client: ClientArgs,
        name: String,
        file: PathBuf,
        /// Replace a working token.
        #[arg(long)]
        force: bool,
    },
    /// Links, token expiry and alerts.
    List {
        #[command(flatten)]
        client: ClientArgs,
    },
    /// One link in detail.
    Show {
        #[command(flatten)]
        client: ClientArgs,
        name: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum ProfileCmd {
    /// Define a profile from Apple's profile JSON (Russet fills `url` and, for a private TLS
    /// chain, `anchor_certs`).
    Create {
        #[command(flatten)]
        client: ClientArgs,
        file: PathBuf,
        #[arg(long)]
        link: Option<String>,
        /// Assign this profile to devices added from now on.
        #[arg(long)]
        default: bool,
        /// A .mobileconfig installed while Setup Assistant waits (its MDM payload, if any, is
        /// replaced by Russet's own).
        #[arg(long, value_name = "MOBILECONFIG")]
        attach: Option<PathBuf>,
        /// AccountConfiguration keys (JSON, as Apple names them) sent while Setup Assistant
        /// waits; `passwordHash` is base64.
        #[arg(long, value_name = "JSON_FILE")]
        account_config: Option<PathBuf>,
        /// Macs older than this (macOS 14+) must update first (Apple's
        /// com.apple.softwareupdate.required).
        #[arg(long, value_name = "VERSION")]
        min_os: Option<String>,
        /// With --min-os: the build to update to.
        #[arg(long, value_name = "BUILD", requires = "min_os")]
        min_build: Option<String>,
        /// A static group the profile's Macs join (by serial number) when they enroll.
        #[arg(long, value_name = "GROUP")]
        group: Option<String>,
    },
    List {
        #[command(flatten)]
        client: ClientArgs,
        #[arg(long)]
        link: Option<String>,
    },
    /// Assign a profile to devices.
    Assign {
        #[command(flatten)]
        client: ClientArgs,
        uuid: String,
        #[arg(required = true)]
        serials: Vec<String>,
    },
    /// Remove the profile assignment of devices.
    Remove {
        #[command(flatten)]
        client: ClientArgs,
        #[arg(required = true)]
        serials: Vec<String>,
        /// Only if this profile is the assigned one.
        #[arg(long)]
        profile: Option<String>,
        #[arg(long)]
        link: Option<String>,
    },
}

#[derive(Args, Debug)]
pub struct DepSimArgs {
    #[arg(long, default_value = "127.0.0.1:8090")]
    pub listen: std::net::SocketAddr,
    #[arg(long, default_value_t = 100)]
    pub devices: usize,
    /// Write the simulator's token (JSON) here, for `russet dep link token`.
    #[arg(long)]
    pub write_token: Option<PathBuf>,
}

pub async fn run(cmd: DepCmd) -> anyhow::Result<()> {
    match cmd {
        DepCmd::Link(l) => link(l).await,
        DepCmd::Sync { client, link } => sync(&client, link).await,
        DepCmd::Devices {
            client,
            link,
            status,
            limit,
            cursor,
        } => {
            let api = AdminClient::from_args(&client)?;
            let mut q = format!("?limit={limit}");
            for (k, v) in [("link", link), ("status", status), ("cursor", cursor)] {
                if let Some(v) = v {
                    q.push_str(&format!("&{k}={}", urlencode(&v)));
                }
            }
            let v = api
                .call(Method::GET, &format!("/api/v1/dep/devices{q}"), None)
                .await?;
            if client.json {
                return print_json(&v);
            }
            let rows: Vec<Vec<String>> = v["devices"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|d| {
                    vec![
                        table::cell(d, "/serial_number"),
                        status_label(d["status"].as_str().unwrap_or("")).into(),
                        table::cell(d, "/link"),
                        table::cell(d, "/model"),
                        table::cell(d, "/profile_uuid"),
                        table::cell(d, "/assignment/status"),
                        table::cell(d, "/assignment/retry_at"),
                    ]
                })
                .collect();
            table::print(
                &[
                    "SERIAL",
                    "STATUS",
                    "LINK",
                    "MODEL",
                    "PROFILE",
                    "LAST ASSIGN",
                    "RETRY AT",
                ],
                &rows,
            );
            if let Some(next) = v["next_cursor"].as_str() {
                println!("more: --cursor {next}");
            }
            Ok(())
        }
        DepCmd::Profile(p) => profile(p).await,
        DepCmd::Disown {
            client,
            serials,
            link,
            confirm,
        } => {
            if !confirm {
                bail!(
                    "disowning removes the devices from your organisation for good; add --confirm"
                );
            }
            let api = AdminClient::from_args(&client)?;
            let v = api
                .call(
                    Method::POST,
                    "/api/v1/dep/disown",
                    Some(&json!({"devices": serials, "link": link, "confirm": true})),
                )
                .await?;
            print_statuses(&client, &v)
        }
    }
}

fn status_label(s: &str) -> &str {
    match s {
        "not_assigned" => "Not assigned",
        "assigned" => "Assigned",
        "enrolled" => "Enrolled",
        "disowned" => "Disowned",
        other => other,
    }
}

fn print_statuses(client: &ClientArgs, v: &Value) -> anyhow::Result<()> {
    if client.json {
        return print_json(v);
    }
    let rows: Vec<Vec<String>> = v["devices"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(serial, st)| vec![serial.clone(), st.as_str().unwrap_or("-").to_owned()])
        .collect();
    table::print(&["SERIAL", "OUTCOME"], &rows);
    if let Some(secs) = v["retry_after_seconds"].as_u64() {
        println!("Apple throttled some devices: retry after {secs} s");
    }
    Ok(())
}

fn print_link(v: &Value) {
    println!("link:          {}", table::cell(v, "/name"));
    println!("organisation:  {}", table::cell(v, "/org_name"));
    println!(
        "server:        {} ({})",
        table::cell(v, "/server_name"),
        table::cell(v, "/server_uuid")
    );
    println!("admin:         {}", table::cell(v, "/admin_id"));
    println!(
        "token expiry:  {} ({} days left)",
        table::cell(v, "/token_expiry"),
        table::cell(v, "/token_days_left")
    );
    println!("default prof.: {}", table::cell(v, "/default_profile_uuid"));
    println!("last sync:     {}", table::cell(v, "/last_sync_at"));
    if let Some(d) = v["devices"].as_object().filter(|d| !d.is_empty()) {
        let parts: Vec<String> = d
            .iter()
            .map(|(k, n)| format!("{} {n}", status_label(k)))
            .collect();
        println!("devices:       {}", parts.join(", "));
    }
    for a in v["alerts"].as_array().into_iter().flatten() {
        println!("WARNING: {}", a.as_str().unwrap_or(""));
    }
}

async fn link(cmd: LinkCmd) -> anyhow::Result<()> {
    match cmd {
        LinkCmd::Create {
            client,
            name,
            force,
        } => {
            let api = AdminClient::from_args(&client)?;
            let v = api
                .call(
                    Method::POST,
                    "/api/v1/dep/links",
                    Some(&json!({"name": name, "force": force})),
                )
                .await?;
            if client.json {
                return print_json(&v);
            }
            eprintln!(
                "DEP link {name} created. Upload this certificate to your MDM server in Apple \
                 Business/School Manager, download its token, then run \
                 `russet dep link token {name} FILE`:"
            );
            print!("{}", v["certificate_pem"].as_str().unwrap_or(""));
            Ok(())
        }
        LinkCmd::Cert { client, name, out } => {
            let api = AdminClient::from_args(&client)?;
            let v = api
                .call(
                    Method::GET,
                    &format!("/api/v1/dep/links/{}/certificate", urlencode(&name)),
                    None,
                )
                .await?;
            let pem = v["certificate_pem"].as_str().unwrap_or("");
            match out {
                Some(p) => {
                    std::fs::write(&p, pem).with_context(|| format!("writing {}", p.display()))?
                }
                None => print!("{pem}"),
            }
            Ok(())
        }
        LinkCmd::Token {
            client,
            name,
            file,
            force,
        } => {
            let bytes =
                std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            let api = AdminClient::from_args(&client)?;
            let v = api
                .call(
                    Method::PUT,
                    &format!("/api/v1/dep/links/{}/token", urlencode(&name)),
                    Some(&json!({
                        "token": STANDARD.encode(bytes),
                        "force": force,
                    })),
                )
                .await?;
            if client.json {
                return print_json(&v);
            }
            let c = &v["connection"];
            if c["ok"].as_bool() == Some(true) {
                println!("Token stored; Apple answered:");
                println!("  server:       {}", table::cell(c, "/server_name"));
                println!("  organisation: {}", table::cell(c, "/org_name"));
                println!("  admin:        {}", table::cell(c, "/admin_id"));
            } else {
                println!(
                    "Token stored, but the connection test failed: {}",
                    table::cell(c, "/error")
                );
            }
            for a in v["link"]["alerts"].as_array().into_iter().flatten() {
                println!("WARNING: {}", a.as_str().unwrap_or(""));
            }
            Ok(())
        }
        LinkCmd::List { client } => {
            let api = AdminClient::from_args(&client)?;
            let v = api.call(Method::GET, "/api/v1/dep/links", None).await?;
            if client.json {
                return print_json(&v);
            }
            let rows: Vec<Vec<String>> = v["links"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|l| {
                    let alerts: Vec<&str> = l["alerts"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_str)
                        .collect();
                    vec![
                        table::cell(l, "/name"),
                        table::cell(l, "/org_name"),
                        table::cell(l, "/server_name"),
                        table::cell(l, "/token_expiry"),
                        table::cell(l, "/last_sync_at"),
                        if alerts.is_empty() {
                            "-".into()
                        } else {
                            alerts.join(" | ")
                        },
                    ]
                })
                .collect();
            table::print(
                &[
                    "NAME",
                    "ORGANISATION",
                    "SERVER",
                    "TOKEN EXPIRY",
                    "LAST SYNC",
                    "ALERTS",
                ],
                &rows,
            );
            Ok(())
        }
        LinkCmd::Show { client, name } => {
            let api = AdminClient::from_args(&client)?;
            let v = api
                .call(
                    Method::GET,
                    &format!("/api/v1/dep/links/{}", urlencode(&name)),
                    None,
                )
                .await?;
            if client.json {
                return print_json(&v);
            }
            print_link(&v);
            Ok(())
        }
    }
}

/// Streams the pass: one line per page, then the report.
async fn sync(client: &ClientArgs, link: Option<String>) -> anyhow::Result<()> {
    let api = AdminClient::from_args(client)?;
    let mut lines = api
        .stream(
            api.request(Method::POST, "/api/v1/dep/sync?stream=true")
                .json(&json!({"link": link})),
        )
        .await?;
    let mut failed = false;
    while let Some(v) = lines.next().await? {
        failed |= print_sync_line(client.json, &v);
    }
    if failed {
        bail!("DEP sync failed");
    }
    Ok(())
}

fn print_sync_line(as_json: bool, v: &Value) -> bool {
    if as_json {
        println!("{v}");
        return v.get("error").is_some();
    }
    if let Some(p) = v.get("progress") {
        eprintln!(
            "{}: {} page {} — {} devices (total {}){}",
            table::cell(p, "/link"),
            table::cell(p, "/phase"),
            table::cell(p, "/pages"),
            table::cell(p, "/page_devices"),
            table::cell(p, "/total_devices"),
            if p["more_to_follow"].as_bool() == Some(true) {
                ", more to follow"
            } else {
                ""
            }
        );
    } else if let Some(r) = v.get("report") {
        println!(
            "{}: fetched {}, added {}, modified {}, deleted {}; cursor resets {}; \
             default profile assigned {} (failed {}, throttled {}, not accessible {}) in {} ms",
            table::cell(r, "/link"),
            table::cell(r, "/fetched"),
            table::cell(r, "/added"),
            table::cell(r, "/modified"),
            table::cell(r, "/deleted"),
            table::cell(r, "/cursor_resets"),
            table::cell(r, "/auto_assign/success"),
            table::cell(r, "/auto_assign/failed"),
            table::cell(r, "/auto_assign/throttled"),
            table::cell(r, "/auto_assign/not_accessible"),
            table::cell(r, "/duration_ms"),
        );
    } else if let Some(e) = v.get("error") {
        eprintln!(
            "{}: sync failed: {}",
            table::cell(e, "/link"),
            table::cell(e, "/message")
        );
        return true;
    }
    false
}

async fn profile(cmd: ProfileCmd) -> anyhow::Result<()> {
    match cmd {
        ProfileCmd::Create {
            client,
            file,
            link,
            default,
            attach,
            account_config,
            min_os,
            min_build,
            group,
        } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let profile: Value = serde_json::from_str(&text)
                .with_context(|| format!("{} is not JSON", file.display()))?;
            let attached = attach
                .map(|p| {
                    std::fs::read(&p)
                        .with_context(|| format!("reading {}", p.display()))
                        .map(|b| STANDARD.encode(b))
                })
                .transpose()?;
            let account: Option<Value> = account_config
                .map(|p| -> anyhow::Result<Value> {
                    let text = std::fs::read_to_string(&p)
                        .with_context(|| format!("reading {}", p.display()))?;
                    serde_json::from_str(&text)
                        .with_context(|| format!("{} is not JSON", p.display()))
                })
                .transpose()?;
            let setup = json!({
                "attached_profile": attached,
                "account_configuration": account,
                "min_os_version": min_os,
                "min_build_version": min_build,
                "group": group,
            });
            let api = AdminClient::from_args(&client)?;
            let v = api
                .call(
                    Method::POST,
                    "/api/v1/dep/profiles",
                    Some(
                        &json!({"profile": profile, "link": link, "default": default,
                                 "setup": setup}),
                    ),
                )
                .await?;
            if client.json {
                return print_json(&v);
            }
            println!(
                "profile {} defined on link {} (url {}){}",
                table::cell(&v, "/profile_uuid"),
                table::cell(&v, "/link"),
                table::cell(&v, "/url"),
                if default {
                    "; default for new devices"
                } else {
                    ""
                }
            );
            Ok(())
        }
        ProfileCmd::List { client, link } => {
            let api = AdminClient::from_args(&client)?;
            let q = link
                .map(|l| format!("?link={}", urlencode(&l)))
                .unwrap_or_default();
            let v = api
                .call(Method::GET, &format!("/api/v1/dep/profiles{q}"), None)
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
                        table::cell(p, "/profile_uuid"),
                        table::cell(p, "/profile_name"),
                        table::cell(p, "/link"),
                        if p["default"].as_bool() == Some(true) {
                            "yes".into()
                        } else {
                            "-".into()
                        },
                        table::cell(p, "/created_at"),
                    ]
                })
                .collect();
            table::print(&["UUID", "NAME", "LINK", "DEFAULT", "CREATED"], &rows);
            Ok(())
        }
        ProfileCmd::Assign {
            client,
            uuid,
            serials,
        } => {
            let api = AdminClient::from_args(&client)?;
            let v = api
                .call(
                    Method::POST,
                    &format!("/api/v1/dep/profiles/{}/devices", urlencode(&uuid)),
                    Some(&json!({"devices": serials})),
                )
                .await?;
            print_statuses(&client, &v)
        }
        ProfileCmd::Remove {
            client,
            serials,
            profile,
            link,
        } => {
            let api = AdminClient::from_args(&client)?;
            let uuid = profile.unwrap_or_else(|| "any".into());
            let v = api
                .call(
                    Method::DELETE,
                    &format!("/api/v1/dep/profiles/{}/devices", urlencode(&uuid)),
                    Some(&json!({"devices": serials, "link": link})),
                )
                .await?;
            print_statuses(&client, &v)
        }
    }
}

/// `russet dep-sim`: the DEP simulator until Ctrl-C.
pub async fn dep_sim(args: DepSimArgs) -> anyhow::Result<()> {
    let sim = russet_dep::sim::DepSimulator::start_on(
        args.listen,
        russet_dep::sim::SimConfig {
            devices: args.devices,
            ..Default::default()
        },
    )
    .await
    .with_context(|| format!("binding {}", args.listen))?;
    if let Some(path) = &args.write_token {
        sim.write_token(path)
            .with_context(|| format!("writing {}", path.display()))?;
        eprintln!("token written to {}", path.display());
    }
    println!("{}", sim.url());
    eprintln!(
        "DEP simulator with {} devices at {} (start russet serve with --dep-url {}); Ctrl-C stops it",
        args.devices,
        sim.url(),
        sim.url()
    );
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    Ok(())
}
