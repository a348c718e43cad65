//! The fields a filter may name, and what kind of value each holds. The inventory issue adds
//! its own (`app`, `filevault`, `group`, …) here; whatever answers [`super::Facts`] for
//! devices must answer every field listed.

/// How a field's values compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

#[derive(Debug, PartialEq, Eq)]
pub struct Field {
    pub name: &'static str,
    pub kind: FieldKind,
    /// One line for documentation and error messages.
    pub about: &'static str,
}

const fn f(name: &'static str, kind: FieldKind, about: &'static str) -> Field {
    Field { name, kind, about }
}

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
];

/// The field named `name`, case-insensitively.
pub fn field(name: &str) -> Option<&'static Field> {
    FIELDS.iter().find(|f| f.name.eq_ignore_ascii_case(name))
}
