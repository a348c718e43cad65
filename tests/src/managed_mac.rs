//! A simulated Mac that keeps real state: the configuration profiles installed on it, on the
//! device channel and on a logged-in user's channel, and answers InstallProfile, RemoveProfile
//! and ProfileList from that state the way macOS does (Apple's `profile.install`,
//! `profile.remove` and `profile.list` schemas; real captures in `mdm/testdata/devices/`).
//! Inventory is answered from its facts the way current macOS does (Apple's
//! `information.device.yaml`, `information.security.yaml`, `application.installed.list.yaml`,
//! `certificate.list.yaml`, `user.list.yaml`): DeviceInformation with what was queried, its
//! security settings, the apps a test can change, its certificates and users. Tests then check
//! the truth on the Mac, not what the server believes.

use crate::sim_mac::{CHECKIN_CONTENT_TYPE, CONNECT_CONTENT_TYPE, Reply, SimMac};
use plist::{Dictionary, Value};
use std::collections::{BTreeMap, BTreeSet};

/// The enrollment profile Russet installs (`org.russet.enrollment`): on a real Mac it is in
/// the ProfileList too, and no reconciler may remove it.
pub const ENROLLMENT_PROFILE: &str = "org.russet.enrollment";

/// One payload inside an installed profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstalledPayload {
    pub payload_type: String,
    pub identifier: String,
    pub uuid: String,
}

/// A profile as the Mac keeps it after installing it.
#[derive(Debug, Clone)]
pub struct InstalledProfile {
    pub identifier: String,
    pub uuid: String,
    pub display_name: Option<String>,
    pub scope: Option<String>,
    pub payloads: Vec<InstalledPayload>,
    /// The profile's plist as installed (the content of a signed profile).
    pub content: Vec<u8>,
    /// It arrived CMS-signed.
    pub signed: bool,
    /// Installed by MDM (InstallProfile), as opposed to by hand.
    pub managed: bool,
}

/// A user logged in on the Mac with its own MDM channel (macOS user enrollment, Apple's
/// "user channel": TokenUpdate and reports carry `UserID`).
#[derive(Debug, Clone)]
pub struct SimUser {
    pub user_id: String,
    pub short_name: String,
    pub long_name: String,
    pub token: Vec<u8>,
    pub push_magic: String,
    pub profiles: BTreeMap<String, InstalledProfile>,
}

/// Which channel a command came on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    Device,
    User,
}

pub struct ManagedMac {
    pub mac: SimMac,
    pub os_version: String,
    pub build_version: String,
    pub model: String,
    pub is_apple_silicon: bool,
    /// DeviceInformation `DeviceName` (what the Mac's user named it).
    pub device_name: String,
    /// Device-channel profiles by identifier (the enrollment profile included).
    pub profiles: BTreeMap<String, InstalledProfile>,
    pub user: Option<SimUser>,
    /// Installs of these identifiers fail, as when a payload is refused by macOS.
    pub refuse: BTreeSet<String>,
    /// Every command handled: (channel, CommandUUID, RequestType).
    pub handled: Vec<(Channel, String, String)>,
    /// Installed applications: bundle ID → (name, ShortVersion).
    pub apps: BTreeMap<String, (String, String)>,
    pub filevault: bool,
    /// The FileVault personal recovery key (PRK) the Mac holds, when FileVault is on.
    pub recovery_key: Option<String>,
    /// The PRK as the Mac keeps it for escrow (`/var/db/FileVaultPRK.dat`): CMS-enveloped to
    /// the escrow certificate of its FDERecoveryKeyEscrow profile, for (certificate, key).
    escrowed_envelope: Option<(Vec<u8>, String, Vec<u8>)>,
    /// Sends bytes that are not a CMS envelope as `FDE_PersonalRecoveryKeyCMS` (a broken Mac).
    pub garbage_escrow: bool,
    /// The escrow profile arrived while FileVault was already on: macOS escrows the key only
    /// at the user's next login, so SecurityInfo carries none until then.
    pub escrow_waits_for_login: bool,
    pub supervised: bool,
    /// Local accounts besides a logged-in user's: short names, not logged in.
    pub accounts: Vec<String>,
    /// Request types answered with a body that is not Apple's (a broken Mac).
    pub malformed: BTreeSet<String>,
    /// The Recovery Lock password the Mac has (None: Recovery Lock is off).
    pub recovery_lock_password: Option<String>,
    /// Declarative Device Management: tokens, installed declarations, software update.
    pub ddm: crate::ddm_state::DdmState,
}

