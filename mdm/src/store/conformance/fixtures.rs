//! Records and steps the cases share: an `Authenticate` and a `TokenUpdate` of a test Mac,
//! enrolling it, enqueueing, and the two report shapes (`Idle`, a result).

use crate::store::*;

pub(in crate::store) const TOPIC: &str = "com.apple.mgmt.External.test";

pub(in crate::store) fn auth(device_id: &str, cert: &str, now: i64) -> AuthenticateRecord {
    AuthenticateRecord {
        device_id: device_id.into(),
        enrollment_type: "Device".into(),
        cert_hash: cert.into(),
        cert_not_after: Some(now + 1_000_000),
        topic: TOPIC.into(),
        serial_number: Some(format!("SN-{device_id}")),
        model: Some("Mac14,2".into()),
        model_name: Some("MacBook Air".into()),
        device_name: Some(format!("{device_id}'s Mac")),
        os_version: Some("15.1".into()),
        build_version: Some("24B83".into()),
        product_name: Some("Mac14,2".into()),
        raw: b"<plist/>".to_vec(),
        now,
    }
}

/// A TokenUpdate for the device channel (`enrollment_id == device_id`) or a user channel.
pub(in crate::store) fn token(enrollment_id: &str, device_id: &str, now: i64) -> TokenUpdateRecord {
    let user = enrollment_id != device_id;
    TokenUpdateRecord {
        enrollment_id: enrollment_id.into(),
        device_id: device_id.into(),
        enrollment_type: if user { "User" } else { "Device" }.into(),
        user_id: user.then(|| "USER-GUID".into()),
        user_short_name: user.then(|| "alice".into()),
        user_long_name: user.then(|| "Alice Appleseed".into()),
        topic: TOPIC.into(),
        token: vec![0xde, 0xad, 0xbe, 0xef],
        push_magic: "magic".into(),
        unlock_token_sealed: None,
        awaiting_configuration: false,
        now,
    }
}

/// Authenticate + TokenUpdate: an enrolled device with an enabled device channel.
pub(in crate::store) async fn enroll(s: &dyn Store, device_id: &str, now: i64) {
    s.authenticate(&auth(device_id, &format!("cert-{device_id}"), now))
        .await
        .unwrap();
    assert!(
        s.token_update(&token(device_id, device_id, now))
            .await
            .unwrap()
    );
}

pub(in crate::store) fn cmd(uuid: &str, priority: i32, now: i64) -> NewCommand {
    NewCommand {
        command_uuid: uuid.into(),
        request_type: "DeviceInformation".into(),
        payload: format!("payload-{uuid}").into_bytes(),
        payload_sealed: false,
        priority,
        now,
    }
}

pub(in crate::store) async fn enqueue(
    s: &dyn Store,
    uuid: &str,
    priority: i32,
    now: i64,
    targets: &[&str],
) {
    let targets: Vec<String> = targets.iter().map(|t| (*t).to_owned()).collect();
    let res = s
        .enqueue(&cmd(uuid, priority, now), &targets)
        .await
        .unwrap();
    assert!(res.iter().all(|r| r.queued), "{res:?}");
}

pub(in crate::store) async fn idle(s: &dyn Store, eid: &str, now: i64) -> ReportOutcome {
    let rec = ReportRecord {
        device_facts: None,
        enrollment_id: eid.into(),
        result: None,
        now,
    };
    s.command_report(&rec).await.unwrap()
}

pub(in crate::store) async fn answer(
    s: &dyn Store,
    eid: &str,
    uuid: &str,
    status: ResultStatus,
    now: i64,
) -> ReportOutcome {
    let rec = ReportRecord {
        device_facts: None,
        enrollment_id: eid.into(),
        result: Some(CommandResultRecord {
            command_uuid: uuid.into(),
            status,
            raw: format!("result-{uuid}-{now}").into_bytes(),
        }),
        now,
    };
    s.command_report(&rec).await.unwrap()
}

pub(in crate::store) fn next(o: &ReportOutcome) -> Option<&str> {
    o.next.as_ref().map(|c| c.command_uuid.as_str())
}

pub(in crate::store) async fn entry(s: &dyn Store, uuid: &str, eid: &str) -> QueueEntryView {
    let view = s.command(uuid).await.unwrap().expect("command exists");
    view.entries
        .into_iter()
        .find(|e| e.enrollment_id == eid)
        .expect("queue entry exists")
}
