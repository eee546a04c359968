//! Org commands: create, enable PRM (one-way, with the sharing review), the refused disable,
//! the partner-visible fields and the partner workflow (how offers work).

use crate::commands::{CommandMeta, Commands, Committed};
use crate::error::AppError;
use leadroute_domain::ids::OrgId;
use leadroute_domain::org::{
    is_slug, slug_of, Org, OrgCommand, OrgError, PartnerWorkflow, SharingReviewAck, VisibleFields,
};
use leadroute_domain::RefusalKind;

/// Code of a slug another org holds.
pub const SLUG_TAKEN: &str = "slug_taken";

impl Commands {
    /// Create an org, its slug suggested by its name (see [`Commands::create_org_with_slug`]).
    pub async fn create_org(
        &self,
        meta: &CommandMeta,
        org_id: OrgId,
        name: &str,
    ) -> Result<Committed, AppError> {
        self.create_org_with_slug(meta, org_id, name, None).await
    }

    /// Create an org addressed in partner links by `slug` (`slug_taken` when another org
    /// holds it), or when `None` by the slug its name suggests, with `-2`, `-3`, ... added
    /// until one is free (no slug when the name suggests none: addressed by id).
    pub async fn create_org_with_slug(
        &self,
        meta: &CommandMeta,
        org_id: OrgId,
        name: &str,
        slug: Option<&str>,
    ) -> Result<Committed, AppError> {
        let slug = self.claim_slug(org_id, name, slug).await?;
        self.retry(|| async {
            let loaded = self.load::<Org>(org_id).await?;
            let command = OrgCommand::CreateOrg {
                org_id,
                name: name.to_string(),
                slug: slug.clone(),
                actor: meta.actor.clone(),
                at: meta.at,
            };
            self.commit(loaded, command, meta).await
        })
        .await
    }

    /// Claim a slug for `org` in `org_slugs` (a repeat for the same org keeps its claim).
    async fn claim_slug(
        &self,
        org: OrgId,
        name: &str,
        wanted: Option<&str>,
    ) -> Result<Option<String>, AppError> {
        let held: Option<String> =
            sqlx::query_scalar("SELECT slug FROM org_slugs WHERE org_id = $1")
                .bind(org.0)
                .fetch_optional(&self.pool)
                .await?;
        if let Some(held) = held {
            return Ok(Some(held));
        }
        let candidates: Vec<String> = match wanted {
            Some(wanted) if !is_slug(wanted) => {
                return Err(crate::error::refused(OrgError::InvalidSlug))
            }
            Some(wanted) => vec![wanted.to_string()],
            None => match slug_of(name) {
                Some(base) => std::iter::once(base.clone())
                    .chain((2..100).map(|n| format!("{base}-{n}")))
                    .collect(),
                None => return Ok(None),
            },
        };
        for candidate in candidates {
            let claimed = sqlx::query(
                "INSERT INTO org_slugs (slug, org_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            )
            .bind(&candidate)
            .bind(org.0)
            .execute(&self.pool)
            .await?;
            if claimed.rows_affected() == 1 {
                return Ok(Some(candidate));
            }
        }
        match wanted {
            Some(_) => Err(AppError::Refused {
                code: SLUG_TAKEN,
                kind: RefusalKind::Conflict,
                message: "another org has this slug".into(),
            }),
            None => Ok(None),
        }
    }

    /// The org an address segment names: its slug, or its id.
    pub async fn org_at(&self, segment: &str) -> Result<Option<OrgId>, AppError> {
        if let Ok(id) = segment.parse::<uuid::Uuid>() {
            return Ok(Some(OrgId(id)));
        }
        if !is_slug(segment) {
            return Ok(None);
        }
        let org: Option<uuid::Uuid> =
            sqlx::query_scalar("SELECT org_id FROM org_slugs WHERE slug = $1")
                .bind(segment)
                .fetch_optional(&self.pool)
                .await?;
        Ok(org.map(OrgId))
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