impl ManagedMac {
    /// A Mac with its enrollment profile installed.
    pub fn new(mac: SimMac) -> Self {
        let mut profiles = BTreeMap::new();
        let enrollment = InstalledProfile {
            identifier: ENROLLMENT_PROFILE.to_string(),
            uuid: uuid::Uuid::new_v4().to_string().to_uppercase(),
            display_name: Some("Russet enrollment".into()),
            scope: Some("System".into()),
            payloads: vec![InstalledPayload {
                payload_type: "com.apple.mdm".into(),
                identifier: format!("{ENROLLMENT_PROFILE}.mdm"),
                uuid: uuid::Uuid::new_v4().to_string().to_uppercase(),
            }],
            content: Vec::new(),
            signed: true,
            managed: false,
        };
        profiles.insert(enrollment.identifier.clone(), enrollment);
        ManagedMac {
            mac,
            os_version: "15.1".into(),
            build_version: "24B83".into(),
            model: "Mac14,2".into(),
            is_apple_silicon: true,
            device_name: "Test Mac".into(),
            profiles,
            user: None,
            refuse: BTreeSet::new(),
            handled: Vec::new(),
            apps: BTreeMap::from([
                (
                    "com.apple.Safari".to_string(),
                    ("Safari".to_string(), "18.1".to_string()),
                ),
                (
                    "com.microsoft.Excel".to_string(),
                    ("Microsoft Excel".to_string(), "16.78".to_string()),
                ),
            ]),
            filevault: true,
            recovery_key: Some(new_recovery_key()),
            escrowed_envelope: None,
            garbage_escrow: false,
            escrow_waits_for_login: false,
            supervised: true,
            accounts: vec!["admin".into()],
            malformed: BTreeSet::new(),
            recovery_lock_password: None,
            ddm: crate::ddm_state::DdmState::default(),
        }
    }

    /// Authenticate and TokenUpdate on the device channel.
    pub async fn enroll(&self) {
        self.mac.enroll().await;
    }

    /// A user logs in and their user channel enrolls (TokenUpdate with `UserID`).
    pub async fn log_in_user(&mut self, short_name: &str) {
        let user = SimUser {
            user_id: uuid::Uuid::new_v4().to_string().to_uppercase(),
            short_name: short_name.to_string(),
            long_name: format!("{short_name} Appleseed"),
            token: uuid::Uuid::new_v4().as_bytes().to_vec(),
            push_magic: uuid::Uuid::new_v4().to_string().to_uppercase(),
            profiles: BTreeMap::new(),
        };
        let msg = SimMac::dict(&[
            ("MessageType", s("TokenUpdate")),
            ("Topic", s(&self.mac.topic)),
            ("UDID", s(&self.mac.udid)),
            ("UserID", s(&user.user_id)),
            ("UserShortName", s(&user.short_name)),
            ("UserLongName", s(&user.long_name)),
            ("Token", Value::Data(user.token.clone())),
            ("PushMagic", s(&user.push_magic)),
        ]);
        let r = self
            .mac
            .put("/mdm/checkin", CHECKIN_CONTENT_TYPE, &SimMac::to_xml(&msg))
            .await;
        assert_eq!(r.status, 200, "user TokenUpdate: {}", text(&r));
        self.user = Some(user);
    }

    /// The user channel's enrollment ID as Russet names it (`UDID:UserID`).
    pub fn user_enrollment_id(&self) -> Option<String> {
        self.user
            .as_ref()
            .map(|u| format!("{}:{}", self.mac.udid, u.user_id))
    }

