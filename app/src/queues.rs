//! Queue commands: create a queue, add and remove members (partner users or whole partner
//! accounts of the same org).

use crate::commands::{CommandMeta, Commands, Committed};
use crate::error::AppError;
use leadroute_domain::ids::{OrgId, QueueId};
use leadroute_domain::org::Org;
use leadroute_domain::partner_account::PartnerAccount;
use leadroute_domain::partner_user::PartnerUser;
use leadroute_domain::queue::{Queue, QueueCommand, QueueMember};

impl Commands {
    /// Create a queue in `org`.
    pub async fn create_queue(
        &self,
        meta: &CommandMeta,
        org: OrgId,
        queue_id: QueueId,
        name: &str,
    ) -> Result<Committed, AppError> {
        self.retry(|| async {
            self.load_in_org::<Org>(org, org).await?;
            let loaded = self.load::<Queue>(queue_id).await?;
            let command = QueueCommand::CreateQueue {
                queue_id,
                org_id: org,
                name: name.to_string(),
                actor: meta.actor.clone(),
                at: meta.at,
            };
            self.commit(loaded, command, meta).await
        })
        .await
    }

    /// Add a member; it must exist in the same org.
    pub async fn add_queue_member(
        &self,
        meta: &CommandMeta,
        org: OrgId,
        queue: QueueId,
        member: QueueMember,
    ) -> Result<Committed, AppError> {
        self.retry(|| async {
            self.member_exists(org, member).await?;
            let loaded = self.load_in_org::<Queue>(org, queue).await?;
            let command = QueueCommand::AddQueueMember {
                member,
                actor: meta.actor.clone(),
                at: meta.at,
            };
            self.commit(loaded, command, meta).await
        })
        .await
    }

    /// Remove a member.
    pub async fn remove_queue_member(
        &self,
        meta: &CommandMeta,
        org: OrgId,
        queue: QueueId,
        member: QueueMember,
    ) -> Result<Committed, AppError> {
        self.on_existing::<Queue>(meta, org, queue, || QueueCommand::RemoveQueueMember {
            member,
            actor: meta.actor.clone(),
            at: meta.at,
        })
        .await
    }

    async fn member_exists(&self, org: OrgId, member: QueueMember) -> Result<(), AppError> {
        match member {
            QueueMember::PartnerUser(user) => {
                self.load_in_org::<PartnerUser>(org, user).await.map(|_| ())
            }
            QueueMember::PartnerAccount(account) => self
                .load_in_org::<PartnerAccount>(org, account)
                .await
                .map(|_| ()),
        }
    }
}
