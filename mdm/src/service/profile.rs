//! The enrollment profile (`.mobileconfig`): an optional trust payload for a private TLS chain,
//! the SCEP payload that gets the Mac its identity, and the MDM payload that points at Russet
//! (Apple's schemas `com.apple.mdm`, `com.apple.security.scep`, `com.apple.security.root`).

use plist::{Dictionary, Value};

/// Everything that varies between profiles.
pub struct ProfileParams<'a> {
    /// Base URL, no trailing slash (e.g. `https://mdm.example.org:8443`).
    pub public_url: &'a str,
    pub topic: &'a str,
    /// The one-time SCEP challenge of this profile.
    pub challenge: &'a str,
    /// DER of a root to install first (`com.apple.security.root`), when the TLS chain is private.
    pub trust_root_der: Option<&'a [u8]>,
}

/// `AccessRights`: every right (Apple's `com.apple.mdm` schema: the bits 1 to 4096, summed).
pub const ACCESS_RIGHTS_ALL: i64 = 8191;
/// Profile identifier: the same identifier replaces an installed profile.
pub const PROFILE_IDENTIFIER: &str = "org.russet.enrollment";

fn string(s: &str) -> Value {
    Value::String(s.to_string())
}

fn payload(kind: &str, identifier: &str, uuid: &str, name: &str) -> Dictionary {
    let mut d = Dictionary::new();
    d.insert("PayloadType".into(), string(kind));
    d.insert("PayloadVersion".into(), Value::Integer(1.into()));
    d.insert("PayloadIdentifier".into(), string(identifier));
    d.insert("PayloadUUID".into(), string(uuid));
    d.insert("PayloadDisplayName".into(), string(name));
    d
}

fn new_uuid() -> String {
    uuid::Uuid::new_v4().to_string().to_uppercase()
}

/// The profile as an XML plist (unsigned).
pub fn build(p: &ProfileParams<'_>) -> Result<Vec<u8>, plist::Error> {
    let mut content = Vec::new();

    if let Some(der) = p.trust_root_der {
        let mut root = payload(
            "com.apple.security.root",
            &format!("{PROFILE_IDENTIFIER}.trust"),
            &new_uuid(),
            "Russet server root certificate",
        );
        root.insert("PayloadContent".into(), Value::Data(der.to_vec()));
        root.insert(
            "PayloadCertificateFileName".into(),
            string("russet-root.cer"),
        );
        content.push(Value::Dictionary(root));
    }

    let scep_uuid = new_uuid();
    let mut scep = payload(
        "com.apple.security.scep",
        &format!("{PROFILE_IDENTIFIER}.scep"),
        &scep_uuid,
        "Russet device identity",
    );
    let mut sc = Dictionary::new();
    sc.insert("URL".into(), string(&format!("{}/scep", p.public_url)));
    sc.insert("Name".into(), string("Russet"));
    sc.insert(
        "Subject".into(),
        Value::Array(vec![
            Value::Array(vec![Value::Array(vec![string("O"), string("Russet")])]),
            Value::Array(vec![Value::Array(vec![
                string("CN"),
                string("Russet Device Identity"),
            ])]),
        ]),
    );
    sc.insert("Challenge".into(), string(p.challenge));
    sc.insert("Keysize".into(), Value::Integer(2048.into()));
    sc.insert("Key Type".into(), string("RSA"));
    // digitalSignature (1) | keyEncipherment (4), as MicroMDM and NanoMDM do.
    sc.insert("Key Usage".into(), Value::Integer(5.into()));
    scep.insert("PayloadContent".into(), Value::Dictionary(sc));
    content.push(Value::Dictionary(scep));

    let mut mdm = payload(
        "com.apple.mdm",
        &format!("{PROFILE_IDENTIFIER}.mdm"),
        &new_uuid(),
        "Russet MDM",
    );
    mdm.insert(
        "ServerURL".into(),
        string(&format!("{}/mdm/connect", p.public_url)),
    );
    mdm.insert(
        "CheckInURL".into(),
        string(&format!("{}/mdm/checkin", p.public_url)),
    );
    mdm.insert("Topic".into(), string(p.topic));
    mdm.insert("IdentityCertificateUUID".into(), string(&scep_uuid));
    mdm.insert(
        "AccessRights".into(),
        Value::Integer(ACCESS_RIGHTS_ALL.into()),
    );
    mdm.insert("SignMessage".into(), Value::Boolean(true));
    mdm.insert("CheckOutWhenRemoved".into(), Value::Boolean(true));
    mdm.insert(
        "ServerCapabilities".into(),
        Value::Array(vec![
            string("com.apple.mdm.per-user-connections"),
            string("com.apple.mdm.bootstraptoken"),
        ]),
    );
    content.push(Value::Dictionary(mdm));

    let mut top = payload(
        "Configuration",
        PROFILE_IDENTIFIER,
        &new_uuid(),
        "Russet MDM enrollment",
    );
    top.insert("PayloadOrganization".into(), string("Russet"));
    top.insert("PayloadScope".into(), string("System"));
    top.insert("PayloadContent".into(), Value::Array(content));
    let mut out = Vec::new();
    Value::Dictionary(top).to_writer_xml(&mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mdm_payload_names_the_scep_payload_as_its_identity() {
        let xml = build(&ProfileParams {
            public_url: "https://mdm.example.org:8443",
            topic: "com.apple.mgmt.External.x",
            challenge: "c",
            trust_root_der: None,
        })
        .expect("builds");
        let v = Value::from_reader_xml(xml.as_slice()).expect("parses");
        let content = v
            .as_dictionary()
            .and_then(|d| d.get("PayloadContent"))
            .and_then(Value::as_array)
            .expect("content");
        assert_eq!(content.len(), 2);
        let uuid_of = |i: usize, k: &str| {
            content[i]
                .as_dictionary()
                .and_then(|d| d.get(k))
                .and_then(Value::as_string)
                .map(str::to_string)
        };
        assert_eq!(
            uuid_of(0, "PayloadUUID"),
            uuid_of(1, "IdentityCertificateUUID")
        );
    }
}
