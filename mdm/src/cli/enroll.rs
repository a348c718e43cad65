//! `russet enroll link create [--uses N] [--expires D]`.

use super::client::{AdminClient, ClientArgs};
use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::{Value, json};

#[derive(Subcommand, Debug)]
pub enum EnrollCmd {
    /// Enrollment links: URLs with a token that allow downloading the enrollment profile.
    #[command(subcommand)]
    Link(LinkCmd),
}

#[derive(Subcommand, Debug)]
pub enum LinkCmd {
    /// Create a link; prints its URL.
    Create(CreateArgs),
}

#[derive(Args, Debug)]
pub struct CreateArgs {
    /// How many downloads the link allows (default: unlimited).
    #[arg(long)]
    pub uses: Option<i64>,
    /// Lifetime: seconds, or e.g. `30m`, `24h`, `7d` (default: never expires).
    #[arg(long)]
    pub expires: Option<String>,
    #[command(flatten)]
    pub client: ClientArgs,
}

pub async fn run(cmd: EnrollCmd) -> anyhow::Result<()> {
    match cmd {
        EnrollCmd::Link(LinkCmd::Create(a)) => {
            if let Some(e) = &a.expires
                && crate::timefmt::parse_duration_secs(e).is_none()
            {
                anyhow::bail!("--expires {e:?}: use seconds or e.g. 30m, 24h, 7d");
            }
            let client = AdminClient::from_args(&a.client)?;
            let body = json!({"uses": a.uses, "expires_in": a.expires});
            let v = client
                .call(Method::POST, "/api/v1/enroll-links", Some(&body))
                .await?;
            if a.client.json {
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                println!("{}", v["url"].as_str().unwrap_or_default());
                let uses = match &v["uses"] {
                    Value::Null => "unlimited".to_string(),
                    other => other.to_string(),
                };
                let expires = v["expires_at"].as_str().unwrap_or("never");
                eprintln!("uses: {uses}, expires: {expires}");
            }
            Ok(())
        }
    }
}
