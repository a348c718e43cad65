//! Admin CLI commands. They call the admin API like any other client.

pub mod command;
pub mod devices;
mod client;
mod table;

pub use client::AdminClient;