    /// Work through the device channel's queue the way `mdmclient` does after a push: `Idle`,
    /// then answer each command, until the server has nothing more. Returns the request types
    /// handled, in order.
    pub async fn sync(&mut self) -> Vec<String> {
        self.sync_channel(Channel::Device).await
    }

    /// The same on the user channel.
    pub async fn sync_user(&mut self) -> Vec<String> {
        self.sync_channel(Channel::User).await
    }

    /// Sync the device channel until the server has nothing more (what a reconciler queues
    /// after an answer included): everything handled, in order. A Mac that never settles in
    /// ten rounds is a failure.
    pub async fn converge(&mut self) -> Vec<String> {
        self.converge_channel(Channel::Device).await
    }

    /// The same on the user channel.
    pub async fn converge_user(&mut self) -> Vec<String> {
        self.converge_channel(Channel::User).await
    }

    async fn converge_channel(&mut self, channel: Channel) -> Vec<String> {
        let mut all = Vec::new();
        for _ in 0..10 {
            let round = self.sync_channel(channel).await;
            if round.is_empty() {
                return all;
            }
            all.extend(round);
        }
        panic!("the {channel:?} channel never settled: {all:?}");
    }

    async fn sync_channel(&mut self, channel: Channel) -> Vec<String> {
        let mut seen = Vec::new();
        let mut reply = self
            .connect(channel, &self.status("Idle", None, channel))
            .await;
        // A bound: a server that keeps handing out commands forever is a failure, not a hang.
        for _ in 0..500 {
            assert_eq!(reply.status, 200, "connect: {}", text(&reply));
            let Some((uuid, request_type, command)) = reply.command() else {
                // macOS syncs DDM after the session that brought DeclarativeManagement.
                self.ddm_sync_if_due().await;
                return seen;
            };
            self.handled
                .push((channel, uuid.clone(), request_type.clone()));
            seen.push(request_type.clone());
            let answer = self.answer(channel, &uuid, &request_type, &command);
            reply = self.connect(channel, &answer).await;
        }
        panic!("the server kept sending commands: {seen:?}");
    }

    /// The installed profiles of a channel.
    pub fn installed(&self, channel: Channel) -> &BTreeMap<String, InstalledProfile> {
        match channel {
            Channel::Device => &self.profiles,
            Channel::User => &self.user.as_ref().expect("a logged-in user").profiles,
        }
    }

    /// The user logs out: with a FileVault profile installed (`com.apple.MCX.FileVault2`,
    /// `Enable` `On`, `Defer`), macOS turns FileVault on now and makes a recovery key.
    pub fn log_out(&mut self) {
        if !self.filevault && self.payload("com.apple.MCX.FileVault2").is_some() {
            self.filevault = true;
            self.recovery_key = Some(new_recovery_key());
        }
    }

    /// A payload of this type in an installed device-channel profile.
    pub fn payload(&self, payload_type: &str) -> Option<Dictionary> {
        self.payloads()
            .into_iter()
            .find(|p| p.get("PayloadType").and_then(Value::as_string) == Some(payload_type))
    }

    fn payloads(&self) -> Vec<Dictionary> {
        self.profiles
            .values()
            .filter_map(|p| plist::from_bytes::<Dictionary>(&p.content).ok())
            .flat_map(|top| {
                top.get("PayloadContent")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default()
            })
            .filter_map(|v| v.into_dictionary())
            .collect()
    }

    /// The escrow certificate (DER) an installed FDERecoveryKeyEscrow payload names by
    /// `EncryptCertPayloadUUID` (Apple's `com.apple.security.FDERecoveryKeyEscrow`).
    pub fn escrow_certificate(&self) -> Option<Vec<u8>> {
        let escrow = self.payload("com.apple.security.FDERecoveryKeyEscrow")?;
        let uuid = escrow
            .get("EncryptCertPayloadUUID")?
            .as_string()?
            .to_string();
        self.payloads()
            .into_iter()
            .find(|p| p.get("PayloadUUID").and_then(Value::as_string) == Some(uuid.as_str()))
            .and_then(|p| p.get("PayloadContent")?.as_data().map(<[u8]>::to_vec))
    }

