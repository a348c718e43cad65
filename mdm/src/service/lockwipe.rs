//! Remote lock and wipe, with the unlock PIN escrowed before the command exists.
//!
//! The PIN is the one secret an admin can never afford to lose: after an EraseDevice the Mac has
//! dropped its MDM profile, a locked Mac can't check in, and the device record is often deleted
//! or re-enrolled under a new UDID. So the PIN is sealed and written to the escrow table in the
//! same transaction that creates the command, before anything can push it, and that table is
//! never touched by unenrollment, CheckOut, device deletion or queue clean-up.

use super::audit::Reveal;
use super::{MdmService, ServiceError};
use crate::protocol::builders::ObliterationBehavior;
use crate::protocol::command::Command;
use crate::secrets::Sealed;
use crate::store::{
    CancelOutcome, EscrowedPin, NewCommand, PRIORITY_URGENT, PinEscrowRecord, PinFilter,
    QueueStatus,
};
use crate::timefmt::now_ms;
use openssl::rand::rand_bytes;
use secrecy::SecretString;
use serde_json::json;

pub struct LockRequest {
    pub pin: Option<String>,
    pub message: Option<String>,
    pub phone_number: Option<String>,
}

pub struct WipeRequest {
    pub confirm_serial: Option<String>,
    pub pin: Option<String>,
    pub obliteration_behavior: Option<String>,
    /// Send even though an earlier wipe was already sent or executed.
    pub force: bool,
}

/// A lock or wipe that was escrowed and queued.
#[derive(Debug, Clone)]
pub struct Issued {
    pub command_uuid: String,
    /// Redacted in `Debug`, wiped on drop (docs/security.md).
    pub pin: SecretString,
    /// The device as it was when the command was queued (its PIN facts tell the admin whether
    /// the PIN will matter).
    pub device: crate::store::DeviceView,
}

/// An escrowed PIN, opened for an admin.
#[derive(Debug, Clone)]
pub struct RevealedPin {
    pub record: EscrowedPin,
    /// Redacted in `Debug`, wiped on drop.
    pub pin: SecretString,
}

/// Six uniformly random digits from the CSPRNG (rejection sampling avoids modulo bias).
pub fn generate_pin() -> Result<String, ServiceError> {
    loop {
        let mut b = [0u8; 4];
        rand_bytes(&mut b).map_err(crate::secrets::SecretError::from)?;
        let n = u32::from_le_bytes(b);
        // 4_294_000_000 is the largest multiple of 1_000_000 below 2^32.
        if n < 4_294_000_000 {
            return Ok(format!("{:06}", n % 1_000_000));
        }
    }
}

/// An earlier wipe in this state means the Mac got (or will get) it: sending another needs
/// `force`. Only a wipe that was canceled or that the Mac refused leaves the way free.
fn blocks_another_wipe(status: QueueStatus) -> bool {
    !matches!(
        status,
        QueueStatus::Canceled | QueueStatus::Error | QueueStatus::CommandFormatError
    )
}

fn check_pin(pin: &str) -> Result<(), ServiceError> {
    if pin.len() == 6 && pin.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(ServiceError::BadRequest(
            "pin must be exactly 6 digits".into(),
        ))
    }
}

fn parse_obliteration(s: &str) -> Result<ObliterationBehavior, ServiceError> {
    Ok(match s {
        "Default" => ObliterationBehavior::Default,
        "DoNotObliterate" => ObliterationBehavior::DoNotObliterate,
        "ObliterateWithWarning" => ObliterationBehavior::ObliterateWithWarning,
        "Always" => ObliterationBehavior::Always,
        other => {
            return Err(ServiceError::BadRequest(format!(
                "obliteration_behavior {other:?} is not one of Default, DoNotObliterate, \
                 ObliterateWithWarning, Always"
            )));
        }
    })
}

