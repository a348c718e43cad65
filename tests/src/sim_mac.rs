//! A simulated Mac: it speaks the check-in and command protocols over real HTTP, signing every
//! body with its identity like a Mac whose MDM payload has `SignMessage` = true.

use plist::{Dictionary, Value};
use russet_certs::testing::DeviceIdentity;

pub struct SimMac {
    pub udid: String,
    pub serial: String,
    pub topic: String,
    pub push_magic: String,
    pub token: Vec<u8>,
    pub identity: DeviceIdentity,
    /// Sign with signed attributes (contentType, signingTime, messageDigest), as Go's
    /// `pkcs7` and most client libraries do, instead of over the body alone as a Mac does.
    pub signed_attributes: bool,
    base: String,
    http: reqwest::Client,
}

/// What the server answered.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
    pub content_type: Option<String>,
}

impl Reply {
    /// The command in a `/mdm/connect` answer: (CommandUUID, RequestType, Command dict).
    pub fn command(&self) -> Option<(String, String, Dictionary)> {
        if self.body.is_empty() {
            return None;
        }
        let v = Value::from_reader_xml(self.body.as_slice()).ok()?;
        let d = v.as_dictionary()?;
        let uuid = d.get("CommandUUID")?.as_string()?.to_string();
        let cmd = d.get("Command")?.as_dictionary()?.clone();
        let rt = cmd.get("RequestType")?.as_string()?.to_string();
        Some((uuid, rt, cmd))
    }

    pub fn plist(&self) -> Option<Dictionary> {
        Value::from_reader_xml(self.body.as_slice())
            .ok()?
            .into_dictionary()
    }
}

pub const CHECKIN_CONTENT_TYPE: &str = "application/x-apple-aspen-mdm-checkin";
pub const CONNECT_CONTENT_TYPE: &str = "application/x-apple-aspen-mdm";

impl SimMac {
    pub fn new(base: &str, identity: DeviceIdentity) -> Self {
        Self::with_client(base, identity, reqwest::Client::new())
    }

    /// A Mac that uses `http` (clients are cheap to clone and share one connection pool; the
    /// load harness gives all its Macs the same one instead of building 100k of them).
    pub fn with_client(base: &str, identity: DeviceIdentity, http: reqwest::Client) -> Self {
        let n = uuid::Uuid::new_v4();
        SimMac {
            udid: n.to_string().to_uppercase(),
            serial: format!("C02{}", &n.simple().to_string()[..9].to_uppercase()),
            topic: "com.apple.mgmt.External.11111111-2222-3333-4444-555555555555".into(),
            push_magic: uuid::Uuid::new_v4().to_string().to_uppercase(),
            token: n.as_bytes().repeat(2),
            identity,
            signed_attributes: false,
            base: base.to_string(),
            http,
        }
    }

    /// Use this HTTP client (e.g. one that trusts the server's CA and presents the identity as
    /// TLS client certificate).
    pub fn with_http(mut self, http: reqwest::Client) -> Self {
        self.http = http;
        self
    }

    pub fn dict(entries: &[(&str, Value)]) -> Dictionary {
        let mut d = Dictionary::new();
        for (k, v) in entries {
            d.insert((*k).to_string(), v.clone());
        }
        d
    }

    pub fn to_xml(d: &Dictionary) -> Vec<u8> {
        let mut out = Vec::new();
        Value::Dictionary(d.clone())
            .to_writer_xml(&mut out)
            .expect("plist serializes");
        out
    }

    /// PUT a body signed with this Mac's identity.
    pub async fn put(&self, path: &str, content_type: &str, body: &[u8]) -> Reply {
        let sig = if self.signed_attributes {
            self.identity.sign_body_with_attributes(body)
        } else {
            self.identity.sign_body(body)
        };
        self.put_raw(path, content_type, body, Some(&sig), &[])
            .await
    }

    /// PUT with full control of the signature and extra headers (for refusal tests).
    pub async fn put_raw(
        &self,
        path: &str,
        content_type: &str,
        body: &[u8],
        signature: Option<&str>,
        headers: &[(&str, String)],
    ) -> Reply {
        let mut req = self
            .http
            .put(format!("{}{path}", self.base))
            .header("Content-Type", content_type)
            .body(body.to_vec());
        if let Some(s) = signature {
            req = req.header("Mdm-Signature", s);
        }
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        let resp = req.send().await.expect("device endpoint reachable");
        let status = resp.status().as_u16();
        let content_type = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = resp.bytes().await.expect("body").to_vec();
        Reply {
            status,
            body,
            content_type,
        }
    }

    pub async fn checkin(&self, d: &Dictionary) -> Reply {
        self.put("/mdm/checkin", CHECKIN_CONTENT_TYPE, &Self::to_xml(d))
            .await
    }

    pub fn authenticate_message(&self) -> Dictionary {
        Self::dict(&[
            ("MessageType", Value::String("Authenticate".into())),
            ("Topic", Value::String(self.topic.clone())),
            ("UDID", Value::String(self.udid.clone())),
            ("SerialNumber", Value::String(self.serial.clone())),
            ("DeviceName", Value::String("Sim Mac".into())),
            ("Model", Value::String("Mac14,2".into())),
            ("ModelName", Value::String("MacBook Air".into())),
            ("OSVersion", Value::String("15.1".into())),
            ("BuildVersion", Value::String("24B83".into())),
            ("ProductName", Value::String("Mac14,2".into())),
        ])
    }

    pub fn token_update_message(&self) -> Dictionary {
        Self::dict(&[
            ("MessageType", Value::String("TokenUpdate".into())),
            ("Topic", Value::String(self.topic.clone())),
            ("UDID", Value::String(self.udid.clone())),
            ("Token", Value::Data(self.token.clone())),
            ("PushMagic", Value::String(self.push_magic.clone())),
            ("AwaitingConfiguration", Value::Boolean(false)),
        ])
    }

    /// Authenticate then TokenUpdate, asserting both succeed.
    pub async fn enroll(&self) {
        let r = self.checkin(&self.authenticate_message()).await;
        assert_eq!(
            r.status,
            200,
            "Authenticate: {}",
            String::from_utf8_lossy(&r.body)
        );
        let r = self.checkin(&self.token_update_message()).await;
        assert_eq!(
            r.status,
            200,
            "TokenUpdate: {}",
            String::from_utf8_lossy(&r.body)
        );
    }

    /// `Status: Idle` — starts a session.
    pub async fn idle(&self) -> Reply {
        let d = Self::dict(&[
            ("UDID", Value::String(self.udid.clone())),
            ("Status", Value::String("Idle".into())),
        ]);
        self.put("/mdm/connect", CONNECT_CONTENT_TYPE, &Self::to_xml(&d))
            .await
    }

    /// Report a result for a command; `extra` adds result keys (e.g. QueryResponses).
    pub async fn report(&self, uuid: &str, status: &str, extra: &[(&str, Value)]) -> Reply {
        let mut d = Self::dict(&[
            ("UDID", Value::String(self.udid.clone())),
            ("Status", Value::String(status.into())),
            ("CommandUUID", Value::String(uuid.into())),
        ]);
        for (k, v) in extra {
            d.insert((*k).to_string(), v.clone());
        }
        self.put("/mdm/connect", CONNECT_CONTENT_TYPE, &Self::to_xml(&d))
            .await
    }
}