    /// What SecurityInfo carries as `FDE_PersonalRecoveryKeyCMS`: the PRK enveloped to the
    /// escrow certificate (really encrypted, with OpenSSL), the same bytes until the key or
    /// the certificate changes.
    fn recovery_key_envelope(&mut self) -> Option<Vec<u8>> {
        if self.garbage_escrow {
            return Some(b"this is not a CMS envelope".to_vec());
        }
        if self.escrow_waits_for_login {
            return None;
        }
        let key = self.recovery_key.clone().filter(|_| self.filevault)?;
        let cert = self.escrow_certificate()?;
        if let Some((c, k, env)) = &self.escrowed_envelope
            && *c == cert
            && *k == key
        {
            return Some(env.clone());
        }
        let env = russet_certs::escrow::seal_envelope(key.as_bytes(), &cert).expect("envelope");
        self.escrowed_envelope = Some((cert, key, env.clone()));
        Some(env)
    }

    /// `RotateFileVaultKey` (Apple's `rotate.file.vault.key.yaml`): the current PRK must unlock
    /// it; the new one comes back enveloped to `ReplyEncryptionCertificate`.
    fn rotate(&mut self, uuid: &str, command: &Dictionary) -> Dictionary {
        let given = command
            .get("FileVaultUnlock")
            .and_then(Value::as_dictionary)
            .and_then(|u| u.get("Password"))
            .and_then(Value::as_string);
        let key_type = command.get("KeyType").and_then(Value::as_string);
        if !self.filevault || key_type != Some("personal") {
            return self.error(uuid, Channel::Device, 12079, "FileVault is not enabled.");
        }
        if given.is_none() || given != self.recovery_key.as_deref() {
            return self.error(
                uuid,
                Channel::Device,
                12080,
                "The FileVault unlock credential is incorrect.",
            );
        }
        let new_key = new_recovery_key();
        self.recovery_key = Some(new_key.clone());
        let mut d = self.status("Acknowledged", Some(uuid), Channel::Device);
        if let Some(cert) = command
            .get("ReplyEncryptionCertificate")
            .and_then(Value::as_data)
        {
            let env =
                russet_certs::escrow::seal_envelope(new_key.as_bytes(), cert).expect("envelope");
            let mut r = Dictionary::new();
            r.insert("EncryptedNewRecoveryKey".into(), Value::Data(env));
            d.insert("RotateResult".into(), Value::Dictionary(r));
        }
        d
    }

    /// A person removes a profile in System Settings (drift the server must notice).
    pub fn remove_by_hand(&mut self, identifier: &str) -> bool {
        self.profiles.remove(identifier).is_some()
    }

    fn installed_mut(&mut self, channel: Channel) -> &mut BTreeMap<String, InstalledProfile> {
        match channel {
            Channel::Device => &mut self.profiles,
            Channel::User => &mut self.user.as_mut().expect("a logged-in user").profiles,
        }
    }

