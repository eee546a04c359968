//! Facts looked up from the event store before a command is issued (does an aggregate exist
//! in the caller's org, is PRM enabled, is a partner user assignable), and the one way to run
//! a command that needs no other fact against an existing aggregate of the org.

use crate::commands::Commands;
use crate::error::AppError;
use leadroute_domain::ids::{OrgId, Owner, PartnerUserId, QueueId};
use leadroute_domain::org::Org;
use leadroute_domain::partner_account::PartnerAccount;
use leadroute_domain::partner_user::{NotAssignable, PartnerUser};
use leadroute_domain::queue::Queue;

impl Commands {
    /// Whether `org` exists and has PRM enabled.
    pub(crate) async fn prm_enabled(&self, org: OrgId) -> Result<bool, AppError> {
        Ok(self
            .load_in_org::<Org>(org, org)
            .await?
            .aggregate
            .prm_enabled)
    }

    /// A partner user of `org` and whether it may receive a lead now.
    pub async fn partner_user_assignability(
        &self,
        org: OrgId,
        user: PartnerUserId,
    ) -> Result<(PartnerUser, Result<(), NotAssignable>), AppError> {
        let user_id = user;
        let user = self
            .load_in_org::<PartnerUser>(org, user_id)
            .await?
            .aggregate;
        let account_id = user.account_id.ok_or_else(|| {
            AppError::not_found("partner_account_not_found", "partner_account", user_id)
        })?;
        let account = self
            .load_in_org::<PartnerAccount>(org, account_id)
            .await?
            .aggregate;
        let verdict = user.assignability(account.active);
        Ok((user, verdict))
    }

    /// Whether `owner` may receive a lead of `org`; a missing target is not found.
    pub(crate) async fn owner_assignability(
        &self,
        org: OrgId,
        owner: Owner,
    ) -> Result<Result<(), NotAssignable>, AppError> {
        match owner {
            Owner::PartnerUser(user) => Ok(self.partner_user_assignability(org, user).await?.1),
            Owner::Queue(queue) => self.queue_exists(org, queue).await.map(Ok),
            Owner::InternalUser(_) => Ok(Ok(())),
        }
    }

    /// Fails with not found unless `queue` exists in `org`.
    pub(crate) async fn queue_exists(&self, org: OrgId, queue: QueueId) -> Result<(), AppError> {
        self.load_in_org::<Queue>(org, queue).await.map(|_| ())
    }
}
