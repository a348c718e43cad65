//! Admin CLI commands. They call the admin API like any other client.

pub mod apns;
mod client;
pub mod command;
pub mod dep;
pub mod devices;
pub mod doctor;
pub mod enroll;
pub mod lockwipe;
mod table;

pub use client::AdminClient;
