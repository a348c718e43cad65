//! What an admin does with push: wake a device now, the push certificate (status, CSR,
//! import) and, for an MDM vendor, signing customers' CSRs. Rules and audit live here; the
//! admin API only parses and renders.

use super::certificate::{self, ImportInput, ImportOutcome, PushCertStatus, VendorSigner};
use super::dispatcher::{Dispatcher, PushReport};
use crate::secrets::SecretBox;
use crate::service::{ServiceError, audit};
use crate::store::Store;
use russet_apns::PushOutcome;
use russet_certs::pushcert::PushCsrSubject;
use serde_json::json;
use std::sync::Arc;

pub struct PushService {
    store: Arc<dyn Store>,
    vault: Arc<SecretBox>,
    dispatcher: Arc<Dispatcher>,
    /// Set when this server signs customers' push CSRs (MDM vendor).
    vendor: Option<Arc<VendorSigner>>,
}

impl PushService {
    pub fn new(
        store: Arc<dyn Store>,
        vault: Arc<SecretBox>,
        dispatcher: Arc<Dispatcher>,
        vendor: Option<Arc<VendorSigner>>,
    ) -> Self {
        PushService {
            store,
            vault,
            dispatcher,
            vendor,
        }
    }

    /// Push one device now. What APNs answered is returned (delivered or not); a device that
    /// cannot be pushed at all is an error: unknown or without a token (`NotFound`), its token
    /// declared dead by APNs (`PushBlocked`), or no push certificate (`NoPushCertificate`).
    pub async fn push_now(&self, udid: &str) -> Result<PushOutcome, ServiceError> {
        match self.dispatcher.push_enrollment(udid).await? {
            PushReport::Sent(outcome) => Ok(outcome),
            PushReport::Blocked(why) => Err(ServiceError::PushBlocked(why)),
            PushReport::NoCertificate => Err(ServiceError::NoPushCertificate),
            PushReport::NoTarget => Err(ServiceError::NotFound(format!(
                "no enrolled device {udid} with a push token"
            ))),
        }
    }

    /// The active push certificate, if any.
    pub async fn status(&self) -> Result<Option<PushCertStatus>, ServiceError> {
        certificate::status(self.store.as_ref()).await
    }

    /// Set the push certificate's days-to-expiry gauge (at scrape time).
    pub async fn record_gauges(&self) -> Result<(), ServiceError> {
        let days = self.status().await?.map(|s| s.days_left);
        crate::telemetry::push_certificate_days(days);
        Ok(())
    }

    /// A CSR for a new push certificate (its key stays sealed in Russet); audited.
    pub async fn create_csr(
        &self,
        subject: &PushCsrSubject,
        actor: &str,
    ) -> Result<String, ServiceError> {
        let pem = certificate::create_csr(self.store.as_ref(), &self.vault, subject).await?;
        audit::record(
            self.store.as_ref(),
            actor,
            "apns.csr",
            "push-certificate",
            json!({}),
        )
        .await?;
        Ok(pem)
    }

    /// Import a push certificate and make it the active one; audited with the topic change,
    /// if the admin forced one.
    pub async fn import(
        &self,
        input: ImportInput,
        force_new_topic: bool,
        actor: &str,
    ) -> Result<ImportOutcome, ServiceError> {
        let outcome =
            certificate::import(self.store.as_ref(), &self.vault, input, force_new_topic).await?;
        audit::record(
            self.store.as_ref(),
            actor,
            "apns.import",
            &outcome.status.topic,
            json!({"topic_changed_from": outcome.topic_changed_from}),
        )
        .await?;
        Ok(outcome)
    }

    /// Sign a customer's push CSR with the vendor credentials: the upload file for Apple's
    /// Push Certificates Portal; audited.
    pub async fn vendor_sign(&self, csr_pem: &str, actor: &str) -> Result<String, ServiceError> {
        let signer = self
            .vendor
            .as_ref()
            .ok_or(ServiceError::VendorNotConfigured)?;
        let upload = signer.sign(csr_pem.as_bytes())?;
        audit::record(
            self.store.as_ref(),
            actor,
            "vendor.sign",
            "push-csr",
            json!({}),
        )
        .await?;
        Ok(upload)
    }
}
