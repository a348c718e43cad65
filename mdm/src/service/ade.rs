//! ADE enrollment (`POST /mdm/enroll`; Apple, "Authenticating through MachineInfo"): a Mac in Setup
//! Assistant sends its Apple-signed MachineInfo and gets the signed enrollment profile — or
//! Apple's software-update-required answer when its DEP profile asks for a newer OS.
//!
//! The HTTP layer has verified the signature (Apple's device CA) before this runs. The
//! signature proves a genuine Apple device, not which one, so only serials Russet knows from
//! DEP are answered.

use super::MdmService;
use super::enrollment::{EnrollError, EnrollmentService};
use crate::protocol::machine_info::{MachineInfo, compare_os_versions, software_update_required};
use crate::store::AdeEnrollment;
use crate::timefmt::now_ms;
use std::cmp::Ordering;

/// What to answer a MachineInfo with.
#[derive(Debug)]
pub enum AdeAnswer {
    /// `200`, `application/x-apple-aspen-config`: the signed enrollment profile.
    Profile(Vec<u8>),
    /// `403` with Apple's `com.apple.softwareupdate.required` JSON.
    SoftwareUpdateRequired(Vec<u8>),
}

impl MdmService {
    pub async fn ade_enroll(
        &self,
        enroll: &EnrollmentService,
        info: &MachineInfo,
    ) -> Result<AdeAnswer, EnrollError> {
        let record = self.store().dep_device(&info.serial).await?;
        let Some(record) = record.filter(|r| !r.deleted) else {
            tracing::warn!(
                serial = %info.serial,
                udid = %info.udid,
                "ADE enrollment refused: serial not assigned to this server in DEP"
            );
            return Err(EnrollError::Forbidden(
                "this device is not assigned to this MDM server in Apple Business Manager",
            ));
        };
        // Apple's record names the profile the Mac fetched; the assignment Russet made is the
        // fallback until the next sync brings it in.
        let profile_uuid = record
            .profile_uuid
            .clone()
            .or_else(|| record.assign_profile_uuid.clone());
        let setup = match &profile_uuid {
            Some(uuid) => self
                .profile_setup(uuid)
                .await
                .map_err(|e| EnrollError::Internal(e.to_string()))?,
            None => Default::default(),
        };
        if let Some(min) = &setup.min_os_version {
            match &info.os_version {
                Some(have) if compare_os_versions(have, min) == Some(Ordering::Less) => {
                    tracing::info!(
                        serial = %info.serial,
                        have = %have,
                        min = %min,
                        "ADE enrollment: software update required first"
                    );
                    return Ok(AdeAnswer::SoftwareUpdateRequired(software_update_required(
                        min,
                        setup.min_build_version.as_deref(),
                    )));
                }
                Some(_) => {}
                // Before macOS 14 the Mac neither sends OS_VERSION nor understands Apple's
                // answer: it enrolls, and the admin sees its version in the device view.
                None => tracing::warn!(
                    serial = %info.serial,
                    min = %min,
                    "ADE enrollment: the Mac does not report OS_VERSION (older than macOS 14); \
                     the minimum OS version cannot be enforced"
                ),
            }
        }
        self.store()
            .record_ade_enrollment(&AdeEnrollment {
                udid: info.udid.clone(),
                serial_number: info.serial.clone(),
                profile_uuid: profile_uuid.clone(),
                product: info.product.clone(),
                os_version: info.os_version.clone(),
                build_version: info.version.clone(),
                requested_at: now_ms(),
                setup_queued_at: None,
            })
            .await?;
        let profile = enroll.issue_profile().await?;
        // Site assignment: the serial is Apple's signed claim and assigned to us in DEP. It
        // joins as a member by serial, which names a device once the Mac authenticates, so
        // the membership takes effect when the enrollment does.
        if let (Some(group), Some(uuid)) = (&setup.group, &profile_uuid)
            && let Err(e) = self
                .join_group_by_serial(group, &info.serial, &info.udid, uuid)
                .await
        {
            tracing::error!(
                error = %e,
                group,
                serial = %info.serial,
                "ADE: joining the DEP profile's group failed; the Mac enrolls without it"
            );
        }
        tracing::info!(
            serial = %info.serial,
            udid = %info.udid,
            dep_profile = profile_uuid.as_deref().unwrap_or("-"),
            "ADE enrollment profile served"
        );
        Ok(AdeAnswer::Profile(profile))
    }
}
