//! The `russet` command tree ([`Cli`], [`Command`]) and the admin CLI commands. The admin
//! commands call the admin API like any other client ([`AdminClient`]); `serve` and `doctor` take
//! the server's configuration ([`ServeArgs`]).

pub mod admin;
pub mod apns;
mod client;
pub mod command;
pub mod ddm;
pub mod dep;
pub mod devices;
pub mod doctor;
pub mod enroll;
pub mod filevault;
pub mod golden_image;
pub mod group;
pub mod inventory;
pub mod lockwipe;
pub mod os_update;
pub mod parallels_activation;
pub mod profile;
pub mod recovery_lock;
mod table;

pub use client::{AdminClient, ClientArgs};

use crate::config::ServeArgs;
use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(name = "russet", version, about = "Apple MDM + DEP server for Macs")]
pub struct Cli {
    /// TOML file with `serve` settings (keys as the flag names, e.g. `data-dir = "/var/lib/russet"`).
    #[arg(long, global = true, env = "RUSSET_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the server: device endpoints, admin API and background workers.
    Serve(Box<ServeArgs>),
    /// Enrolled devices.
    #[command(subcommand)]
    Devices(devices::DevicesCmd),
    /// Device groups: static (devices by UDID or serial) and smart (a filter).
    #[command(subcommand)]
    Group(group::GroupCmd),
    /// Golden images: corporate VM images for Parallels Desktop, assigned to groups.
    #[command(subcommand)]
    GoldenImage(golden_image::GoldenImageCmd),
    /// Parallels Desktop activation per group: a license key (sealed, never shown) or SSO.
    #[command(subcommand)]
    ParallelsActivation(parallels_activation::ParallelsActivationCmd),
    /// OS updates enforced per group through Declarative Device Management.
    #[command(subcommand)]
    OsUpdate(os_update::OsUpdateCmd),
    /// Raw Declarative Device Management declarations for groups.
    #[command(subcommand)]
    Ddm(ddm::DdmCmd),
    /// MDM commands.
    #[command(subcommand)]
    Command(command::CommandCmd),
    /// Lock a Mac with a 6-digit PIN (escrowed before the command is sent).
    Lock(lockwipe::LockCmd),
    /// Erase a Mac (one at a time, confirmed by its serial number), or `wipe cancel UDID`.
    Wipe(lockwipe::WipeCmd),
    /// Escrowed unlock PINs.
    #[command(subcommand)]
    Pin(lockwipe::PinCmd),
    /// Wake a device through APNs now.
    Push(apns::PushCmd),
    /// The APNs push certificate.
    #[command(subcommand)]
    Apns(apns::ApnsCmd),
    /// MDM vendor tools: sign customers' push CSRs.
    #[command(subcommand)]
    Vendor(apns::VendorCmd),
    /// The audit log.
    #[command(subcommand)]
    Audit(lockwipe::AuditCmd),
    /// Enrollment links (who may download the enrollment profile).
    #[command(subcommand)]
    Enroll(enroll::EnrollCmd),
    /// Check the configuration `serve` would use: ports, TLS, push certificate, APNs, DEP.
    Doctor(Box<ServeArgs>),
    /// DEP (Automated Device Enrollment): links, sync, device records, profiles.
    #[command(subcommand)]
    Dep(dep::DepCmd),
    /// Run the DEP simulator (Apple's DEP API for trials and tests) until Ctrl-C.
    DepSim(dep::DepSimArgs),
    /// Configuration profiles: upload, assign, Custom Settings.
    #[command(subcommand)]
    Profile(profile::ProfileCmd),
    /// Inventory: ask Macs for it now (`russet devices inventory DEVICE` shows it).
    #[command(subcommand)]
    Inventory(inventory::InventoryCmd),
    /// Admin accounts: create (prints a token once), list, revoke.
    #[command(subcommand)]
    Admin(admin::AdminCmd),
    /// FileVault: enforce on a group, escrowed recovery keys (audited), rotation.
    #[command(subcommand)]
    Filevault(filevault::FileVaultCmd),
    /// Recovery Lock (Apple silicon): set, rotate, clear; escrowed passwords.
    #[command(subcommand)]
    RecoveryLock(recovery_lock::RecoveryLockCmd),
}