    fn answer(
        &mut self,
        channel: Channel,
        uuid: &str,
        request_type: &str,
        command: &Dictionary,
    ) -> Dictionary {
        match request_type {
            "InstallProfile" => match self.install(channel, command) {
                Ok(()) => self.status("Acknowledged", Some(uuid), channel),
                Err((code, why)) => self.error(uuid, channel, code, &why),
            },
            "RemoveProfile" => {
                let ident = command
                    .get("Identifier")
                    .and_then(Value::as_string)
                    .unwrap_or("");
                match self.installed_mut(channel).get(ident) {
                    Some(p) if p.managed => {
                        self.installed_mut(channel).remove(ident);
                        self.status("Acknowledged", Some(uuid), channel)
                    }
                    // macOS: a profile not installed by MDM (or absent) cannot be removed by it.
                    _ => self.error(
                        uuid,
                        channel,
                        12013,
                        &format!("The profile \u{201c}{ident}\u{201d} is not managed by MDM."),
                    ),
                }
            }
            "RotateFileVaultKey" => self.rotate(uuid, command),
            "DeclarativeManagement" => {
                self.ddm_command(command);
                self.status("Acknowledged", Some(uuid), channel)
            }
            "SetRecoveryLock" => match self.set_recovery_lock(command) {
                Ok(()) => self.status("Acknowledged", Some(uuid), channel),
                Err((code, why)) => self.error(uuid, channel, code, &why),
            },
            // Apple: `PasswordVerified` true when the password is the one the Mac has.
            "VerifyRecoveryLock" if self.is_apple_silicon => {
                let given = command.get("Password").and_then(Value::as_string);
                let verified = given.is_some() && given == self.recovery_lock_password.as_deref();
                let mut d = self.status("Acknowledged", Some(uuid), channel);
                d.insert("PasswordVerified".into(), Value::Boolean(verified));
                d
            }
            "VerifyRecoveryLock" => self.error(
                uuid,
                channel,
                12078,
                "Recovery Lock is only supported on Mac computers with Apple silicon.",
            ),
            "ProfileList" => {
                let managed_only = command
                    .get("ManagedOnly")
                    .and_then(Value::as_boolean)
                    .unwrap_or(false);
                let list: Vec<Value> = self
                    .installed(channel)
                    .values()
                    .filter(|p| p.managed || !managed_only)
                    .map(profile_list_item)
                    .collect();
                let mut d = self.status("Acknowledged", Some(uuid), channel);
                d.insert("ProfileList".into(), Value::Array(list));
                d
            }
            rt if self.malformed.contains(rt) => {
                // Acknowledged, but without the answer's key (or with the wrong type).
                let mut d = self.status("Acknowledged", Some(uuid), channel);
                d.insert(rt.into(), s("not what Apple's schema says"));
                d
            }
            "DeviceInformation" => {
                let all = self.device_information();
                let asked: Vec<&str> = command
                    .get("Queries")
                    .and_then(Value::as_array)
                    .map(|q| q.iter().filter_map(Value::as_string).collect())
                    .unwrap_or_default();
                let answers: Dictionary = all
                    .into_iter()
                    .filter(|(k, _)| asked.is_empty() || asked.contains(&k.as_str()))
                    .collect();
                let mut d = self.status("Acknowledged", Some(uuid), channel);
                d.insert("QueryResponses".into(), Value::Dictionary(answers));
                d
            }
            "SecurityInfo" => {
                let mut firewall = Dictionary::new();
                firewall.insert("FirewallEnabled".into(), Value::Boolean(true));
                firewall.insert("BlockAllIncoming".into(), Value::Boolean(false));
                firewall.insert("StealthMode".into(), Value::Boolean(false));
                firewall.insert("Applications".into(), Value::Array(Vec::new()));
                let mut boot = Dictionary::new();
                boot.insert("SecureBootLevel".into(), s("full"));
                boot.insert("ExternalBootLevel".into(), s("not supported"));
                let mut info = Dictionary::new();
                info.insert("FDE_Enabled".into(), Value::Boolean(self.filevault));
                info.insert(
                    "FDE_HasPersonalRecoveryKey".into(),
                    Value::Boolean(self.filevault && self.recovery_key.is_some()),
                );
                info.insert(
                    "FDE_HasInstitutionalRecoveryKey".into(),
                    Value::Boolean(false),
                );
                if let Some(env) = self.recovery_key_envelope() {
                    info.insert("FDE_PersonalRecoveryKeyCMS".into(), Value::Data(env));
                    info.insert(
                        "FDE_PersonalRecoveryKeyDeviceKey".into(),
                        s(&self.mac.serial),
                    );
                }
                info.insert(
                    "SystemIntegrityProtectionEnabled".into(),
                    Value::Boolean(true),
                );
                info.insert("FirewallSettings".into(), Value::Dictionary(firewall));
                info.insert("SecureBoot".into(), Value::Dictionary(boot));
                info.insert(
                    "IsRecoveryLockEnabled".into(),
                    Value::Boolean(self.recovery_lock_password.is_some()),
                );
                info.insert(
                    "BootstrapTokenAllowedForAuthentication".into(),
                    s("allowed"),
                );
                let mut d = self.status("Acknowledged", Some(uuid), channel);
                d.insert("SecurityInfo".into(), Value::Dictionary(info));
                d
            }
            "InstalledApplicationList" => {
                let list: Vec<Value> = self
                    .apps
                    .iter()
                    .map(|(bundle, (name, version))| {
                        let mut a = Dictionary::new();
                        a.insert("Identifier".into(), s(bundle));
                        a.insert("Name".into(), s(name));
                        a.insert("ShortVersion".into(), s(version));
                        a.insert("Version".into(), s(version));
                        a.insert("BundleSize".into(), Value::Integer(1_048_576.into()));
                        a.insert("Installing".into(), Value::Boolean(false));
                        Value::Dictionary(a)
                    })
                    .collect();
                let mut d = self.status("Acknowledged", Some(uuid), channel);
                d.insert("InstalledApplicationList".into(), Value::Array(list));
                d
            }
            "CertificateList" => {
                let mut c = Dictionary::new();
                c.insert("CommonName".into(), s("Russet Device Identity"));
                c.insert("IsIdentity".into(), Value::Boolean(true));
                // Not a real certificate: Russet keeps the list, it does not parse the DER.
                c.insert(
                    "Data".into(),
                    Value::Data(vec![0x30, 0x03, 0x02, 0x01, 0x01]),
                );
                let mut d = self.status("Acknowledged", Some(uuid), channel);
                d.insert(
                    "CertificateList".into(),
                    Value::Array(vec![Value::Dictionary(c)]),
                );
                d
            }
            // macOS answers UserList only when supervised.
            "UserList" if !self.supervised => {
                self.error(uuid, channel, 12021, "The device is not supervised.")
            }
            "UserList" => {
                let mut users = Vec::new();
                let mut uid = 501;
                let mut add = |name: &str, full: &str, logged_in: bool| {
                    let mut u = Dictionary::new();
                    u.insert("UserName".into(), s(name));
                    u.insert("FullName".into(), s(full));
                    u.insert("UID".into(), Value::Integer(uid.into()));
                    u.insert(
                        "UserGUID".into(),
                        s(&uuid::Uuid::new_v4().to_string().to_uppercase()),
                    );
                    u.insert("IsLoggedIn".into(), Value::Boolean(logged_in));
                    u.insert("MobileAccount".into(), Value::Boolean(false));
                    u.insert("HasSecureToken".into(), Value::Boolean(true));
                    users.push(Value::Dictionary(u));
                    uid += 1;
                };
                if let Some(user) = &self.user {
                    add(&user.short_name, &user.long_name, true);
                }
                for a in &self.accounts {
                    add(a, a, false);
                }
                let mut d = self.status("Acknowledged", Some(uuid), channel);
                d.insert("Users".into(), Value::Array(users));
                d
            }
            _ => self.status("Acknowledged", Some(uuid), channel),
        }
    }

