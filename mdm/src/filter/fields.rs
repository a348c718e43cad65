//! The fields a filter may name, what kind of value each holds, and how it is answered.
//! Whatever answers [`super::Facts`] for devices must answer every field listed: a
//! [`Answer::Row`] field from the device's own facts, a [`Answer::Lookup`] field (many values
//! per Mac, kept in their own tables: apps, groups, users) by [`super::Facts::lookup`], which
//! the caller answers from one query per term.

/// How a field's values compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FieldKind {
    /// `=`, `!=`, `~`; case-insensitive.
    Text,
    /// Every operator; ordered component by component (see `compare_versions`), `~` on the
    /// text.
    Version,
    /// `=` and `!=` with `true`/`false` (or `yes`/`no`).
    Bool,
}

impl FieldKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FieldKind::Text => "text",
            FieldKind::Version => "version",
            FieldKind::Bool => "boolean",
        }
    }
}

/// Where a field's value comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Answer {
    /// One value per device: [`super::Facts::fact`].
    Row,
    /// Whether the device is among those a query finds: [`super::Facts::lookup`].
    Lookup,
    /// Not a term of its own: narrows the term before it (`app_version` after `app`).
    Qualifier,
}

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Field {
    pub name: &'static str,
    pub kind: FieldKind,
    pub answer: Answer,
    /// One line for documentation and error messages.
    pub about: &'static str,
}

const fn f(name: &'static str, kind: FieldKind, about: &'static str) -> Field {
    Field {
        name,
        kind,
        answer: Answer::Row,
        about,
    }
}

const fn lookup(name: &'static str, kind: FieldKind, about: &'static str) -> Field {
    Field {
        name,
        kind,
        answer: Answer::Lookup,
        about,
    }
}

/// The field that may qualify an `app` term.
pub const APP_VERSION: &str = "app_version";

/// Every field, in the order documentation lists them.
pub const FIELDS: &[Field] = &[
    f("serial", FieldKind::Text, "serial number"),
    f("udid", FieldKind::Text, "UDID (the device channel's ID)"),
    f("model", FieldKind::Text, "model identifier, e.g. Mac14,2"),
    f(
        "model_name",
        FieldKind::Text,
        "model name, e.g. MacBook Air",
    ),
    f(
        "product_name",
        FieldKind::Text,
        "product name, e.g. Mac14,2",
    ),
    f("device_name", FieldKind::Text, "the name the Mac reports"),
    f("os_version", FieldKind::Version, "macOS version, e.g. 15.1"),
    f(
        "build_version",
        FieldKind::Version,
        "macOS build, e.g. 24B83",
    ),
    f(
        "enrolled",
        FieldKind::Bool,
        "enrolled now (TokenUpdate, no CheckOut since)",
    ),
    f(
        "apple_silicon",
        FieldKind::Bool,
        "DeviceInformation IsAppleSilicon (macOS 12+)",
    ),
    f(
        "dep_profile",
        FieldKind::Text,
        "UUID of the DEP profile Apple lists for the Mac's serial",
    ),
    f(
        "supervised",
        FieldKind::Bool,
        "DeviceInformation IsSupervised",
    ),
    f(
        "activation_lock",
        FieldKind::Bool,
        "DeviceInformation IsActivationLockEnabled",
    ),
    f("filevault", FieldKind::Bool, "SecurityInfo FDE_Enabled"),
    f(
        "sip",
        FieldKind::Bool,
        "SecurityInfo SystemIntegrityProtectionEnabled",
    ),
    f(
        "firewall",
        FieldKind::Bool,
        "SecurityInfo FirewallSettings.FirewallEnabled",
    ),
    f(
        "secure_boot",
        FieldKind::Text,
        "SecurityInfo SecureBoot.SecureBootLevel (full, medium, off)",
    ),
    f(
        "recovery_lock",
        FieldKind::Bool,
        "SecurityInfo IsRecoveryLockEnabled",
    ),
    lookup(
        "app",
        FieldKind::Text,
        "an installed app's bundle ID or name (InstalledApplicationList)",
    ),
    Field {
        name: APP_VERSION,
        kind: FieldKind::Version,
        answer: Answer::Qualifier,
        about: "the version (ShortVersion) of the app named by the app term before it",
    },
    lookup(
        "group",
        FieldKind::Text,
        "the name of a group the device is in (static or smart)",
    ),
    lookup(
        "console_user",
        FieldKind::Text,
        "short or long name of the console user (user channel) or a logged-in user (UserList)",
    ),
];

/// The field named `name`, case-insensitively.
pub fn field(name: &str) -> Option<&'static Field> {
    FIELDS.iter().find(|f| f.name.eq_ignore_ascii_case(name))
}
