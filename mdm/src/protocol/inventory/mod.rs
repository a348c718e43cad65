//! Inventory answers: what a Mac says about itself in `DeviceInformation`
//! (`information.device.yaml`), `SecurityInfo` (`information.security.yaml`),
//! `InstalledApplicationList` (`application.installed.list.yaml`), `CertificateList`
//! (`certificate.list.yaml`) and `UserList` (`user.list.yaml`), all from
//! apple/device-management `mdm/commands/`, embedded in `protocol/schema/`.
//!
//! Each decoder reads a report body (through the plist guard first) into a few typed facts —
//! what people filter and sort on — plus the whole answer as JSON, kept as the Mac sent it.
//! A key of the wrong type counts as absent: Macs of different ages answer differently, and
//! one odd value must not cost the rest of the answer. A body that is not a plist, or lacks
//! the answer's top-level key, is an error (never "nothing installed").

mod decode;
mod queries;

#[cfg(test)]
mod tests;

pub use decode::{
    App, Certificate, DeviceInformation, InventoryAnswer, MAX_APPS, MAX_CERTIFICATES, MAX_USERS,
    SecurityInfo, User, UserList, decode_applications, decode_certificates,
    decode_device_information, decode_security_info, decode_user_list,
};
pub use queries::{MACOS_DEVICE_QUERIES, NOT_ASKED};

/// The request types inventory sends, in the order a Mac gets them.
pub const INVENTORY_REQUEST_TYPES: &[&str] = &[
    "DeviceInformation",
    "SecurityInfo",
    "InstalledApplicationList",
    "CertificateList",
    "UserList",
];