    /// Every DeviceInformation answer this Mac knows, as macOS 15 on Apple silicon gives them.
    fn device_information(&self) -> Dictionary {
        let mut a = Dictionary::new();
        a.insert("UDID".into(), s(&self.mac.udid));
        a.insert("SerialNumber".into(), s(&self.mac.serial));
        a.insert("OSVersion".into(), s(&self.os_version));
        a.insert("BuildVersion".into(), s(&self.build_version));
        a.insert("Model".into(), s(&self.model));
        a.insert("ModelName".into(), s("MacBook Air"));
        a.insert("ProductName".into(), s(&self.model));
        a.insert("DeviceName".into(), s(&self.device_name));
        a.insert(
            "IsAppleSilicon".into(),
            Value::Boolean(self.is_apple_silicon),
        );
        a.insert("IsSupervised".into(), Value::Boolean(self.supervised));
        a.insert("IsActivationLockEnabled".into(), Value::Boolean(false));
        a.insert("DeviceCapacity".into(), Value::Real(494.38));
        a.insert("AvailableDeviceCapacity".into(), Value::Real(301.25));
        a.insert("BatteryLevel".into(), Value::Real(0.87));
        a.insert("HasBattery".into(), Value::Boolean(true));
        a.insert("WiFiMAC".into(), s("f0:2f:4b:10:aa:02"));
        a.insert("BluetoothMAC".into(), s("f0:2f:4b:10:aa:01"));
        a.insert(
            "SystemIntegrityProtectionEnabled".into(),
            Value::Boolean(true),
        );
        a.insert("HostName".into(), s("test-mac.local"));
        a.insert("LocalHostName".into(), s("test-mac"));
        a
    }

