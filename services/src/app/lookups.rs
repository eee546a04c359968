//! Facts looked up from the event store before a command is issued (does an aggregate exist
//! in the caller's org, is PRM enabled, is a partner user assignable), and the one way to run
//! a command that needs no other fact against an existing aggregate of the org.

use super::{AppError, CommandMeta, Commands, Committed, Loaded};
use cqrs_es::Aggregate;
use leadroute_domain::bulk::BulkOperation;
use leadroute_domain::ids::{OrgId, Owner, PartnerUserId, QueueId};
use leadroute_domain::lead::Lead;
use leadroute_domain::org::Org;
use leadroute_domain::partner_account::PartnerAccount;
use leadroute_domain::partner_user::{NotAssignable, PartnerUser};
use leadroute_domain::pool::Pool;
use leadroute_domain::queue::Queue;
use leadroute_domain::rule_set::RuleSet;
use leadroute_domain::templates::Templates;
use leadroute_domain::Refusal;

/// An aggregate that belongs to one org once it exists.
pub trait InOrg: Aggregate<Services = ()> + Clone + Send + Sync + 'static
where
    Self::Error: Refusal + Send + Sync + 'static,
{
    /// Loaded incrementally from a cached state (only its new events are read): for
    /// aggregates with a long history loaded over and over, such as a pool with a pick per
    /// routed lead.
    const CACHED: bool = false;
    /// Name reported when it is missing (`contact`).
    const WHAT: &'static str;
    /// Code reported when it is missing: the domain's own code for that aggregate.
    const NOT_FOUND: &'static str;
    /// Its org, `None` while it does not exist.
    fn org(&self) -> Option<OrgId>;
}

impl InOrg for Org {
    const WHAT: &'static str = "org";
    const NOT_FOUND: &'static str = "org_not_found";
    fn org(&self) -> Option<OrgId> {
        self.id
    }
}

impl InOrg for PartnerAccount {
    const WHAT: &'static str = "partner_account";
    const NOT_FOUND: &'static str = "partner_account_not_found";
    fn org(&self) -> Option<OrgId> {
        self.org_id
    }
}

impl InOrg for PartnerUser {
    const WHAT: &'static str = "contact";
    const NOT_FOUND: &'static str = "contact_not_found";
    fn org(&self) -> Option<OrgId> {
        self.org_id
    }
}

impl InOrg for Queue {
    const WHAT: &'static str = "queue";
    const NOT_FOUND: &'static str = "queue_not_found";
    fn org(&self) -> Option<OrgId> {
        self.org_id
    }
}

impl InOrg for Pool {
    const CACHED: bool = true;
    const WHAT: &'static str = "pool";
    const NOT_FOUND: &'static str = "pool_not_found";
    fn org(&self) -> Option<OrgId> {
        self.org_id
    }
}

impl InOrg for RuleSet {
    const CACHED: bool = true;
    const WHAT: &'static str = "rule_set";
    const NOT_FOUND: &'static str = "rule_set_not_found";
    fn org(&self) -> Option<OrgId> {
        self.org_id
    }
}

impl InOrg for Templates {
    const WHAT: &'static str = "templates";
    const NOT_FOUND: &'static str = "templates_not_found";
    fn org(&self) -> Option<OrgId> {
        self.org_id
    }
}

impl InOrg for BulkOperation {
    const CACHED: bool = true;
    const WHAT: &'static str = "bulk_operation";
    const NOT_FOUND: &'static str = "bulk_operation_not_found";
    fn org(&self) -> Option<OrgId> {
        self.org_id
    }
}

impl InOrg for Lead {
    const WHAT: &'static str = "lead";
    const NOT_FOUND: &'static str = "lead_not_found";
    fn org(&self) -> Option<OrgId> {
        self.org_id
    }
}

impl Commands {
    /// Load an existing aggregate of `org`; a missing one, or one of another org, is not found.
    pub(crate) async fn load_in_org<A>(
        &self,
        org: OrgId,
        id: impl ToString,
    ) -> Result<Loaded<A>, AppError>
    where
        A: InOrg,
        A::Error: Refusal + Send + Sync + 'static,
    {
        let id = id.to_string();
        let loaded = if A::CACHED {
            self.load_cached::<A>(&id).await?
        } else {
            self.load::<A>(&id).await?
        };
        match loaded.aggregate.org() {
            Some(owner_org) if owner_org == org => Ok(loaded),
            _ => Err(AppError::not_found(A::NOT_FOUND, A::WHAT, id)),
        }
    }

    /// The current state of an existing aggregate of `org` (for authorization and for reads
    /// that must not lag, such as a lead's owner before a command on it).
    pub async fn state<A>(&self, org: OrgId, id: impl ToString) -> Result<A, AppError>
    where
        A: InOrg,
        A::Error: Refusal + Send + Sync + 'static,
    {
        Ok(self.load_in_org::<A>(org, id).await?.aggregate)
    }

    /// The current state of an existing aggregate of `org` and its sequence number, for a
    /// command that must apply only if nothing changed since (see `route_lead_at`).
    pub async fn state_at<A>(&self, org: OrgId, id: impl ToString) -> Result<(A, usize), AppError>
    where
        A: InOrg,
        A::Error: Refusal + Send + Sync + 'static,
    {
        let loaded = self.load_in_org::<A>(org, id).await?;
        Ok((loaded.aggregate, loaded.current_sequence))
    }

    /// Run `command` (rebuilt on every retry) against an existing aggregate of `org`.
    pub(crate) async fn on_existing<A>(
        &self,
        meta: &CommandMeta,
        org: OrgId,
        id: impl ToString,
        command: impl Fn() -> A::Command,
    ) -> Result<Committed, AppError>
    where
        A: InOrg,
        A::Error: Refusal + Send + Sync + 'static,
    {
        let id = id.to_string();
        self.retry(|| async {
            let loaded = self.load_in_org::<A>(org, &id).await?;
            self.commit(loaded, command(), meta).await
        })
        .await
    }

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