impl MdmService {
    /// `DeviceLock` with a 6-digit PIN (generated unless given), escrowed first.
    pub async fn lock(
        &self,
        udid: &str,
        req: LockRequest,
        actor: &str,
    ) -> Result<Issued, ServiceError> {
        let device = self.enrolled_device(udid).await?;
        let pin = match req.pin {
            Some(p) => {
                check_pin(&p)?;
                p
            }
            None => generate_pin()?,
        };
        let command = Command::device_lock(
            Some(&pin),
            req.message.as_deref(),
            req.phone_number.as_deref(),
        )?;
        self.escrow_and_enqueue(&command, &device, &pin, actor)
            .await?;
        self.audit(
            actor,
            "device.lock",
            udid,
            json!({"command_uuid": command.command_uuid}),
        )
        .await?;
        Ok(Issued {
            command_uuid: command.command_uuid,
            pin: crate::secrets::secret_text(pin),
            device,
        })
    }

    /// `EraseDevice` for one Mac, after the admin typed its serial number.
    pub async fn wipe(
        &self,
        udid: &str,
        req: WipeRequest,
        actor: &str,
    ) -> Result<Issued, ServiceError> {
        let device = self.enrolled_device(udid).await?;
        let confirm = req.confirm_serial.as_deref().map(str::trim).unwrap_or("");
        if confirm.is_empty() {
            return Err(ServiceError::BadRequest(
                "confirm_serial is required: type the Mac's serial number to confirm the wipe"
                    .into(),
            ));
        }
        let serial = device.serial_number.clone().unwrap_or_default();
        if serial.is_empty() || !confirm.eq_ignore_ascii_case(&serial) {
            return Err(ServiceError::Refused(
                "confirm_serial does not match this device's serial number".into(),
            ));
        }
        if !req.force {
            let earlier = self
                .store
                .escrowed_pins(&PinFilter::serial(&serial))
                .await?;
            if let Some(prev) = earlier
                .iter()
                .find(|p| p.request_type == "EraseDevice" && blocks_another_wipe(p.status))
            {
                let when = crate::timefmt::rfc3339(prev.delivered_at.unwrap_or(prev.created_at));
                return Err(ServiceError::Conflict(format!(
                    "a wipe of this Mac is already {} ({}, command {}); pass force to send another",
                    prev.status.as_str().to_lowercase(),
                    when,
                    prev.command_uuid
                )));
            }
        }
        let pin = match req.pin {
            Some(p) => {
                check_pin(&p)?;
                p
            }
            None => generate_pin()?,
        };
        let obliteration = req
            .obliteration_behavior
            .as_deref()
            .map(parse_obliteration)
            .transpose()?;
        let command = Command::erase_device(Some(&pin), obliteration)?;
        self.escrow_and_enqueue(&command, &device, &pin, actor)
            .await?;
        self.audit(
            actor,
            "device.wipe",
            udid,
            json!({"command_uuid": command.command_uuid, "serial_number": serial, "force": req.force}),
        )
        .await?;
        Ok(Issued {
            command_uuid: command.command_uuid,
            pin: crate::secrets::secret_text(pin),
            device,
        })
    }

    /// Cancel the device's pending wipe, if the Mac has not received it yet.
    pub async fn cancel_wipe(
        &self,
        udid: &str,
        actor: &str,
    ) -> Result<CancelOutcome, ServiceError> {
        let pins = self.store.escrowed_pins(&PinFilter::udid(udid)).await?;
        let wipe = pins
            .iter()
            .find(|p| p.request_type == "EraseDevice" && p.status.is_open())
            .ok_or_else(|| ServiceError::NotFound(format!("no pending wipe for {udid}")))?;
        let outcome = self
            .store
            .cancel_command(&wipe.command_uuid, now_ms())
            .await?;
        if outcome.canceled.is_empty() {
            let when = outcome
                .already_delivered
                .iter()
                .filter_map(|(_, at)| *at)
                .min()
                .or(wipe.delivered_at)
                .map(crate::timefmt::rfc3339)
                .unwrap_or_else(|| "an earlier time".into());
            return Err(ServiceError::Conflict(format!(
                "the wipe was already delivered at {when}; it can no longer be canceled"
            )));
        }
        self.audit(
            actor,
            "device.wipe.cancel",
            udid,
            json!({"command_uuid": wipe.command_uuid}),
        )
        .await?;
        Ok(outcome)
    }