    /// SetRecoveryLock as macOS applies it (Apple: `passcode.recovery.set.yaml`): Apple silicon
    /// only; with a lock set, `CurrentPassword` must be the password the Mac has; an empty
    /// `NewPassword` clears it. A refusal is an Error with an ErrorChain (the codes are stand-ins:
    /// Russet keeps the chain's text, it does not interpret the codes).
    fn set_recovery_lock(&mut self, command: &Dictionary) -> Result<(), (i64, String)> {
        if !self.is_apple_silicon {
            return Err((
                12078,
                "Recovery Lock is only supported on Mac computers with Apple silicon.".into(),
            ));
        }
        let new = command
            .get("NewPassword")
            .and_then(Value::as_string)
            .ok_or((4001, "SetRecoveryLock without NewPassword".to_string()))?;
        let current = command.get("CurrentPassword").and_then(Value::as_string);
        if let Some(have) = &self.recovery_lock_password
            && current != Some(have.as_str())
        {
            return Err((
                12079,
                "The current Recovery Lock password is missing or incorrect.".into(),
            ));
        }
        self.recovery_lock_password = (!new.is_empty()).then(|| new.to_string());
        Ok(())
    }

    /// InstallProfile: read the profile (CMS-signed or not), check its scope fits the channel,
    /// and install it, replacing a profile with the same identifier.
    fn install(&mut self, channel: Channel, command: &Dictionary) -> Result<(), (i64, String)> {
        let payload = command
            .get("Payload")
            .and_then(Value::as_data)
            .ok_or((4001, "InstallProfile without Payload data".to_string()))?;
        let (content, signed) = if payload.starts_with(b"<?xml")
            || payload.starts_with(b"<plist")
            || payload.starts_with(b"bplist")
        {
            (payload.to_vec(), false)
        } else {
            let content = russet_certs::profile_sign::signed_profile_content(payload)
                .map_err(|e| (4001, format!("the profile signature is invalid: {e}")))?;
            (content, true)
        };
        let profile = Value::from_reader(std::io::Cursor::new(&content))
            .ok()
            .and_then(Value::into_dictionary)
            .ok_or((4001, "the profile is not a property list".to_string()))?;
        let field = |k: &str| {
            profile
                .get(k)
                .and_then(Value::as_string)
                .map(str::to_string)
        };
        let identifier = field("PayloadIdentifier").ok_or((4001, "no PayloadIdentifier".into()))?;
        let uuid = field("PayloadUUID").ok_or((4001, "no PayloadUUID".into()))?;
        if self.refuse.contains(&identifier) {
            return Err((
                4001,
                format!("the profile \u{201c}{identifier}\u{201d} was refused"),
            ));
        }
        let scope = field("PayloadScope");
        let wants_user = scope.as_deref() == Some("User");
        if wants_user != (channel == Channel::User) {
            return Err((
                4001,
                format!(
                    "a {} profile cannot be installed on the {channel:?} channel",
                    scope.as_deref().unwrap_or("System")
                ),
            ));
        }
        let payloads = profile
            .get("PayloadContent")
            .and_then(Value::as_array)
            .map(|items| {
                items
                    .iter()
                    .filter_map(Value::as_dictionary)
                    .map(|p| {
                        let f = |k: &str| {
                            p.get(k)
                                .and_then(Value::as_string)
                                .unwrap_or_default()
                                .to_string()
                        };
                        InstalledPayload {
                            payload_type: f("PayloadType"),
                            identifier: f("PayloadIdentifier"),
                            uuid: f("PayloadUUID"),
                        }
                    })
                    .collect()
            })
            .unwrap_or_default();
        let installed = InstalledProfile {
            identifier: identifier.clone(),
            uuid,
            display_name: field("PayloadDisplayName"),
            scope,
            payloads,
            content,
            signed,
            managed: true,
        };
        self.installed_mut(channel).insert(identifier, installed);
        Ok(())
    }

