//! Declarations an admin uploads for a group (issue 17, "Beyond"): checked against Apple's
//! declarative schemas (`protocol::declaration`), stored, served by the DDM channel to the
//! group's Macs. A configuration is turned on by Russet's activation, which lists every
//! configuration of a Mac's set; activations, assets and management declarations are served
//! as uploaded. Uploading an identifier again replaces it. Audited (`ddm.declaration.upload`,
//! `ddm.declaration.delete`); the Macs concerned are told before the admin gets the answer.

use super::DdmService;
use crate::protocol::declaration;
use crate::service::ServiceError;
use crate::store::ddm::{DdmDeclarationRecord, PutDeclaration};
use crate::timefmt::now_ms;
use serde_json::{Value, json};

impl DdmService {
    /// Check and store `declaration` for `group`; the stored record.
    pub async fn upload_declaration(
        &self,
        group: &str,
        declaration: &Value,
        actor: &str,
    ) -> Result<DdmDeclarationRecord, ServiceError> {
        let checked = declaration::check(declaration).map_err(|problems| {
            let named: Vec<String> = problems
                .iter()
                .map(|p| format!("declaration.{p}"))
                .collect();
            ServiceError::BadRequest(named.join("; "))
        })?;
        let record = DdmDeclarationRecord {
            identifier: checked.identifier,
            group_name: group.to_string(),
            kind: checked.kind.to_string(),
            declaration_type: checked.declaration_type,
            payload: checked.payload.to_string(),
            created_at: now_ms(),
            created_by: actor.to_string(),
        };
        let replaced = match self.store.put_ddm_declaration(&record).await? {
            PutDeclaration::Stored(old) => old,
            PutDeclaration::NoGroup => {
                return Err(ServiceError::NotFound(format!("group: no group {group}")));
            }
        };
        self.audit_declaration(actor, "ddm.declaration.upload", &record, replaced.is_some())
            .await?;
        let mut told = self.service.group_devices(group).await?;
        if let Some(old) = replaced.filter(|o| o.group_name != group) {
            told.extend(self.members(&old.group_name).await?);
        }
        self.resync(&told, false).await?;
        Ok(record)
    }

    /// Every uploaded declaration.
    pub async fn uploaded_declarations(&self) -> Result<Vec<DdmDeclarationRecord>, ServiceError> {
        Ok(self.store.ddm_declarations().await?)
    }

    /// Delete an uploaded declaration; its group's Macs are told.
    pub async fn delete_declaration(
        &self,
        identifier: &str,
        actor: &str,
    ) -> Result<DdmDeclarationRecord, ServiceError> {
        let record = self
            .store
            .delete_ddm_declaration(identifier)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("no declaration {identifier}")))?;
        self.audit_declaration(actor, "ddm.declaration.delete", &record, false)
            .await?;
        let members = self.members(&record.group_name).await?;
        self.resync(&members, false).await?;
        Ok(record)
    }

    /// A group's Macs; none if it is gone.
    async fn members(&self, group: &str) -> Result<Vec<String>, ServiceError> {
        match self.service.group_devices(group).await {
            Ok(m) => Ok(m),
            Err(ServiceError::NotFound(_)) => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    async fn audit_declaration(
        &self,
        actor: &str,
        action: &str,
        r: &DdmDeclarationRecord,
        replaced: bool,
    ) -> Result<(), ServiceError> {
        let detail = json!({
            "group": r.group_name,
            "type": r.declaration_type,
            "replaced": replaced,
        });
        Ok(
            crate::service::audit::record(
                self.store.as_ref(),
                actor,
                action,
                &r.identifier,
                detail,
            )
            .await?,
        )
    }
}
