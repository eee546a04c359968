//! Org commands: create, enable PRM (one-way, with the sharing review), the refused disable,
//! the partner-visible fields and the partner workflow (how offers work).

use crate::commands::{CommandMeta, Commands, Committed};
use crate::error::AppError;
use leadroute_domain::ids::OrgId;
use leadroute_domain::org::{Org, OrgCommand, PartnerWorkflow, SharingReviewAck, VisibleFields};

impl Commands {
    /// Create an org.
    pub async fn create_org(
        &self,
        meta: &CommandMeta,
        org_id: OrgId,
        name: &str,
    ) -> Result<Committed, AppError> {
        self.retry(|| async {
            let loaded = self.load::<Org>(org_id).await?;
            let command = OrgCommand::CreateOrg {
                org_id,
                name: name.to_string(),
                actor: meta.actor.clone(),
                at: meta.at,
            };
            self.commit(loaded, command, meta).await
        })
        .await
    }

    /// Enable PRM for good; `acknowledgement` is the admin's sharing review (required).
    pub async fn enable_prm(
        &self,
        meta: &CommandMeta,
        org_id: OrgId,
        acknowledgement: Option<SharingReviewAck>,
    ) -> Result<Committed, AppError> {
        self.on_existing::<Org>(meta, org_id, org_id, || OrgCommand::EnablePrm {
            acknowledgement: acknowledgement.clone(),
            actor: meta.actor.clone(),
            at: meta.at,
        })
        .await
    }

    /// Try to disable PRM; always refused (`prm_irreversible` once enabled).
    pub async fn disable_prm(
        &self,
        meta: &CommandMeta,
        org_id: OrgId,
    ) -> Result<Committed, AppError> {
        self.on_existing::<Org>(meta, org_id, org_id, || OrgCommand::DisablePrm {
            actor: meta.actor.clone(),
        })
        .await
    }

    /// Replace the fields partner users may see.
    pub async fn set_partner_visible_fields(
        &self,
        meta: &CommandMeta,
        org_id: OrgId,
        fields: VisibleFields,
    ) -> Result<Committed, AppError> {
        self.on_existing::<Org>(meta, org_id, org_id, || {
            OrgCommand::SetPartnerVisibleFields {
                fields: fields.clone(),
                actor: meta.actor.clone(),
                at: meta.at,
            }
        })
        .await
    }

    /// Replace how offers to partner users work (decline reasons ...); refused with
    /// `invalid_workflow` naming the setting at fault.
    pub async fn set_partner_workflow(
        &self,
        meta: &CommandMeta,
        org_id: OrgId,
        workflow: PartnerWorkflow,
    ) -> Result<Committed, AppError> {
        self.on_existing::<Org>(meta, org_id, org_id, || OrgCommand::SetPartnerWorkflow {
            workflow: workflow.clone(),
            actor: meta.actor.clone(),
            at: meta.at,
        })
        .await
    }
}
