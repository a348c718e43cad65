//! `russet inventory refresh [DEVICE…] [--group G]`, and the text view of one Mac's inventory
//! that `russet devices inventory DEVICE` prints.

use super::client::{AdminClient, ClientArgs};
use super::table::cell;
use clap::Subcommand;
use reqwest::Method;
use serde_json::Value;

#[derive(Subcommand, Debug)]
pub enum InventoryCmd {
    /// Ask Macs for their inventory now (DeviceInformation, SecurityInfo, apps, certificates,
    /// users); they answer when they next connect.
    Refresh {
        #[command(flatten)]
        client: ClientArgs,
        /// UDIDs or serial numbers.
        devices: Vec<String>,
        /// Every member of this group.
        #[arg(long)]
        group: Option<String>,
    },
}

pub async fn run(cmd: InventoryCmd) -> anyhow::Result<()> {
    match cmd {
        InventoryCmd::Refresh {
            client,
            devices,
            group,
        } => {
            let api = AdminClient::from_args(&client)?;
            let body = serde_json::json!({"devices": devices, "group": group});
            let v = api
                .call(Method::POST, "/api/v1/inventory/refresh", Some(&body))
                .await?;
            if client.json {
                println!("{}", serde_json::to_string_pretty(&v)?);
                return Ok(());
            }
            let count = |k: &str| v[k].as_array().map_or(0, Vec::len);
            println!("Queued inventory for {} Mac(s).", count("queued"));
            if let Some(missing) = v["not_enrolled"].as_array().filter(|a| !a.is_empty()) {
                let names: Vec<&str> = missing.iter().filter_map(Value::as_str).collect();
                println!("Not enrolled (nothing queued): {}", names.join(", "));
            }
            Ok(())
        }
    }
}

/// "collected 3 h ago" for a part, or "never collected".
fn when(v: &Value, part: &str) -> String {
    match v[part]["age"].as_str() {
        Some(age) => format!("collected {age}"),
        None => "never collected".into(),
    }
}

/// One Mac's inventory as text: hardware, OS, security, users, app count, each with its age.
pub fn print_inventory(v: &Value) {
    let line = |label: &str, value: String| println!("  {label:<22}{value}");
    println!(
        "{}  {}  (last answer: {})",
        cell(v, "/udid"),
        cell(v, "/serial_number"),
        v["age"].as_str().unwrap_or("never")
    );
    println!("Hardware ({})", when(v, "hardware"));
    line(
        "Model",
        format!(
            "{} ({})",
            cell(v, "/hardware/model_name"),
            cell(v, "/hardware/model")
        ),
    );
    line("Name", cell(v, "/hardware/device_name"));
    line("Apple silicon", cell(v, "/hardware/apple_silicon"));
    line(
        "Storage",
        format!(
            "{} GB free of {} GB",
            cell(v, "/hardware/available_gb"),
            cell(v, "/hardware/capacity_gb")
        ),
    );
    line("Battery", cell(v, "/hardware/battery_level"));
    line("Wi-Fi MAC", cell(v, "/hardware/wifi_mac"));
    line("Ethernet MAC", cell(v, "/hardware/ethernet_mac"));
    println!("OS ({})", when(v, "os"));
    line(
        "Version",
        format!("{} ({})", cell(v, "/os/version"), cell(v, "/os/build")),
    );
    line("Supervised", cell(v, "/os/supervised"));
    line("Activation Lock", cell(v, "/os/activation_lock"));
    println!("Security ({})", when(v, "security"));
    line("FileVault", cell(v, "/security/filevault"));
    line("SIP", cell(v, "/security/sip"));
    line("Firewall", cell(v, "/security/firewall"));
    line("Secure boot", cell(v, "/security/secure_boot"));
    line("Recovery Lock", cell(v, "/security/recovery_lock"));
    line(
        "Bootstrap token",
        format!(
            "escrowed={} allowed={}",
            cell(v, "/security/bootstrap_token_escrowed"),
            cell(v, "/security/bootstrap_token_allowed")
        ),
    );
    println!("Users ({})", when(v, "users"));
    line("Console user", cell(v, "/users/console_user/short_name"));
    let logged_in: Vec<&str> = v["users"]["logged_in"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    line("Logged in", logged_in.join(", "));
    line("Accounts", cell(v, "/users/count"));
    println!("Apps ({})", when(v, "apps"));
    line("Installed", cell(v, "/apps/count"));
    if let Some(profiles) = v["profiles"].as_array().filter(|p| !p.is_empty()) {
        println!("Profiles");
        for p in profiles {
            line(&cell(p, "/identifier"), cell(p, "/state"));
        }
    }
    println!("Certificates ({})", when(v, "certificates"));
    line("Installed", cell(v, "/certificates/count"));
    if let Some(changes) = v["changes"].as_array().filter(|c| !c.is_empty()) {
        println!("Changes");
        for c in changes {
            println!(
                "  {}  {}: {} -> {}",
                cell(c, "/changed_at"),
                cell(c, "/field"),
                cell(c, "/old"),
                cell(c, "/new")
            );
        }
    }
}