    fn status(&self, status: &str, uuid: Option<&str>, channel: Channel) -> Dictionary {
        let mut d = SimMac::dict(&[("UDID", s(&self.mac.udid)), ("Status", s(status))]);
        if let Some(u) = uuid {
            d.insert("CommandUUID".into(), s(u));
        }
        if let (Channel::User, Some(user)) = (channel, &self.user) {
            d.insert("UserID".into(), s(&user.user_id));
        }
        d
    }

    fn error(&self, uuid: &str, channel: Channel, code: i64, why: &str) -> Dictionary {
        let mut d = self.status("Error", Some(uuid), channel);
        let mut item = Dictionary::new();
        item.insert("ErrorCode".into(), Value::Integer(code.into()));
        item.insert("ErrorDomain".into(), s("MCMDMErrorDomain"));
        item.insert("LocalizedDescription".into(), s(why));
        item.insert("USEnglishDescription".into(), s(why));
        d.insert(
            "ErrorChain".into(),
            Value::Array(vec![Value::Dictionary(item)]),
        );
        d
    }

    async fn connect(&self, _channel: Channel, d: &Dictionary) -> Reply {
        self.mac
            .put("/mdm/connect", CONNECT_CONTENT_TYPE, &SimMac::to_xml(d))
            .await
    }
}

/// A ProfileList entry as macOS reports it (Apple's `profile.list` response keys).
fn profile_list_item(p: &InstalledProfile) -> Value {
    let mut d = Dictionary::new();
    d.insert("PayloadIdentifier".into(), s(&p.identifier));
    d.insert("PayloadUUID".into(), s(&p.uuid));
    d.insert("PayloadVersion".into(), Value::Integer(1.into()));
    if let Some(n) = &p.display_name {
        d.insert("PayloadDisplayName".into(), s(n));
    }
    d.insert("IsManaged".into(), Value::Boolean(p.managed));
    d.insert("IsEncrypted".into(), Value::Boolean(false));
    d.insert("HasRemovalPasscode".into(), Value::Boolean(false));
    let content: Vec<Value> = p
        .payloads
        .iter()
        .map(|x| {
            let mut c = Dictionary::new();
            c.insert("PayloadType".into(), s(&x.payload_type));
            c.insert("PayloadIdentifier".into(), s(&x.identifier));
            c.insert("PayloadUUID".into(), s(&x.uuid));
            c.insert("PayloadVersion".into(), Value::Integer(1.into()));
            Value::Dictionary(c)
        })
        .collect();
    d.insert("PayloadContent".into(), Value::Array(content));
    Value::Dictionary(d)
}

/// A recovery key shaped like macOS's: six groups of four letters and digits.
pub fn new_recovery_key() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let bytes = uuid::Uuid::new_v4().into_bytes();
    let chars: Vec<char> = bytes
        .iter()
        .chain(uuid::Uuid::new_v4().as_bytes())
        .take(24)
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect();
    chars
        .chunks(4)
        .map(|c| c.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join("-")
}

fn s(v: &str) -> Value {
    Value::String(v.to_string())
}

fn text(r: &Reply) -> String {
    String::from_utf8_lossy(&r.body).into_owned()
}
