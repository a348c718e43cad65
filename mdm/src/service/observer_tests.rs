//! The core tells its observers what they asked for: an enrollment, a Mac's new facts, and
//! the stored results of the request types they want — and nothing else.

use super::*;
use crate::protocol::Command;
use crate::protocol::checkin::decode_checkin;
use crate::protocol::report::decode_report;
use crate::store::{ResultStatus, SqliteStore};
use std::sync::Mutex;

#[derive(Default)]
struct Recorder {
    changes: Mutex<Vec<(Vec<String>, DeviceChange)>>,
    results: Mutex<Vec<CommandResultEvent>>,
}

#[async_trait::async_trait]
impl DeviceObserver for Recorder {
    async fn devices_changed(&self, device_ids: &[String], why: DeviceChange) {
        self.changes
            .lock()
            .expect("lock")
            .push((device_ids.to_vec(), why));
    }

    fn wants_results_of(&self, request_type: &str) -> bool {
        request_type == "ProfileList"
    }

    async fn command_result(&self, result: &CommandResultEvent) {
        self.results.lock().expect("lock").push(result.clone());
    }
}

fn plist(entries: &[(&str, plist::Value)]) -> Vec<u8> {
    let mut d = plist::Dictionary::new();
    for (k, v) in entries {
        d.insert((*k).to_string(), v.clone());
    }
    let mut out = Vec::new();
    plist::Value::Dictionary(d)
        .to_writer_xml(&mut out)
        .expect("plist");
    out
}

fn s(v: &str) -> plist::Value {
    plist::Value::String(v.into())
}

async fn report(svc: &MdmService, id: &DeviceIdentity, body: Vec<u8>) {
    let r = decode_report(&body).expect("report");
    svc.command_report(id, &body, r)
        .await
        .expect("report stored");
}

#[tokio::test]
async fn observers_hear_enrollment_facts_and_only_the_results_they_want() {
    let dir = tempfile::tempdir().expect("tmp");
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    let store: Arc<dyn Store> = Arc::new(SqliteStore::connect(&url).await.expect("store"));
    let vault = Arc::new(SecretBox::generate().expect("kek"));
    let recorder = Arc::new(Recorder::default());
    let svc = MdmService::new(store, vault, ServiceOptions::default());
    svc.observe(&(recorder.clone() as Arc<dyn DeviceObserver>));
    let id = DeviceIdentity {
        cert_sha256: "aa".repeat(32),
        not_after: None,
    };
    let udid = "0000FE00-0000-0000-0000-00000000AB01";
    let topic = "com.apple.mgmt.External.test";
    for msg in [
        plist(&[
            ("MessageType", s("Authenticate")),
            ("UDID", s(udid)),
            ("Topic", s(topic)),
        ]),
        plist(&[
            ("MessageType", s("TokenUpdate")),
            ("UDID", s(udid)),
            ("Topic", s(topic)),
            ("Token", plist::Value::Data(vec![1, 2, 3])),
            ("PushMagic", s("magic")),
        ]),
    ] {
        let m = decode_checkin(&msg).expect("check-in");
        svc.checkin(&id, &msg, m).await.expect("check-in applied");
    }
    assert_eq!(
        recorder.changes.lock().expect("lock").as_slice(),
        &[(vec![udid.to_string()], DeviceChange::Enrolled)]
    );

    let targets = [udid.to_string()];
    let info = Command::from_json(
        &serde_json::json!({"request_type": "DeviceInformation", "Queries": ["OSVersion"]}),
    )
    .expect("command");
    let list =
        Command::from_json(&serde_json::json!({"request_type": "ProfileList"})).expect("command");
    for c in [&info, &list] {
        svc.enqueue(c, &targets, "test").await.expect("queued");
    }
    report(
        &svc,
        &id,
        plist(&[("UDID", s(udid)), ("Status", s("Idle"))]),
    )
    .await;
    report(
        &svc,
        &id,
        plist(&[
            ("UDID", s(udid)),
            ("Status", s("Acknowledged")),
            ("CommandUUID", s(&info.command_uuid)),
            (
                "QueryResponses",
                plist::Value::Dictionary(
                    [("OSVersion".to_string(), s("15.2"))].into_iter().collect(),
                ),
            ),
        ]),
    )
    .await;
    report(
        &svc,
        &id,
        plist(&[
            ("UDID", s(udid)),
            ("Status", s("Acknowledged")),
            ("CommandUUID", s(&list.command_uuid)),
            ("ProfileList", plist::Value::Array(Vec::new())),
        ]),
    )
    .await;

    // DeviceInformation is not wanted as a result, but its answer may change the Mac's facts.
    assert_eq!(
        recorder.changes.lock().expect("lock").last(),
        Some(&(vec![udid.to_string()], DeviceChange::Facts))
    );
    let results = recorder.results.lock().expect("lock");
    assert_eq!(results.len(), 1, "only the ProfileList result: {results:?}");
    let r = &results[0];
    assert_eq!(
        (
            r.request_type.as_str(),
            r.command_uuid.as_str(),
            r.enrollment_id.as_str(),
            r.status
        ),
        (
            "ProfileList",
            list.command_uuid.as_str(),
            udid,
            ResultStatus::Acknowledged
        )
    );
    assert!(String::from_utf8_lossy(&r.raw).contains("<key>ProfileList</key>"));
}
