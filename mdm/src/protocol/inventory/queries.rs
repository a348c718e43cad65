//! The `DeviceInformation` queries inventory asks a Mac: every `QueryResponses` key Apple's
//! `information.device.yaml` gives for macOS (its `supportedOS.macOS.introduced` is not
//! `n/a`), but the few in [`NOT_ASKED`]. A test holds the two lists to the schema, so a new
//! schema release that adds a macOS key fails until the key is sorted into one of them.
//! Older Macs simply leave out what they do not know.

/// Asked of every Mac, in the schema's order.
pub const MACOS_DEVICE_QUERIES: &[&str] = &[
    "UDID",
    "ProvisioningUDID",
    "OrganizationInfo",
    "MDMOptions",
    "AwaitingConfiguration",
    "iTunesStoreAccountIsActive",
    "iTunesStoreAccountHash",
    "DeviceName",
    "OSVersion",
    "SupplementalOSVersionExtra",
    "BuildVersion",
    "SupplementalBuildVersion",
    "ModelName",
    "Model",
    "ModelNumber",
    "IsAppleSilicon",
    "ProductName",
    "SerialNumber",
    "DeviceCapacity",
    "AvailableDeviceCapacity",
    "BatteryLevel",
    "HasBattery",
    "IsSupervised",
    "IsActivationLockEnabled",
    "IsActivationLockSupported",
    "SupportsLOMDevice",
    "ActiveManagedUsers",
    "OSUpdateSettings",
    "LocalHostName",
    "HostName",
    "AutoSetupAdminAccounts",
    "SystemIntegrityProtectionEnabled",
    "BluetoothMAC",
    "WiFiMAC",
    "EthernetMAC",
    "PINRequiredForEraseDevice",
    "PINRequiredForDeviceLock",
    "SupportsiOSAppInstalls",
    "SoftwareUpdateDeviceID",
    "EACSPreflight",
];

/// macOS keys of the schema inventory does not ask for, and why.
pub const NOT_ASKED: &[(&str, &str)] = &[
    (
        "PushToken",
        "Russet has it from the TokenUpdate, where it is kept as a push credential",
    ),
    (
        "DevicePropertiesAttestation",
        "needs a DeviceAttestationNonce and makes the Mac call Apple; an attestation feature's job",
    ),
];