    /// Every escrowed PIN for a serial number or UDID, newest first, even after the device was
    /// deleted or re-enrolled. Each reveal is audited.
    pub async fn reveal_pins(
        &self,
        filter: &PinFilter,
        actor: &str,
        reason: Option<&str>,
    ) -> Result<Vec<RevealedPin>, ServiceError> {
        let who = Reveal {
            serial: filter.serial.as_deref(),
            udid: filter.udid.as_deref(),
            reason,
        };
        who.check()?;
        let records = self.store.escrowed_pins(filter).await?;
        let commands = records.iter().map(|r| r.command_uuid.clone()).collect();
        self.audit_reveal(actor, "pin.reveal", who, ("commands", commands))
            .await?;
        records
            .into_iter()
            .map(|record| {
                let pin = self.vault.open(
                    Sealed::UnlockPin {
                        command_uuid: &record.command_uuid,
                    },
                    &record.pin_sealed,
                )?;
                let pin = crate::secrets::secret_utf8(pin)?;
                Ok(RevealedPin { record, pin })
            })
            .collect()
    }

    async fn enrolled_device(&self, udid: &str) -> Result<crate::store::DeviceView, ServiceError> {
        let device = self
            .store
            .device(udid)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("no device {udid}")))?;
        if !device.enrolled {
            return Err(ServiceError::Conflict(format!(
                "device {udid} is not enrolled (checked out or re-enrolling): it would never \
                 receive the command"
            )));
        }
        Ok(device)
    }

    /// Seal the PIN and, in one store transaction, escrow it and queue the command at the
    /// front of the device's queue (see `enqueue_rules::is_urgent`).
    async fn escrow_and_enqueue(
        &self,
        command: &Command,
        device: &crate::store::DeviceView,
        pin: &str,
        actor: &str,
    ) -> Result<(), ServiceError> {
        let now = now_ms();
        let escrow = PinEscrowRecord {
            command_uuid: command.command_uuid.clone(),
            device_id: device.udid.clone(),
            serial_number: device.serial_number.clone(),
            request_type: command.request_type.clone(),
            pin_sealed: self.vault.seal(
                Sealed::UnlockPin {
                    command_uuid: &command.command_uuid,
                },
                pin.as_bytes(),
            )?,
            issued_by: actor.to_string(),
            now,
        };
        let queued = self
            .store
            .enqueue_escrowed(
                &NewCommand {
                    command_uuid: command.command_uuid.clone(),
                    request_type: command.request_type.clone(),
                    // The payload holds the PIN: it is stored sealed like the escrow record.
                    payload: self.seal_payload(&command.command_uuid, &command.to_plist())?,
                    payload_sealed: true,
                    priority: PRIORITY_URGENT,
                    now,
                },
                &escrow,
            )
            .await?;
        if !queued {
            return Err(ServiceError::NotFound(format!("no device {}", device.udid)));
        }
        // Escrowed and committed: only now may a push make the Mac fetch it.
        self.announce(&command.command_uuid);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_pins_are_six_digits_and_vary() {
        let pins: std::collections::HashSet<String> =
            (0..200).map(|_| generate_pin().expect("pin")).collect();
        assert!(
            pins.iter()
                .all(|p| p.len() == 6 && p.bytes().all(|b| b.is_ascii_digit()))
        );
        assert!(
            pins.len() > 190,
            "200 random PINs should almost never collide"
        );
    }

    #[test]
    fn given_pins_must_be_six_digits() {
        assert!(check_pin("123456").is_ok());
        for bad in ["12345", "1234567", "12345a", "", "１２３４５６"] {
            assert!(check_pin(bad).is_err(), "{bad}");
        }
    }
}
